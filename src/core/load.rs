//! The life of a snapshot: a configuration directory read and compiled into one, then
//! installed into the store and announced.
//!
//! Every command loads through [`Loader`]: `serve` at start and on every reload, `validate`,
//! `explain`, `who-can`, and the benches, so what a tool checks is what the server would run.
//! Installing is [`install_first`] at start and [`install`] on a reload; both announce the
//! snapshot the same way (warnings logged, counters set, key file loads counted). The host
//! starts filling remote key sets itself, with the feeds it gave the [`Loader`].
//!
//! A load reads every file once (see [`crate::core::config::Files`]): the key files compiled into a
//! snapshot are the bytes its hash covers, so a key rotation that lands during a reload is
//! seen by the next one.
//!
//! This sits above [`crate::core::store`] (which only swaps) and below the tools and the server,
//! which all use it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::core::config::{self, Config, ConfigError, Documents, Files, KeyFiles, Sources};
use crate::core::counters::Counters;
use crate::core::keys::remote::KeyFeeds;
use crate::core::snapshot::{self, Snapshot};
use crate::core::store::Store;

/// A configuration as parsed (for diagnostics that point into its files) and as compiled.
#[derive(Debug)]
pub struct Loaded {
    /// The files as parsed.
    pub config: Config,
    /// The compiled snapshot, not yet installed.
    pub snapshot: Snapshot,
}

/// Load, validate and compile `dir` exactly as `serve` does.
pub fn load(dir: &Path) -> Result<Loaded, ConfigError> {
    Loader::new(dir.to_path_buf()).load()
}

/// Reads and compiles one configuration directory.
#[derive(Debug, Clone)]
pub struct Loader {
    files: Files,
    // What fills the remote key sets the loader creates; none: they stay empty (the tools
    // fetch once themselves where they need keys).
    feeds: Option<Arc<dyn KeyFeeds>>,
    // serve without --dev: a configuration trusting the committed development key is refused.
    // The tools load it (validate warns), so that they can describe the demo.
    refuse_dev_key: bool,
}

impl Loader {
    /// A loader for `dir` whose remote key sets have no feed.
    pub fn new(dir: PathBuf) -> Self {
        Loader {
            files: Files::new(dir),
            feeds: None,
            refuse_dev_key: false,
        }
    }

    /// A loader for a configuration held in memory (a bundle's documents): read through the
    /// same steps as a directory, so it is checked, and its errors told, the same way.
    pub fn in_memory(documents: Documents) -> Self {
        Loader {
            files: Files::in_memory(documents),
            feeds: None,
            refuse_dev_key: false,
        }
    }

    /// This loader, giving every remote key set it creates a feed from `feeds`: how a host
    /// fills them.
    pub fn with_key_feeds(mut self, feeds: impl KeyFeeds + 'static) -> Self {
        self.feeds = Some(Arc::new(feeds));
        self
    }

    /// This loader, refusing (when `refuse`) a configuration whose key files hold the
    /// development key committed in claimgate's repository: how `serve` loads without `--dev`.
    pub fn refusing_dev_key(mut self, refuse: bool) -> Self {
        self.refuse_dev_key = refuse;
        self
    }

    /// A loader that reads through `files`.
    #[cfg(test)]
    pub(crate) fn with_files(files: Files) -> Self {
        Loader {
            files,
            feeds: None,
            refuse_dev_key: false,
        }
    }

    /// The configuration directory.
    pub fn dir(&self) -> &Path {
        self.files.dir()
    }

    /// Read and compile the directory.
    pub fn load(&self) -> Result<Loaded, ConfigError> {
        let sources = self.files.read_sources()?;
        self.compile(sources, &mut KeyFiles::default(), None)
    }

    /// [`Loader::load`], also returning every file it read (configuration and key files) as
    /// documents: what [`Loader::in_memory`] loads the same configuration from.
    pub fn load_documents(&self) -> Result<(Loaded, Documents), ConfigError> {
        let sources = self.files.read_sources()?;
        let mut documents: Documents = sources
            .texts
            .iter()
            .map(|(name, text)| (name.clone(), text.clone().into_bytes()))
            .collect();
        let mut key_files = KeyFiles::default();
        let loaded = self.compile(sources, &mut key_files, None)?;
        key_files.add_documents(self.dir(), &mut documents);
        Ok((loaded, documents))
    }

    /// Read the directory again; `None` when its content is what `current` was compiled from.
    /// Remote key sets of `current` whose source is unchanged are kept.
    pub fn reload(&self, current: &Snapshot) -> Result<Option<Loaded>, ConfigError> {
        let sources = self.files.read_sources()?;
        // Cheap check first: same YAML and same key files means nothing to do. The key files
        // read for it are the ones compiled below, not read again.
        let mut key_files = KeyFiles::default();
        for path in &current.referenced_files {
            self.files.read_key_file(path, &mut key_files);
        }
        let digest = config::text_digest(&sources.texts);
        if sources.unreadable.is_empty()
            && key_files.digest(&digest, &current.referenced_files) == *current.hash
        {
            return Ok(None);
        }
        let loaded = self.compile(sources, &mut key_files, Some(current))?;
        if loaded.snapshot.hash == current.hash {
            return Ok(None);
        }
        Ok(Some(loaded))
    }

    fn compile(
        &self,
        sources: Sources,
        key_files: &mut KeyFiles,
        previous: Option<&Snapshot>,
    ) -> Result<Loaded, ConfigError> {
        let config = config::parse_sources(self.dir(), sources)?;
        self.files.read_key_files(&config, key_files);
        let snapshot = snapshot::compile_with(&config, key_files, previous, self.feeds.as_deref())?;
        let uses: Vec<_> = snapshot.dev_key_files().cloned().collect();
        if self.refuse_dev_key && !uses.is_empty() {
            return Err(ConfigError::DevKey { uses });
        }
        Ok(Loaded { config, snapshot })
    }
}

/// A store serving `snapshot`, announced: how a server puts its first snapshot in service.
pub fn install_first(snapshot: Snapshot, counters: &dyn Counters) -> Arc<Store> {
    let store = Arc::new(Store::new(snapshot));
    announce(&store.load_full(), None, counters);
    store
}

/// Swap `snapshot` in and announce it; returns its generation. `trigger` names what asked
/// for the reload, for the log.
pub fn install(store: &Store, snapshot: Snapshot, counters: &dyn Counters, trigger: &str) -> u64 {
    let previous = store.load_full();
    let generation = store.install(snapshot);
    announce(&store.load_full(), Some((trigger, &previous)), counters);
    generation
}

/// Say that `snap` is in service: its warnings, its counters, its key file loads. `reload` is
/// the trigger and the snapshot it replaced.
fn announce(snap: &Snapshot, reload: Option<(&str, &Snapshot)>, counters: &dyn Counters) {
    for w in &snap.warnings {
        tracing::warn!(file = %w.file, line = w.line, col = w.col, "{}", w.message);
    }
    // Installed only by serve --dev; said again on every install so it is never forgotten.
    for u in snap.dev_key_files() {
        tracing::warn!(
            sso = %u.sso,
            file = %u.file,
            "DEVELOPMENT KEY TRUSTED (--dev): SSO {} accepts tokens signed by the private key committed in claimgate's repository ({} in {}); never run this in production",
            u.sso, u.key, u.file
        );
    }
    if snap.is_empty() {
        tracing::warn!("not ready: {}", snapshot::NO_CONFIGURATION);
    }
    counters.config_installed(snap.generation);
    let names: Vec<&str> = snap.ssos.iter().map(|s| &*s.name).collect();
    counters.retain_ssos(&names);
    // Key files were just read; remote key sets' feeds report their own loads.
    for sso in snap.ssos.iter().filter(|s| s.remote.is_none()) {
        counters.keys_loaded(&sso.name, true, sso.keys.load().len());
    }
    let (identities, bindings, routes) = snap.counts();
    match reload {
        None => tracing::info!(
            generation = snap.generation,
            hash = %snap.hash,
            identities,
            bindings,
            routes,
            "configuration loaded"
        ),
        Some((trigger, previous)) => tracing::info!(
            trigger,
            generation = snap.generation,
            hash = %snap.hash,
            previous_hash = %previous.hash,
            identities,
            bindings,
            routes,
            "configuration reloaded"
        ),
    }
}

#[cfg(test)]
mod tests;
