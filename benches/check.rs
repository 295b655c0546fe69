//! One authorization decision, in process, against a raw signature verification of the same
//! token measured in the same run. Run: `cargo bench --bench check`.
//!
//! The ratio `decision / raw_verify` is what BENCHMARKS.md reports: everything claimgate does
//! besides the signature (parsing, key lookup, claims, identity selection, routing, role
//! lookup, building Envoy's response) as a share of the unavoidable cryptography.
//! `check_request` runs without a token cache (every check verifies: a token's first sight);
//! `warm_check` is the same request with the token already cached. Both start from the
//! request's bytes and end with the answer's, as the gRPC codec runs them. `read_request` and
//! `write_answer` are the codec's share; `decode_request` and `encode_response` are what prost
//! spends on the same request and answer, for comparison.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use claimgate::core::clock::unix_now;
use claimgate::core::decision::{Credentials, Request};
use claimgate::core::pipeline;
use claimgate::server::metrics::Metrics;
use claimgate::server::service::{CheckService, RequestView};
use criterion::{criterion_group, criterion_main, Criterion};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{
    HttpRequest, Request as AttrRequest,
};
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
use jsonwebtoken::{Algorithm, DecodingKey, Header};
use serde_json::json;

struct Setup {
    token: String,
    decoding: DecodingKey,
    snapshot: Arc<claimgate::Snapshot>,
    service: CheckService,
    warm_service: CheckService,
    request: CheckRequest,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let (encoding, jwk) = common::rsa_key();
    let n = jwk["n"].as_str().unwrap().to_string();
    let e = jwk["e"].as_str().unwrap().to_string();

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("jwks.json"),
        json!({"keys": [jwk]}).to_string(),
    )
    .unwrap();
    // A realistic shape: a fallback, a specific and a more specific identity, others with
    // exact values and with patterns, several resources and routes ahead of the one that
    // matches.
    let mut yaml = String::from(
        "sso_integrations:\n  - name: ci\n    type: oidc\n    issuer: https://idp.example.com\n    audiences: [claimgate]\n    jwks_file: jwks.json\nexternal_identities:\n  - name: any\n    sso_fqn: ci\n  - name: api\n    sso_fqn: ci\n    claims: {repository: acme/api}\n  - name: api-prod\n    sso_fqn: ci\n    claims: {repository: acme/api, environment: prod}\n",
    );
    for i in 0..20 {
        yaml.push_str(&format!("  - name: other-{i}\n    sso_fqn: ci\n    claims: {{repository: acme/r{i}, environment: prod}}\n"));
    }
    // Identities by pattern and negation: no index narrows them, so every decision checks
    // them beside the winner (as many claims as it).
    for i in 0..5 {
        yaml.push_str(&format!("  - name: like-{i}\n    sso_fqn: ci\n    claims: {{sub: {{like: \"repo:acme/r{i}:*\"}}, actor: {{not: \"dependabot[bot]\"}}}}\n"));
    }
    yaml.push_str("resources:\n");
    for i in 0..50 {
        yaml.push_str(&format!("  - fqn: model:acme/m{i}\n    collaborators:\n      - subject: external-identity:api-prod\n        role: editor\n      - subject: external-identity:any\n        role: viewer\n"));
    }
    yaml.push_str("routes:\n  - path_prefix: /healthz\n    public: true\n");
    for i in 0..5 {
        yaml.push_str(&format!(
            "  - path: /v{i}/things/{{id}}\n    resource: model:acme/m{i}\n    role: viewer\n"
        ));
    }
    yaml.push_str("  - path: /v1/models/{org}/{name}/{*rest}\n    resource: model:{org}/{name}\n    role: editor\n");
    std::fs::write(dir.path().join("config.yaml"), yaml).unwrap();
    let snapshot = Arc::new(claimgate::core::load::load(dir.path()).unwrap().snapshot);

    let now = unix_now();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("k1".into());
    let claims = json!({
        "iss": "https://idp.example.com", "aud": "claimgate", "sub": "repo:acme/api:ref:refs/heads/main",
        "repository": "acme/api", "environment": "prod", "ref": "refs/heads/main",
        "iat": now, "exp": now + 3600,
    });
    let token = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
    let decoding = DecodingKey::from_rsa_components(&n, &e).unwrap();

    let metrics = Metrics::new();
    let store = claimgate::core::load::install_first(
        claimgate::core::load::load(dir.path()).unwrap().snapshot,
        &metrics,
    );
    // Cold for real: without a token cache every check verifies the token.
    let service = CheckService::new(
        store.clone(),
        metrics.clone(),
        std::time::Duration::from_millis(100),
    )
    .with_token_cache(0);
    let warm_service = CheckService::new(store, metrics, std::time::Duration::from_millis(100));
    let mut headers = HashMap::new();
    headers.insert("authorization".to_string(), format!("Bearer {token}"));
    headers.insert(
        "x-request-id".to_string(),
        "7f1c3a52-3f7e-4a5e-9d7c-1b2a3c4d5e6f".to_string(),
    );
    headers.insert("user-agent".to_string(), "curl/8.5.0".to_string());
    headers.insert("x-claimgate-role".to_string(), "manager".to_string());
    let request = CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(AttrRequest {
                http: Some(HttpRequest {
                    id: "1451366207375331101".into(),
                    method: "POST".into(),
                    path: "/v1/models/acme/m7/generate?stream=true".into(),
                    host: "api.example.com".into(),
                    scheme: "https".into(),
                    protocol: "HTTP/2".into(),
                    headers,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    };
    Setup {
        token,
        decoding,
        snapshot,
        service,
        warm_service,
        request,
        _dir: dir,
    }
}

fn bench(c: &mut Criterion) {
    let s = setup();
    let (input, sig) = s.token.rsplit_once('.').unwrap();
    assert!(
        jsonwebtoken::crypto::verify(sig, input.as_bytes(), &s.decoding, Algorithm::RS256).unwrap()
    );
    let req = Request {
        method: "POST",
        path: "/v1/models/acme/m7/generate?stream=true",
        host: "api.example.com",
        credentials: Credentials::Bearer(&s.token),
        ext_resource: None,
        ext_role: None,
        ext_enforcement: None,
        ext_parent: None,
    };
    let now = unix_now();
    match pipeline::decide(&s.snapshot, &req, now) {
        claimgate::Decision::Allow(_) => {}
        d => panic!("benchmark request must be allowed: {d:?}"),
    }

    let mut g = c.benchmark_group("rs256");
    g.bench_function("raw_verify", |b| {
        b.iter(|| {
            jsonwebtoken::crypto::verify(
                std::hint::black_box(sig),
                std::hint::black_box(input.as_bytes()),
                &s.decoding,
                Algorithm::RS256,
            )
            .unwrap()
        })
    });
    // Attribution: the strict parse alone (base64url, duplicate-key-checked JSON).
    g.bench_function("parse_only", |b| {
        b.iter(|| claimgate::core::token::parse(std::hint::black_box(&s.token)).is_ok())
    });
    g.bench_function("decision", |b| {
        b.iter(|| pipeline::decide(&s.snapshot, std::hint::black_box(&req), now))
    });
    // The service's one check entry, as production calls it (no key wait happens here).
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    // As the gRPC codec runs it: the request's bytes read in place, the answer written into
    // a (reused) response buffer.
    let bytes = bytes::Bytes::from(prost::Message::encode_to_vec(&s.request));
    let wire_check = |service: &CheckService, out: &mut Vec<u8>| {
        out.clear();
        rt.block_on(service.check_bytes(std::hint::black_box(bytes.clone()), out))
            .unwrap();
        out.len()
    };
    let mut out = Vec::with_capacity(1024);
    g.bench_function("check_request", |b| {
        b.iter(|| wire_check(&s.service, &mut out))
    });
    // The same check with the token cache on and the token already in it: a warm check.
    // The same answer but for the decision id, which every check has of its own.
    let without_id = |mut r: envoy_types::pb::envoy::service::auth::v3::CheckResponse| {
        r.dynamic_metadata = None;
        if let Some(
            envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse::OkResponse(ok),
        ) = r.http_response.as_mut()
        {
            ok.headers.retain(|h| {
                h.header
                    .as_ref()
                    .is_some_and(|h| h.key != claimgate::core::decision_id::HEADER)
            });
        }
        r
    };
    let first = rt.block_on(s.warm_service.check_request(&s.request));
    assert_eq!(
        without_id(first.clone()),
        without_id(rt.block_on(s.service.check_request(&s.request)))
    );
    g.bench_function("warm_check", |b| {
        b.iter(|| wire_check(&s.warm_service, &mut out))
    });
    // Attribution: reading the request in place and writing the answer, against what prost
    // spends on the same bytes and the same answer.
    g.bench_function("read_request", |b| {
        b.iter(|| RequestView::parse(std::hint::black_box(bytes.clone())).unwrap())
    });
    let answer = {
        let view = RequestView::parse(bytes.clone()).unwrap();
        rt.block_on(s.warm_service.check(&view))
    };
    g.bench_function("write_answer", |b| {
        b.iter(|| {
            out.clear();
            std::hint::black_box(&answer).encode(&mut out);
            out.len()
        })
    });
    g.bench_function("decode_request", |b| {
        b.iter(|| {
            <CheckRequest as prost::Message>::decode(std::hint::black_box(&bytes[..])).unwrap()
        })
    });
    g.bench_function("encode_response", |b| {
        b.iter(|| prost::Message::encode_to_vec(std::hint::black_box(&first)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
