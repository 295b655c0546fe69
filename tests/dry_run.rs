//! Dry run: a denial of a request that targets a resource in dry run (by configuration, by
//! Envoy's `context_extensions`, or `serve --enforcement dry_run`) reaches the upstream with
//! `x-claimgate-dry-run: <reason>`; a request that matches no route stays denied; and the
//! tools say which resources are in dry run.

mod common;

use claimgate::core::decision::Enforcement;
use common::*;
use serde_json::json;

/// The shared fixture, with `workspace:prod` in dry run and `model:acme/llama` enforcing.
fn config(dry_run_resource: &str) -> (ConfigDir, TestKey) {
    let key = TestKey::generate(Kind::Rs256, "rsa-1");
    let dir = fixture_config(&key);
    let resources = FIXTURE_RESOURCES.replace(
        &format!("  - fqn: {dry_run_resource}\n"),
        &format!("  - fqn: {dry_run_resource}\n    enforcement: dry_run\n"),
    );
    assert_ne!(resources, FIXTURE_RESOURCES);
    dir.write("resources.yaml", &resources);
    (dir, key)
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

async fn start(dir: &ConfigDir, enforcement: Enforcement) -> TestServer {
    TestServer::builder(dir.path())
        .enforcement(enforcement)
        .start()
        .await
}

fn metadata(a: &Answer) -> &std::collections::HashMap<String, String> {
    a.metadata.as_ref().expect("metadata")
}

#[tokio::test]
async fn a_wrong_role_on_a_dry_run_resource_reaches_the_upstream_with_the_reason_and_the_identity()
{
    let (dir, key) = config("workspace:prod");
    let server = start(&dir, Enforcement::Enforce).await;
    let mut c = server.client().await;
    // `anyone` holds no role on workspace:prod.
    let token = key.sign(&claims("run-1", json!({})));
    let auth = bearer(&token);
    let headers = [
        ("authorization", auth.as_str()),
        ("x-claimgate-role", "manager"),
        ("x-claimgate-dry-run", "forged"),
    ];
    let a = ask(&mut c, check("GET", "/v1/admin/x", &headers)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-claimgate-dry-run"), Some("insufficient_role"));
    assert_eq!(a.header("x-claimgate-identity"), Some("anyone"));
    assert_eq!(a.header("x-claimgate-sso"), Some("test-idp"));
    assert_eq!(a.header("x-claimgate-subject"), Some("run-1"));
    assert_eq!(a.header("x-claimgate-resource"), Some("workspace:prod"));
    // No role is held, so none is claimed, and the client's is removed.
    assert_eq!(a.header("x-claimgate-role"), None);
    assert_eq!(a.removed, vec!["x-claimgate-role".to_string()]);
    assert_eq!(metadata(&a)["dry_run"], "insufficient_role");
    assert_eq!(metadata(&a)["identity"], "anyone");

    // The enforcing resource next to it still denies the same token's wrong role.
    let a = ask(
        &mut c,
        check_bearer("POST", "/v1/models/acme/llama/x", &token),
    )
    .await;
    assert_eq!(a.status, 403, "{a:?}");
    assert_eq!(a.reason(), "insufficient_role");

    // Counted apart from real denials and allows.
    let series = "claimgate_checks_total{decision=\"dry_run_deny\",reason=\"insufficient_role\"}";
    assert_eq!(server.metric(series).await, Some(1.0));
    let series = "claimgate_checks_total{decision=\"deny\",reason=\"insufficient_role\"}";
    assert_eq!(server.metric(series).await, Some(1.0));
    server.stop().await;
}

#[tokio::test]
async fn a_request_without_a_usable_token_reaches_a_dry_run_resource_with_no_identity_headers() {
    let (dir, _key) = config("workspace:prod");
    let server = start(&dir, Enforcement::Enforce).await;
    let mut c = server.client().await;
    let smuggled = [
        ("x-claimgate-identity", "admin"),
        ("x_claimgate_role", "manager"),
    ];
    let a = ask(&mut c, check("GET", "/v1/prod/status", &smuggled)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-claimgate-dry-run"), Some("missing_token"));
    let mut set: Vec<&str> = a.headers.keys().map(String::as_str).collect();
    set.sort();
    assert_eq!(set, ["x-claimgate-decision-id", "x-claimgate-dry-run"]);
    assert_eq!(a.removed, vec!["x-claimgate-identity", "x_claimgate_role"]);

    let a = ask(
        &mut c,
        check_bearer("GET", "/v1/prod/status", "not.a.token"),
    )
    .await;
    assert_eq!(
        a.header("x-claimgate-dry-run"),
        Some("malformed_token"),
        "{a:?}"
    );
    assert_eq!(a.header("x-claimgate-identity"), None);
    server.stop().await;
}

#[tokio::test]
async fn a_request_that_matches_no_route_stays_denied_even_when_everything_is_in_dry_run() {
    let (dir, key) = config("workspace:prod");
    let server = start(&dir, Enforcement::DryRun).await;
    let mut c = server.client().await;
    let token = key.sign(&claims("run-1", json!({})));
    let a = ask(&mut c, check_bearer("GET", "/v1/unrouted", &token)).await;
    assert_eq!(a.status, 403, "{a:?}");
    assert_eq!(a.reason(), "no_route");
    let a = ask(&mut c, check("GET", "/v1/unrouted", &[])).await;
    assert_eq!(a.status, 401, "{a:?}");
    // ...while a routed denial on an enforcing resource is let through by the server's flag.
    let a = ask(
        &mut c,
        check_bearer("POST", "/v1/models/acme/llama/x", &token),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-claimgate-dry-run"), Some("insufficient_role"));
    assert_eq!(a.header("x-claimgate-role"), Some("viewer"));
    server.stop().await;
}

#[tokio::test]
async fn envoy_can_put_a_route_in_dry_run_and_a_misspelt_enforcement_denies() {
    let (dir, key) = config("workspace:prod");
    let server = start(&dir, Enforcement::Enforce).await;
    let mut c = server.client().await;
    let token = key.sign(&claims("run-1", json!({})));
    let req = |enforcement: &str| {
        with_context(
            check_bearer("GET", "/v1/anything", &token),
            &[
                ("resource", "model:acme/llama"),
                ("role", "manager"),
                ("enforcement", enforcement),
            ],
        )
    };
    let a = ask(&mut c, req("dry_run")).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-claimgate-dry-run"), Some("insufficient_role"));
    let a = ask(&mut c, req("enforce")).await;
    assert_eq!(a.reason(), "insufficient_role", "{a:?}");
    let a = ask(&mut c, req("dry-run")).await;
    assert_eq!(a.reason(), "no_route", "{a:?}");
    server.stop().await;
}

/// The stricter wins: an explicit `enforce` (Envoy's route, or the resource) enforces whatever
/// the other says, and whatever `serve --enforcement dry_run` says; without one, a `dry_run`
/// from either lets the denial through.
#[tokio::test]
async fn an_explicit_enforce_anywhere_on_the_path_wins_over_dry_run() {
    // workspace:prod in dry run; model:acme/llama says `enforcement: enforce` explicitly.
    let (dir, key) = config("workspace:prod");
    let resources = std::fs::read_to_string(dir.path().join("resources.yaml")).unwrap();
    dir.write(
        "resources.yaml",
        &resources.replace(
            "  - fqn: model:acme/llama\n",
            "  - fqn: model:acme/llama\n    enforcement: enforce\n",
        ),
    );
    let token = key.sign(&claims("run-1", json!({})));
    let req = |resource: &str, enforcement: Option<&str>| {
        let mut ext = vec![("resource", resource), ("role", "manager")];
        ext.extend(enforcement.map(|e| ("enforcement", e)));
        with_context(check_bearer("GET", "/v1/anything", &token), &ext)
    };
    for everything in [Enforcement::Enforce, Enforcement::DryRun] {
        let server = start(&dir, everything).await;
        let mut c = server.client().await;
        for (resource, route, waived) in [
            // A resource in dry run: Envoy's explicit enforce overrides it.
            ("workspace:prod", None, true),
            ("workspace:prod", Some("dry_run"), true),
            ("workspace:prod", Some("enforce"), false),
            // A resource that says enforce: neither Envoy nor the server relaxes it.
            ("model:acme/llama", None, false),
            ("model:acme/llama", Some("dry_run"), false),
            ("model:acme/llama", Some("enforce"), false),
        ] {
            let a = ask(&mut c, req(resource, route)).await;
            let case = format!("{everything:?} {resource} {route:?}: {a:?}");
            if waived {
                assert_eq!(a.status, 200, "{case}");
                assert_eq!(
                    a.header("x-claimgate-dry-run"),
                    Some("insufficient_role"),
                    "{case}"
                );
            } else {
                assert_eq!(a.status, 403, "{case}");
                assert_eq!(a.reason(), "insufficient_role", "{case}");
            }
        }
        server.stop().await;
    }
}

fn run_text(args: &[&str]) -> (i32, String) {
    let (code, out, err) = run(args);
    (code, out + &err)
}

#[test]
fn validate_warns_about_a_resource_in_dry_run_and_refuses_an_unknown_enforcement() {
    let (dir, _key) = config("workspace:prod");
    let path = dir.path().to_str().unwrap();
    let (code, out) = run_text(&["validate", "--config", path]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("resources.yaml:12:18: warning: resource workspace:prod is in dry run"),
        "{out}"
    );
    let bad = FIXTURE_RESOURCES.replace(
        "  - fqn: workspace:prod\n",
        "  - fqn: workspace:prod\n    enforcement: dryrun\n",
    );
    dir.write("resources.yaml", &bad);
    let (code, out) = run_text(&["validate", "--config", path]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("enforcement \"dryrun\" is not enforce or dry_run"),
        "{out}"
    );
}

#[test]
fn who_can_marks_a_resource_in_dry_run() {
    let (dir, _key) = config("workspace:prod");
    let path = dir.path().to_str().unwrap();
    let (code, out) = run_text(&["who-can", "--config", path, "--resource", "workspace:prod"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("DRY RUN"), "{out}");
    let (_, out) = run_text(&[
        "who-can",
        "--config",
        path,
        "--resource",
        "model:acme/llama",
    ]);
    assert!(!out.contains("DRY RUN"), "{out}");
}

#[test]
fn explain_says_when_the_server_would_let_a_denial_through() {
    let (dir, key) = config("workspace:prod");
    let path = dir.path().to_str().unwrap();
    let token = key.sign(&claims("run-1", json!({})));
    let explain = |p: &str| {
        run_text(&[
            "explain", "--config", path, "--token", &token, "--method", "GET", "--path", p,
        ])
    };
    // The request passes, as on the server: exit 0, and what it would deny, and why.
    let (code, out) = explain("/v1/admin/x");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("verdict   ALLOW (200) would deny: insufficient_role (dry run): "),
        "{out}"
    );
    assert!(!out.contains("DENY"), "{out}");
    assert!(
        out.contains("dry run   waived: workspace:prod is in dry run"),
        "{out}"
    );
    let (code, out) = explain("/v1/models/acme/llama/x");
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("dry run"), "{out}");

    let mut args = vec![
        "explain",
        "--config",
        path,
        "--token",
        &token,
        "--path",
        "/v1/admin/x",
    ];
    args.push("--json");
    let (_, out) = run_text(&args);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"]["dry_run"], "workspace:prod");
    assert_eq!(v["verdict"]["allowed"], true);
    assert_eq!(v["verdict"]["status"], 200);
    assert_eq!(
        v["verdict"]["would_deny"],
        "would deny: insufficient_role (dry run)"
    );
    // An enforced denial is unchanged.
    let (code, out) = run_text(&[
        "explain",
        "--config",
        path,
        "--token",
        &token,
        "--method",
        "POST",
        "--path",
        "/v1/models/acme/llama/x",
        "--json",
    ]);
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"]["allowed"], false);
    assert_eq!(v["verdict"]["would_deny"], serde_json::Value::Null);
}
