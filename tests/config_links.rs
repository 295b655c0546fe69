//! A configuration file linked outside its directory is refused by name, and its target's text
//! never appears in any output: `validate` (every format), `diff` (either side, and a base read
//! from git whose committed link points away), and `serve`'s reload warning.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// The start of what the linked file holds: it must never be printed.
const SECRET: &str = "s3cr3t-service-account-token";

/// A file outside any configuration directory, as `/etc/passwd` or a mounted token would be.
fn secret_file() -> (ConfigDir, String) {
    let outside = ConfigDir::new();
    let path = outside.write("token", &format!("{SECRET}.eyJzdWIiOiJ4In0.c2ln\n"));
    (outside, path.to_str().unwrap().to_owned())
}

/// A small valid configuration with a key of its own.
fn config() -> ConfigDir {
    let key = TestKey::generate(Kind::Es256, "k1");
    fixture_config(&key)
}

fn link(target: &str, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

fn path(dir: &ConfigDir) -> &str {
    dir.path().to_str().unwrap()
}

#[test]
fn validate_names_a_config_file_linked_outside_the_directory_and_never_prints_its_target() {
    let (_outside, target) = secret_file();
    let dir = config();
    link(&target, &dir.path().join("zz.yaml"));
    for format in ["text", "github", "json"] {
        let (code, out, err) = run(&["validate", "--config", path(&dir), "--format", format]);
        assert_eq!(code, 1, "{format}: {out}{err}");
        assert!(out.contains("zz.yaml"), "{format}: {out}");
        assert!(
            out.contains(
                "outside the configuration directory; configuration files must be inside it"
            ),
            "{format}: {out}"
        );
        assert!(
            !out.contains(SECRET) && !err.contains(SECRET),
            "{format}: {out}{err}"
        );
    }
    // A link that stays inside the directory is read as before.
    std::fs::remove_file(dir.path().join("zz.yaml")).unwrap();
    std::fs::create_dir(dir.path().join("real")).unwrap();
    std::fs::rename(
        dir.path().join("routes.yaml"),
        dir.path().join("real/routes.yaml"),
    )
    .unwrap();
    link("real/routes.yaml", &dir.path().join("routes.yaml"));
    let (code, out, err) = run(&["validate", "--config", path(&dir)]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn diff_refuses_either_side_with_a_link_outside_and_never_prints_its_target() {
    let (_outside, target) = secret_file();
    let clean = config();
    let linked = config();
    link(&target, &linked.path().join("zz.yaml"));
    for (base, new) in [(&clean, &linked), (&linked, &clean)] {
        let (code, out, err) = run(&["diff", "--base", path(base), "--config", path(new)]);
        assert_eq!(code, 2, "{out}{err}");
        assert!(err.contains("zz.yaml"), "{err}");
        assert!(err.contains("outside the configuration directory"), "{err}");
        assert!(!out.contains(SECRET) && !err.contains(SECRET), "{out}{err}");
    }
}

#[test]
fn diff_against_git_refuses_a_committed_link_with_an_absolute_target() {
    let (_outside, target) = secret_file();
    let repo = config();
    link(&target, &repo.path().join("zz.yaml"));
    git(repo.path(), &["init", "-q"]);
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", "base"]);
    std::fs::remove_file(repo.path().join("zz.yaml")).unwrap();
    let (code, out, err) = run(&["diff", "--base", "git:HEAD", "--config", path(&repo)]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("zz.yaml"), "{err}");
    assert!(err.contains("outside the configuration directory"), "{err}");
    assert!(!out.contains(SECRET) && !err.contains(SECRET), "{out}{err}");
}

#[tokio::test]
async fn serve_refuses_a_reload_with_a_link_outside_and_never_logs_its_target() {
    let (_outside, target) = secret_file();
    let dir = config();
    let mut serve =
        common::process::Claimgate::start_with(dir.path(), &["--reload-poll", "1s"]).await;
    link(&target, &dir.path().join("zz.yaml"));
    let failures = r#"claimgate_config_reloads_total{result="failure"}"#;
    let refused = eventually(Duration::from_secs(5), || async {
        serve.metric(failures).await.unwrap_or(0.0) >= 1.0
    })
    .await;
    assert!(refused, "the reload is refused\n{}", serve.logs());
    let named = eventually(Duration::from_secs(2), || async {
        serve.logs().contains("outside the configuration directory")
    })
    .await;
    assert!(named, "{}", serve.logs());
    assert!(serve.logs().contains("zz.yaml"), "{}", serve.logs());
    assert!(!serve.logs().contains(SECRET), "{}", serve.logs());
    serve.terminate().await;
}
