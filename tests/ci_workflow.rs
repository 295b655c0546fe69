//! The GitHub Actions workflow shipped in `deploy/ci/` works: its commands, run as the workflow
//! runs them (bash, its environment, a checkout with the base branch), pass on a pull request
//! that edits the example configuration, and the job summary gets the access diff.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// The steps of the workflow's one job: name and `run` script.
fn steps() -> Vec<(String, Option<String>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/ci/claimgate-review.yml");
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(doc["env"]["CONFIG_DIR"], "config");
    doc["jobs"]["review"]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| {
            let name = s["name"]
                .as_str()
                .or(s["uses"].as_str())
                .unwrap()
                .to_owned();
            (name, s["run"].as_str().map(str::to_owned))
        })
        .collect()
}

#[test]
fn the_ci_workflow_validates_tests_and_summarizes_the_access_diff_of_a_pull_request() {
    // A repository whose main branch has the example configuration, and a pull request that
    // makes api-deployer an editor of the prod workspace.
    let repo = ConfigDir::new();
    let example = example_config_copy();
    // A team's own key in place of the committed development key, which --strict refuses.
    let key = TestKey::generate(Kind::Rs256, "dev-rsa-1");
    example.write("keys/dev-jwks.json", &jwks(&[&key]));
    std::fs::rename(example.path(), repo.path().join("config")).unwrap();
    git(repo.path(), &["init", "-q", "-b", "main"]);
    git(repo.path(), &["add", "."]);
    git(repo.path(), &["commit", "-q", "-m", "example"]);
    git(
        repo.path(),
        &["update-ref", "refs/remotes/origin/main", "HEAD"],
    );
    git(repo.path(), &["checkout", "-q", "-b", "pr"]);
    repo.edit(
        "config/resources.yaml",
        "      - subject: external-identity:prod-cluster\n        role: viewer",
        "      - subject: external-identity:prod-cluster\n        role: viewer\n      - subject: external-identity:api-deployer\n        role: editor",
    );
    git(
        repo.path(),
        &["commit", "-q", "-am", "api-deployer edits prod"],
    );

    let summary = repo.path().join("summary.md");
    let bin_dir = bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = Vec::new();
    for (name, run) in steps() {
        // Installing needs a network and a toolchain, commenting needs GitHub: not run here.
        let Some(run) = run else { continue };
        if name == "Install claimgate" || name == "Comment the access diff" {
            continue;
        }
        let out = Command::new("bash")
            .args(["-eo", "pipefail", "-c", &run])
            .current_dir(repo.path())
            .env("PATH", &path)
            .env("CONFIG_DIR", "config")
            .env("BASE_REF", "main")
            .env("GITHUB_STEP_SUMMARY", &summary)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "step {name:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ran.push(name);
    }
    assert_eq!(ran, ["Validate", "Decision tests", "Access diff"]);
    let summary = std::fs::read_to_string(summary).unwrap();
    assert_eq!(
        summary,
        "**claimgate diff**: 1 change: 1 granted\n\n#### Granted\n\n| identity | resource | role |\n| --- | --- | --- |\n| `api-deployer` | `workspace:prod` | editor |\n"
    );
}
