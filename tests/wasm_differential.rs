//! The proxy-wasm filter decides as the ext_authz server does: the same configuration and the
//! same requests through Envoy with the server (envoy/envoy.yaml) and through Envoy with the
//! filter (envoy/envoy-wasm.yaml) give the same status, JSON reason, `www-authenticate`, and
//! the same `x-claimgate-*` headers at the upstream (decision ids aside).
//!
//! The corpus is generated: every credential below (valid tokens of several identities, a tie,
//! every 401 reason, foreign keys, algorithm confusion) on every request shape (each route,
//! dry run, public, no route, team and inherited grants, the normalization cases), with and
//! without spoofed
//! `x-claimgate-*` headers in several spellings.

mod common;

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::envoy::{Echo, Envoy, EnvoyConfig, Seen, HEADER_MUTATION_FILTER};
use common::process::{Claimgate, HttpReply};
use common::wasm::{bundle_of, envoy_wasm_config, wasm_file};
use common::*;
use serde_json::{json, Value};

/// Added to the shared fixture (`fixture_config`): an identity of claim conditions, a
/// resource in dry run, the resource Envoy's route names itself, and a team bound on a
/// cluster whose workspace a route names as the parent of any model.
const MORE: &str = r#"
teams:
  - name: readers
    members: [external-identity:ns-prod, external-identity:release]
routes:
  - path: /v1/ws/{ws}/models/{name}
    resource: model:{name}
    parent: workspace:{ws}
    role: viewer
external_identities:
  - name: release
    sso_fqn: test-idp
    claims:
      sub: {like: "repo:acme/*:ref:refs/tags/*"}
      actor: {not: "dependabot[bot]"}
resources:
  - fqn: model:acme/release
    collaborators:
      - {subject: external-identity:release, role: editor}
  - fqn: model:acme/trial
    enforcement: dry_run
    collaborators:
      - {subject: external-identity:api, role: viewer}
  - fqn: mcp-server:search
    collaborators:
      - {subject: external-identity:api, role: viewer}
  - fqn: cluster:main
    collaborators:
      - {subject: team:readers, role: editor}
  - fqn: workspace:ml
    parent: cluster:main
    enforcement: enforce
"#;

/// A second SSO without a fallback identity: its tokens can match no identity.
const STRICT: &str = r#"
sso_integrations:
  - name: strict-idp
    type: oidc
    issuer: https://strict.test.local
    audiences: [claimgate]
    jwks_file: strict.json
    algorithms: [ES256]
external_identities:
  - name: strict-bot
    sso_fqn: strict-idp
    claims:
      repository: acme/api
"#;

/// One credential of the corpus: what it is, and the Authorization values it sends.
struct Credential {
    name: &'static str,
    authorization: Vec<String>,
}

fn credentials(
    key: &TestKey,
    other_alg: &TestKey,
    foreign: &TestKey,
    strict: &TestKey,
) -> Vec<Credential> {
    let strict_token = |extra: Value| {
        let mut c = claims("bot", extra);
        c["iss"] = json!("https://strict.test.local");
        vec![format!("Bearer {}", strict.sign(&c))]
    };
    let stranger = TestKey::generate(Kind::Rs256, "k9");
    let bearer = |t: String| vec![format!("Bearer {t}")];
    let signed =
        |extra: Value| bearer(key.sign(&claims("repo:acme/api:ref:refs/heads/main", extra)));
    let at = |sub: &str, extra: Value| bearer(key.sign(&claims(sub, extra)));
    let now = now();
    // HS256 keyed with the RSA public key: the classic algorithm confusion.
    let hs256 = {
        let claims = claims(
            "repo:acme/api:ref:refs/heads/main",
            json!({"repository": "acme/api"}),
        );
        let secret = jsonwebtoken::EncodingKey::from_secret(key.jwk.to_string().as_bytes())
            .expect("an HMAC key");
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&h, &claims, &secret).expect("HS256 signs")
    };
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims("x", json!({})).to_string())
    );
    let mut tampered = key.sign(&claims("repo:acme/api:ref:refs/heads/main", json!({})));
    tampered.push('A');
    vec![
        Credential {
            name: "none",
            authorization: vec![],
        },
        Credential {
            name: "basic",
            authorization: vec!["Basic YWxhZGRpbjpvcGVuc2VzYW1l".into()],
        },
        Credential {
            name: "two values",
            authorization: vec![
                format!("Bearer {}", key.sign(&claims("a", json!({})))),
                "Bearer second".into(),
            ],
        },
        Credential {
            name: "garbage",
            authorization: bearer("not.a.jwt".into()),
        },
        Credential {
            name: "fallback",
            authorization: at("someone", json!({})),
        },
        Credential {
            name: "api",
            authorization: signed(json!({"repository": "acme/api"})),
        },
        Credential {
            name: "api array",
            authorization: signed(json!({"repository": ["x/y", "acme/api"]})),
        },
        Credential {
            name: "api-prod",
            authorization: signed(json!({"repository": "acme/api", "environment": "prod"})),
        },
        Credential {
            name: "ns-prod",
            authorization: at(
                "sa",
                json!({"kubernetes.io": {"namespace": "prod"}, "run_attempt": 1}),
            ),
        },
        Credential {
            name: "ns-prod wrong type",
            authorization: at(
                "sa",
                json!({"kubernetes.io": {"namespace": "prod"}, "run_attempt": "1"}),
            ),
        },
        Credential {
            name: "release",
            authorization: at("repo:acme/web:ref:refs/tags/v1", json!({"actor": "alice"})),
        },
        Credential {
            name: "release by dependabot",
            authorization: at(
                "repo:acme/web:ref:refs/tags/v1",
                json!({"actor": "dependabot[bot]"}),
            ),
        },
        Credential {
            name: "tie",
            authorization: signed(json!({"team": "x", "org": "y"})),
        },
        Credential {
            name: "expired",
            authorization: signed(json!({"exp": now - 600, "iat": now - 1200})),
        },
        Credential {
            name: "not yet valid",
            authorization: signed(json!({"nbf": now + 600})),
        },
        Credential {
            name: "other audience",
            authorization: signed(json!({"aud": "someone-else"})),
        },
        Credential {
            name: "unknown issuer",
            authorization: signed(json!({"iss": "https://evil.example"})),
        },
        Credential {
            name: "foreign key, known kid",
            authorization: bearer(foreign.sign(&claims("x", json!({})))),
        },
        Credential {
            name: "strict, matching",
            authorization: strict_token(json!({"repository": "acme/api"})),
        },
        Credential {
            name: "strict, no identity",
            authorization: strict_token(json!({"repository": "acme/web"})),
        },
        Credential {
            name: "foreign key, unknown kid",
            authorization: bearer(stranger.sign(&claims("x", json!({})))),
        },
        Credential {
            name: "key of another algorithm",
            authorization: bearer(other_alg.sign(&claims("x", json!({})))),
        },
        Credential {
            name: "hs256 confusion",
            authorization: bearer(hs256),
        },
        Credential {
            name: "alg none",
            authorization: bearer(unsigned),
        },
        Credential {
            name: "tampered",
            authorization: bearer(tampered),
        },
    ]
}

/// The request shapes of the corpus: method and path as sent.
const REQUESTS: &[(&str, &str)] = &[
    ("GET", "/v1/models/acme/llama/info"),
    ("HEAD", "/v1/models/acme/llama/info"),
    ("get", "/v1/models/acme/llama/info"),
    ("POST", "/v1/models/acme/llama/info"),
    ("DELETE", "/v1/models/acme/llama/info"),
    ("GET", "/v1/admin/settings"),
    ("GET", "/v1/ADMIN/settings"),
    ("GET", "/v1/prod/x"),
    ("GET", "/v1/models/acme/release/info"),
    ("POST", "/v1/models/acme/release/info"),
    ("GET", "/v1/models/acme/trial/info"),
    ("POST", "/v1/models/acme/trial/info"),
    ("GET", "/v1/mcp/search/query"),
    ("GET", "/v1/ws/ml/models/x"),
    ("GET", "/v1/ws/other/models/x"),
    ("GET", "/healthz"),
    ("GET", "/nowhere"),
    ("GET", "/v1/models/acme/llama/info;x=1"),
    ("GET", "/v1/models/acme/llama/./info"),
    ("GET", "/v1/models/acme/%2e%2e/llama/info"),
    ("GET", "/v1/models/acme/llama/info?q=1"),
];

/// Client-sent identity headers, in the spellings a client might try.
const SPOOFED: &[(&str, &str)] = &[
    ("x-claimgate-identity", "admin"),
    ("X-Claimgate-Role", "manager"),
    ("x_claimgate_resource", "workspace:prod"),
    ("X_CLAIMGATE_DRY_RUN", "yes"),
    ("x-claimgate-other", "1"),
];

/// What both hosts must agree on for one request.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    status: u16,
    reason: Option<String>,
    www_authenticate: Option<String>,
    decision_id_sent: bool,
    upstream: BTreeMap<String, Vec<String>>,
}

fn observe(reply: &HttpReply) -> Observed {
    let body: Option<Value> = serde_json::from_str(&reply.body).ok();
    let reason = body
        .as_ref()
        .and_then(|b| b.get("reason"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let upstream = if reply.status == 200 && reason.is_none() && reply.body.starts_with('{') {
        Seen::parse(&reply.body)
            .claimgate_headers()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
            .collect()
    } else {
        BTreeMap::new()
    };
    Observed {
        status: reply.status,
        reason,
        www_authenticate: reply.header("www-authenticate").map(str::to_owned),
        decision_id_sent: reply.header("x-claimgate-decision-id").is_some()
            || reply.body.contains("x-claimgate-decision-id"),
        upstream,
    }
}

/// Both Envoys on an ingress that lets every spelling of a spoofed header through to the
/// decision (no header-stripping filter, underscores allowed), so the two hosts' own removal
/// is what is compared.
fn open_ingress(config: EnvoyConfig, upstream: &Echo) -> EnvoyConfig {
    config
        .cluster_endpoint("upstream", upstream.addr)
        .without_http_filter(HEADER_MUTATION_FILTER)
        .headers_with_underscores("ALLOW")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filter_answers_every_request_of_the_corpus_as_the_ext_authz_server_does() {
    let wasm = wasm_file();
    let key = TestKey::generate(Kind::Rs256, "k1");
    let other_alg = TestKey::generate(Kind::Es256, "k2");
    let foreign = TestKey::generate(Kind::Rs256, "k1");
    let config = fixture_config(&key);
    config.write("jwks.json", &jwks(&[&key, &other_alg]));
    config.write("more.yaml", MORE);
    let strict = TestKey::generate(Kind::Es256, "s1");
    config.write("strict.json", &jwks(&[&strict]));
    config.write("strict.yaml", STRICT);

    let upstream = Echo::start().await;
    let claimgate = Claimgate::start_with(config.path(), &[]).await;
    let with_server = Envoy::start(
        open_ingress(EnvoyConfig::shipped(), &upstream)
            .cluster_endpoint("claimgate", claimgate.grpc),
    )
    .await;
    let bundle = bundle_of(config.path(), &[]);
    let with_filter =
        Envoy::start(open_ingress(envoy_wasm_config(&wasm, &bundle), &upstream)).await;

    let mut compared = 0usize;
    let mut differences = Vec::new();
    let mut reasons = std::collections::BTreeSet::new();
    for credential in credentials(&key, &other_alg, &foreign, &strict) {
        for (method, path) in REQUESTS {
            // Every other request carries spoofed headers, so each credential and each
            // request shape is seen both ways.
            for spoof in [(compared % 2) == 1] {
                let mut headers: Vec<(&str, &str)> = credential
                    .authorization
                    .iter()
                    .map(|v| ("authorization", v.as_str()))
                    .collect();
                if spoof {
                    headers.extend_from_slice(SPOOFED);
                }
                // HTTP/2: a lowercase method travels, and the answer ends with its stream.
                let server = observe(&with_server.request_h2(method, path, &headers).await);
                let filter = observe(&with_filter.request_h2(method, path, &headers).await);
                compared += 1;
                if server.upstream.contains_key("x-claimgate-dry-run") {
                    reasons.insert("dry run".into());
                }
                // What the comparison rests on: the server never lets a spoofed header through.
                assert!(
                    !server
                        .upstream
                        .keys()
                        .any(|h| h.contains('_') || h.ends_with("-other")),
                    "{server:?}"
                );
                reasons.insert(
                    server
                        .reason
                        .clone()
                        .unwrap_or_else(|| server.status.to_string()),
                );
                if server != filter {
                    differences.push(format!(
                        "{} {method} {path} spoofed={spoof}:\n  server {server:?}\n  filter {filter:?}",
                        credential.name
                    ));
                }
            }
        }
    }
    assert!(compared >= 200, "only {compared} requests compared");
    assert!(
        differences.is_empty(),
        "{} of {compared} requests were answered differently:\n{}\n\nfilter Envoy's log:\n{}",
        differences.len(),
        differences.join("\n"),
        with_filter.logs()
    );
    // The corpus reaches what it is meant to: allows, dry runs and each reason a client can cause.
    for expected in [
        "200",
        "missing_token",
        "malformed_token",
        "unknown_issuer",
        "unknown_key",
        "algorithm_not_allowed",
        "invalid_signature",
        "expired",
        "not_yet_valid",
        "audience_mismatch",
        "no_identity",
        "ambiguous_identity",
        "no_route",
        "insufficient_role",
    ] {
        assert!(
            reasons.contains(expected),
            "no request of the corpus got {expected}: {reasons:?}"
        );
    }
}
