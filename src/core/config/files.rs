//! Reading the files of a configuration directory: every `*.yaml`/`*.yml` entry directly in it
//! (names starting with `.` are skipped, so a ConfigMap mount with `..data` links works), and
//! the key files the configuration names.
//!
//! A configuration directory cannot freeze or mislead a reload: every file is opened without
//! blocking and read only if it is a regular file, up to a size limit
//! ([`MAX_CONFIG_FILE_BYTES`], [`MAX_KEY_FILE_BYTES`]); a `*.yaml` entry that cannot be read so
//! (a dangling link, a FIFO, a directory) refuses the load rather than being skipped, and every
//! file, configuration or key, must resolve, links followed, to a file inside the directory: a
//! link to `/etc/passwd` would otherwise be read, and its text quoted back by a YAML error.
//!
//! A load reads each file once: what is compiled and what is hashed to tell configurations
//! apart are the same bytes, so an edit that lands during a load is either in the snapshot or
//! a change the next load sees, never the new hash over the old keys. Every read goes through
//! one function, so a test can act right after a read, where a concurrent edit could land.
//!
//! A configuration can also be a set of documents in memory ([`Files::in_memory`]: file names
//! relative to the directory, each with its bytes), as the proxy-wasm filter receives it in a
//! bundle. It goes through the same reads, in the same order, with the same checks and
//! messages; only where the bytes come from differs.
//!
//! A ConfigMap mount publishes a version by swapping its `..data` link; each file is a link
//! through it. A load reads every file from the version `..data` named when the load began, so
//! it never compiles half of one version with half of another.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Read as _;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::{hex, Config, ConfigError, Diagnostic, Severity};

/// The most one configuration file may hold.
pub const MAX_CONFIG_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// The most one key file may hold (as much as a remote key set).
pub const MAX_KEY_FILE_BYTES: u64 = 1024 * 1024;

/// The link a Kubernetes ConfigMap (or Secret) mount swaps to publish a new version.
const DATA_LINK: &str = "..data";

/// Why a file of the configuration was not read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file system said no.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// A symbolic link whose target is missing.
    #[error("cannot read: a symbolic link whose target does not exist")]
    Dangling,
    /// A directory, FIFO, socket or device: reading it could block or never end.
    #[error("cannot read: not a regular file (a directory, FIFO, socket or device)")]
    NotRegular,
    /// Larger than the limit for its kind.
    #[error("cannot read: larger than {} MiB, the most a {kind} may hold", .limit >> 20)]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
        /// What kind of file it is.
        kind: &'static str,
    },
    /// Not UTF-8 text (configuration files only).
    #[error("cannot read: not UTF-8 text")]
    NotText,
    /// A key file named by an absolute path.
    #[error("is an absolute path; name a key file relative to the configuration directory")]
    Absolute,
    /// A file that resolves, links followed, outside the configuration directory.
    #[error(
        "resolves to {}, outside the configuration directory; {kind}s must be inside it",
        .real.display()
    )]
    Outside {
        /// Where the links lead.
        real: PathBuf,
        /// What kind of file it is.
        kind: &'static str,
    },
}

/// Reads one regular file of at most `limit` bytes (`kind` names it in errors).
type ReadFn = dyn Fn(&Path, u64, &'static str) -> Result<Vec<u8>, FileError> + Send + Sync;

/// How the files of one configuration directory are read.
#[derive(Clone)]
pub struct Files {
    dir: PathBuf,
    read: Arc<ReadFn>,
    // The version directory `..data` pointed at when the current load began. Every file of
    // the load is read from it: a ConfigMap swap during the load cannot mix two versions,
    // even one that swaps back and forth.
    pinned: Arc<Mutex<Option<PathBuf>>>,
    // Documents held in memory instead of a directory on disk, by path relative to `dir`.
    memory: Option<Arc<Documents>>,
}

/// Documents of a configuration held in memory: path relative to the directory → bytes.
pub type Documents = BTreeMap<String, Vec<u8>>;

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
            read: Arc::new(read_regular),
            pinned: Arc::default(),
            memory: None,
        }
    }

    /// The documents of a configuration held in memory (a bundle), read as the files of a
    /// directory with no name: the same names are picked, with the same limits and messages.
    pub fn in_memory(documents: Documents) -> Files {
        let documents = Arc::new(documents);
        let held = Arc::clone(&documents);
        Files {
            dir: PathBuf::new(),
            read: Arc::new(move |path, limit, kind| read_document(&held, path, limit, kind)),
            pinned: Arc::default(),
            memory: Some(documents),
        }
    }

    /// The files of `dir`, each read by `read` (which may act before or after reading).
    #[cfg(test)]
    pub(crate) fn with_reader(
        dir: PathBuf,
        read: impl Fn(&Path, u64, &'static str) -> Result<Vec<u8>, FileError> + Send + Sync + 'static,
    ) -> Files {
        Files {
            dir,
            read: Arc::new(read),
            pinned: Arc::default(),
            memory: None,
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
        if let Some(documents) = &self.memory {
            // Only the documents directly in the directory, as `read_dir` lists them.
            names.extend(documents.keys().filter(|n| !n.contains('/')).cloned());
        } else {
            self.pin_version();
            for entry in std::fs::read_dir(dir).map_err(read_err)? {
                let entry = entry.map_err(read_err)?;
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.retain(|name| {
            !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml"))
        });
        names.sort();
        let mut sources = Sources::default();
        for name in names {
            // Links are followed, within the directory: a ConfigMap mount links each file into
            // `..data/`, and git-sync swaps a link to the checkout.
            const KIND: &str = "configuration file";
            let text = self
                .inside(&self.through_pin(&dir.join(&name)), KIND)
                .and_then(|real| (self.read)(&real, MAX_CONFIG_FILE_BYTES, KIND))
                .and_then(|bytes| String::from_utf8(bytes).map_err(|_| FileError::NotText));
            match text {
                Ok(text) => sources.texts.push((name, text)),
                Err(e) => sources.unreadable.push(Diagnostic::new(
                    name,
                    (1, 1),
                    Severity::Error,
                    e.to_string(),
                )),
            }
        }
        Ok(sources)
    }

    /// Read the key file at `path` into `keys`, unless this load has read it already.
    pub fn read_key_file(&self, path: &Path, keys: &mut KeyFiles) {
        if !keys.read.contains_key(path) {
            let read = self
                .inside(&self.through_pin(path), "key file")
                .and_then(|real| (self.read)(&real, MAX_KEY_FILE_BYTES, "key file"));
            keys.read.insert(path.to_path_buf(), read);
        }
    }

    /// Read every key file and CA file `config` names into `keys`, each once.
    pub fn read_key_files(&self, config: &Config, keys: &mut KeyFiles) {
        for sso in &config.ssos {
            let named = [sso.spec.jwks_file.as_deref(), sso.spec.ca_file.as_deref()];
            for rel in named.into_iter().flatten() {
                if let Ok(path) = config.key_file(rel) {
                    self.read_key_file(&path, keys);
                }
            }
        }
    }

    /// Remember the version directory a ConfigMap's `..data` link points at now, if any.
    fn pin_version(&self) {
        let target = std::fs::read_link(self.dir.join(DATA_LINK))
            .ok()
            .filter(|t| t.components().all(|c| matches!(c, Component::Normal(_))));
        *self.pinned.lock().unwrap_or_else(|p| p.into_inner()) = target.map(|t| self.dir.join(t));
    }

    /// `path`, read from the pinned version directory when it is a link into `..data/`.
    fn through_pin(&self, path: &Path) -> PathBuf {
        let pinned = self.pinned.lock().unwrap_or_else(|p| p.into_inner());
        let Some(version) = pinned.as_ref() else {
            return path.to_path_buf();
        };
        match std::fs::read_link(path) {
            Ok(target) => match target.strip_prefix(DATA_LINK) {
                Ok(rest) => version.join(rest),
                Err(_) => path.to_path_buf(),
            },
            Err(_) => path.to_path_buf(),
        }
    }

    /// `path` with every link resolved, if that is inside the directory.
    fn inside(&self, path: &Path, kind: &'static str) -> Result<PathBuf, FileError> {
        if self.memory.is_some() {
            // Documents have no links: only `.` and `..` are resolved, by their names.
            return match relative_name(path) {
                Some(_) => Ok(path.to_path_buf()),
                None => Err(FileError::Outside {
                    real: path.to_path_buf(),
                    kind,
                }),
            };
        }
        let real = path.canonicalize().map_err(|e| not_found(path, e))?;
        let dir = self.dir.canonicalize()?;
        if real.starts_with(&dir) {
            Ok(real)
        } else {
            Err(FileError::Outside { real, kind })
        }
    }
}

/// The name a document of an in-memory configuration is held under, for `path` (relative to
/// the directory with no name): `.` dropped and `..` resolved; `None` when it leaves the
/// directory.
pub fn relative_name(path: &Path) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Normal(part) => parts.push(part.to_str()?),
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

/// Read the document at `path` of `documents`, with the limits of a file on disk.
fn read_document(
    documents: &Documents,
    path: &Path,
    limit: u64,
    kind: &'static str,
) -> Result<Vec<u8>, FileError> {
    let bytes = relative_name(path)
        .and_then(|name| documents.get(&name))
        .ok_or_else(|| FileError::Io(std::io::ErrorKind::NotFound.into()))?;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge { limit, kind });
    }
    Ok(bytes.clone())
}

/// A missing file, told apart from a link to a missing file.
fn not_found(path: &Path, e: std::io::Error) -> FileError {
    let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if e.kind() == std::io::ErrorKind::NotFound && link {
        FileError::Dangling
    } else {
        FileError::Io(e)
    }
}

/// Read `path` if it is a regular file of at most `limit` bytes, links followed.
pub(crate) fn read_regular(
    path: &Path,
    limit: u64,
    kind: &'static str,
) -> Result<Vec<u8>, FileError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Opening a FIFO for reading would wait for a writer: don't. It is refused below.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path).map_err(|e| not_found(path, e))?;
    // The type is checked on what was opened, so a swap after a check cannot slip through.
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(FileError::NotRegular);
    }
    if meta.len() > limit {
        return Err(FileError::TooLarge { limit, kind });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // Bounded even if the file grows while it is read.
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge { limit, kind });
    }
    Ok(bytes)
}

/// The key files one load has read, by path, each read once.
#[derive(Debug, Default)]
pub struct KeyFiles {
    read: HashMap<PathBuf, Result<Vec<u8>, FileError>>,
}

impl KeyFiles {
    /// The bytes read from `path`, or why they were not.
    pub fn get(&self, path: &Path) -> Result<&[u8], String> {
        match self.read.get(path) {
            Some(Ok(bytes)) => Ok(bytes),
            Some(Err(e)) => Err(e.to_string()),
            None => Err("cannot read: the file was not read with the configuration".into()),
        }
    }

    /// Every key file read, as documents of an in-memory configuration of `dir`.
    pub fn add_documents(&self, dir: &Path, documents: &mut Documents) {
        for (path, read) in &self.read {
            let name = path.strip_prefix(dir).ok().and_then(relative_name);
            if let (Some(name), Ok(bytes)) = (name, read) {
                documents.insert(name, bytes.clone());
            }
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
        hex(&hasher.finalize())
    }
}
