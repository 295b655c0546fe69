//! Keys that can never verify anything, or that anyone can sign for, are refused when their
//! set loads: through the real server, with the key set in a file.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use serde_json::json;

/// A token that claims to be signed by the all-zero Ed25519 key, made without any private
/// key: the signature is the identity point and zero. About one payload in four verifies
/// against that key, so the payload is searched for one that does.
fn forged_for_the_zero_key() -> String {
    use aws_lc_rs::signature::{UnparsedPublicKey, ED25519};
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "EdDSA", "kid": "zero"}).to_string());
    let mut signature = [0u8; 64];
    signature[0] = 1;
    (0..256)
        .find_map(|jti| {
            let claims = claims("forger", json!({ "jti": jti.to_string() }));
            let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
            let zero = UnparsedPublicKey::new(&ED25519, [0u8; 32]);
            zero.verify(input.as_bytes(), &signature)
                .is_ok()
                .then(|| format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
        })
        .expect("a payload that verifies against the zero key")
}

#[tokio::test]
async fn a_token_forged_for_an_all_zero_ed25519_key_is_refused() {
    let real = TestKey::generate(Kind::EdDsa, "real");
    let zero = json!({"kty": "OKP", "crv": "Ed25519", "kid": "zero", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode([0u8; 32])});
    let dir = fixture_policy();
    dir.write(
        "jwks.json",
        &json!({ "keys": [real.jwk.clone(), zero] }).to_string(),
    );
    dir.write("sso.yaml", &sso_yaml("[EdDSA]"));
    let server = TestServer::start(dir.path()).await;
    let mut client = server.client().await;
    let path = "/v1/models/acme/llama/weights";

    let forged = ask(
        &mut client,
        check_bearer("GET", path, &forged_for_the_zero_key()),
    )
    .await;
    assert_eq!((forged.status, forged.reason()), (401, "unknown_key"));
    // The rest of the set still works.
    let honest = real.sign(&claims("ci", json!({})));
    assert_eq!(
        ask(&mut client, check_bearer("GET", path, &honest))
            .await
            .status,
        200
    );
    server.stop().await;
}

/// 32 bytes that decode to no point of Ed25519 (y = 2): the verifier takes them as a key and
/// refuses every signature, so the key is unusable, and says so with its kid.
#[tokio::test]
async fn an_ed25519_key_that_is_no_curve_point_is_unusable_and_named_by_its_kid() {
    let mut y = [0u8; 32];
    y[0] = 2;
    let off = json!({"kty": "OKP", "crv": "Ed25519", "kid": "off-curve", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(y)});
    let real = TestKey::generate(Kind::EdDsa, "real");
    let dir = fixture_policy();
    dir.write("sso.yaml", &sso_yaml("[EdDSA]"));
    let config = dir.path().to_str().unwrap();

    dir.write(
        "jwks.json",
        &json!({ "keys": [real.jwk.clone(), off.clone()] }).to_string(),
    );
    let (_, out, err) = run(&["validate", "--config", config]);
    assert!(
        out.contains("key kid \"off-curve\" is not used: Ed25519 key decodes to no curve point"),
        "{out}{err}"
    );
    assert!(!out.contains("no usable key"), "{out}");

    // Alone, it leaves the SSO without keys: a warning, and /readyz names the SSO.
    dir.write("jwks.json", &json!({ "keys": [off] }).to_string());
    let (_, out, _) = run(&["validate", "--config", config]);
    assert!(out.contains("no usable key"), "{out}");
    let server = TestServer::start(dir.path()).await;
    let (_, body) = server.http_get("/readyz").await;
    assert!(
        body.contains("sso test-idp: keys not loaded (no usable keys)"),
        "{body}"
    );
    server.stop().await;
}
