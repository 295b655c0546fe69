//! Loading and reloading a directory: what each load reads, and when a change is seen.

use std::path::Path;
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
        // Key files are read where their links lead.
        let (armed, key_file) = (armed.clone(), key_file.canonicalize().unwrap());
        Files::with_reader(dir.path().to_path_buf(), move |path, limit, kind| {
            let bytes = config::read_regular(path, limit, kind);
            if path == key_file && armed.swap(false, Ordering::SeqCst) {
                std::fs::write(&key_file, jwks(&["new"])).expect("rotate the key file");
            }
            bytes
        })
    };
    let loader = Loader::with_files(files);
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

/// `load(dir)` on a thread: a load that blocks (on a FIFO, say) fails the test instead of
/// hanging it.
fn load_bounded(dir: &Path) -> Result<Loaded, ConfigError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(load(&dir));
    });
    rx.recv_timeout(std::time::Duration::from_secs(30))
        .expect("the load finishes instead of blocking")
}

/// The error lines of a refused load.
fn refusal(dir: &Path) -> Vec<String> {
    match load_bounded(dir) {
        Ok(_) => panic!("the configuration in {} was accepted", dir.display()),
        Err(e) => e.diagnostics().iter().map(ToString::to_string).collect(),
    }
}

fn has(lines: &[String], prefix: &str, part: &str) -> bool {
    lines
        .iter()
        .any(|l| l.starts_with(prefix) && l.contains(part))
}

/// A valid directory whose one SSO reads its keys from `jwks_file`.
fn with_key_file(jwks_file: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sso.yaml"),
        SSO.replace("jwks_file: jwks.json", &format!("jwks_file: {jwks_file}")),
    )
    .unwrap();
    dir
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
}

#[test]
fn a_key_file_that_is_a_fifo_is_refused_without_blocking() {
    let dir = with_key_file("jwks.json");
    mkfifo(&dir.path().join("jwks.json"));
    let lines = refusal(dir.path());
    assert!(
        has(
            &lines,
            "sso.yaml:6:16: error: jwks.json: ",
            "not a regular file"
        ),
        "{lines:?}"
    );
}

#[test]
fn a_key_file_that_is_a_device_is_refused_without_reading_it() {
    let dir = with_key_file("zero.json");
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.json")).unwrap();
    let lines = refusal(dir.path());
    assert!(
        has(
            &lines,
            "sso.yaml:6:16: error: zero.json: ",
            "resolves to /dev/zero, outside"
        ),
        "{lines:?}"
    );
    // And were it inside, it is no regular file: nothing is read from it.
    let read = config::read_regular(Path::new("/dev/zero"), 1024, "key file");
    assert!(
        matches!(read, Err(config::FileError::NotRegular)),
        "{read:?}"
    );
}

#[test]
fn a_key_file_outside_the_config_directory_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("jwks.json"), jwks(&["k"])).unwrap();
    let absolute = outside.path().join("jwks.json");
    let relative = format!(
        "../{}/jwks.json",
        outside.path().file_name().unwrap().to_str().unwrap()
    );
    // A parent directory, an absolute path, a link out of the directory, and another
    // process's view of this one's output.
    let dir = with_key_file(&relative);
    assert!(
        has(
            &refusal(dir.path()),
            "sso.yaml:6:16: error: ../",
            "outside the configuration directory"
        ),
        "{:?}",
        refusal(dir.path())
    );
    let dir = with_key_file(absolute.to_str().unwrap());
    assert!(
        has(
            &refusal(dir.path()),
            "sso.yaml:6:16: error: /",
            "absolute path"
        ),
        "{:?}",
        refusal(dir.path())
    );
    let dir = with_key_file("linked.json");
    std::os::unix::fs::symlink(&absolute, dir.path().join("linked.json")).unwrap();
    assert!(
        has(
            &refusal(dir.path()),
            "sso.yaml:6:16: error: linked.json: ",
            "outside the configuration directory"
        ),
        "{:?}",
        refusal(dir.path())
    );
    let dir = with_key_file("/proc/self/fd/1");
    assert!(
        has(
            &refusal(dir.path()),
            "sso.yaml:6:16: error: /proc/self/fd/1: ",
            "absolute path"
        ),
        "{:?}",
        refusal(dir.path())
    );
}

#[test]
fn a_key_file_linked_through_configmap_data_links_is_read() {
    // `jwks.json -> ..data/jwks.json`, `..data -> ..v1`: resolved, the file is inside.
    let dir = with_key_file("jwks.json");
    std::fs::create_dir(dir.path().join("..v1")).unwrap();
    std::fs::write(dir.path().join("..v1/jwks.json"), jwks(&["k"])).unwrap();
    std::os::unix::fs::symlink("..v1", dir.path().join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/jwks.json", dir.path().join("jwks.json")).unwrap();
    let loaded = load_bounded(dir.path()).expect("the linked key file is read");
    assert_eq!(kids(&loaded.snapshot), ["k"]);
}

#[test]
fn a_key_file_over_the_size_limit_is_refused() {
    let dir = with_key_file("jwks.json");
    let padding = " ".repeat(config::MAX_KEY_FILE_BYTES as usize);
    std::fs::write(
        dir.path().join("jwks.json"),
        format!("{}{padding}", jwks(&["k"])),
    )
    .unwrap();
    let lines = refusal(dir.path());
    assert!(
        has(
            &lines,
            "sso.yaml:6:16: error: jwks.json: ",
            "larger than 1 MiB"
        ),
        "{lines:?}"
    );
}

#[test]
fn a_yaml_entry_that_cannot_be_read_as_a_regular_file_refuses_the_load() {
    let dir = with_key_file("jwks.json");
    std::fs::write(dir.path().join("jwks.json"), jwks(&["k"])).unwrap();
    assert!(load_bounded(dir.path()).is_ok(), "the base is valid");

    // A link whose target was moved away: its routes would silently be gone.
    std::os::unix::fs::symlink("moved/routes.yaml", dir.path().join("routes.yaml")).unwrap();
    let lines = refusal(dir.path());
    assert!(
        has(
            &lines,
            "routes.yaml:1:1: error: ",
            "symbolic link whose target does not exist"
        ),
        "{lines:?}"
    );
    std::fs::remove_file(dir.path().join("routes.yaml")).unwrap();

    mkfifo(&dir.path().join("fifo.yaml"));
    let lines = refusal(dir.path());
    assert!(
        has(&lines, "fifo.yaml:1:1: error: ", "not a regular file"),
        "{lines:?}"
    );
    std::fs::remove_file(dir.path().join("fifo.yaml")).unwrap();

    std::fs::create_dir(dir.path().join("dir.yml")).unwrap();
    let lines = refusal(dir.path());
    assert!(
        has(&lines, "dir.yml:1:1: error: ", "not a regular file"),
        "{lines:?}"
    );
}

#[test]
fn a_yaml_file_over_the_size_limit_is_refused() {
    let dir = with_key_file("jwks.json");
    std::fs::write(dir.path().join("jwks.json"), jwks(&["k"])).unwrap();
    let comment = format!("#{}\n", "x".repeat(1023));
    let big = comment.repeat((config::MAX_CONFIG_FILE_BYTES / 1024) as usize + 1);
    std::fs::write(dir.path().join("big.yaml"), big).unwrap();
    let lines = refusal(dir.path());
    assert!(
        has(&lines, "big.yaml:1:1: error: ", "larger than 16 MiB"),
        "{lines:?}"
    );
}

#[test]
fn a_configmap_swap_during_a_load_never_mixes_two_versions() {
    // A ConfigMap mount: each file links through `..data` to a version directory. The swap
    // lands right after the first file is read, and again after the second (back and forth,
    // as two quick edits would).
    let dir = tempfile::tempdir().unwrap();
    for v in ["a", "b"] {
        let version = dir.path().join(format!("..{v}"));
        std::fs::create_dir(&version).unwrap();
        std::fs::write(version.join("jwks.json"), jwks(&[&format!("key-{v}")])).unwrap();
        std::fs::write(version.join("1-sso.yaml"), SSO).unwrap();
        std::fs::write(
            version.join("2-identities.yaml"),
            format!("external_identities:\n  - name: bot-{v}\n    sso_fqn: ci\n"),
        )
        .unwrap();
    }
    let swap = |dir: &Path, v: &str| {
        let tmp = dir.join("..data_tmp");
        std::os::unix::fs::symlink(format!("..{v}"), &tmp).unwrap();
        std::fs::rename(&tmp, dir.join("..data")).unwrap();
    };
    swap(dir.path(), "a");
    for name in ["jwks.json", "1-sso.yaml", "2-identities.yaml"] {
        std::os::unix::fs::symlink(format!("..data/{name}"), dir.path().join(name)).unwrap();
    }
    let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let files = {
        let (reads, root) = (reads.clone(), dir.path().to_path_buf());
        Files::with_reader(dir.path().to_path_buf(), move |path, limit, kind| {
            let bytes = config::read_regular(path, limit, kind);
            match reads.fetch_add(1, Ordering::SeqCst) {
                0 => swap(&root, "b"),
                1 => swap(&root, "a"),
                _ => swap(&root, "b"),
            }
            bytes
        })
    };
    let loaded = Loader::with_files(files).load().unwrap().snapshot;
    assert!(reads.load(Ordering::SeqCst) >= 3, "every file was read");
    let identity = loaded.identities[0].name.to_string();
    let version = identity.trim_start_matches("bot-");
    assert_eq!(
        kids(&loaded),
        [format!("key-{version}")],
        "identities of version {version} compiled with the keys of another version"
    );
}

#[test]
fn a_directory_read_as_documents_loads_to_the_same_configuration() {
    let dir = with_key_file("./jwks.json");
    std::fs::write(dir.path().join("jwks.json"), jwks(&["a", "b"])).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not configuration").unwrap();
    let (from_dir, documents) = Loader::new(dir.path().to_path_buf())
        .load_documents()
        .unwrap();
    let names: Vec<&str> = documents.keys().map(String::as_str).collect();
    assert_eq!(names, ["jwks.json", "sso.yaml"]);
    let from_memory = Loader::in_memory(documents).load().unwrap();
    assert_eq!(kids(&from_memory.snapshot), kids(&from_dir.snapshot));
    assert_eq!(from_memory.snapshot.counts(), from_dir.snapshot.counts());
}

#[test]
fn documents_in_memory_are_refused_with_the_messages_of_a_directory() {
    let dir = with_key_file("missing.json");
    std::fs::write(
        dir.path().join("ids.yaml"),
        "external_identities:\n  - name: bot\n    sso_fqn: nowhere\n",
    )
    .unwrap();
    let documents: Documents = ["sso.yaml", "ids.yaml"]
        .iter()
        .map(|n| (n.to_string(), std::fs::read(dir.path().join(n)).unwrap()))
        .collect();
    let from_memory = match Loader::in_memory(documents).load() {
        Ok(_) => panic!("the documents were accepted"),
        Err(e) => e
            .diagnostics()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
    };
    let from_dir = refusal(dir.path());
    let unread = |lines: &[String]| lines.iter().filter(|l| l.contains("missing.json")).count();
    assert_eq!(unread(&from_memory), 1, "{from_memory:?}");
    // The messages are the same, but for the operating system's wording of a missing file.
    let others = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .filter(|l| !l.contains("missing.json"))
            .cloned()
            .collect()
    };
    assert_eq!(others(&from_memory), others(&from_dir));
    assert!(!others(&from_dir).is_empty());
}

#[test]
fn a_document_outside_the_directory_is_refused() {
    let mut documents = Documents::new();
    documents.insert(
        "sso.yaml".into(),
        SSO.replace("jwks.json", "../jwks.json").into_bytes(),
    );
    documents.insert("jwks.json".into(), jwks(&["a"]).into_bytes());
    let Err(e) = Loader::in_memory(documents).load() else {
        panic!("a key file outside the directory was read");
    };
    let lines: Vec<String> = e.diagnostics().iter().map(ToString::to_string).collect();
    assert!(
        has(&lines, "sso.yaml:6:16: error: ../jwks.json: ", "outside"),
        "{lines:?}"
    );
}
