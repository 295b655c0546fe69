//! The binary's own log on stderr: no terminal colour codes when stderr is not a terminal
//! (a file, a pipe, a container runtime), and `--log-format json` writes one JSON object per
//! line for log collectors.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::process::ANY_PORT;
use common::*;

fn config() -> ConfigDir {
    let key = TestKey::generate(Kind::Es256, "k1");
    fixture_config(&key)
}

/// Run `serve` with stderr to a file (not a terminal) and no NO_COLOR, until it has logged
/// `lines` lines, then stop it; its stderr.
fn serve_stderr(dir: &ConfigDir, extra: &[&str], lines: usize) -> String {
    let out = tempfile::tempdir().unwrap();
    let err_path = out.path().join("stderr");
    let mut child = Command::new(bin())
        .args(["serve", "--config", dir.path().to_str().unwrap()])
        .args(["--grpc-addr", ANY_PORT, "--http-addr", ANY_PORT])
        .args(extra)
        .env_remove("NO_COLOR")
        .env("CLAIMGATE_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let read = || std::fs::read_to_string(&err_path).unwrap_or_default();
    // Enough lines, or the process gone (its lines are all there is): the caller's asserts judge.
    eventually_blocking(Duration::from_secs(20), || {
        read().lines().count() >= lines || child.try_wait().unwrap().is_some()
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    read()
}

#[test]
fn logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let dir = config();
    let err = serve_stderr(&dir, &[], 2);
    assert!(err.lines().count() >= 2, "{err}");
    assert!(!err.contains('\u{1b}'), "colour codes in:\n{err:?}");
}

#[test]
fn log_format_json_writes_one_json_object_per_line() {
    let dir = config();
    let err = serve_stderr(&dir, &["--log-format", "json"], 2);
    assert!(err.lines().count() >= 2, "{err}");
    for line in err.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        assert!(v.is_object(), "{line}");
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
    }
    assert!(!err.contains('\u{1b}'), "{err:?}");
    // A misspelt format is refused instead of falling back to text.
    let (code, _, stderr) = run(&["serve", "--config", "x", "--log-format", "jsonl"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("jsonl"), "{stderr}");
}
