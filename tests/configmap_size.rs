//! `claimgate validate` warns when a configuration's files add up to nearly what a Kubernetes
//! ConfigMap holds (1 MiB), and names the git-sync overlay as the way to deploy it instead.

mod common;

use claimgate::tools::validate::{CONFIGMAP_BYTES, WARN_BYTES};
use common::*;

/// A valid configuration whose files (key file included) add up to `total` bytes: the rest
/// is a YAML file of comments.
fn config_of(total: u64) -> ConfigDir {
    let key = TestKey::generate(Kind::Rs256, "k1");
    let dir = ConfigDir::new();
    dir.write("jwks.json", &jwks(&[&key]));
    dir.write("sso.yaml", &sso_yaml("[RS256]"));
    dir.write(
        "routes.yaml",
        "routes:\n  - path_prefix: /healthz\n    public: true\n",
    );
    let used: u64 = ["jwks.json", "sso.yaml", "routes.yaml"]
        .iter()
        .map(|f| std::fs::metadata(dir.path().join(f)).unwrap().len())
        .sum();
    let line = format!("# {}\n", "x".repeat(77));
    let mut notes = line.repeat(((total - used) / line.len() as u64) as usize);
    notes.push_str(&"#".repeat((total - used) as usize - notes.len() - 1));
    notes.push('\n');
    dir.write("notes.yaml", &notes);
    let sum: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(sum, total);
    dir
}

fn validate(dir: &ConfigDir, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["validate", "--config", dir.path().to_str().unwrap()];
    args.extend(extra);
    let (code, out, err) = run(&args);
    (code, out + &err)
}

#[test]
fn a_configuration_near_the_configmap_limit_gets_a_warning_naming_git_sync() {
    for total in [WARN_BYTES, CONFIGMAP_BYTES + 1] {
        let dir = config_of(total);
        let (code, out) = validate(&dir, &[]);
        assert_eq!(code, 0, "a warning, not an error: {out}");
        let warning = out
            .lines()
            .find(|l| l.contains("warning:") && l.contains("ConfigMap"))
            .unwrap_or_else(|| panic!("{total} bytes: a ConfigMap warning in {out}"));
        assert!(
            warning.starts_with("notes.yaml:1:1:"),
            "at the largest file: {warning}"
        );
        assert!(
            warning.contains(&format!("{} KiB", total.div_ceil(1024))),
            "{warning}"
        );
        assert!(warning.contains("overlays/git-sync"), "{warning}");
        let (strict, out) = validate(&dir, &["--strict"]);
        assert_eq!(strict, 1, "--strict fails on it: {out}");
    }
}

#[test]
fn a_configuration_well_inside_a_configmap_gets_no_size_warning() {
    let dir = config_of(WARN_BYTES - 1);
    let (code, out) = validate(&dir, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("ConfigMap"), "{out}");
    let (strict, out) = validate(&dir, &["--strict"]);
    assert_eq!(strict, 0, "nothing else to warn about: {out}");
}
