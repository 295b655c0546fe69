//! Identities of a shared multi-tenant issuer must pin the tenant: `validate` reports the
//! error at the identity and `serve` refuses the configuration.

mod common;

use common::process::serve_refusing;
use common::*;

/// A directory with an SSO for `issuer` and one identity with `claims` (YAML lines).
fn dir_with(issuer: &str, claims: &str) -> ConfigDir {
    let dir = ConfigDir::new();
    let key = TestKey::generate(Kind::Rs256, "k1");
    dir.write("jwks.json", &jwks(&[&key]));
    dir.write(
        "config.yaml",
        &format!(
            "sso_integrations:\n  - name: shared\n    type: oidc\n    issuer: {issuer}\n    audiences: [claimgate]\n    jwks_file: jwks.json\n    pinned_keys: true\nexternal_identities:\n  - name: deployer\n    sso_fqn: shared\n    claims:\n{claims}"
        ),
    );
    dir
}

fn validate(dir: &ConfigDir) -> (i32, String) {
    let (code, out, err) = run(&["validate", "--config", dir.path().to_str().unwrap()]);
    (code, format!("{out}{err}"))
}

#[test]
fn validate_refuses_an_identity_every_tenant_of_a_shared_issuer_could_obtain() {
    let issuers = [
        (
            "https://token.actions.githubusercontent.com",
            "repository_owner_id",
        ),
        ("https://gitlab.com", "namespace_path"),
        ("https://app.terraform.io", "terraform_organization_name"),
        ("https://accounts.google.com", "hd"),
    ];
    for (issuer, names) in issuers {
        let dir = dir_with(issuer, "      environment: prod\n      aud: claimgate\n");
        let (code, out) = validate(&dir);
        assert_eq!(code, 1, "{issuer}: {out}");
        assert!(
            out.contains("config.yaml:9:11: error: external identity \"deployer\" of SSO shared does not pin the tenant"),
            "{issuer}: {out}"
        );
        assert!(
            out.contains(names),
            "{issuer}: the error names {names}: {out}"
        );
    }
}

#[test]
fn a_github_owner_pattern_pins_only_when_the_owner_is_written_out() {
    let github = "https://token.actions.githubusercontent.com";
    for (claims, pins) in [
        ("      sub: {like: \"repo:acme/*\"}\n", true),
        (
            "      sub: {like: \"repo:acme@1234567/*:environment:prod\"}\n",
            true,
        ),
        ("      repository: {like: \"acme/*\"}\n", true),
        ("      repository_owner_id: \"1234567\"\n", true),
        ("      sub: {like: \"repo:*\"}\n", false),
        ("      sub: {like: \"repo:acme*\"}\n", false),
        ("      repository_owner: {not: evil}\n", false),
    ] {
        let (code, out) = validate(&dir_with(github, claims));
        assert_eq!(code == 0, pins, "{claims}: {out}");
    }
}

#[test]
fn serve_refuses_an_unpinned_identity_of_github_actions() {
    let dir = dir_with(
        "https://token.actions.githubusercontent.com",
        "      sub: {like: \"repo:acme*\"}\n",
    );
    let (code, err) = serve_refusing(dir.path(), &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not pin the tenant"), "{err}");
}
