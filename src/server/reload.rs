//! GitOps hot reload: watch the configuration directory, validate the whole set, swap the
//! snapshot atomically, and never drop a request.
//!
//! Every kind of change is only a *reason* to reload; the reload itself reads every file and
//! compares content hashes, so it does not matter which event a sync tool, an editor or a
//! ConfigMap `..data` symlink swap produced, nor how many. A watcher error or overflow also
//! just means "reload". A periodic re-hash catches whatever a watcher misses, and SIGHUP
//! reloads on demand.
//!
//! The directory may be reached through a symbolic link that a sync tool swaps to publish a
//! version (git-sync's `ROOT/LINK -> .worktrees/HASH`). A watch follows a link once, to the
//! directory it names then; so the directory holding each such link is watched too (the swap
//! is an event there), and the configuration directory is watched again wherever its path
//! leads after each trigger.
//!
//! A reload is bounded in time ([`ReloadOptions::timeout`]): one that overruns is abandoned
//! and counted as failed, the current snapshot keeps serving, and what it read is never
//! installed; the next trigger after it ends tries again. Shutdown never waits for a reload.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::core::config::ConfigError;
use crate::core::load::{self, Loader};
use crate::core::store::Store;
use crate::server::metrics::Metrics;
use crate::server::provider;

/// How reloads are triggered; the doc line of each field is its `serve` flag's help.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ReloadOptions {
    /// Quiet time after a config change before reloading (e.g. 200ms).
    #[arg(id = "reload_debounce", long = "reload-debounce", value_name = "RELOAD_DEBOUNCE",
          env = "CLAIMGATE_RELOAD_DEBOUNCE", default_value = "200ms", value_parser = humantime::parse_duration)]
    pub debounce: Duration,
    /// Re-hash the config files this often as a backstop for missed events.
    #[arg(id = "reload_poll", long = "reload-poll", value_name = "RELOAD_POLL",
          env = "CLAIMGATE_RELOAD_POLL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub poll: Duration,
    /// Abandon a reload still running after this long (it counts as failed).
    #[arg(id = "reload_timeout", long = "reload-timeout", value_name = "RELOAD_TIMEOUT",
          env = "CLAIMGATE_RELOAD_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

impl Default for ReloadOptions {
    fn default() -> Self {
        ReloadOptions {
            debounce: Duration::from_millis(200),
            poll: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
        }
    }
}

/// What one reload did.
#[derive(Debug)]
pub enum Outcome {
    /// A new snapshot is in use.
    Installed {
        /// Its generation.
        generation: u64,
    },
    /// The content is identical to what is in use: nothing was swapped.
    Unchanged,
    /// The new content is invalid; the current snapshot keeps serving.
    Refused(ConfigError),
    /// The reload was given up on before it finished; whatever it read is dropped.
    Abandoned,
}

/// One reload that may be given up on while it runs: a reload given up on never installs
/// what it read, and reports nothing, since whoever gave up on it counted it as failed.
#[derive(Debug, Default)]
pub struct Attempt(AtomicU8);

const RUNNING: u8 = 0;
const FINISHING: u8 = 1;
const ABANDONED: u8 = 2;

impl Attempt {
    /// Give up on the reload; `false` if it is already finishing (installing or reporting).
    pub fn abandon(&self) -> bool {
        self.0
            .compare_exchange(RUNNING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Whether the reload may install and report what it read, deciding that it will.
    fn finish(&self) -> bool {
        self.0
            .compare_exchange(RUNNING, FINISHING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// Reloads one directory into one store.
#[derive(Debug)]
pub struct Reloader {
    loader: Loader,
    store: Arc<Store>,
    metrics: Metrics,
    // Reloads triggered by the watcher, the poll and SIGHUP never run at the same time.
    serial: Mutex<()>,
}

impl Reloader {
    /// A reloader of `loader`'s directory into `store`.
    pub fn new(loader: Loader, store: Arc<Store>, metrics: Metrics) -> Self {
        Reloader {
            loader,
            store,
            metrics,
            serial: Mutex::new(()),
        }
    }

    /// Read, validate, compile and (if anything changed) swap in the configuration.
    pub fn reload(&self, trigger: &'static str) -> Outcome {
        self.attempt(trigger, &Attempt::default())
    }

    /// [`Reloader::reload`], unless `attempt` is given up on before the reload finishes.
    pub fn attempt(&self, trigger: &'static str, attempt: &Attempt) -> Outcome {
        let _serial = self.serial.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.store.load_full();
        let loaded = self.loader.reload(&current);
        if !attempt.finish() {
            return Outcome::Abandoned;
        }
        let outcome = match loaded {
            Ok(None) => Outcome::Unchanged,
            Ok(Some(loaded)) => {
                let generation =
                    load::install(&self.store, loaded.snapshot, &self.metrics, trigger);
                provider::start(&self.store.load(), &self.metrics);
                Outcome::Installed { generation }
            }
            Err(e) => Outcome::Refused(e),
        };
        match &outcome {
            Outcome::Installed { .. } | Outcome::Abandoned => {}
            Outcome::Unchanged => {
                self.metrics.config_unchanged();
                tracing::debug!(trigger, hash = %current.hash, "configuration unchanged");
            }
            Outcome::Refused(e) => {
                self.metrics.config_refused();
                let diagnostics = e.diagnostics();
                if diagnostics.is_empty() {
                    tracing::warn!(trigger, error = %e, "configuration refused; keeping generation {}", current.generation);
                }
                for d in diagnostics {
                    tracing::warn!(
                        trigger,
                        file = %d.file,
                        line = d.line,
                        col = d.col,
                        severity = ?d.severity,
                        "configuration refused: {}",
                        d.message
                    );
                }
            }
        }
        outcome
    }
}

fn is_read_only(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Access(
            AccessKind::Open(_) | AccessKind::Read | AccessKind::Close(AccessMode::Read)
        )
    )
}

/// Watch, debounce, poll and listen for SIGHUP until `shutdown` fires.
pub async fn run(
    reloader: Arc<Reloader>,
    opts: ReloadOptions,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<&'static str>();
    let watch_tx = tx.clone();
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let trigger = match res {
            Ok(ev) if is_read_only(&ev.kind) => return,
            Ok(ev) if ev.need_rescan() => "rescan",
            Ok(_) => "watch",
            Err(e) => {
                tracing::warn!(error = %e, "config watcher error; reloading to be safe");
                "watch-error"
            }
        };
        let _ = watch_tx.send(trigger);
    });
    // The watcher must live as long as this task; dropping it stops the events.
    let mut watches = match watcher {
        Ok(w) => Watches::start(w, reloader.loader.dir()),
        Err(e) => {
            tracing::warn!(error = %e, "cannot create a file watcher; relying on polling and SIGHUP");
            None
        }
    };
    spawn_sighup(tx.clone());
    let mut poll = tokio::time::interval(opts.poll);
    poll.tick().await;
    // A burst keeps postponing the reload, but never for longer than this.
    let max_delay = opts.debounce.max(Duration::from_secs(1));
    let mut abandoned: Option<tokio::task::JoinHandle<Outcome>> = None;
    loop {
        let trigger = tokio::select! {
            _ = stopped(&mut shutdown) => return,
            _ = poll.tick() => "poll",
            t = rx.recv() => match t {
                Some("sighup") => "sighup",
                Some(t) => {
                    let deadline = tokio::time::Instant::now() + max_delay;
                    loop {
                        let quiet = tokio::time::sleep(opts.debounce);
                        tokio::select! {
                            more = rx.recv() => if more.is_none() || tokio::time::Instant::now() >= deadline { break },
                            _ = quiet => break,
                        }
                    }
                    t
                }
                None => return,
            },
        };
        if let Some(w) = &mut watches {
            w.follow();
        }
        // An abandoned reload may still be reading (a hung file system, say): until it ends,
        // starting another would only pile up threads behind it.
        if let Some(previous) = &abandoned {
            if !previous.is_finished() {
                reloader.metrics.config_refused();
                tracing::error!(
                    trigger,
                    "configuration not reloaded: an abandoned reload is still running; keeping generation {}",
                    reloader.store.generation()
                );
                continue;
            }
            abandoned = None;
        }
        let attempt = Arc::new(Attempt::default());
        let (r, a) = (reloader.clone(), attempt.clone());
        let mut task = tokio::task::spawn_blocking(move || r.attempt(trigger, &a));
        tokio::select! {
            // Shutdown never waits for a reload.
            _ = stopped(&mut shutdown) => {
                attempt.abandon();
                return;
            }
            done = tokio::time::timeout(opts.timeout, &mut task) => {
                if done.is_ok() {
                    continue;
                }
                if attempt.abandon() {
                    reloader.metrics.config_refused();
                    tracing::error!(
                        trigger,
                        timeout = ?opts.timeout,
                        "configuration reload took too long and was abandoned; keeping generation {}",
                        reloader.store.generation()
                    );
                    abandoned = Some(task);
                } else {
                    // It was already installing or reporting, which reads no file.
                    let _ = task.await;
                }
            }
        }
    }
}

/// The watches of one configuration directory: the directory, wherever its path leads now,
/// and (not recursively) each directory on its path that holds a symbolic link.
struct Watches {
    watcher: notify::RecommendedWatcher,
    dir: std::path::PathBuf,
    // Where the directory's path led when it was last watched.
    target: Option<std::path::PathBuf>,
}

impl Watches {
    /// Watch `dir`; `None` (polling and SIGHUP remain) if it cannot be watched.
    fn start(mut watcher: notify::RecommendedWatcher, dir: &std::path::Path) -> Option<Watches> {
        if let Err(e) = watcher.watch(dir, RecursiveMode::Recursive) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the config directory; relying on polling and SIGHUP");
            return None;
        }
        let mut prefix = std::path::PathBuf::new();
        let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        for part in absolute.components() {
            prefix.push(part);
            let link = std::fs::symlink_metadata(&prefix).is_ok_and(|m| m.file_type().is_symlink());
            if let (true, Some(parent)) = (link, prefix.parent()) {
                if let Err(e) = watcher.watch(parent, RecursiveMode::NonRecursive) {
                    tracing::warn!(dir = %parent.display(), error = %e, "cannot watch the directory of a link to the config directory; a swap of the link is seen by the next poll");
                }
            }
        }
        Some(Watches {
            watcher,
            dir: dir.to_path_buf(),
            target: dir.canonicalize().ok(),
        })
    }

    /// Watch the directory again if its path now leads somewhere else (a link was swapped).
    fn follow(&mut self) {
        let target = self.dir.canonicalize().ok();
        if target == self.target {
            return;
        }
        // The old watch may be gone with the directory it watched.
        let _ = self.watcher.unwatch(&self.dir);
        match self.watcher.watch(&self.dir, RecursiveMode::Recursive) {
            Ok(()) => {
                tracing::debug!(dir = %self.dir.display(), "config directory moved; watching where it leads now")
            }
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot watch the config directory again; relying on polling and SIGHUP")
            }
        }
        self.target = target;
    }
}

async fn stopped(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

#[cfg(unix)]
fn spawn_sighup(tx: mpsc::UnboundedSender<&'static str>) {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::hangup()) {
        Ok(mut hup) => {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading configuration");
                    if tx.send("sighup").is_err() {
                        return;
                    }
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot listen for SIGHUP"),
    }
}

#[cfg(not(unix))]
fn spawn_sighup(_tx: mpsc::UnboundedSender<&'static str>) {}

#[cfg(test)]
mod tests;
