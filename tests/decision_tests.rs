//! `claimgate test`: decision tests run by the server's decision function, with tokens signed
//! for the run by a key the named SSO trusts, and every mistake in a test file located.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::{json, Value};

fn test_dir(dir: &ConfigDir) -> (String, String) {
    let config = dir.path().to_str().unwrap().to_owned();
    let tests = dir.path().join("tests").to_str().unwrap().to_owned();
    (config, tests)
}

#[test]
fn the_example_tests_pass_on_the_example_config() {
    let root = env!("CARGO_MANIFEST_DIR");
    let (code, out, err) = run(&[
        "test",
        "--config",
        &format!("{root}/config"),
        &format!("{root}/config/tests"),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.ends_with("27 passed, 0 failed\n"), "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("ok    ")).count(), 27);
}

#[test]
fn the_example_tests_name_every_identity_and_resource_of_the_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = claimgate::core::load::load(&root.join("config")).unwrap();
    let tests = std::fs::read_to_string(root.join("config/tests/decisions.yaml")).unwrap();
    for id in example.snapshot.identities.iter() {
        assert!(
            tests.contains(&format!("identity: {},", id.name)),
            "no test expects identity {}",
            id.name
        );
    }
    for res in &example.config.resources {
        assert!(
            tests.contains(&res.spec.fqn),
            "no test targets {}",
            res.spec.fqn
        );
    }
}

#[test]
fn the_tests_directory_inside_the_config_is_not_read_as_configuration() {
    let dir = example_config_copy();
    let (config, _) = test_dir(&dir);
    // A test file holds `tests:`, an unknown section: read as configuration, it would refuse it.
    let (code, out, err) = run(&["validate", "--config", &config]);
    assert_eq!(code, 0, "{out}{err}");
    // The same file directly in the directory is refused, which is what makes this a test.
    std::fs::copy(
        dir.path().join("tests/decisions.yaml"),
        dir.path().join("decisions.yaml"),
    )
    .unwrap();
    let (code, out, _) = run(&["validate", "--config", &config]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("decisions.yaml:5:1: error: unknown field `tests`"),
        "{out}"
    );
}

#[test]
fn a_deliberately_broken_rule_in_the_example_fails_its_tests_with_the_explain_hint() {
    let dir = example_config_copy();
    // The prod deployer loses its manager role on the prod workspace.
    dir.edit(
        "resources.yaml",
        "      - subject: external-identity:api-deployer-prod\n        role: manager\n      - subject: external-identity:prod-cluster",
        "      - subject: external-identity:api-deployer-prod\n        role: editor\n      - subject: external-identity:prod-cluster",
    );
    let (config, tests) = test_dir(&dir);
    let (code, out, err) = run(&["test", "--config", &config, &tests]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.ends_with("26 passed, 1 failed\n"), "{out}");
    assert_eq!(
        out.lines().count(),
        28,
        "one line per test, and the count: {out}"
    );
    let fail = out.lines().find(|l| l.starts_with("FAIL")).unwrap();
    assert!(
        fail.ends_with(
            "decisions.yaml:34:11 main branch may deploy to prod: expected allow, got deny (insufficient_role) | explain: insufficient_role: identity api-deployer-prod is editor on workspace:prod, manager is required [failed step: role]"
        ),
        "{out}"
    );
}

#[test]
fn a_test_that_expects_another_identity_is_told_which_claim_kept_it_out() {
    let dir = example_config_copy();
    dir.edit(
        "identities.yaml",
        "environment: prod",
        "environment: production",
    );
    let (config, tests) = test_dir(&dir);
    let (code, out, _) = run(&["test", "--config", &config, &tests]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("main branch manages the model: expected identity api-deployer-prod, got api-deployer; expected role manager, got editor | explain: api-deployer-prod: environment = \"production\" failed: it is \"prod\"; api-deployer matches with 1 claim"),
        "{out}"
    );
}

#[test]
fn json_output_lists_each_test_with_expected_actual_and_differences() {
    let dir = example_config_copy();
    dir.edit(
        "routes.yaml",
        "  - path_prefix: /healthz\n    public: true",
        "  - path_prefix: /healthz\n    resource: workspace:prod\n    role: viewer",
    );
    let (config, tests) = test_dir(&dir);
    let (code, out, err) = run(&["test", "--config", &config, &tests, "--format", "json"]);
    assert_eq!(code, 1, "{out}{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["passed"], 26);
    assert_eq!(doc["failed"], 1);
    let failed: Vec<&Value> = doc["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["passed"] == false)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["name"], "health checks are public");
    assert_eq!(failed[0]["expected"], json!({"allow": true}));
    assert_eq!(
        failed[0]["actual"],
        json!({"allow": false, "reason": "missing_token"})
    );
    assert_eq!(
        failed[0]["differences"],
        json!(["expected allow, got deny (missing_token)"])
    );
    assert!(failed[0]["hint"]
        .as_str()
        .unwrap()
        .contains("[failed step: credentials]"));
}

#[test]
fn mistakes_in_a_test_file_are_errors_at_their_line_and_column() {
    let dir = example_config_copy();
    let (config, _) = test_dir(&dir);
    let cases: &[(&str, &str)] = &[
        ("tests:\n  - name: a\n    expect: {allow: true, rol: viewer}\n", "bad.yaml:3:27: error: tests[0].expect: unknown field `rol`"),
        ("tests:\n  - name: a\n    request: {path: /x}\n", "bad.yaml:2:5: error: tests[0]: missing field `expect`"),
        ("tests:\n  - name: a\n    token: {sso: nope}\n    expect: {allow: true}\n", "bad.yaml:3:18: error: SSO \"nope\" is not defined in the configuration (defined: dev-oidc, github-actions)"),
        ("tests:\n  - name: a\n    expect: {allow: false, reason: denied}\n", "bad.yaml:3:36: error: \"denied\" is not a reason code"),
        ("tests:\n  - name: a\n    expect: {allow: true, identity: nobody}\n", "bad.yaml:3:37: error: external identity \"nobody\" is not defined in the configuration"),
        ("tests:\n  - name: a\n    expect: {allow: true, role: owner}\n", "bad.yaml:3:33: error: role \"owner\" is not viewer, editor or manager"),
        ("tests:\n  - name: a\n    expect: {allow: true}\n  - name: a\n    expect: {allow: true}\n", "bad.yaml:4:11: error: test \"a\" is defined twice in this file"),
        ("tests:\n  - name: a\n    request: {resource: \"model:x\"}\n    expect: {allow: true}\n", "bad.yaml:3:15: error: give both resource and role"),
        ("tests:\n  - name: a\n    request: {path: /x, parent: \"workspace:w\"}\n    expect: {allow: true}\n", "bad.yaml:3:33: error: a parent places the resource the request names: give resource and role too"),
        ("tests: [\n", "bad.yaml:2:1: error: invalid YAML"),
        ("tests: []\n", "bad.yaml:1:8: error: holds no tests"),
    ];
    for (text, expected) in cases {
        let file = dir.write("tests/bad.yaml", text);
        let (code, out, err) = run(&["test", "--config", &config, file.to_str().unwrap()]);
        assert_eq!(code, 2, "{text}: {out}{err}");
        let want = format!("{}/tests/{expected}", dir.path().display());
        assert!(err.contains(&want), "{text}: wanted {want:?} in\n{err}");
    }
}

#[test]
fn an_invalid_configuration_or_no_test_file_is_a_usage_error() {
    let dir = example_config_copy();
    dir.edit("resources.yaml", "role: viewer", "role: owner");
    let (config, tests) = test_dir(&dir);
    let (code, _, err) = run(&["test", "--config", &config, &tests]);
    assert_eq!(code, 2);
    assert!(
        err.contains("resources.yaml:6:15: error: role \"owner\""),
        "{err}"
    );
    let (code, _, err) = run(&["test", "--config", &config]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn literal_tokens_are_verified_as_given_and_a_tampered_one_is_refused() {
    let dir = example_config_copy();
    let (config, _) = test_dir(&dir);
    let (code, token, err) = run(&[
        "token",
        "--key",
        dir.path()
            .join("keys/dev-only-private-key.pem")
            .to_str()
            .unwrap(),
        "--kid",
        "dev-rsa-1",
        "--iss",
        "https://dev-idp.claimgate.local",
        "--aud",
        "claimgate",
        "--sub",
        "repo:acme/api:ref:refs/heads/main",
        "--claim",
        "repository=acme/api",
    ]);
    assert_eq!(code, 0, "{err}");
    let token = token.trim();
    // The same signature over another payload: only a real verification refuses it.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let forged = {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut claims: Value = serde_json::from_slice(&b64.decode(&parts[1]).unwrap()).unwrap();
        claims["repository"] = json!("acme/other");
        parts[1] = b64.encode(claims.to_string());
        parts.join(".")
    };
    let file = dir.write(
        "tests/literal.yaml",
        &format!(
            "tests:\n  - name: as minted\n    token: \"{token}\"\n    request: {{path: /v1/mcp/search/q}}\n    expect: {{allow: true, identity: api-deployer}}\n  - name: forged\n    token: \"{forged}\"\n    request: {{path: /v1/mcp/search/q}}\n    expect: {{allow: false, reason: invalid_signature}}\n"
        ),
    );
    let (code, out, err) = run(&["test", "--config", &config, file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.ends_with("2 passed, 0 failed\n"), "{out}");
}

#[test]
fn described_tokens_are_signed_with_an_algorithm_the_sso_allows() {
    for (algorithms, kind) in [
        ("[EdDSA]", Kind::EdDsa),
        ("[ES256, PS256]", Kind::Es256),
        ("[PS384]", Kind::Rs256),
    ] {
        let dir = ConfigDir::new();
        let key = TestKey::generate(kind, "k1");
        dir.write("jwks.json", &jwks(&[&key]));
        dir.write("sso.yaml", &sso_yaml(algorithms));
        dir.write(
            "rest.yaml",
            "external_identities:\n  - name: bot\n    sso_fqn: test-idp\n    claims: {repository: acme/api}\nresources:\n  - fqn: model:a\n    collaborators:\n      - {subject: \"external-identity:bot\", role: viewer}\nroutes:\n  - {path: /a, resource: \"model:a\", role: viewer}\n",
        );
        let file = dir.write(
            "tests/t.yaml",
            "tests:\n  - name: bot reads\n    token: {sso: test-idp, claims: {repository: acme/api}}\n    request: {path: /a}\n    expect: {allow: true, identity: bot, role: viewer}\n  - name: others are nobody\n    token: {sso: test-idp, claims: {repository: acme/web}}\n    request: {path: /a}\n    expect: {allow: false, reason: no_identity}\n  - name: a foreign audience is refused\n    token: {sso: test-idp, claims: {repository: acme/api, aud: elsewhere}}\n    request: {path: /a}\n    expect: {allow: false, reason: audience_mismatch}\n",
        );
        let (code, out, err) = run(&[
            "test",
            "--config",
            dir.path().to_str().unwrap(),
            file.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{algorithms}: {out}{err}");
        assert!(out.ends_with("3 passed, 0 failed\n"), "{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_literal_token_of_an_sso_with_remote_keys_is_verified_with_the_fetched_keys() {
    let key = TestKey::generate(Kind::Es256, "remote-1");
    let idp = common::provider::Provider::start(jwks(&[&key])).await;
    let dir = common::provider::remote_config(&idp.jwks_uri());
    let token = key.sign(&claims("ci", json!({})));
    let file = dir.write(
        "tests/t.yaml",
        &format!(
            "tests:\n  - name: literal\n    token: \"{token}\"\n    request: {{path: /a}}\n    expect: {{allow: true, identity: bot}}\n  - name: described\n    token: {{sso: remote-idp}}\n    request: {{path: /a}}\n    expect: {{allow: true, identity: bot}}\n"
        ),
    );
    let args = [
        "test".to_owned(),
        "--config".to_owned(),
        dir.path().to_str().unwrap().to_owned(),
        file.to_str().unwrap().to_owned(),
    ];
    let out =
        tokio::task::spawn_blocking(move || Command::new(bin()).args(&args).output().unwrap())
            .await
            .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.ends_with("2 passed, 0 failed\n"), "{stdout}");
    assert_eq!(idp.jwks_fetches(), 1);
}
