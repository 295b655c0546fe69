//! Reloads that overrun: abandoned, counted as failed, never installed, and never waited for
//! by shutdown. The key file read is held by a gate, as a hung file system would hold it.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Condvar;

use super::*;
use crate::core::config::{self, Files};

const SSO: &str = "sso_integrations:\n  - name: ci\n    type: oidc\n    issuer: https://idp\n    audiences: [cg]\n    jwks_file: jwks.json\n";

fn identity(name: &str) -> String {
    format!("external_identities:\n  - name: {name}\n    sso_fqn: ci\n")
}

/// Holds every read of the key file while closed; opens when dropped, so that a failing test
/// never leaves a reader blocked (the test's runtime waits for it when it shuts down).
#[derive(Default)]
struct Gate {
    closed: AtomicBool,
    entered: AtomicBool,
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn close(&self) {
        *self.open.lock().unwrap() = false;
        self.closed.store(true, Ordering::SeqCst);
    }

    fn open(&self) {
        self.closed.store(false, Ordering::SeqCst);
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }

    fn pass(&self) {
        if !self.closed.load(Ordering::SeqCst) {
            return;
        }
        self.entered.store(true, Ordering::SeqCst);
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }
}

struct OpenOnDrop(Arc<Gate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// A reloader of a valid directory whose key file reads pass through `gate`.
fn reloader(dir: &Path, gate: &Arc<Gate>) -> Arc<Reloader> {
    std::fs::write(dir.join("jwks.json"), r#"{"keys":[]}"#).unwrap();
    std::fs::write(dir.join("sso.yaml"), SSO).unwrap();
    let key_file: PathBuf = dir.join("jwks.json").canonicalize().unwrap();
    let gate = gate.clone();
    let files = Files::with_reader(dir.to_path_buf(), move |path, limit, kind| {
        if path == key_file {
            gate.pass();
        }
        config::read_regular(path, limit, kind)
    });
    let loader = Loader::with_files(files);
    let metrics = Metrics::new();
    let store = load::install_first(loader.load().unwrap().snapshot, &metrics);
    Arc::new(Reloader::new(loader, store, metrics))
}

fn failures(r: &Reloader) -> f64 {
    let text = r.metrics.render();
    text.lines()
        .find_map(|l| l.strip_prefix(r#"claimgate_config_reloads_total{result="failure"} "#))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn eventually(mut ok: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ok()
}

fn fast(timeout: Duration) -> ReloadOptions {
    ReloadOptions {
        debounce: Duration::from_millis(10),
        poll: Duration::from_millis(100),
        timeout,
    }
}

#[test]
fn an_abandoned_reload_installs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let r = reloader(dir.path(), &Arc::default());
    std::fs::write(dir.path().join("ids.yaml"), identity("late")).unwrap();
    let attempt = Attempt::default();
    assert!(attempt.abandon());
    assert!(matches!(r.attempt("test", &attempt), Outcome::Abandoned));
    assert_eq!(r.store.generation(), 1);
    assert!(r.store.load().identity("late").is_none());
    // Not given up on, the same reload installs.
    assert!(matches!(
        r.reload("test"),
        Outcome::Installed { generation: 2 }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_overruns_is_counted_as_failed_and_the_next_one_after_it_ends_applies() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::default());
    let _open = OpenOnDrop(gate.clone());
    let r = reloader(dir.path(), &gate);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(run(r.clone(), fast(Duration::from_millis(300)), stopped));

    // Version A is read, then the key file read hangs.
    gate.close();
    std::fs::write(dir.path().join("ids.yaml"), identity("a")).unwrap();
    assert!(
        eventually(|| failures(&r) >= 1.0).await,
        "the overrun is counted"
    );
    assert_eq!(r.store.generation(), 1, "the old snapshot stays");

    // Version B lands while A's reload is still stuck; then the file system recovers.
    std::fs::write(dir.path().join("ids.yaml"), identity("b")).unwrap();
    gate.open();
    assert!(
        eventually(|| r.store.load().identity("b").is_some()).await,
        "a later reload applies B"
    );
    assert_eq!(
        r.store.generation(),
        2,
        "the abandoned reload of A never installed"
    );
    assert!(r.store.load().identity("a").is_none());
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_wait_for_a_stuck_reload() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::default());
    let _open = OpenOnDrop(gate.clone());
    let r = reloader(dir.path(), &gate);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(run(r.clone(), fast(Duration::from_secs(3600)), stopped));
    gate.close();
    std::fs::write(dir.path().join("ids.yaml"), identity("a")).unwrap();
    assert!(
        eventually(|| gate.entered.load(Ordering::SeqCst)).await,
        "a reload is stuck"
    );
    stop.send(true).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), task).await;
    assert!(
        ended.is_ok(),
        "the reload loop ends while the reload is stuck"
    );
    assert_eq!(r.store.generation(), 1);
}
