//! Teams and the resource hierarchy behind a real Envoy running the shipped `envoy/envoy.yaml`
//! (only ports and the upstream changed): what the upstream sees for a team's grant on a
//! workspace, a grant that does not reach upward, a model placed by its route's `parent`, dry
//! run inherited from a workspace; and, across reloads, a membership removed and a cycle
//! refused. Envoy comes from `CLAIMGATE_TEST_ENVOY` or PATH; the tests never skip.

mod common;

use std::time::Duration;

use common::envoy::EnvoyStack;
use common::*;
use serde_json::json;

const BOUND: Duration = Duration::from_secs(5);

/// The shared fixture's identities with [`FIXTURE_HIERARCHY`] in the same file.
async fn start() -> EnvoyStack {
    let identities = format!("{FIXTURE_IDENTITIES}{FIXTURE_HIERARCHY}");
    EnvoyStack::launch(
        [&identities, FIXTURE_RESOURCES, FIXTURE_ROUTES],
        &[],
        |cfg, claimgate| cfg.cluster_endpoint("claimgate", claimgate.grpc),
    )
    .await
}

/// `Authorization` for `api` (in release-bots) or, with no repository, `anyone`.
fn auth(stack: &EnvoyStack, repository: Option<&str>) -> String {
    let extra = match repository {
        Some(r) => json!({"repository": r}),
        None => json!({}),
    };
    format!("Bearer {}", stack.key.sign(&claims("run-1", extra)))
}

/// The upstream's view of `x-claimgate-<name>`, for an allowed request.
fn seen_header(reply: &common::process::HttpReply, name: &str) -> Option<String> {
    assert_eq!(reply.status, 200, "{reply:?}");
    let seen = common::envoy::Seen::parse(&reply.body);
    seen.headers
        .get(&format!("x-claimgate-{name}"))
        .and_then(|v| v.first().cloned())
}

#[tokio::test]
async fn team_and_inherited_grants_reach_the_upstream_through_envoy() {
    let stack = start().await;
    let api = auth(&stack, Some("acme/api"));
    let anyone = auth(&stack, None);

    // No binding of its own on the model: editor through its team's grant on the workspace.
    let reply = stack
        .envoy
        .request(
            "POST",
            "/v1/models/acme/llama-70b/generate",
            &[("authorization", &api)],
        )
        .await;
    assert_eq!(seen_header(&reply, "identity").as_deref(), Some("api"));
    assert_eq!(seen_header(&reply, "role").as_deref(), Some("editor"));

    // A grant on the model never reaches its workspace.
    let reply = stack
        .envoy
        .request(
            "GET",
            "/v1/models/acme/llama-70b/x",
            &[("authorization", &anyone)],
        )
        .await;
    assert_eq!(seen_header(&reply, "role").as_deref(), Some("viewer"));
    let reply = stack
        .envoy
        .request(
            "GET",
            "/v2/workspaces/prod-ml",
            &[("authorization", &anyone)],
        )
        .await;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert!(reply.body.contains("insufficient_role"), "{reply:?}");

    // A model that is not declared, placed in its workspace by the route's parent.
    let reply = stack
        .envoy
        .request(
            "POST",
            "/v2/workspaces/prod-ml/models/fresh/generate",
            &[("authorization", &api)],
        )
        .await;
    assert_eq!(
        seen_header(&reply, "resource").as_deref(),
        Some("model:prod-ml/fresh")
    );
    assert_eq!(seen_header(&reply, "role").as_deref(), Some("editor"));

    // Dry run set on the staging workspace waives the denial on its model.
    let reply = stack
        .envoy
        .request(
            "GET",
            "/v1/models/acme/staged/x",
            &[("authorization", &anyone)],
        )
        .await;
    assert_eq!(
        seen_header(&reply, "dry-run").as_deref(),
        Some("insufficient_role")
    );
}

#[tokio::test]
async fn a_cycle_is_refused_and_a_membership_removed_revokes_through_envoy() {
    let stack = start().await;
    let api = auth(&stack, Some("acme/api"));
    let path = "/v1/models/acme/llama-70b/generate";
    let status = || async {
        stack
            .envoy
            .request("POST", path, &[("authorization", &api)])
            .await
            .status
    };
    assert_eq!(status().await, 200);

    // A cycle: refused, and the last good configuration keeps serving.
    let cyclic = FIXTURE_HIERARCHY.replace(
        "  - fqn: cluster:prod\n",
        "  - fqn: cluster:prod\n    parent: model:acme/llama-70b\n",
    );
    assert_ne!(cyclic, FIXTURE_HIERARCHY);
    stack
        .config
        .write("identities.yaml", &format!("{FIXTURE_IDENTITIES}{cyclic}"));
    let refused = eventually(BOUND, || async {
        let metrics = stack.claimgate.get("/metrics").await.body;
        metrics.contains("claimgate_config_reloads_total{result=\"failure\"} 1")
    })
    .await;
    assert!(refused, "the cycle is refused");
    assert_eq!(status().await, 200);

    // The identity leaves the team: the next reload revokes its role.
    let without = FIXTURE_HIERARCHY.replace("      - external-identity:api\n", "");
    stack
        .config
        .write("identities.yaml", &format!("{FIXTURE_IDENTITIES}{without}"));
    assert!(
        eventually(BOUND, || async { status().await == 403 }).await,
        "the membership removed still grants"
    );
}
