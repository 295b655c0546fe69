//! Loading and reloading a directory: what each load reads, and when a change is seen.

use std::sync::atomic::{AtomicBool, Ordering};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::*;

const SSO: &str = "sso_integrations:\n  - name: ci\n    type: oidc\n    issuer: https://idp\n    audiences: [cg]\n    jwks_file: jwks.json\n";

/// A JWKS document with one RSA key per kid (a fixed 2048-bit modulus: only the kid matters).
fn jwks(kids: &[&str]) -> String {
    let mut n = vec![0xC5u8; 256];
    n[255] |= 1;
    let keys: Vec<serde_json::Value> = kids
        .iter()
        .map(|kid| serde_json::json!({"kty": "RSA", "kid": kid, "n": URL_SAFE_NO_PAD.encode(&n), "e": "AQAB"}))
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
}

fn kids(snap: &Snapshot) -> Vec<String> {
    snap.ssos[0]
        .keys
        .load()
        .keys()
        .iter()
        .filter_map(|k| k.kid.as_deref().map(str::to_owned))
        .collect()
}

#[test]
fn a_key_file_edited_while_a_reload_reads_it_is_taken_by_the_next_reload() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("jwks.json");
    std::fs::write(&key_file, jwks(&["old"])).unwrap();
    std::fs::write(dir.path().join("sso.yaml"), SSO).unwrap();
    // When armed, the key file is rewritten right after it was read once, as a rotation
    // landing in the middle of a reload would.
    let armed = Arc::new(AtomicBool::new(false));
    let files = {
        let (armed, key_file) = (armed.clone(), key_file.clone());
        Files::with_reader(dir.path().to_path_buf(), move |path| {
            let bytes = std::fs::read(path);
            if path == key_file && armed.swap(false, Ordering::SeqCst) {
                std::fs::write(&key_file, jwks(&["new"])).expect("rotate the key file");
            }
            bytes
        })
    };
    let loader = Loader::with_files(files, ProviderOptions::default());
    let mut current = loader.load().unwrap().snapshot;
    assert_eq!(kids(&current), ["old"]);

    // A YAML edit makes the reload compile; the key file is rotated while it runs.
    std::fs::write(dir.path().join("sso.yaml"), format!("{SSO}# edited\n")).unwrap();
    armed.store(true, Ordering::SeqCst);
    // That reload, then the next one, as the next poll would run it.
    for _ in 0..2 {
        if let Some(loaded) = loader.reload(&current).unwrap() {
            current = loaded.snapshot;
        }
    }
    assert!(!armed.load(Ordering::SeqCst), "the key file was rotated");
    assert_eq!(kids(&current), ["new"], "the rotated keys are served");
}
