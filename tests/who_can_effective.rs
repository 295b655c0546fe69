//! `claimgate who-can` lists effective roles: an identity's own bindings, its teams' and those
//! on ancestors, each with the grant that gives it; `--identity` lists every declared resource
//! one identity holds a role on.

mod common;

use common::*;
use serde_json::{json, Value};

/// The shared fixture with the teams and hierarchy file beside it.
fn hierarchy() -> ConfigDir {
    let key = TestKey::generate(Kind::Rs256, "rsa-1");
    let dir = fixture_config(&key);
    dir.write("hierarchy.yaml", FIXTURE_HIERARCHY);
    dir
}

fn who_can(dir: &ConfigDir, args: &[&str]) -> Value {
    let mut all = vec![
        "who-can",
        "--config",
        dir.path().to_str().unwrap(),
        "--json",
    ];
    all.extend_from_slice(args);
    let (code, out, err) = run(&all);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// (identity, role, via subject, via resource, reach) of each holder.
fn holders(answer: &Value) -> Vec<(String, String, String, String, String)> {
    answer["holders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let s = |v: &Value| v.as_str().unwrap().to_string();
            (
                s(&h["identity"]),
                s(&h["role"]),
                s(&h["via"]["subject"]),
                s(&h["via"]["resource"]),
                s(&h["via"]["reach"]),
            )
        })
        .collect()
}

fn row(
    i: &str,
    role: &str,
    subject: &str,
    on: &str,
    reach: &str,
) -> (String, String, String, String, String) {
    (
        i.into(),
        role.into(),
        subject.into(),
        on.into(),
        reach.into(),
    )
}

#[test]
fn who_can_lists_team_members_and_inherited_grants_with_the_grant_that_gives_each() {
    let dir = hierarchy();
    let model = who_can(&dir, &["--resource", "model:acme/llama-70b"]);
    assert_eq!(
        holders(&model),
        [
            row(
                "api",
                "editor",
                "team:release-bots",
                "workspace:prod-ml",
                "inherited"
            ),
            row(
                "api-prod",
                "editor",
                "team:release-bots",
                "workspace:prod-ml",
                "inherited"
            ),
            row(
                "anyone",
                "viewer",
                "external-identity:anyone",
                "model:acme/llama-70b",
                "direct"
            ),
        ]
    );
    let workspace = who_can(&dir, &["--resource", "workspace:prod-ml"]);
    assert_eq!(
        holders(&workspace),
        [
            row(
                "api",
                "editor",
                "team:release-bots",
                "workspace:prod-ml",
                "team"
            ),
            row(
                "api-prod",
                "editor",
                "team:release-bots",
                "workspace:prod-ml",
                "team"
            ),
        ],
        "a grant on the model does not reach its workspace"
    );
    let cluster = who_can(&dir, &["--resource", "cluster:prod"]);
    assert_eq!(
        holders(&cluster),
        [],
        "a grant on the workspace does not reach the cluster"
    );

    let (code, text, err) = run(&[
        "who-can",
        "--config",
        dir.path().to_str().unwrap(),
        "--resource",
        "model:acme/llama-70b",
        "--role",
        "editor",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        text.starts_with(
            "model:acme/llama-70b: 2 identities hold editor or higher\n  editor   api "
        ),
        "{text}"
    );
    assert!(
        text.contains("\n           granted editor via team:release-bots on workspace:prod-ml (inherited by model:acme/llama-70b)\n"),
        "{text}"
    );
    assert!(!text.contains("anyone"), "{text}");
}

#[test]
fn who_can_identity_lists_every_declared_resource_it_holds_a_role_on() {
    let dir = hierarchy();
    let answer = who_can(&dir, &["--identity", "api"]);
    assert_eq!(answer["identity"], "api");
    assert_eq!(answer["teams"], json!(["release-bots"]));
    let got: Vec<(String, String, String, String)> = answer["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let s = |v: &Value| v.as_str().unwrap().to_string();
            (
                s(&h["resource"]),
                s(&h["role"]),
                s(&h["via"]["subject"]),
                s(&h["via"]["reach"]),
            )
        })
        .collect();
    let want = |r: &str, role: &str, subject: &str, reach: &str| {
        (
            r.to_string(),
            role.to_string(),
            subject.to_string(),
            reach.to_string(),
        )
    };
    assert_eq!(
        got,
        [
            want("workspace:prod-ml", "editor", "team:release-bots", "team"),
            want(
                "model:acme/llama-70b",
                "editor",
                "team:release-bots",
                "inherited"
            ),
            want(
                "model:acme/llama",
                "editor",
                "external-identity:api",
                "direct"
            ),
        ]
    );

    let (code, text, err) = run(&[
        "who-can",
        "--config",
        dir.path().to_str().unwrap(),
        "--identity",
        "api",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        text.starts_with("api holds a role on 3 resources ("),
        "{text}"
    );
    assert!(text.contains("\n  member of team:release-bots\n"), "{text}");
    assert!(
        text.contains("\n  editor   model:acme/llama-70b\n           granted editor via team:release-bots on workspace:prod-ml (inherited by model:acme/llama-70b)\n"),
        "{text}"
    );
}

#[test]
fn who_can_identity_refuses_an_undefined_identity_and_the_two_questions_at_once() {
    let dir = hierarchy();
    let path = dir.path().to_str().unwrap();
    let (code, _, err) = run(&["who-can", "--config", path, "--identity", "ap"]);
    assert_eq!(code, 2);
    assert!(
        err.contains(
            "identity \"ap\" is not defined in external_identities (defined: api, api-prod)"
        ),
        "{err}"
    );
    let (code, _, err) = run(&[
        "who-can",
        "--config",
        path,
        "--identity",
        "api",
        "--resource",
        "cluster:prod",
    ]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn who_can_identity_marks_a_resource_in_dry_run_through_its_ancestor() {
    let dir = hierarchy();
    // workspace:staging-ml is in dry run; model:acme/staged inherits it. Bind api on the model.
    dir.edit(
        "hierarchy.yaml",
        "  - fqn: model:acme/staged\n    parent: workspace:staging-ml\n",
        "  - fqn: model:acme/staged\n    parent: workspace:staging-ml\n    collaborators:\n      - subject: external-identity:api\n        role: viewer\n",
    );
    let answer = who_can(&dir, &["--identity", "api"]);
    let staged = answer["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["resource"] == "model:acme/staged")
        .unwrap_or_else(|| panic!("{answer}"));
    assert_eq!(staged["dry_run"], json!(true));
    let others_in_dry_run = answer["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["dry_run"] == json!(true))
        .count();
    assert_eq!(others_in_dry_run, 1, "{answer}");
    let (_, text, _) = run(&[
        "who-can",
        "--config",
        dir.path().to_str().unwrap(),
        "--identity",
        "api",
    ]);
    assert!(
        text.contains(
            "\n  viewer   model:acme/staged (DRY RUN: denials are let through and only logged)\n"
        ),
        "{text}"
    );
}
