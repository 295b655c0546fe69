//! The proxy-wasm filter for the tests that run it in Envoy: its `.wasm` file, and Envoy
//! running the shipped `envoy/envoy-wasm.yaml` with it and a bundle of a configuration.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use super::envoy::{shipped_envoy_file, EnvoyConfig};

/// The filter's `.wasm`: `CLAIMGATE_TEST_WASM` (set by scripts/test.sh), else built now with
/// scripts/build-wasm.sh. Panics, never skips, when neither gives one.
pub fn wasm_file() -> PathBuf {
    if let Some(path) = std::env::var_os("CLAIMGATE_TEST_WASM").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "CLAIMGATE_TEST_WASM names {}, which is not a file; run scripts/build-wasm.sh",
            path.display()
        );
        return path;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-wasm.sh");
    let out = Command::new(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{} failed; the proxy-wasm tests need the filter built for wasm32-wasip1:\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let path = PathBuf::from(stdout.lines().last().unwrap_or_default());
    assert!(path.is_file(), "build-wasm.sh printed {}", path.display());
    path
}

/// The bundle of `dir` (`claimgate bundle --config DIR` and `extra` flags), as its JSON text.
pub fn bundle_of(dir: &Path, extra: &[&str]) -> String {
    let mut args = vec!["bundle", "--config", dir.to_str().expect("UTF-8 path")];
    args.extend_from_slice(extra);
    let (code, out, err) = super::run(&args);
    assert_eq!(code, 0, "claimgate bundle failed: {err}");
    out.trim_end().to_owned()
}

/// The shipped `envoy/envoy-wasm.yaml` running `wasm` with the bundle `bundle`, every port 0.
pub fn envoy_wasm_config(wasm: &Path, bundle: &str) -> EnvoyConfig {
    // A JSON string is a YAML double-quoted scalar: the placeholders are filled with those.
    let quote = |s: &str| serde_json::to_string(s).expect("a string serializes");
    let wasm = quote(wasm.to_str().expect("UTF-8 path"));
    let bundle = quote(bundle);
    EnvoyConfig::on_port_zero(shipped_envoy_file(
        "envoy-wasm.yaml",
        &[("CLAIMGATE_WASM", &wasm), ("CLAIMGATE_BUNDLE", &bundle)],
    ))
}
