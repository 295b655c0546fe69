//! The proxy-wasm filter for the tests that run it in Envoy: its `.wasm` file, and Envoy
//! running the shipped `envoy/envoy-wasm.yaml` with it and a bundle of a configuration.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value as Yaml;

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

/// The name of the filter's configuration served by extension config discovery.
pub const DISCOVERED: &str = "claimgate";

/// `config` with the claimgate filter's configuration served by extension config discovery
/// from `dir/claimgate.yaml` (a watched directory), as a running Envoy takes a new bundle
/// without a restart; returns the filter's `typed_config`, to write with [`publish`].
pub fn with_discovered_filter(mut config: EnvoyConfig, dir: &Path) -> (EnvoyConfig, Yaml) {
    // A path config source needs the node's identity.
    config.0["node"] =
        serde_yaml::from_str("{ id: claimgate-test, cluster: claimgate-test }").expect("node YAML");
    let filters = config.0["static_resources"]["listeners"]
        .as_sequence_mut()
        .and_then(|ls| ls.iter_mut().find(|l| l["name"] == "ingress"))
        .and_then(|l| {
            l["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"].as_sequence_mut()
        })
        .expect("envoy-wasm.yaml's ingress has http_filters");
    let filter = filters
        .iter_mut()
        .find(|f| f["name"] == "envoy.filters.http.wasm")
        .expect("envoy-wasm.yaml's ingress has the wasm filter");
    let typed_config = filter["typed_config"].clone();
    *filter = serde_yaml::from_str(&format!(
        r#"
name: {DISCOVERED}
config_discovery:
  config_source:
    path_config_source:
      path: {path}
      watched_directory: {{ path: {dir} }}
  type_urls: ["type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"]
"#,
        path = dir.join("claimgate.yaml").display(),
        dir = dir.display(),
    ))
    .expect("config_discovery YAML");
    (config, typed_config)
}

/// Publish `typed_config` with `bundle` as the discovered filter configuration in `dir`:
/// written beside it and renamed over it, so Envoy never reads half of one.
pub fn publish(dir: &Path, typed_config: &Yaml, bundle: &str, version: u32) {
    let mut typed_config = typed_config.clone();
    typed_config["config"]["configuration"]["value"] = Yaml::from(bundle);
    let mut resource = serde_yaml::Mapping::new();
    resource.insert(
        "@type".into(),
        "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig".into(),
    );
    resource.insert("name".into(), DISCOVERED.into());
    resource.insert("typed_config".into(), typed_config);
    let mut response = serde_yaml::Mapping::new();
    response.insert("version_info".into(), version.to_string().into());
    response.insert("resources".into(), Yaml::Sequence(vec![resource.into()]));
    let text = serde_yaml::to_string(&response).expect("serialize the discovery response");
    let tmp = dir.join(format!(".claimgate.yaml.{version}"));
    std::fs::write(&tmp, text).expect("write the discovery response");
    std::fs::rename(&tmp, dir.join("claimgate.yaml")).expect("publish the discovery response");
}
