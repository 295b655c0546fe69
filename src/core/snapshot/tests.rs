//! Compiling configurations: what is accepted, what is refused and where.

use super::*;
use crate::core::config::{parse_texts, Files, KeyFiles, Severity};

fn compile_text(text: &str) -> Result<Snapshot, Vec<Diagnostic>> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keys.json"), r#"{"keys":[]}"#).unwrap();
    let mut d = Vec::new();
    let cfg = parse_texts(dir.path(), &[("c.yaml".into(), text.into())], &mut d);
    assert!(d.is_empty(), "{d:?}");
    // Key files are read as a load reads them, by the one reader.
    let mut key_files = KeyFiles::default();
    Files::new(cfg.dir.clone()).read_key_files(&cfg, &mut key_files);
    compile_with(&cfg, &key_files, None, None).map_err(|e| e.diagnostics().to_vec())
}

const SSO: &str = "sso_integrations:\n  - name: ci\n    type: oidc\n    issuer: https://idp\n    audiences: [cg]\n    jwks_file: keys.json\n";

fn errors(text: &str) -> Vec<String> {
    match compile_text(text) {
        Ok(_) => vec![],
        Err(d) => d
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| d.to_string())
            .collect(),
    }
}

#[test]
fn a_minimal_config_compiles() {
    let snap = compile_text(&format!(
        "{SSO}external_identities:\n  - name: bot\n    sso_fqn: ci\n"
    ))
    .unwrap();
    assert_eq!(snap.identities.len(), 1);
    assert!(snap.sso_for_issuer("https://idp").is_some());
    assert!(snap.sso_for_issuer("https://idp/").is_none());
}

#[test]
fn references_and_names_are_checked_with_locations() {
    let e = errors(&format!(
        "{SSO}external_identities:\n  - name: bot\n    sso_fqn: nope\n"
    ));
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("c.yaml:9:14: error: sso_fqn \"nope\""),
        "{e:?}"
    );
    let e = errors(&format!("{SSO}external_identities:\n  - name: bot\n    sso_fqn: ci\n  - name: bot\n    sso_fqn: ci\n"));
    assert!(
        e[0].contains("defined twice (first at c.yaml:8:11)"),
        "{e:?}"
    );
    let e = errors(&format!(
        "{SSO}external_identities:\n  - name: bad name\n    sso_fqn: ci\n"
    ));
    assert!(e[0].contains("letters, digits and hyphens"), "{e:?}");
}

#[test]
fn login_enabled_sso_cannot_back_identities() {
    let text = SSO.replace("type: oidc", "type: oidc\n    login_enabled: true");
    let e = errors(&format!(
        "{text}external_identities:\n  - name: bot\n    sso_fqn: ci\n"
    ));
    assert!(e[0].contains("login_enabled: true"), "{e:?}");
}

#[test]
fn bad_roles_routes_and_claims_are_errors() {
    let base = format!("{SSO}external_identities:\n  - name: bot\n    sso_fqn: ci\n");
    let e = errors(&format!("{base}resources:\n  - fqn: model:a\n    collaborators:\n      - subject: external-identity:bot\n        role: owner\n"));
    assert!(e[0].contains("role \"owner\""), "{e:?}");
    let e = errors(&format!(
        "{base}routes:\n  - path: /a/{{x}}\n    resource: model:{{y}}\n    role: viewer\n"
    ));
    assert!(e[0].contains("{y} is not a variable"), "{e:?}");
    let e = errors(&format!(
        "{base}routes:\n  - path: /a\n    resource: model:missing\n    role: viewer\n"
    ));
    assert!(e[0].contains("not defined in resources"), "{e:?}");
    let e = errors(&format!("{SSO}external_identities:\n  - name: bot\n    sso_fqn: ci\n    claims:\n      groups: [a, [b]]\n"));
    assert!(e[0].contains("string, number or boolean"), "{e:?}");
    let e = errors(&SSO.replace(
        "jwks_file: keys.json",
        "jwks_uri: http://idp.example.com/keys",
    ));
    assert!(e[0].contains("must use https"), "{e:?}");
    assert!(errors(&SSO.replace("jwks_file: keys.json", "jwks_uri: https://idp/keys")).is_empty());
    let e = errors(&SSO.replace(
        "audiences: [cg]",
        "audiences: [cg]\n    algorithms: [HS256]",
    ));
    assert!(e[0].contains("HS256"), "{e:?}");
}

#[test]
fn every_malformed_condition_is_an_error_at_its_line_and_column() {
    let text = format!(
        "{SSO}external_identities:
  - name: bot
    sso_fqn: ci
    claims:
      a: {{matches: x}}
      b: []
      c: {{like: 'x\\y'}}
      d: {{like: '{stars}'}}
      e: {{not_like: '{long}'}}
      f: {{like: 'a*', not: b}}
      g:
        like: [ok, '*']
        present: true
      h: {{present: 1}}
",
        stars = "?".repeat(17),
        long = "a".repeat(1025),
    );
    let e = errors(&text);
    let expect = [
        "c.yaml:11:20: error: claim \"a\": unknown operator \"matches\"",
        "c.yaml:12:10: error: claim \"b\": the list is empty",
        "c.yaml:13:17: error: claim \"c\": pattern has a bad escape `\\y`: only",
        "c.yaml:14:17: error: claim \"d\": pattern has 17 wildcards; at most 16",
        "c.yaml:15:21: error: claim \"e\": pattern is 1025 bytes long; at most 1024",
        "c.yaml:16:28: error: claim \"f\": not and like cannot be combined",
        "c.yaml:19:18: error: claim \"g\": like and present cannot be combined",
        "c.yaml:20:20: error: claim \"h\": present must be true or false",
    ];
    assert_eq!(e.len(), expect.len(), "{e:#?}");
    for (got, want) in e.iter().zip(expect) {
        assert!(
            got.starts_with(want),
            "{got}\n  does not start with\n{want}"
        );
    }
}

#[test]
fn an_identity_names_at_most_32_claims() {
    let claims: String = (0..33).map(|i| format!("      c{i}: x\n")).collect();
    let e = errors(&format!(
        "{SSO}external_identities:\n  - name: bot\n    sso_fqn: ci\n    claims:\n{claims}"
    ));
    assert!(
        e[0].contains("33 claims; an identity has at most 32"),
        "{e:?}"
    );
    let claims: String = (0..32).map(|i| format!("      c{i}: x\n")).collect();
    let ok =
        format!("{SSO}external_identities:\n  - name: bot\n    sso_fqn: ci\n    claims:\n{claims}");
    assert!(errors(&ok).is_empty());
}

#[test]
fn a_missing_collaborator_identity_is_a_warning_and_ignored() {
    let snap = compile_text(&format!(
        "{SSO}resources:\n  - fqn: model:a\n    collaborators:\n      - subject: external-identity:gone\n        role: viewer\n"
    ))
    .unwrap();
    assert_eq!(snap.warnings.len(), 2, "{:?}", snap.warnings); // plus: the empty key set
    assert!(snap
        .warnings
        .iter()
        .any(|w| w.message.contains("\"gone\" does not exist")));
    assert!(snap.bindings("model:a").is_empty());
}

#[test]
fn identities_are_indexed_most_claims_first() {
    let snap = compile_text(&format!(
        "{SSO}external_identities:\n  - name: any\n    sso_fqn: ci\n  - name: two\n    sso_fqn: ci\n    claims: {{a: 1, b: true}}\n  - name: one\n    sso_fqn: ci\n    claims: {{a: 1}}\n"
    ))
    .unwrap();
    let order: Vec<&str> = snap
        .identities_of(0)
        .iter()
        .map(|i| &*snap.identities[*i].name)
        .collect();
    assert_eq!(order, ["two", "one", "any"]);
    assert_eq!(snap.identity_index.order(0), snap.identities_of(0));
}
