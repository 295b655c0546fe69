//! One SSO, a list of identities each a viewer of one resource, and the real server: which
//! identity a token selects, as Envoy would learn it.

use serde_json::Value;

use super::*;

/// The resource every identity of a [`Selector`] may view.
const RESOURCE: &str = "model:acme/shared";

/// A running server whose SSO trusts one issuer and whose identities are given as YAML.
pub struct Selector {
    pub dir: ConfigDir,
    pub server: TestServer,
    pub key: TestKey,
    pub issuer: String,
    pub audience: String,
}

impl Selector {
    /// Start a server with SSO `sso-name` trusting `issuer` for `audience`, and the
    /// identities of `identities` (YAML of the `external_identities` list, the SSO written
    /// as `SSO`). The SSO pins the test's key file (`pinned_keys: true`), as a hosting
    /// service's issuer requires.
    pub async fn start(sso_name: &str, issuer: &str, audience: &str, identities: &str) -> Selector {
        let key = TestKey::generate(Kind::Rs256, "provider-1");
        let dir = ConfigDir::new();
        dir.write("jwks.json", &jwks(&[&key]));
        dir.write(
            "sso.yaml",
            &format!("sso_integrations:\n  - name: {sso_name}\n    type: oidc\n    issuer: {issuer}\n    audiences: [{audience}]\n    jwks_file: jwks.json\n    pinned_keys: true\n"),
        );
        let identities = identities.replace("SSO", sso_name);
        let parsed: Vec<serde_yaml::Value> =
            serde_yaml::from_str(&identities).expect("identities YAML");
        let collaborators: String = parsed
            .iter()
            .map(|i| {
                let name = i["name"].as_str().expect("identity name");
                format!("      - subject: external-identity:{name}\n        role: viewer\n")
            })
            .collect();
        dir.write(
            "identities.yaml",
            &format!("external_identities:\n{}", indent(&identities)),
        );
        dir.write(
            "resources.yaml",
            &format!("resources:\n  - fqn: {RESOURCE}\n    collaborators:\n{collaborators}"),
        );
        let server = TestServer::start(dir.path()).await;
        Selector {
            dir,
            server,
            key,
            issuer: issuer.into(),
            audience: audience.into(),
        }
    }

    /// The identity a token with these claims selects (the server's answer), or
    /// `deny:REASON`. `iss`, `aud`, `iat` and `exp` are filled in unless given.
    pub async fn select(&self, payload: &Value) -> String {
        let mut claims = json!({
            "iss": self.issuer, "aud": self.audience, "iat": now(), "exp": now() + 600,
        });
        if let Value::Object(given) = payload {
            for (k, v) in given {
                claims[k] = v.clone();
            }
        }
        let token = self.key.sign(&claims);
        let req = with_context(
            check_bearer("GET", "/any", &token),
            &[("resource", RESOURCE), ("role", "viewer")],
        );
        let mut client = self.server.client().await;
        let a = ask(&mut client, req).await;
        match a.header("x-claimgate-identity") {
            Some(name) if a.status == 200 => name.to_string(),
            _ => format!("deny:{}", a.reason()),
        }
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.trim().is_empty() {
                String::new()
            } else {
                format!("  {l}\n")
            }
        })
        .collect()
}
