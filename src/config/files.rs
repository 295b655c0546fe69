//! Reading the files of a configuration directory: every `*.yaml`/`*.yml` file directly in it
//! (names starting with `.` are skipped, so a ConfigMap mount with `..data` links works), and
//! the key files the configuration names.
//!
//! A load reads each file once: what is compiled and what is hashed to tell configurations
//! apart are the same bytes, so an edit that lands during a load is either in the snapshot or
//! a change the next load sees, never the new hash over the old keys. Every read goes through
//! one function, so a test can act right after a read, where a concurrent edit could land.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{hex16, Config, ConfigError, Diagnostic, Severity};

type ReadFn = dyn Fn(&Path) -> std::io::Result<Vec<u8>> + Send + Sync;

/// How the files of one configuration directory are read.
#[derive(Clone)]
pub struct Files {
    dir: PathBuf,
    read: Arc<ReadFn>,
}

impl fmt::Debug for Files {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Files").field("dir", &self.dir).finish()
    }
}

/// The configuration files of a directory as read, in name order.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// (file name, text) of every readable file.
    pub texts: Vec<(String, String)>,
    /// Errors for files that could not be read.
    pub unreadable: Vec<Diagnostic>,
}

impl Files {
    /// The files of `dir`, read from the file system.
    pub fn new(dir: PathBuf) -> Files {
        Files {
            dir,
            read: Arc::new(|path: &Path| std::fs::read(path)),
        }
    }

    /// The files of `dir`, each read by `read` (which may act before or after reading).
    #[cfg(test)]
    pub(crate) fn with_reader(
        dir: PathBuf,
        read: impl Fn(&Path) -> std::io::Result<Vec<u8>> + Send + Sync + 'static,
    ) -> Files {
        Files {
            dir,
            read: Arc::new(read),
        }
    }

    /// The configuration directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Read every configuration file: `*.yaml`/`*.yml`, not starting with `.`.
    pub fn read_sources(&self) -> Result<Sources, ConfigError> {
        let dir = &self.dir;
        let read_err = |source| ConfigError::ReadDir {
            dir: dir.to_path_buf(),
            source,
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_err)? {
            let entry = entry.map_err(read_err)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !(name.ends_with(".yaml") || name.ends_with(".yml")) {
                continue;
            }
            // Follow symlinks: a ConfigMap mount links each file into `..data/`.
            match std::fs::metadata(entry.path()) {
                Ok(meta) if meta.is_file() => names.push(name),
                _ => continue,
            }
        }
        names.sort();
        let mut sources = Sources::default();
        for name in names {
            let text = (self.read)(&dir.join(&name)).and_then(|bytes| {
                String::from_utf8(bytes).map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "stream did not contain valid UTF-8",
                    )
                })
            });
            match text {
                Ok(text) => sources.texts.push((name, text)),
                Err(e) => sources.unreadable.push(Diagnostic {
                    file: name,
                    line: 1,
                    col: 1,
                    severity: Severity::Error,
                    message: format!("cannot read file: {e}"),
                }),
            }
        }
        Ok(sources)
    }

    /// Read the key file at `path` into `keys`, unless this load has read it already.
    pub fn read_key_file(&self, path: &Path, keys: &mut KeyFiles) {
        if !keys.read.contains_key(path) {
            keys.read.insert(path.to_path_buf(), (self.read)(path));
        }
    }

    /// Read every key file `config` names into `keys`, each once.
    pub fn read_key_files(&self, config: &Config, keys: &mut KeyFiles) {
        for sso in &config.ssos {
            if let Some(rel) = &sso.spec.jwks_file {
                self.read_key_file(&config.resolve(rel), keys);
            }
        }
    }
}

/// The key files one load has read, by path, each read once.
#[derive(Debug, Default)]
pub struct KeyFiles {
    read: HashMap<PathBuf, std::io::Result<Vec<u8>>>,
}

impl KeyFiles {
    /// The bytes read from `path`, or why they could not be read.
    pub fn get(&self, path: &Path) -> Result<&[u8], String> {
        match self.read.get(path) {
            Some(Ok(bytes)) => Ok(bytes),
            Some(Err(e)) => Err(format!("cannot read: {e}")),
            None => Err("cannot read: the file was not read with the configuration".into()),
        }
    }

    /// The digest of the YAML texts combined with the bytes read from `paths`, so that
    /// editing only a key file is a change too.
    pub fn digest(&self, text_digest: &str, paths: &[PathBuf]) -> String {
        if paths.is_empty() {
            return text_digest.to_owned();
        }
        let mut hasher = Sha256::new();
        hasher.update(text_digest.as_bytes());
        for path in paths {
            hasher.update(path.as_os_str().as_encoded_bytes());
            match self.read.get(path) {
                Some(Ok(bytes)) => {
                    hasher.update((bytes.len() as u64).to_le_bytes());
                    hasher.update(bytes);
                }
                _ => hasher.update(u64::MAX.to_le_bytes()),
            }
        }
        hex16(&hasher.finalize())
    }
}
