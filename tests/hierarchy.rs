//! Teams and the resource hierarchy through the real server over gRPC: a team's grant on a
//! workspace reaches the models in it, a grant on a model never reaches its workspace, a
//! route's `parent` places a model that is not declared, a membership removed revokes on the
//! next reload, a cycle is refused while the last good configuration keeps serving, and dry
//! run set on a workspace waives denials on its models. The decision log names the grant.

mod common;

use std::time::Duration;

use common::process::Claimgate;
use common::*;
use serde_json::{json, Value};

const BOUND: Duration = Duration::from_secs(2);

/// The shared fixture with [`FIXTURE_HIERARCHY`] beside it.
fn config() -> (ConfigDir, TestKey) {
    let key = TestKey::generate(Kind::Rs256, "rsa-1");
    let dir = fixture_config(&key);
    dir.write("hierarchy.yaml", FIXTURE_HIERARCHY);
    (dir, key)
}

/// A token that selects `api` (a member of release-bots, no binding of its own on the
/// hierarchy's resources).
fn api_token(key: &TestKey) -> String {
    key.sign(&claims("api-run", json!({"repository": "acme/api"})))
}

/// A token that selects `anyone` (viewer on model:acme/llama-70b, in no team).
fn anyone_token(key: &TestKey) -> String {
    key.sign(&claims("anyone-run", json!({})))
}

#[tokio::test]
async fn an_identity_without_a_binding_on_a_model_is_editor_through_its_teams_grant_on_the_workspace(
) {
    let (dir, key) = config();
    let server = TestServer::start(dir.path()).await;
    let mut c = server.client().await;
    let a = ask(
        &mut c,
        check_bearer(
            "POST",
            "/v1/models/acme/llama-70b/generate",
            &api_token(&key),
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-claimgate-identity"), Some("api"));
    assert_eq!(
        a.header("x-claimgate-resource"),
        Some("model:acme/llama-70b")
    );
    assert_eq!(a.header("x-claimgate-role"), Some("editor"));
    // The same grant on the workspace itself, and nothing on the cluster above it.
    assert_eq!(
        role_or_reason(&mut c, &api_token(&key), "GET", "/v2/workspaces/prod-ml").await,
        (200, "editor".into())
    );
    let req = with_context(
        check_bearer("GET", "/anything", &api_token(&key)),
        &[("resource", "cluster:prod"), ("role", "viewer")],
    );
    assert_eq!(ask(&mut c, req).await.reason(), "insufficient_role");
}

#[tokio::test]
async fn a_grant_on_a_model_does_not_reach_its_workspace() {
    let (dir, key) = config();
    let server = TestServer::start(dir.path()).await;
    let mut c = server.client().await;
    let token = anyone_token(&key);
    assert_eq!(
        role_or_reason(&mut c, &token, "GET", "/v1/models/acme/llama-70b/x").await,
        (200, "viewer".into())
    );
    assert_eq!(
        role_or_reason(&mut c, &token, "GET", "/v2/workspaces/prod-ml").await,
        (403, "insufficient_role".into())
    );
}

#[tokio::test]
async fn a_model_that_is_not_declared_gets_its_role_through_the_routes_parent() {
    let (dir, key) = config();
    let server = TestServer::start(dir.path()).await;
    let mut c = server.client().await;
    let a = ask(
        &mut c,
        check_bearer(
            "POST",
            "/v2/workspaces/prod-ml/models/fresh/generate",
            &api_token(&key),
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        a.header("x-claimgate-resource"),
        Some("model:prod-ml/fresh")
    );
    assert_eq!(a.header("x-claimgate-role"), Some("editor"));
    // A parent that names no declared resource adds nothing.
    assert_eq!(
        role_or_reason(
            &mut c,
            &api_token(&key),
            "POST",
            "/v2/workspaces/nowhere/models/fresh/generate"
        )
        .await,
        (403, "insufficient_role".into())
    );
    // Envoy may name the parent itself, beside the resource and role.
    let req = with_context(
        check_bearer("GET", "/anything", &api_token(&key)),
        &[
            ("resource", "model:unlisted"),
            ("role", "editor"),
            ("parent", "workspace:prod-ml"),
        ],
    );
    let a = ask(&mut c, req).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-claimgate-role"), Some("editor"));
}

#[tokio::test]
async fn removing_the_identity_from_the_team_revokes_its_role_on_the_next_reload() {
    let (dir, key) = config();
    let server = TestServer::start(dir.path()).await;
    let c = server.client().await;
    let token = api_token(&key);
    let path = "/v1/models/acme/llama-70b/generate";
    assert_eq!(
        role_or_reason(&mut c.clone(), &token, "POST", path).await,
        (200, "editor".into())
    );
    dir.write(
        "hierarchy.yaml",
        &FIXTURE_HIERARCHY.replace("      - external-identity:api\n", ""),
    );
    let revoked = eventually(BOUND, || {
        let mut c = c.clone();
        let token = token.clone();
        async move {
            role_or_reason(&mut c, &token, "POST", path).await == (403, "insufficient_role".into())
        }
    })
    .await;
    assert!(revoked, "the membership removed still grants");
}

#[tokio::test]
async fn a_cycle_is_refused_and_the_last_good_configuration_keeps_serving() {
    let (dir, key) = config();
    let server = TestServer::start(dir.path()).await;
    let mut c = server.client().await;
    let token = api_token(&key);
    let path = "/v1/models/acme/llama-70b/generate";
    let cyclic = FIXTURE_HIERARCHY.replace(
        "  - fqn: cluster:prod\n",
        "  - fqn: cluster:prod\n    parent: model:acme/llama-70b\n",
    );
    assert_ne!(cyclic, FIXTURE_HIERARCHY);
    dir.write("hierarchy.yaml", &cyclic);
    let refused = eventually(BOUND, || async {
        server
            .metric(r#"claimgate_config_reloads_total{result="failure"}"#)
            .await
            == Some(1.0)
    })
    .await;
    assert!(refused, "the cycle is refused");
    assert_eq!(server.store.generation(), 1);
    assert_eq!(
        role_or_reason(&mut c, &token, "POST", path).await,
        (200, "editor".into())
    );
}

#[tokio::test]
async fn dry_run_set_on_a_workspace_waives_denials_on_its_models() {
    let (dir, key) = config();
    let server = TestServer::start(dir.path()).await;
    let mut c = server.client().await;
    // `anyone` holds nothing in staging: the model inherits its workspace's dry run.
    let a = ask(
        &mut c,
        check_bearer("GET", "/v1/models/acme/staged/x", &anyone_token(&key)),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-claimgate-dry-run"), Some("insufficient_role"));
    assert_eq!(a.header("x-claimgate-resource"), Some("model:acme/staged"));
    // The enforcing workspace beside it still denies.
    assert_eq!(
        role_or_reason(
            &mut c,
            &anyone_token(&key),
            "POST",
            "/v1/models/acme/llama-70b/x"
        )
        .await,
        (403, "insufficient_role".into())
    );
}

#[tokio::test]
async fn the_decision_log_names_the_grant_that_decided() {
    let (dir, key) = config();
    let server = Claimgate::start_with(dir.path(), &["--decision-log", "-"]).await;
    let mut c = server.client().await;
    let a = ask(
        &mut c,
        check_bearer(
            "POST",
            "/v1/models/acme/llama-70b/generate",
            &api_token(&key),
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    eventually(Duration::from_secs(10), || async {
        server.stdout().lines().count() >= 1
    })
    .await;
    let out = server.stdout();
    let line: Value = serde_json::from_str(out.lines().next().unwrap_or_default()).unwrap();
    assert_eq!(
        line["result"]["granted_by"],
        json!({"subject": "team:release-bots", "resource": "workspace:prod-ml"}),
        "{out}"
    );
    assert_eq!(line["result"]["role"], "editor");
}
