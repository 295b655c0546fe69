//! The proxy-wasm filter fails closed: a bundle that does not load is refused by the filter,
//! and Envoy then refuses to serve with it rather than pass requests undecided.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::envoy::envoy_bin;
use common::wasm::{envoy_wasm_config, wasm_file};
use common::*;

#[tokio::test]
async fn a_bundle_that_does_not_load_keeps_envoy_from_serving_and_says_why() {
    let wasm = wasm_file();
    let broken = r#"{"claimgate_bundle": 1, "files": {"routes.yaml": "routes: [\n"}}"#;
    let config = envoy_wasm_config(&wasm, broken);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("envoy.yaml");
    std::fs::write(&path, serde_yaml::to_string(&config.0).unwrap()).unwrap();
    let log = dir.path().join("envoy.log");
    let mut envoy = Command::new(envoy_bin())
        .arg("-c")
        .arg(&path)
        .args(["--disable-hot-restart", "--concurrency", "1"])
        .arg("--log-path")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("Envoy starts (scripts/test.sh installs Envoy 1.40)");
    let mut status = None;
    let exited = eventually(Duration::from_secs(60), || {
        status = envoy.try_wait().expect("wait for Envoy");
        std::future::ready(status.is_some())
    })
    .await;
    if !exited {
        let _ = envoy.kill();
        let _ = envoy.wait();
    }
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        exited,
        "Envoy kept running with a bundle that does not load:\n{log}"
    );
    assert!(!status.is_some_and(|s| s.success()), "{log}");
    assert!(
        log.contains("claimgate: the bundle was refused: routes.yaml:2:1: error: invalid YAML"),
        "{log}"
    );
}
