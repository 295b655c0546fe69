//! `claimgate explain` names the grant that decided: the subject (the identity or one of its
//! teams), the resource the binding is on, the role, and whether it is inherited from an
//! ancestor; in the text and in `--json`, for allows and for a role that is too low.

mod common;

use common::*;
use serde_json::{json, Value};

/// The shared fixture with the teams and hierarchy file beside it, and its signing key.
fn hierarchy() -> (ConfigDir, TestKey) {
    let key = TestKey::generate(Kind::Rs256, "rsa-1");
    let dir = fixture_config(&key);
    dir.write("hierarchy.yaml", FIXTURE_HIERARCHY);
    (dir, key)
}

/// `explain` on `dir` for `token` with a context-extensions target; the exit code and output.
fn explain(dir: &ConfigDir, token: &str, target: &[&str], json: bool) -> (i32, String) {
    let mut args = vec![
        "explain",
        "--config",
        dir.path().to_str().unwrap(),
        "--token",
        token,
    ];
    args.extend_from_slice(target);
    if json {
        args.push("--json");
    }
    let (code, out, err) = run(&args);
    assert!(code == 0 || code == 1, "explain failed ({code}): {err}");
    (code, out)
}

fn granted_by(out: &str) -> Value {
    let report: Value = serde_json::from_str(out).unwrap();
    report["binding"]["granted_by"].clone()
}

#[test]
fn explain_names_a_teams_grant_on_an_ancestor_as_inherited_by_the_target() {
    let (dir, key) = hierarchy();
    // api has no binding of its own here: release-bots is editor of workspace:prod-ml.
    let token = key.sign(&claims("api-run", json!({"repository": "acme/api"})));
    let target = ["--resource", "model:acme/llama-70b", "--role", "editor"];
    let (code, text) = explain(&dir, &token, &target, false);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("\n          granted editor via team:release-bots on workspace:prod-ml (inherited by model:acme/llama-70b)\n"),
        "{text}"
    );
    let (_, out) = explain(&dir, &token, &target, true);
    assert_eq!(
        granted_by(&out),
        json!({
            "subject": "team:release-bots",
            "resource": "workspace:prod-ml",
            "role": "editor",
            "inherited": true,
            "reach": "inherited",
        })
    );
}

#[test]
fn explain_names_the_identitys_own_binding_on_the_target_as_direct() {
    let (dir, key) = hierarchy();
    let token = key.sign(&claims("anyone-run", json!({})));
    let target = ["--resource", "model:acme/llama-70b", "--role", "viewer"];
    let (code, text) = explain(&dir, &token, &target, false);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(
            "granted viewer via external-identity:anyone on model:acme/llama-70b (direct)\n"
        ),
        "{text}"
    );
    let (_, out) = explain(&dir, &token, &target, true);
    assert_eq!(granted_by(&out)["inherited"], json!(false));
    assert_eq!(granted_by(&out)["reach"], json!("direct"));
}

#[test]
fn explain_places_an_undeclared_resource_under_the_parent_given_with_it() {
    let (dir, key) = hierarchy();
    let token = key.sign(&claims("api-run", json!({"repository": "acme/api"})));
    let target = [
        "--resource",
        "model:acme/new-model",
        "--role",
        "editor",
        "--parent",
        "workspace:prod-ml",
    ];
    let (code, text) = explain(&dir, &token, &target, false);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("granted editor via team:release-bots on workspace:prod-ml (inherited by model:acme/new-model)\n"),
        "{text}"
    );
    let (_, out) = explain(&dir, &token, &target, true);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["request"]["parent"], json!("workspace:prod-ml"));

    // Without the parent the same resource sits nowhere, and nothing is granted.
    let (code, out) = explain(&dir, &token, &target[..4], true);
    assert_eq!(code, 1, "{out}");
    assert_eq!(granted_by(&out), Value::Null);
}

#[test]
fn explain_names_the_grant_of_a_role_that_is_too_low() {
    let (dir, key) = hierarchy();
    let token = key.sign(&claims("api-run", json!({"repository": "acme/api"})));
    let target = ["--resource", "model:acme/llama-70b", "--role", "manager"];
    let (code, text) = explain(&dir, &token, &target, false);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("binding   api is editor on model:acme/llama-70b; manager required\n          granted editor via team:release-bots on workspace:prod-ml (inherited by model:acme/llama-70b)\n"),
        "{text}"
    );
    let (_, out) = explain(&dir, &token, &target, true);
    assert_eq!(granted_by(&out)["subject"], json!("team:release-bots"));
}

#[test]
fn explain_lists_the_teams_bound_on_the_resource_with_its_collaborators() {
    let (dir, key) = hierarchy();
    let token = key.sign(&claims("api-run", json!({"repository": "acme/api"})));
    let target = ["--resource", "workspace:prod-ml", "--role", "viewer"];
    let (code, text) = explain(&dir, &token, &target, false);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("\n          granted editor via team:release-bots on workspace:prod-ml (team)\n          collaborators: team:release-bots editor\n"),
        "{text}"
    );
    let (_, out) = explain(&dir, &token, &target, true);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report["binding"]["teams"],
        json!([{"team": "release-bots", "role": "editor"}])
    );
    assert_eq!(report["binding"]["collaborators"], json!([]));
}
