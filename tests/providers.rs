//! Identity selection for the tokens real providers issue (GitHub Actions, GitLab CI,
//! Kubernetes service accounts, SPIFFE JWT-SVIDs), with the identities a user of each would
//! write, through the real gRPC server; and `explain` showing why, condition by condition.

mod common;

use std::process::Command;

use common::selection::Selector;
use common::tokens::*;
use common::*;
use serde_json::json;

/// GitHub Actions identities pinned by the owner's and repository's stable ids where it
/// matters, and owner-wide ones by name pattern for the rest.
const GITHUB_IDENTITIES: &str = r#"
- name: api-main
  sso_fqn: SSO
  claims:
    repository_owner_id: "1234567"
    repository_id: "7654321"
    ref: [refs/heads/main, refs/heads/release]
    environment: {present: false}
- name: api-deploy-prod
  sso_fqn: SSO
  claims:
    repository_owner_id: "1234567"
    repository_id: "7654321"
    environment: prod
- name: api-releases
  sso_fqn: SSO
  claims:
    repository_owner_id: "1234567"
    repository_id: "7654321"
    ref: {like: "refs/tags/v*"}
- name: shared-deploy
  sso_fqn: SSO
  claims:
    repository_owner_id: "1234567"
    job_workflow_ref: acme/workflows/.github/workflows/deploy.yml@refs/heads/main
    event_name: [push, workflow_dispatch]
- name: ml-main
  sso_fqn: SSO
  claims:
    repository_owner_id: "1234567"
    sub: "repo:acme@1234567/ml@99887766:ref:refs/heads/main"
    repository_id: "99887766"
- name: acme-ci
  sso_fqn: SSO
  claims:
    sub: {like: ["repo:acme/*", "repo:acme@1234567/*"]}
    event_name: {not_like: "pull_request*"}
- name: acme-pull-requests
  sso_fqn: SSO
  claims:
    repository_owner_id: "1234567"
    event_name: [pull_request, pull_request_target]
"#;

async fn github_selector() -> Selector {
    Selector::start("github", GITHUB_ISSUER, "claimgate", GITHUB_IDENTITIES).await
}

#[tokio::test]
async fn github_actions_branches_tags_and_pull_requests_select_their_identities() {
    let s = github_selector().await;
    assert_eq!(s.select(&github_push()).await, "api-main");
    let release = github("acme/api", ACME_API_ID, "push", "refs/heads/release");
    assert_eq!(s.select(&release).await, "api-main");
    let feature = github("acme/api", ACME_API_ID, "push", "refs/heads/feature/x");
    assert_eq!(s.select(&feature).await, "acme-ci");
    assert_eq!(s.select(&github_tag("v1.2.3")).await, "api-releases");
    assert_eq!(s.select(&github_tag("nightly")).await, "acme-ci");
    assert_eq!(s.select(&github_pull_request()).await, "acme-pull-requests");
    let other = github("acme/web", "1111", "push", "refs/heads/main");
    assert_eq!(s.select(&other).await, "acme-ci");
    s.server.stop().await;
}

#[tokio::test]
async fn github_actions_environments_and_reusable_workflows_select_their_identities() {
    let s = github_selector().await;
    assert_eq!(
        s.select(&github_environment("prod")).await,
        "api-deploy-prod"
    );
    // `prod:eu` is another environment; its colon is `%3A` in `sub`.
    let eu = github_environment("prod:eu");
    assert_eq!(eu["sub"], "repo:acme/api:environment:prod%3Aeu");
    assert_eq!(s.select(&eu).await, "acme-ci");
    // The called workflow, not the caller, is what the shared identity trusts.
    assert_eq!(
        s.select(&github_reusable("acme/web", "1111")).await,
        "shared-deploy"
    );
    let mut foreign = github_reusable("acme/web", "1111");
    foreign["job_workflow_ref"] =
        json!("acme-evil/workflows/.github/workflows/deploy.yml@refs/heads/main");
    assert_eq!(s.select(&foreign).await, "acme-ci");
    s.server.stop().await;
}

#[tokio::test]
async fn github_ids_keep_a_re_registered_owner_name_out() {
    let s = github_selector().await;
    // A repository created after GitHub's change carries ids in `sub`.
    assert_eq!(
        s.select(&github_push_id_sub("ml", "99887766")).await,
        "ml-main"
    );
    assert_eq!(
        s.select(&github_push_id_sub("data", "55555")).await,
        "acme-ci"
    );
    // Someone who registers the name `acme` after it was freed has another owner id: the
    // identities pinned by id refuse them; only the name pattern still matches.
    let mut impostor = github_push();
    impostor["repository_owner_id"] = json!("666");
    impostor["repository_id"] = json!("667");
    assert_eq!(s.select(&impostor).await, "acme-ci");
    let mut impostor_pr = github_pull_request();
    impostor_pr["repository_owner_id"] = json!("666");
    assert_eq!(s.select(&impostor_pr).await, "deny:no_identity");
    s.server.stop().await;
}

#[tokio::test]
async fn gitlab_ci_jobs_select_by_project_protection_and_environment() {
    let identities = r#"
- name: api-protected-main
  sso_fqn: SSO
  claims:
    project_id: "20"
    ref_protected: "true"
    ref: main
- name: api-deploy-production
  sso_fqn: SSO
  claims:
    project_id: "20"
    ref_protected: "true"
    environment: production
    environment_protected: "true"
- name: acme-group
  sso_fqn: SSO
  claims:
    namespace_path: {like: [acme, "acme/*"]}
"#;
    let s = Selector::start("gitlab", GITLAB_ISSUER, "claimgate", identities).await;
    assert_eq!(
        s.select(&gitlab("acme/api", "main", None)).await,
        "api-protected-main"
    );
    let deploy = gitlab("acme/api", "main", Some("production"));
    assert_eq!(s.select(&deploy).await, "api-deploy-production");
    assert_eq!(
        s.select(&gitlab("acme/api", "feature", None)).await,
        "acme-group"
    );
    let mut sub_group = gitlab("acme/ml/models", "feature", None);
    sub_group["project_id"] = json!("21");
    assert_eq!(s.select(&sub_group).await, "acme-group");
    let mut evil = gitlab("acme-evil/api", "main", None);
    evil["project_id"] = json!("99");
    assert_eq!(s.select(&evil).await, "deny:no_identity");
    s.server.stop().await;
}

#[tokio::test]
async fn kubernetes_service_accounts_select_by_nested_namespace_and_account() {
    let identities = r#"
- name: payments-deployer
  sso_fqn: SSO
  claims:
    /kubernetes.io/namespace: payments
    /kubernetes.io/serviceaccount/name: deployer
- name: prod-namespaces
  sso_fqn: SSO
  claims:
    /kubernetes.io/namespace: {like: "prod-*"}
"#;
    let s = Selector::start("cluster", KUBERNETES_ISSUER, "claimgate", identities).await;
    let pick = |ns: &str, sa: &str| kubernetes(ns, sa);
    assert_eq!(
        s.select(&pick("payments", "deployer")).await,
        "payments-deployer"
    );
    assert_eq!(
        s.select(&pick("payments", "default")).await,
        "deny:no_identity"
    );
    assert_eq!(
        s.select(&pick("prod-eu", "default")).await,
        "prod-namespaces"
    );
    assert_eq!(
        s.select(&pick("staging", "deployer")).await,
        "deny:no_identity"
    );
    s.server.stop().await;
}

#[tokio::test]
async fn spiffe_svids_select_by_exact_ids_or_a_trust_domain_pattern() {
    let identities = r#"
- name: payments
  sso_fqn: SSO
  claims:
    sub: [spiffe://prod.acme.internal/ns/payments/sa/api, spiffe://prod.acme.internal/ns/payments/sa/worker]
- name: staging
  sso_fqn: SSO
  claims:
    sub: {like: "spiffe://staging.acme.internal/*"}
"#;
    let s = Selector::start("spire", SPIFFE_ISSUER, "claimgate", identities).await;
    let svid = |id: &str| spiffe(id);
    let api = "spiffe://prod.acme.internal/ns/payments/sa/api";
    assert_eq!(s.select(&svid(api)).await, "payments");
    let worker = "spiffe://prod.acme.internal/ns/payments/sa/worker";
    assert_eq!(s.select(&svid(worker)).await, "payments");
    let any = "spiffe://staging.acme.internal/ns/x/sa/y";
    assert_eq!(s.select(&svid(any)).await, "staging");
    let other = "spiffe://prod.acme.internal/ns/payments/sa/batch";
    assert_eq!(s.select(&svid(other)).await, "deny:no_identity");
    let lookalike = "spiffe://staging.acme.internal.evil.example/ns/x/sa/y";
    assert_eq!(s.select(&svid(lookalike)).await, "deny:no_identity");
    s.server.stop().await;
}

#[tokio::test]
async fn explain_shows_each_condition_of_a_github_identity_in_its_own_words() {
    let s = github_selector().await;
    let mut token = github_pull_request();
    token["actor"] = json!("dependabot[bot]");
    token["iat"] = json!(now());
    token["exp"] = json!(now() + 600);
    let jwt = s.key.sign(&token);
    let out = Command::new(bin())
        .args(["explain", "--config"])
        .arg(s.dir.path())
        .args([
            "--token",
            &jwt,
            "--resource",
            "model:acme/shared",
            "--role",
            "viewer",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for line in [
        r#"sub like ["repo:acme/*", "repo:acme@1234567/*"] matched "repo:acme/api:pull_request""#,
        r#"event_name not_like "pull_request*" failed: it is "pull_request""#,
        r#"event_name in ["pull_request", "pull_request_target"] matched "pull_request""#,
        r#"environment absent held: the token has none"#,
        r#"ref like "refs/tags/v*" failed: it is "refs/pull/42/merge""#,
        r#"repository_owner_id = "1234567" matched "1234567""#,
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    s.server.stop().await;
}

/// The README's GitHub Actions recipe: the example's `github-actions` SSO takes GitHub's keys
/// by discovery, so a token signed by anyone else (the committed development key included)
/// is `unknown_key`; with the SSO pinned to a key of the test's own, the recipe's token
/// selects the deploy identity of the example.
#[test]
fn the_readme_github_recipe_selects_the_deploy_identity_on_the_example_config() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mint = |key: &str, kid: &str| {
        let out = Command::new(bin())
            .current_dir(root)
            .args(["token", "--key", key, "--kid", kid])
            .args([
                "--iss",
                "https://token.actions.githubusercontent.com",
                "--aud",
                "claimgate",
                "--sub",
                "repo:acme/api:environment:prod",
                "--claim",
                "repository_owner_id=\"1234567\"",
                "--claim",
                "repository_id=\"7654321\"",
                "--claim",
                "repository=acme/api",
                "--claim",
                "environment=prod",
                "--claim",
                "ref=refs/heads/main",
                "--claim",
                "actor=octocat",
                "--claim",
                "event_name=push",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let explain = |config: &str, token: &str| {
        let out = Command::new(bin())
            .current_dir(root)
            .args(["explain", "--config", config, "--token", token])
            .args([
                "--method",
                "POST",
                "--path",
                "/v1/workspaces/prod/deploy",
                "--json",
            ])
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), report)
    };
    let forged = mint("config/keys/dev-only-private-key.pem", "dev-rsa-1");
    let (code, report) = explain("config", &forged);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(report["verdict"]["reason"], "unknown_key", "{report:#}");

    let dir = example_config_copy();
    let key = TestKey::generate(Kind::Rs256, "gh-test-1");
    dir.write("keys/gh-test.json", &jwks(&[&key]));
    dir.edit(
        "sso.yaml",
        "    discovery: true\n",
        "    jwks_file: keys/gh-test.json\n    pinned_keys: true\n",
    );
    let pem = dir.write("gh-test.pem", &key.pem);
    let token = mint(pem.to_str().unwrap(), "gh-test-1");
    let (code, report) = explain(dir.path().to_str().unwrap(), &token);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["verdict"]["identity"], "gh-api-deploy-prod");
    assert_eq!(report["verdict"]["role"], "manager");
    // The README spells the same SSO and claims.
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    assert!(readme.contains("    issuer: https://token.actions.githubusercontent.com\n    audiences: [claimgate]\n    discovery: true\n"));
    assert!(readme.contains("--claim actor=octocat --claim event_name=push)"));
}

/// `who-can` shows each condition as written: in words, and as the configuration's form in JSON.
#[test]
fn who_can_prints_the_conditions_of_the_example_github_identities() {
    let config = format!("{}/config", env!("CARGO_MANIFEST_DIR"));
    let run = |extra: &[&str]| {
        let out = Command::new(bin())
            .args(["who-can", "--config", &config])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = run(&["--resource", "workspace:prod"]);
    assert!(
        text.contains(r#"claims: repository_owner_id="1234567", repository_id="7654321", environment="prod", ref in ["refs/heads/main", "refs/heads/release"], actor not ["dependabot[bot]", "renovate[bot]"]"#),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&run(&["--resource", "mcp-server:search", "--json"])).unwrap();
    let ci = json["holders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["identity"] == "gh-acme-ci")
        .expect("gh-acme-ci holds a role");
    assert_eq!(
        ci["claims"],
        json!({
            "sub": {"like": ["repo:acme/*", "repo:acme@1234567/*"]},
            "event_name": {"not_like": "pull_request*"},
        })
    );
}
