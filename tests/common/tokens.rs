//! Token payloads in the shapes real identity providers issue (claims, types and spelling
//! as documented and as seen in the wild), for tests a user of each provider would write.
//! Signing, `iat` and `exp` are left to the test.

use serde_json::{json, Value};

/// GitHub Actions' issuer, shared by every GitHub user.
pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
/// gitlab.com's issuer, shared by every gitlab.com user.
pub const GITLAB_ISSUER: &str = "https://gitlab.com";
/// A cluster's service-account issuer (`--service-account-issuer`).
pub const KUBERNETES_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// A SPIRE server issuing JWT-SVIDs.
pub const SPIFFE_ISSUER: &str = "https://spire.acme.internal";

/// The owner's and repository's stable ids in the GitHub fixtures.
pub const ACME_OWNER_ID: &str = "1234567";
/// The id of `acme/api`.
pub const ACME_API_ID: &str = "7654321";

/// A GitHub Actions token for a workflow of `repository` (`acme/api`) run by `event` on `git_ref`.
/// `sub` follows GitHub's default template for that event; ids are strings, as GitHub sends them.
pub fn github(repository: &str, repository_id: &str, event: &str, git_ref: &str) -> Value {
    let owner = repository.split('/').next().unwrap_or_default();
    let sub = if event.starts_with("pull_request") {
        format!("repo:{repository}:pull_request")
    } else {
        format!("repo:{repository}:ref:{git_ref}")
    };
    let ref_type = if git_ref.starts_with("refs/tags/") {
        "tag"
    } else {
        "branch"
    };
    let workflow_ref = format!("{repository}/.github/workflows/ci.yml@{git_ref}");
    json!({
        "jti": "5f4a0b0e-9c2e-4d3b-8f6a-1d2c3b4a5e6f",
        "sub": sub,
        "aud": "claimgate",
        "ref": git_ref,
        "sha": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        "repository": repository,
        "repository_owner": owner,
        "repository_owner_id": ACME_OWNER_ID,
        "repository_id": repository_id,
        "repository_visibility": "private",
        "run_id": "9876543210",
        "run_number": "118",
        "run_attempt": "1",
        "runner_environment": "github-hosted",
        "actor_id": "583231",
        "actor": "octocat",
        "workflow": "CI",
        "workflow_ref": workflow_ref,
        "workflow_sha": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        "job_workflow_ref": workflow_ref,
        "job_workflow_sha": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        "head_ref": if event.starts_with("pull_request") { "feature/x" } else { "" },
        "base_ref": if event.starts_with("pull_request") { "main" } else { "" },
        "event_name": event,
        "ref_type": ref_type,
        "ref_protected": if git_ref == "refs/heads/main" { "true" } else { "false" },
        "iss": GITHUB_ISSUER,
    })
}

/// A push to `main` of `acme/api`.
pub fn github_push() -> Value {
    github("acme/api", ACME_API_ID, "push", "refs/heads/main")
}

/// A pull request against `acme/api`.
pub fn github_pull_request() -> Value {
    github(
        "acme/api",
        ACME_API_ID,
        "pull_request",
        "refs/pull/42/merge",
    )
}

/// A tag push of `acme/api`.
pub fn github_tag(tag: &str) -> Value {
    github("acme/api", ACME_API_ID, "push", &format!("refs/tags/{tag}"))
}

/// A job of `acme/api` in deployment environment `environment`. A `:` in a value is
/// written `%3A` in `sub`, so the value cannot forge the next field.
pub fn github_environment(environment: &str) -> Value {
    let mut t = github_push();
    t["environment"] = json!(environment);
    t["sub"] = json!(format!(
        "repo:acme/api:environment:{}",
        environment.replace(':', "%3A")
    ));
    t
}

/// A job of `caller` that runs the reusable workflow `acme/workflows/.github/workflows/deploy.yml`:
/// `job_workflow_ref` names the called workflow, `workflow_ref` the caller's.
pub fn github_reusable(caller: &str, caller_id: &str) -> Value {
    let mut t = github(caller, caller_id, "push", "refs/heads/main");
    t["job_workflow_ref"] = json!("acme/workflows/.github/workflows/deploy.yml@refs/heads/main");
    t
}

/// A push to `main` of a repository created after GitHub's change of `sub`: owner and
/// repository carry their ids (`repo:OWNER@OWNER_ID/REPO@REPO_ID:…`).
pub fn github_push_id_sub(repo: &str, repo_id: &str) -> Value {
    let mut t = github(&format!("acme/{repo}"), repo_id, "push", "refs/heads/main");
    t["sub"] = json!(format!(
        "repo:acme@{ACME_OWNER_ID}/{repo}@{repo_id}:ref:refs/heads/main"
    ));
    t
}

/// A GitLab CI job token of `acme/api` (project 20 in group 72) on `git_ref`.
pub fn gitlab(project_path: &str, git_ref: &str, environment: Option<&str>) -> Value {
    let namespace = project_path.rsplit_once('/').map_or("", |(n, _)| n);
    let protected = if git_ref == "main" { "true" } else { "false" };
    let mut t = json!({
        "namespace_id": "72",
        "namespace_path": namespace,
        "project_id": "20",
        "project_path": project_path,
        "user_id": "1",
        "user_login": "alice",
        "user_email": "alice@acme.example",
        "user_access_level": "maintainer",
        "pipeline_id": "574",
        "pipeline_source": "push",
        "job_id": "302",
        "ref": git_ref,
        "ref_type": "branch",
        "ref_path": format!("refs/heads/{git_ref}"),
        "ref_protected": protected,
        "runner_id": 1,
        "runner_environment": "gitlab-hosted",
        "sha": "714a629c0b401fdce83e847fc9589983fc6f46bc",
        "project_visibility": "private",
        "ci_config_ref_uri": format!("gitlab.com/{project_path}//.gitlab-ci.yml@refs/heads/{git_ref}"),
        "ci_config_sha": "714a629c0b401fdce83e847fc9589983fc6f46bc",
        "jti": "235b3a54-b797-45c7-ae9a-f72d7bc6ef5b",
        "iss": GITLAB_ISSUER,
        "sub": format!("project_path:{project_path}:ref_type:branch:ref:{git_ref}"),
        "aud": "claimgate",
    });
    if let Some(env) = environment {
        t["environment"] = json!(env);
        t["environment_protected"] = json!("true");
        t["deployment_tier"] = json!(env);
    }
    t
}

/// A Kubernetes projected service-account token of `namespace`/`account`, with the nested
/// `kubernetes.io` claims a pod-bound token carries.
pub fn kubernetes(namespace: &str, account: &str) -> Value {
    json!({
        "aud": ["claimgate"],
        "iss": KUBERNETES_ISSUER,
        "jti": "b7f1c3a2-0e4d-4c6b-9a8f-2d1e3c4b5a69",
        "kubernetes.io": {
            "namespace": namespace,
            "node": {"name": "ip-10-0-1-23.ec2.internal", "uid": "6e3b8a2c-1f4d-4a5b-8c7d-9e0f1a2b3c4d"},
            "pod": {"name": format!("{account}-7d9f8b6c5-x2k4p"), "uid": "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"},
            "serviceaccount": {"name": account, "uid": "a1b2c3d4-e5f6-4789-9abc-def012345678"},
            "warnafter": 1_764_003_000u64,
        },
        "sub": format!("system:serviceaccount:{namespace}:{account}"),
    })
}

/// A SPIFFE JWT-SVID: `sub` is the workload's SPIFFE ID.
pub fn spiffe(spiffe_id: &str) -> Value {
    json!({"sub": spiffe_id, "aud": ["claimgate"], "iss": SPIFFE_ISSUER})
}
