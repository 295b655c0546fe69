//! `claimgate bundle`: a configuration directory checked as `serve` loads it and written as
//! the proxy-wasm filter's configuration, which loads back to the same configuration.

mod common;

use claimgate::core::bundle::Bundle;
use claimgate::core::load;
use common::*;

fn example_config() -> String {
    format!("{}/config", env!("CARGO_MANIFEST_DIR"))
}

/// Run `claimgate bundle --config DIR --out OUT`.
fn bundle_to(dir: &std::path::Path, out: &std::path::Path) -> (i32, String, String) {
    run(&[
        "bundle",
        "--config",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
}

#[test]
fn a_bundle_loads_back_to_the_configuration_serve_runs() {
    let key = TestKey::generate(Kind::Rs256, "k1");
    let dir = fixture_config(&key);
    let out = dir.path().join("out").join("bundle.json");
    std::fs::create_dir(out.parent().unwrap()).unwrap();
    let (code, stdout, err) = bundle_to(dir.path(), &out);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(stdout.is_empty(), "{stdout}");
    let bundle = Bundle::parse(&std::fs::read(&out).unwrap()).unwrap();
    assert!(!bundle.dev);
    assert!(
        bundle.files.keys().any(|name| name.ends_with(".json")),
        "the key file is inlined: {:?}",
        bundle.files.keys()
    );
    let from_bundle = bundle.loader().load().unwrap();
    let from_dir = load::load(dir.path()).unwrap();
    assert_eq!(from_bundle.snapshot.counts(), from_dir.snapshot.counts());
    assert_eq!(
        from_bundle.snapshot.ssos.len(),
        from_dir.snapshot.ssos.len()
    );
}

#[test]
fn a_bundle_without_out_is_written_to_standard_output() {
    let (code, stdout, err) = run(&["bundle", "--config", &example_config(), "--dev"]);
    assert_eq!(code, 0, "{err}");
    let bundle = Bundle::parse(stdout.trim_end().as_bytes()).unwrap();
    assert!(bundle.dev);
    assert!(bundle.files.contains_key("keys/dev-jwks.json"));
    bundle.loader().load().unwrap();
}

#[test]
fn an_invalid_configuration_is_refused_with_validates_messages_and_nothing_written() {
    let key = TestKey::generate(Kind::Rs256, "k1");
    let dir = fixture_config(&key);
    dir.write(
        "broken.yaml",
        "external_identities:\n  - name: a\n    sso_fqn: nope\n",
    );
    let out = dir.path().join("bundle.json");
    let (code, stdout, err) = bundle_to(dir.path(), &out);
    assert_eq!(code, 1, "{stdout}{err}");
    let (_, validated, _) = run(&["validate", "--config", dir.path().to_str().unwrap()]);
    assert!(
        err.contains("broken.yaml:3:14: error: sso_fqn \"nope\" names no SSO integration"),
        "{err}"
    );
    assert_eq!(err, validated);
    assert!(!out.exists());
}

#[test]
fn the_development_key_is_refused_unless_dev_is_given_as_serve_refuses_it() {
    let (code, stdout, err) = run(&["bundle", "--config", &example_config()]);
    assert_eq!(code, 1, "{stdout}{err}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(err.contains("trusts the development key"), "{err}");
}
