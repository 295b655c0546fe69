//! Safe by default, through the real binary: the development key committed in this repository
//! is refused unless `serve --dev` (recognised by its RFC 7638 thumbprint, whatever its file
//! or kid), `validate` warns about it, a reload cannot bring it in, a provider serving it has
//! it dropped; and a public hosting service's issuer never trusts a key file unless the SSO
//! says `pinned_keys: true`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::process::{serve_refusing, Claimgate};
use common::provider::{remote_config, Provider};
use common::*;
use serde_json::{json, Value};

/// The committed development key pair, as a test key signing under `kid`.
fn dev_key(kid: &str) -> TestKey {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pem = std::fs::read_to_string(root.join("config/keys/dev-only-private-key.pem")).unwrap();
    let doc: Value = serde_json::from_str(claimgate::core::keys::DEV_JWKS).unwrap();
    let mut jwk = doc["keys"][0].clone();
    jwk["kid"] = kid.into();
    jwk.as_object_mut().unwrap().remove("alg");
    TestKey {
        kind: Kind::Rs256,
        kid: kid.into(),
        encoding: jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        pem,
        jwk,
    }
}

/// The test SSO (`test-idp`) reading `key_file`, with an identity `bot` that views `/a`.
fn config_with_key_file(key_file: &str, keys: &[&TestKey]) -> ConfigDir {
    let dir = ConfigDir::new();
    dir.write(key_file, &jwks(keys));
    dir.write(
        "sso.yaml",
        &sso_yaml("[RS256]").replace("jwks_file: jwks.json", &format!("jwks_file: {key_file}")),
    );
    dir.write(
        "rest.yaml",
        &common::provider::REMOTE_REST.replace("remote-idp", "test-idp"),
    );
    dir
}

async fn status(c: &Claimgate, token: &str) -> (u16, String) {
    let mut client = c.client().await;
    let a = ask(&mut client, check_bearer("GET", "/a", token)).await;
    (a.status, a.reason().to_owned())
}

#[test]
fn serve_refuses_the_example_config_without_dev_naming_the_sso_and_the_key_file() {
    let dir = example_config_copy();
    let (code, err) = serve_refusing(dir.path(), &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("sso.yaml:9:16: error: SSO dev-oidc trusts the development key committed in claimgate's repository (kid \"dev-rsa-1\" in keys/dev-jwks.json)"),
        "{err}"
    );
    assert!(err.contains("--dev"), "the error names the way out: {err}");
}

#[test]
fn a_renamed_copy_of_the_development_key_under_another_kid_is_refused_too() {
    let other = TestKey::generate(Kind::Rs256, "partner-1");
    let copy = dev_key("partner-2026");
    let dir = config_with_key_file("trusted/partner-keys.json", &[&other, &copy]);
    let (code, err) = serve_refusing(dir.path(), &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("SSO test-idp trusts the development key"),
        "{err}"
    );
    assert!(
        err.contains("(kid \"partner-2026\" in trusted/partner-keys.json)"),
        "{err}"
    );
}

#[tokio::test]
async fn with_dev_serve_starts_warns_and_readyz_says_the_development_key_is_trusted() {
    let dir = example_config_copy();
    let serve = Claimgate::start_with(dir.path(), &["--dev"]).await;
    let ready = serve.get("/readyz").await;
    assert_eq!(ready.status, 200);
    assert!(
        ready.body.contains("sso dev-oidc: trusts the development key committed in claimgate's repository (kid \"dev-rsa-1\", --dev)"),
        "{}",
        ready.body
    );
    assert!(
        serve
            .logs()
            .contains("DEVELOPMENT KEY TRUSTED (--dev): SSO dev-oidc"),
        "{}",
        serve.logs()
    );
}

#[tokio::test]
async fn with_dev_every_reload_that_still_trusts_the_development_key_warns_again() {
    let key = dev_key("dev-rsa-1");
    let dir = config_with_key_file("jwks.json", &[&key]);
    let serve = Claimgate::start_with(dir.path(), &["--dev", "--reload-debounce", "50ms"]).await;
    let warnings = |logs: &str| logs.matches("DEVELOPMENT KEY TRUSTED (--dev)").count();
    assert_eq!(warnings(&serve.logs()), 1, "{}", serve.logs());
    dir.edit("rest.yaml", "role: viewer", "role: editor");
    let reloaded = eventually(Duration::from_secs(10), || async {
        serve.metric("claimgate_config_generation").await == Some(2.0)
    })
    .await;
    assert!(reloaded, "{}", serve.logs());
    assert!(
        eventually(Duration::from_secs(5), || async {
            warnings(&serve.logs()) == 2
        })
        .await,
        "{}",
        serve.logs()
    );
    let token = key.sign(&claims("demo", json!({})));
    assert_eq!(status(&serve, &token).await, (200, String::new()));
}

#[tokio::test]
async fn a_reload_that_brings_in_the_development_key_is_refused_and_the_last_good_config_serves() {
    let own = TestKey::generate(Kind::Rs256, "own-1");
    let dir = config_with_key_file("jwks.json", &[&own]);
    let serve = Claimgate::start_with(dir.path(), &["--reload-debounce", "50ms"]).await;
    let dev = dev_key("rotated-2");
    // Written whole and renamed in place, so no reload sees half a file.
    dir.write("jwks.json.new", &jwks(&[&own, &dev]));
    std::fs::rename(
        dir.path().join("jwks.json.new"),
        dir.path().join("jwks.json"),
    )
    .unwrap();
    let refused = eventually(Duration::from_secs(10), || async {
        let logs = serve.logs();
        logs.contains("configuration refused")
            && logs.contains("SSO test-idp trusts the development key")
            && logs.contains("rotated-2")
    })
    .await;
    assert!(refused, "the reason is logged: {}", serve.logs());
    let failures = serve
        .metric("claimgate_config_reloads_total{result=\"failure\"}")
        .await;
    assert!(failures.is_some_and(|n| n >= 1.0), "{failures:?}");
    assert_eq!(serve.metric("claimgate_config_generation").await, Some(1.0));
    let ok = own.sign(&claims("run", json!({})));
    assert_eq!(status(&serve, &ok).await, (200, String::new()));
    let forged = dev.sign(&claims("anyone", json!({})));
    assert_eq!(
        status(&serve, &forged).await,
        (401, "unknown_key".to_owned())
    );
    assert!(!serve.get("/readyz").await.body.contains("development key"));
}

#[test]
fn validate_warns_about_the_development_key_and_strict_fails() {
    let copy = dev_key("copied");
    let dir = config_with_key_file("keys/idp.json", &[&copy]);
    let path = dir.path().to_str().unwrap();
    let (code, out, err) = run(&["validate", "--config", path]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("sso.yaml:6:16: warning: keys/idp.json: kid \"copied\" is the development key committed in claimgate's repository"),
        "{out}"
    );
    assert!(out.contains("serve refuses it unless --dev"), "{out}");
    let (code, out, err) = run(&["validate", "--config", path, "--strict"]);
    assert_eq!(code, 1, "{out}{err}");
}

#[tokio::test]
async fn a_provider_serving_the_development_key_has_it_dropped_unless_dev() {
    let dev = dev_key("remote-dev");
    let provider = Provider::start(jwks(&[&dev])).await;
    let dir = remote_config(&provider.jwks_uri());
    dir.edit("sso.yaml", "algorithms: [ES256]", "algorithms: [RS256]");
    let token = dev.sign(&claims("anyone", json!({})));

    let serve = Claimgate::start(dir.path()).await;
    assert_eq!(
        status(&serve, &token).await,
        (401, "unknown_key".to_owned())
    );
    let logs = serve.logs();
    assert!(
        logs.contains("it is the development key committed in claimgate's repository"),
        "{logs}"
    );
    drop(serve);

    let serve = Claimgate::start_with(dir.path(), &["--dev"]).await;
    assert_eq!(status(&serve, &token).await, (200, String::new()));
    assert!(
        serve
            .logs()
            .contains("DEVELOPMENT KEY TRUSTED (--dev): the provider serves the key"),
        "{}",
        serve.logs()
    );
    assert!(serve
        .get("/readyz")
        .await
        .body
        .contains("sso remote-idp: trusts the development key"));
}

const HOSTING_ISSUERS: [&str; 4] = [
    "https://token.actions.githubusercontent.com",
    "https://gitlab.com",
    "https://app.terraform.io",
    "https://accounts.google.com",
];

/// An SSO of `issuer` reading `jwks.json` (plus `extra` lines), with no identities.
fn hosting_sso(issuer: &str, extra: &str) -> ConfigDir {
    let dir = ConfigDir::new();
    let key = TestKey::generate(Kind::Rs256, "k1");
    dir.write("jwks.json", &jwks(&[&key]));
    dir.write(
        "sso.yaml",
        &format!("sso_integrations:\n  - name: hosted\n    type: oidc\n    issuer: {issuer}\n    audiences: [claimgate]\n    jwks_file: jwks.json\n{extra}"),
    );
    dir
}

#[test]
fn a_public_hosting_issuer_never_trusts_a_key_file_unless_pinned_keys() {
    for issuer in HOSTING_ISSUERS {
        let dir = hosting_sso(issuer, "");
        let path = dir.path().to_str().unwrap();
        let (code, out, err) = run(&["validate", "--config", path]);
        assert_eq!(code, 1, "{issuer}: {out}{err}");
        assert!(
            out.contains("sso.yaml:6:16: error: SSO hosted has the issuer of"),
            "{issuer}: {out}"
        );
        assert!(
            out.contains("use discovery: true instead of jwks_file"),
            "{issuer}: {out}"
        );
        let (code, err) = serve_refusing(dir.path(), &[]);
        assert_eq!(code, 1, "{issuer}: {err}");
        assert!(err.contains("discovery: true"), "{issuer}: {err}");

        let pinned = hosting_sso(issuer, "    pinned_keys: true\n");
        let (code, out, err) = run(&["validate", "--config", pinned.path().to_str().unwrap()]);
        assert_eq!(code, 0, "{issuer}: {out}{err}");
    }
    // Another issuer needs no such word.
    let dir = hosting_sso(
        "https://token.actions.githubusercontent.com.example.org",
        "",
    );
    let (code, out, err) = run(&["validate", "--config", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn pinned_keys_without_a_key_file_is_a_warning() {
    let dir = ConfigDir::new();
    dir.write(
        "sso.yaml",
        "sso_integrations:\n  - name: hosted\n    type: oidc\n    issuer: https://gitlab.com\n    audiences: [claimgate]\n    discovery: true\n    pinned_keys: true\n",
    );
    let (code, out, err) = run(&["validate", "--config", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("sso.yaml:7:18: warning: pinned_keys applies to a jwks_file only"),
        "{out}"
    );
}

/// The example as the README runs it: github-actions takes GitHub's keys by discovery, so
/// offline it has none; dev-oidc is not held back, and a token claiming GitHub's issuer that
/// the committed development key signed is refused.
#[tokio::test]
async fn the_example_with_dev_serves_dev_oidc_and_refuses_forged_github_tokens() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let serve = Claimgate::start_with(&root.join("config"), &["--dev"]).await;
    let dev = dev_key("dev-rsa-1");
    let mut client = serve.client().await;
    let mut claims = json!({
        "iss": "https://dev-idp.claimgate.local", "aud": "claimgate", "sub": "repo:acme/api",
        "repository": "acme/api", "exp": now() + 600,
    });
    let a = ask(
        &mut client,
        check_bearer("GET", "/v1/models/acme/llama-70b/info", &dev.sign(&claims)),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-claimgate-identity"), Some("api-deployer"));
    claims["iss"] = "https://token.actions.githubusercontent.com".into();
    claims["repository_owner_id"] = "1234567".into();
    let a = ask(
        &mut client,
        check_bearer("POST", "/v1/mcp/search/query", &dev.sign(&claims)),
    )
    .await;
    assert_eq!((a.status, a.reason()), (401, "unknown_key"), "{a:?}");
}
