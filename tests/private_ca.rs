//! An SSO's `ca_file`: a provider behind a private CA is trusted for its JWKS and discovery
//! only where its SSO names the CA, and an unusable `ca_file` is refused at `file:line:col`.

mod common;

use std::process::Command;

use common::pki::TestCa;
use common::provider::Provider;
use common::*;
use serde_json::json;

const REST: &str = "external_identities:\n  - name: bot\n    sso_fqn: corp-idp\nresources:\n  - fqn: model:a\n    collaborators:\n      - subject: external-identity:bot\n        role: viewer\nroutes:\n  - path: /a\n    resource: model:a\n    role: viewer\n";

fn sso(issuer: &str, source: &str, ca_file: Option<&str>) -> String {
    let ca = ca_file
        .map(|f| format!("    ca_file: {f}\n"))
        .unwrap_or_default();
    format!("sso_integrations:\n  - name: corp-idp\n    type: oidc\n    issuer: {issuer}\n    audiences: [{AUDIENCE}]\n    {source}\n    algorithms: [ES256]\n{ca}")
}

async fn outcome(server: &TestServer, token: &str) -> (u16, String) {
    let mut c = server.client().await;
    let a = ask(&mut c, check_bearer("GET", "/a", token)).await;
    (a.status, a.reason().to_string())
}

#[tokio::test]
async fn a_provider_behind_a_private_ca_is_trusted_with_ca_file_and_refused_without() {
    tls_provider();
    let key = TestKey::generate(Kind::Es256, "k1");
    let ca = TestCa::new("corp CA");
    let pair = ca.server("idp.corp");
    let idp = Provider::start_tls_with(jwks(&[&key]), &pair.cert, &pair.key).await;
    let token = key.sign(&claims("ci", json!({"iss": idp.issuer()})));

    for source in [
        format!("jwks_uri: {}", idp.jwks_uri()),
        "discovery: true".to_owned(),
    ] {
        let without = ConfigDir::new();
        without.write("sso.yaml", &sso(&idp.issuer(), &source, None));
        without.write("rest.yaml", REST);
        let server = TestServer::start(without.path()).await;
        let body = server.ready_body().await;
        assert!(
            body.contains("corp-idp"),
            "{source}: the failed SSO is named: {body}"
        );
        assert_eq!(outcome(&server, &token).await.1, "unknown_key", "{source}");
        server.stop().await;

        let with = ConfigDir::new();
        with.write("keys/corp-ca.pem", &ca.pem());
        with.write(
            "sso.yaml",
            &sso(&idp.issuer(), &source, Some("keys/corp-ca.pem")),
        );
        with.write("rest.yaml", REST);
        let server = TestServer::start(with.path()).await;
        let body = server.ready_body().await;
        assert!(!body.contains("corp-idp"), "{source}: {body}");
        assert_eq!(
            outcome(&server, &token).await,
            (200, String::new()),
            "{source}"
        );
        server.stop().await;
    }
    assert_eq!(
        idp.jwks_fetches(),
        2,
        "only the SSOs that trust the CA got past the handshake"
    );
}

fn validate(dir: &std::path::Path) -> (bool, String) {
    let out = Command::new(bin())
        .args(["validate", "--config"])
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn an_unusable_ca_file_is_an_error_at_its_line() {
    let ca = TestCa::new("corp CA");
    let cases = [
        ("keys/missing.pem", None, "https://idp.corp.example/keys"),
        (
            "keys/corp-ca.pem",
            Some("not a certificate"),
            "https://idp.corp.example/keys",
        ),
        ("/etc/ssl/ca.pem", None, "https://idp.corp.example/keys"),
    ];
    for (ca_file, content, uri) in cases {
        let dir = ConfigDir::new();
        if let Some(text) = content {
            dir.write(ca_file, text);
        }
        dir.write(
            "sso.yaml",
            &sso(
                "https://idp.corp.example",
                &format!("jwks_uri: {uri}"),
                Some(ca_file),
            ),
        );
        dir.write("rest.yaml", REST);
        let (ok, out) = validate(dir.path());
        assert!(!ok, "{ca_file}: {out}");
        assert!(
            out.contains("sso.yaml:8:") && out.contains("error") && out.contains(ca_file),
            "{ca_file}: the error points at the ca_file line: {out}"
        );
    }
    // A CA file beside a local key file is a mistake, not a no-op.
    let key = TestKey::generate(Kind::Es256, "k1");
    let dir = ConfigDir::new();
    dir.write("jwks.json", &jwks(&[&key]));
    ca.write(dir.path(), "ca.pem");
    dir.write(
        "sso.yaml",
        &sso(
            "https://idp.corp.example",
            "jwks_file: jwks.json",
            Some("ca.pem"),
        ),
    );
    dir.write("rest.yaml", REST);
    let (ok, out) = validate(dir.path());
    assert!(
        !ok && out.contains("sso.yaml:8:") && out.contains("jwks_file"),
        "{out}"
    );
    // And a good one validates.
    let dir = ConfigDir::new();
    ca.write(dir.path(), "ca.pem");
    dir.write(
        "sso.yaml",
        &sso(
            "https://idp.corp.example",
            "jwks_uri: https://idp.corp.example/keys",
            Some("ca.pem"),
        ),
    );
    dir.write("rest.yaml", REST);
    let (ok, out) = validate(dir.path());
    assert!(ok, "{out}");
}
