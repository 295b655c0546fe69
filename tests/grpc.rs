//! The real server over gRPC: one case at least per reason code and per allow path.

mod common;

use common::*;
use serde_json::json;

struct Fixture {
    _dir: ConfigDir,
    server: TestServer,
    rsa: TestKey,
    ec: TestKey,
    ed: TestKey,
    other: TestKey,
}

async fn fixture() -> Fixture {
    let rsa = TestKey::generate(Kind::Rs256, "rsa-1");
    let ec = TestKey::generate(Kind::Es256, "ec-1");
    let ed = TestKey::generate(Kind::EdDsa, "ed-1");
    let other = TestKey::generate(Kind::Rs256, "other-1");
    let dir = fixture_three_ssos(&[&rsa, &ec, &ed], "[RS256, ES256, EdDSA]", &other);
    // The resources spelled `.yml`, which is read as well.
    std::fs::rename(
        dir.path().join("resources.yaml"),
        dir.path().join("resources.yml"),
    )
    .unwrap();
    dir.write(".hidden.yaml", "this: is: not: read");
    let server = TestServer::start(dir.path()).await;
    Fixture {
        _dir: dir,
        server,
        rsa,
        ec,
        ed,
        other,
    }
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

#[tokio::test]
async fn allowed_requests_carry_identity_headers_and_strip_smuggled_ones() {
    let f = fixture().await;
    let mut c = f.server.client().await;

    // RS256, fallback identity, viewer on a templated resource.
    let t = f.rsa.sign(&claims("run-1", json!({})));
    let a = ask(
        &mut c,
        check(
            "GET",
            "/v1/models/acme/llama/infer?stream=1",
            &[
                ("authorization", &bearer(&t)),
                ("x-claimgate-identity", "admin"),
                ("x-claimgate-role", "manager"),
                ("X-Claimgate-Extra", "1"),
                ("x-request-id", "req-42"),
            ],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.grpc_code, 0);
    assert_eq!(a.header("x-claimgate-identity"), Some("anyone"));
    assert_eq!(a.header("x-claimgate-sso"), Some("test-idp"));
    assert_eq!(a.header("x-claimgate-subject"), Some("run-1"));
    assert_eq!(a.header("x-claimgate-resource"), Some("model:acme/llama"));
    assert_eq!(a.header("x-claimgate-role"), Some("viewer"));
    assert_eq!(a.removed, vec!["x-claimgate-extra".to_string()]);
    let md = a.metadata.as_ref().expect("dynamic metadata");
    assert_eq!(md["identity"], "anyone");
    assert_eq!(md["resource"], "model:acme/llama");
    assert_eq!(md["role"], "viewer");

    // ES256, a more specific identity wins and its role is reported.
    let t = f.ec.sign(&claims("ci", json!({"repository": "acme/api"})));
    let a = ask(
        &mut c,
        check(
            "POST",
            "/v1/models/acme/llama/x",
            &[("authorization", &bearer(&t))],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-claimgate-identity"), Some("api"));
    assert_eq!(a.header("x-claimgate-role"), Some("editor"));

    // EdDSA, two claims beat one.
    let t = f.ed.sign(&claims(
        "ci",
        json!({"repository": "acme/api", "environment": "prod"}),
    ));
    let a = ask(
        &mut c,
        check(
            "DELETE",
            "/v1/admin/users",
            &[("authorization", &bearer(&t))],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-claimgate-identity"), Some("api-prod"));
    assert_eq!(a.header("x-claimgate-resource"), Some("workspace:prod"));
    assert_eq!(a.header("x-claimgate-role"), Some("manager"));

    // RFC 9864's "Ed25519" is the same algorithm.
    let header = json!({"alg": "Ed25519", "kid": "ed-1"}).to_string();
    let t = f.ed.sign_raw(&header, &claims("ci", json!({})).to_string());
    let a = ask(
        &mut c,
        check(
            "GET",
            "/v1/models/acme/llama/x",
            &[("authorization", &bearer(&t))],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");

    // JSON Pointer into a nested claim, array audience, numeric claim.
    let t = f.rsa.sign(&claims(
        "pod",
        json!({"kubernetes.io": {"namespace": "prod"}, "run_attempt": 1, "aud": ["x", "other-aud"]}),
    ));
    let a = ask(
        &mut c,
        check("GET", "/v1/prod/status", &[("authorization", &bearer(&t))]),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-claimgate-identity"), Some("ns-prod"));
    // "1" is not 1: the string claim does not select ns-prod.
    let t = f.rsa.sign(&claims(
        "pod",
        json!({"kubernetes.io": {"namespace": "prod"}, "run_attempt": "1"}),
    ));
    let a = ask(
        &mut c,
        check("GET", "/v1/prod/status", &[("authorization", &bearer(&t))]),
    )
    .await;
    assert_eq!(a.reason(), "insufficient_role", "{a:?}");

    // Public route: no token needed, every x-claimgate-* header removed.
    let a = ask(
        &mut c,
        check(
            "GET",
            "/healthz",
            &[
                ("x-claimgate-identity", "admin"),
                ("x-claimgate-role", "manager"),
            ],
        ),
    )
    .await;
    assert_eq!(a.status, 200);
    // Only the decision id is set: a public route has no identity.
    assert_eq!(
        a.headers.keys().collect::<Vec<_>>(),
        ["x-claimgate-decision-id"]
    );
    assert_eq!(
        a.removed,
        vec![
            "x-claimgate-identity".to_string(),
            "x-claimgate-role".to_string()
        ]
    );
    let metadata = a.metadata.as_ref().expect("the decision id is in metadata");
    assert_eq!(metadata.keys().collect::<Vec<_>>(), ["decision_id"]);
    // Denials name their reason in metadata too, for access logs.
    let a = ask(&mut c, check("GET", "/v1/models/acme/llama/x", &[])).await;
    assert_eq!(a.metadata.as_ref().unwrap()["reason"], "missing_token");

    f.server.stop().await;
}

/// Upstreams that read headers through CGI/WSGI see `x_claimgate_identity` as
/// `X-Claimgate-Identity`: claimgate removes every spelling of its prefix on its own,
/// whatever the proxy in front lets through, and overwrites only the names it sets itself.
#[tokio::test]
async fn identity_headers_are_removed_in_any_spelling() {
    let f = fixture().await;
    let mut c = f.server.client().await;
    let t = bearer(&f.rsa.sign(&claims("run-1", json!({}))));
    let forged = [
        ("x_claimgate_identity", "forged"),
        ("X_CLAIMGATE_ROLE", "manager"),
        ("x-claimgate_sso", "evil-idp"),
        ("x_claimgate-subject", "root"),
        ("x-claimgate-", "bare"),
        ("x_claimgate_", "bare"),
        ("x-claimgate-identity", "admin"),
    ];
    // Envoy's spelling of a name is kept: it lowercases names, but `_` stays `_`.
    let removed: Vec<String> = [
        "x-claimgate-",
        "x-claimgate_sso",
        "x_claimgate-subject",
        "x_claimgate_",
        "x_claimgate_identity",
        "x_claimgate_role",
    ]
    .map(String::from)
    .to_vec();

    for raw in [false, true] {
        let mut headers = vec![("authorization", t.as_str())];
        headers.extend(forged);
        let path = "/v1/models/acme/llama/infer";
        let req = if raw {
            check_raw("GET", path, &headers)
        } else {
            check("GET", path, &headers)
        };
        let a = ask(&mut c, req).await;
        assert_eq!(a.status, 200, "raw={raw}: {a:?}");
        assert_eq!(
            a.header("x-claimgate-identity"),
            Some("anyone"),
            "raw={raw}"
        );
        assert_eq!(a.removed, removed, "raw={raw}");

        // A public route sets none, so every spelling goes, the dashed one too.
        let req = if raw {
            check_raw("GET", "/healthz", &forged)
        } else {
            check("GET", "/healthz", &forged)
        };
        let a = ask(&mut c, req).await;
        assert_eq!(a.status, 200, "raw={raw}: {a:?}");
        assert_eq!(
            a.headers.keys().collect::<Vec<_>>(),
            ["x-claimgate-decision-id"]
        );
        let mut all = removed.clone();
        all.push("x-claimgate-identity".into());
        all.sort();
        assert_eq!(a.removed, all, "raw={raw}");
    }
    f.server.stop().await;
}

/// A gRPC caller is not bound by HTTP's token rules: a header name may hold any UTF-8.
#[tokio::test]
async fn a_non_ascii_header_name_is_decided_like_any_other() {
    let f = fixture().await;
    let mut c = f.server.client().await;
    let t = bearer(&f.rsa.sign(&claims("run-1", json!({}))));
    let odd = [
        ("x-claimgateéx", "1"),
        ("x-claimgate-é", "2"),
        ("é", "3"),
        ("x-claimgat\u{1F600}", "4"),
    ];
    for raw in [false, true] {
        let mut headers = vec![("authorization", t.as_str())];
        headers.extend(odd);
        let path = "/v1/models/acme/llama/infer";
        let req = if raw {
            check_raw("GET", path, &headers)
        } else {
            check("GET", path, &headers)
        };
        let a = ask(&mut c, req).await;
        assert_eq!(a.status, 200, "raw={raw}: {a:?}");
        // Only the name that folds to the prefix is claimgate's to remove.
        assert_eq!(a.removed, vec!["x-claimgate-é".to_string()], "raw={raw}");
    }
    f.server.stop().await;
}

#[tokio::test]
async fn context_extensions_name_resource_and_role_instead_of_routes() {
    let f = fixture().await;
    let mut c = f.server.client().await;
    let t = f.rsa.sign(&claims("ci", json!({"repository": "acme/api"})));
    let auth = bearer(&t);
    let req = |ext: &[(&str, &str)]| {
        with_context(
            check("GET", "/not/routed", &[("authorization", &auth)]),
            ext,
        )
    };
    let a = ask(
        &mut c,
        req(&[("resource", "model:acme/llama"), ("role", "editor")]),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-claimgate-resource"), Some("model:acme/llama"));
    let a = ask(
        &mut c,
        req(&[("resource", "model:acme/llama"), ("role", "manager")]),
    )
    .await;
    assert_eq!(a.reason(), "insufficient_role");
    let a = ask(&mut c, req(&[("resource", "model:acme/llama")])).await;
    assert_eq!((a.status, a.reason()), (403, "no_route"));
    let a = ask(
        &mut c,
        req(&[("resource", "model:acme/llama"), ("role", "owner")]),
    )
    .await;
    assert_eq!((a.status, a.reason()), (403, "no_route"));
    f.server.stop().await;
}

#[tokio::test]
async fn every_401_reason_is_answered_with_its_code() {
    let f = fixture().await;
    let mut c = f.server.client().await;
    let path = "/v1/models/acme/llama/x";
    let good = claims("ci", json!({}));
    let rsa_header = |extra: serde_json::Value| {
        let mut h = json!({"alg": "RS256", "kid": "rsa-1"});
        for (k, v) in extra.as_object().unwrap() {
            h[k] = v.clone();
        }
        h.to_string()
    };
    let tampered = {
        let t = f.rsa.sign(&good);
        let parts: Vec<&str> = t.split('.').collect();
        let evil = claims("root", json!({}));
        use base64::Engine as _;
        let p = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(evil.to_string());
        format!("{}.{}.{}", parts[0], p, parts[2])
    };
    let hs256_confusion = {
        // The classic attack: HMAC "signed" with the RSA public key as the secret.
        use base64::Engine as _;
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let input = format!(
            "{}.{}",
            b.encode(json!({"alg":"HS256","kid":"rsa-1"}).to_string()),
            b.encode(good.to_string())
        );
        let key =
            jsonwebtoken::EncodingKey::from_secret(f.rsa.jwk["n"].as_str().unwrap().as_bytes())
                .unwrap();
        let sig =
            jsonwebtoken::crypto::sign(input.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
                .unwrap();
        format!("{input}.{sig}")
    };
    let unsigned = {
        use base64::Engine as _;
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            b.encode(r#"{"alg":"none"}"#),
            b.encode(good.to_string())
        )
    };
    let none_with_sig = {
        use base64::Engine as _;
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.AAAA",
            b.encode(r#"{"alg":"none"}"#),
            b.encode(good.to_string())
        )
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("garbage", "abc".into(), "malformed_token"),
        ("unsigned alg none", unsigned, "malformed_token"),
        (
            "alg none with a signature",
            none_with_sig,
            "algorithm_not_allowed",
        ),
        (
            "duplicate header key",
            f.rsa.sign_raw(
                r#"{"alg":"RS256","kid":"rsa-1","kid":"rsa-1"}"#,
                &good.to_string(),
            ),
            "malformed_token",
        ),
        (
            "duplicate payload key",
            f.rsa.sign_raw(
                &rsa_header(json!({})),
                &format!(r#"{{"sub":"a",{}"#, &good.to_string()[1..]),
            ),
            "malformed_token",
        ),
        (
            "crit header",
            f.rsa
                .sign_raw(&rsa_header(json!({"crit": ["exp"]})), &good.to_string()),
            "malformed_token",
        ),
        (
            "jku header",
            f.rsa.sign_raw(
                &rsa_header(json!({"jku": "https://evil/keys"})),
                &good.to_string(),
            ),
            "malformed_token",
        ),
        (
            "x5u header",
            f.rsa.sign_raw(
                &rsa_header(json!({"x5u": "https://evil/cert"})),
                &good.to_string(),
            ),
            "malformed_token",
        ),
        (
            "jwk header",
            f.rsa
                .sign_raw(&rsa_header(json!({"jwk": f.rsa.jwk})), &good.to_string()),
            "malformed_token",
        ),
        (
            "x5c header",
            f.rsa
                .sign_raw(&rsa_header(json!({"x5c": ["MII"]})), &good.to_string()),
            "malformed_token",
        ),
        (
            "nested JWT",
            f.rsa
                .sign_raw(&rsa_header(json!({"cty": "JWT"})), &good.to_string()),
            "malformed_token",
        ),
        (
            "no exp",
            f.rsa
                .sign(&json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "a"})),
            "malformed_token",
        ),
        (
            "sub with a header break",
            f.rsa.sign(&claims("a\r\nx-evil: 1", json!({}))),
            "malformed_token",
        ),
        (
            "sub with surrounding space",
            f.rsa.sign(&claims(" lead", json!({}))),
            "malformed_token",
        ),
        (
            "no sub",
            f.rsa
                .sign(&json!({"iss": ISSUER, "aud": AUDIENCE, "exp": now() + 60})),
            "malformed_token",
        ),
        (
            "unknown issuer",
            f.rsa
                .sign(&claims("a", json!({"iss": "https://idp.test.local/"}))),
            "unknown_issuer",
        ),
        (
            "login-enabled SSO",
            f.other
                .sign(&claims("a", json!({"iss": "https://login.test.local"}))),
            "unknown_issuer",
        ),
        ("unknown kid", f.other.sign(&good), "unknown_key"),
        (
            "HS256 with the public key",
            hs256_confusion,
            "algorithm_not_allowed",
        ),
        (
            "RS384 not allowed",
            f.rsa
                .sign_raw(r#"{"alg":"RS384","kid":"rsa-1"}"#, &good.to_string()),
            "algorithm_not_allowed",
        ),
        (
            "ES256 claimed for an RSA key",
            f.rsa
                .sign_raw(r#"{"alg":"ES256","kid":"rsa-1"}"#, &good.to_string()),
            "algorithm_not_allowed",
        ),
        ("tampered payload", tampered, "invalid_signature"),
        (
            "signed by another key with our kid",
            {
                let mut k = f.other.clone();
                k.kid = "rsa-1".into();
                k.sign(&good)
            },
            "invalid_signature",
        ),
        (
            "expired",
            f.rsa.sign(&claims("a", json!({"exp": now() - 100}))),
            "expired",
        ),
        (
            "not yet valid",
            f.rsa.sign(&claims("a", json!({"nbf": now() + 100}))),
            "not_yet_valid",
        ),
        (
            "wrong audience",
            f.rsa.sign(&claims("a", json!({"aud": "someone-else"}))),
            "audience_mismatch",
        ),
        (
            "no audience in array",
            f.rsa.sign(&claims("a", json!({"aud": ["x", "y"]}))),
            "audience_mismatch",
        ),
        (
            "oversized",
            format!(
                "{}.{}.{}",
                "a".repeat(5000),
                "b".repeat(3000),
                "c".repeat(300)
            ),
            "malformed_token",
        ),
    ];
    for (name, token, reason) in cases {
        let a = ask(
            &mut c,
            check("GET", path, &[("authorization", &bearer(&token))]),
        )
        .await;
        assert_eq!(a.reason(), reason, "{name}: {a:?}");
        assert_eq!(a.status, 401, "{name}");
        assert_eq!(a.grpc_code, 16, "{name}");
        assert_eq!(
            a.header("www-authenticate"),
            Some(r#"Bearer realm="claimgate", error="invalid_token""#),
            "{name}"
        );
        assert_eq!(a.header("content-type"), Some("application/json"), "{name}");
        assert_eq!(a.body["request_id"], "envoy-id-1", "{name}");
        assert!(
            a.body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{name}"
        );
    }

    // No token, or a non-bearer scheme: 401 without an error code.
    for headers in [vec![], vec![("authorization", "Basic dXNlcjpwYXNz")]] {
        let a = ask(&mut c, check("GET", path, &headers)).await;
        assert_eq!((a.status, a.reason()), (401, "missing_token"));
        assert_eq!(
            a.header("www-authenticate"),
            Some(r#"Bearer realm="claimgate""#)
        );
    }

    // Two Authorization values are refused in both header encodings.
    let t = bearer(&f.rsa.sign(&good));
    let a = ask(
        &mut c,
        check("GET", path, &[("authorization", &t), ("authorization", &t)]),
    )
    .await;
    assert_eq!((a.status, a.reason()), (401, "malformed_token"));
    let a = ask(
        &mut c,
        check_raw("GET", path, &[("authorization", &t), ("Authorization", &t)]),
    )
    .await;
    assert_eq!((a.status, a.reason()), (401, "malformed_token"));
    let a = ask(
        &mut c,
        check_raw(
            "GET",
            path,
            &[("authorization", &t), ("x-request-id", "raw-1")],
        ),
    )
    .await;
    assert_eq!(
        a.status, 200,
        "raw header_map with one value is read: {a:?}"
    );
    f.server.stop().await;
}

#[tokio::test]
async fn every_403_reason_is_answered_with_its_code() {
    let f = fixture().await;
    let mut c = f.server.client().await;
    let cases = vec![
        (
            "other SSO has no identity",
            f.other
                .sign(&claims("a", json!({"iss": "https://other.test.local"}))),
            "GET",
            "/v1/models/acme/llama/x",
            "no_identity",
        ),
        (
            "equal claim counts",
            f.rsa.sign(&claims("a", json!({"team": "x", "org": "y"}))),
            "GET",
            "/v1/models/acme/llama/x",
            "ambiguous_identity",
        ),
        (
            "no route",
            f.rsa.sign(&claims("a", json!({}))),
            "GET",
            "/v2/unknown",
            "no_route",
        ),
        (
            "method not routed",
            f.rsa.sign(&claims("a", json!({}))),
            "PUT",
            "/v1/models/acme/llama/x",
            "no_route",
        ),
        (
            "traversal matches no route",
            f.rsa.sign(&claims("a", json!({}))),
            "GET",
            "/healthz/../v1/admin/x",
            "no_route",
        ),
        (
            "viewer cannot post",
            f.rsa.sign(&claims("a", json!({}))),
            "POST",
            "/v1/models/acme/llama/x",
            "insufficient_role",
        ),
        (
            "no binding at all",
            f.rsa.sign(&claims("a", json!({}))),
            "GET",
            "/v1/admin/x",
            "insufficient_role",
        ),
        (
            "undefined resource",
            f.rsa.sign(&claims("a", json!({}))),
            "GET",
            "/v1/models/acme/other/x",
            "insufficient_role",
        ),
    ];
    for (name, token, method, path, reason) in cases {
        let a = ask(
            &mut c,
            check(
                method,
                path,
                &[("authorization", &bearer(&token)), ("x-request-id", "r-1")],
            ),
        )
        .await;
        assert_eq!((a.status, a.reason()), (403, reason), "{name}: {a:?}");
        assert_eq!(a.grpc_code, 7, "{name}");
        assert_eq!(a.body["request_id"], "r-1", "{name}");
        let www = a.header("www-authenticate");
        if reason == "insufficient_role" {
            assert_eq!(
                www,
                Some(r#"Bearer realm="claimgate", error="insufficient_scope""#),
                "{name}"
            );
        } else {
            assert_eq!(www, None, "{name}");
        }
    }
    // Authentication comes first: an unrouted path without a token is a 401.
    let a = ask(&mut c, check("GET", "/v2/unknown", &[])).await;
    assert_eq!((a.status, a.reason()), (401, "missing_token"));
    f.server.stop().await;
}

#[tokio::test]
async fn a_request_without_http_attributes_is_a_503_never_an_empty_ok() {
    let f = fixture().await;
    let mut c = f.server.client().await;
    let a = ask(
        &mut c,
        envoy_types::pb::envoy::service::auth::v3::CheckRequest::default(),
    )
    .await;
    assert_eq!((a.status, a.reason()), (503, "internal"));
    assert_eq!(a.grpc_code, 14);
    f.server.stop().await;
}

#[tokio::test]
async fn metrics_count_decisions_and_health_endpoints_answer() {
    let f = fixture().await;
    let mut c = f.server.client().await;
    let t = f.rsa.sign(&claims("a", json!({"exp": now() - 100})));
    for _ in 0..3 {
        ask(
            &mut c,
            check(
                "GET",
                "/v1/models/acme/llama/x",
                &[("authorization", &bearer(&t))],
            ),
        )
        .await;
    }
    let t = f.rsa.sign(&claims("a", json!({})));
    ask(
        &mut c,
        check(
            "GET",
            "/v1/models/acme/llama/x",
            &[("authorization", &bearer(&t))],
        ),
    )
    .await;
    let (status, body) = f.server.http_get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        body.contains(r#"claimgate_checks_total{decision="deny",reason="expired"} 3"#),
        "{body}"
    );
    assert!(
        body.contains(r#"claimgate_checks_total{decision="allow",reason="allowed"} 1"#),
        "{body}"
    );
    assert!(
        body.contains(r#"claimgate_checks_total{decision="deny",reason="no_identity"} 0"#),
        "{body}"
    );
    assert!(
        body.contains("claimgate_check_duration_seconds_count 4"),
        "{body}"
    );
    assert!(body.contains("claimgate_config_generation 1"), "{body}");
    assert!(
        body.contains("claimgate_config_last_reload_successful 1"),
        "{body}"
    );
    assert!(
        body.contains(r#"claimgate_jwks_keys{sso="test-idp"} 3"#),
        "{body}"
    );
    assert!(
        !body.contains("run-1") && !body.contains("acme/llama"),
        "no request data in labels"
    );
    assert_eq!(f.server.http_get("/healthz").await.0, 200);
    let (status, body) = f.server.http_get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    f.server.stop().await;
}

/// Strict routes first, looser ones after (first match wins), as the README advises: a
/// request's spelling must never move it from a strict route to a looser one. The token used
/// is the fallback identity's: a viewer of `model:acme/llama` only, so a strict route answers
/// `insufficient_role` and the loose one allows.
const SPELLING_ROUTES: &str = r#"
routes:
  - path_prefix: /healthz
    public: true
  - path: /v1/things/{*rest}
    methods: [DELETE]
    resource: workspace:prod
    role: manager
  - path_prefix: /
    host: admin.example.com
    resource: workspace:prod
    role: manager
  - path: /v1/things/admin/{*rest}
    case_insensitive: true
    resource: workspace:prod
    role: manager
  - path: /v1/Models/{org}/{name}/{*rest}
    case_insensitive: true
    resource: model:{org}/{name}
    role: viewer
  - path: /v1/things/{*rest}
    resource: model:acme/llama
    role: viewer
"#;

struct Spelling {
    _dir: ConfigDir,
    server: TestServer,
    viewer: String,
}

async fn spelling() -> Spelling {
    let key = TestKey::generate(Kind::Es256, "es-1");
    let dir = fixture_config(&key);
    dir.write("routes.yaml", SPELLING_ROUTES);
    let server = TestServer::start(dir.path()).await;
    let viewer = bearer(&key.sign(&claims("run-1", json!({}))));
    Spelling {
        _dir: dir,
        server,
        viewer,
    }
}

impl Spelling {
    /// Ask about one request, with the viewer's token or none; answers (status, reason).
    async fn ask(&self, method: &str, host: &str, path: &str, token: bool) -> (u16, String) {
        let headers: &[(&str, &str)] = if token {
            &[("authorization", &self.viewer)]
        } else {
            &[]
        };
        let mut req = check(method, path, headers);
        if let Some(http) = req
            .attributes
            .as_mut()
            .and_then(|a| a.request.as_mut())
            .and_then(|r| r.http.as_mut())
        {
            http.host = host.into();
        }
        let a = ask(&mut self.server.client().await, req).await;
        (a.status, a.reason().to_string())
    }

    /// Assert each request's answer; `""` as a reason means allowed.
    async fn expect(&self, cases: &[(&str, &str, &str, bool, u16, &str)]) {
        for &(method, host, path, token, status, reason) in cases {
            assert_eq!(
                self.ask(method, host, path, token).await,
                (status, reason.to_string()),
                "{method} {host} {path}"
            );
        }
    }
}

const API: &str = "api.example.com";

#[tokio::test]
async fn a_lowercase_method_is_the_same_method_and_never_falls_to_a_looser_route() {
    let s = spelling().await;
    s.expect(&[
        (
            "DELETE",
            API,
            "/v1/things/x",
            true,
            403,
            "insufficient_role",
        ),
        (
            "delete",
            API,
            "/v1/things/x",
            true,
            403,
            "insufficient_role",
        ),
        (
            "Delete",
            API,
            "/v1/things/x",
            true,
            403,
            "insufficient_role",
        ),
        ("GET", API, "/v1/things/x", true, 200, ""),
        ("get", API, "/v1/things/x", true, 200, ""),
    ])
    .await;
    s.server.stop().await;
}

#[tokio::test]
async fn a_host_in_any_case_with_a_trailing_dot_or_a_port_meets_its_host_route() {
    let s = spelling().await;
    let strict = |host| ("GET", host, "/v1/things/x", true, 403, "insufficient_role");
    s.expect(&[
        strict("admin.example.com"),
        strict("ADMIN.Example.com"),
        strict("admin.example.com."),
        strict("admin.example.com:443"),
        strict("Admin.Example.Com.:8443"),
        // Another host, or none at all, never meets a host route.
        ("GET", "other.example.com", "/v1/things/x", true, 200, ""),
        ("GET", "", "/v1/things/x", true, 200, ""),
    ])
    .await;
    s.server.stop().await;
}

#[tokio::test]
async fn a_path_parameter_or_a_dot_dot_semicolon_matches_no_route() {
    let s = spelling().await;
    s.expect(&[
        // Tomcat and Spring drop `;…` and serve /v1/things/admin/x.
        ("GET", API, "/v1/things/admin;/x", true, 403, "no_route"),
        ("GET", API, "/a;jsessionid=1/b", true, 403, "no_route"),
        // Tomcat resolves `..;` to `..`: this is /v1/things/admin/x, never the public route.
        (
            "GET",
            API,
            "/healthz/..;/v1/things/admin/x",
            false,
            401,
            "missing_token",
        ),
        (
            "GET",
            API,
            "/healthz/..;/v1/things/admin/x",
            true,
            403,
            "no_route",
        ),
        (
            "GET",
            API,
            "/healthz/%2e%2e;/v1/things/admin/x",
            false,
            401,
            "missing_token",
        ),
        ("GET", API, "/healthz/.;/x", false, 401, "missing_token"),
        // A `;` in the query is not a path parameter.
        ("GET", API, "/healthz?a=1;b=2", false, 200, ""),
        ("GET", API, "/v1/things/x?a=1;b=2", true, 200, ""),
        (
            "GET",
            API,
            "/v1/things/admin/x?a;b",
            true,
            403,
            "insufficient_role",
        ),
    ])
    .await;
    s.server.stop().await;
}

/// `%61dmin` is `admin` to an upstream that decodes (RFC 3986 6.2.2.2; Envoy's
/// `normalize_path` does): a percent-encoded unreserved character matches no route, so it
/// cannot skip the strict route for the looser one after it. Other encodings are data.
#[tokio::test]
async fn a_percent_encoded_letter_digit_or_unreserved_mark_matches_no_route() {
    let s = spelling().await;
    s.expect(&[
        (
            "GET",
            API,
            "/v1/things/admin/x",
            true,
            403,
            "insufficient_role",
        ),
        ("GET", API, "/v1/things/%61dmin/x", true, 403, "no_route"),
        ("GET", API, "/v1/things/adm%69n/x", true, 403, "no_route"),
        ("GET", API, "/v1/things/%41DMIN/x", true, 403, "no_route"),
        (
            "GET",
            API,
            "/v1/things/x/%7e%2D%5F%30",
            true,
            403,
            "no_route",
        ),
        ("GET", API, "/v1/things/a%2eb", true, 403, "no_route"),
        ("GET", API, "/healthz/%78", false, 401, "missing_token"),
        // Not unreserved: a space, a non-ASCII byte, a `%` itself; and after the query.
        ("GET", API, "/v1/things/a%20b/x", true, 200, ""),
        ("GET", API, "/v1/things/caf%C3%A9/%25", true, 200, ""),
        ("GET", API, "/v1/things/x?q=%61", true, 200, ""),
    ])
    .await;
    s.server.stop().await;
}

/// The shipped example (which trusts the committed development key, so `--dev`): `/healthz`
/// is a public prefix and workspaces need a token.
#[tokio::test]
async fn the_example_configs_public_route_cannot_be_borrowed_with_dot_dot_semicolon() {
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let server = TestServer::builder(&config).dev().start().await;
    let mut c = server.client().await;
    let a = ask(
        &mut c,
        check("POST", "/healthz/..;/v1/workspaces/prod/deploy", &[]),
    )
    .await;
    assert_eq!((a.status, a.reason()), (401, "missing_token"), "{a:?}");
    let a = ask(&mut c, check("GET", "/healthz", &[])).await;
    assert_eq!(a.status, 200, "{a:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_case_insensitive_route_folds_its_literals_and_keeps_what_it_captures() {
    let s = spelling().await;
    s.expect(&[
        (
            "GET",
            API,
            "/v1/things/admin/x",
            true,
            403,
            "insufficient_role",
        ),
        (
            "GET",
            API,
            "/v1/things/ADMIN/x",
            true,
            403,
            "insufficient_role",
        ),
        (
            "GET",
            API,
            "/V1/Things/Admin/x",
            true,
            403,
            "insufficient_role",
        ),
        ("GET", API, "/v1/models/acme/llama/x", true, 200, ""),
        ("GET", API, "/V1/MODELS/acme/llama/x", true, 200, ""),
        // The captured org keeps its spelling: model:ACME/llama is another resource.
        (
            "GET",
            API,
            "/v1/models/ACME/llama/x",
            true,
            403,
            "insufficient_role",
        ),
        // Without case_insensitive, a literal's case counts.
        ("GET", API, "/V1/things/x", true, 403, "no_route"),
    ])
    .await;
    let req = check(
        "GET",
        "/V1/MODELS/acme/llama/x",
        &[("authorization", &s.viewer)],
    );
    let a = ask(&mut s.server.client().await, req).await;
    assert_eq!(a.header("x-claimgate-resource"), Some("model:acme/llama"));
    s.server.stop().await;
}

#[tokio::test]
async fn with_allow_metadata_decision_id_an_allow_keeps_its_headers_and_only_the_id_in_metadata() {
    let key = TestKey::generate(Kind::Rs256, "rsa-1");
    let dir = ConfigDir::new();
    dir.write("jwks.json", &jwks(&[&key]));
    dir.write(
        "config.yaml",
        &format!(
            "{}{FIXTURE_IDENTITIES}{FIXTURE_RESOURCES}{FIXTURE_ROUTES}",
            sso_yaml("[RS256]")
        ),
    );
    let server = TestServer::builder(dir.path())
        .allow_metadata(claimgate::server::service::AllowMetadata::DecisionId)
        .start()
        .await;
    let mut c = server.client().await;
    let t = key.sign(&claims("run-1", json!({})));
    let a = ask(
        &mut c,
        check_bearer("GET", "/v1/models/acme/llama/infer", &t),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-claimgate-identity"), Some("anyone"));
    assert_eq!(a.header("x-claimgate-role"), Some("viewer"));
    let md = a.metadata.as_ref().expect("dynamic metadata");
    assert_eq!(md.keys().collect::<Vec<_>>(), ["decision_id"], "{md:?}");
    assert_eq!(
        Some(md["decision_id"].as_str()),
        a.header("x-claimgate-decision-id")
    );
}
