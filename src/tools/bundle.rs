//! `claimgate bundle`: a configuration directory, loaded exactly as `serve` loads it, written
//! as the proxy-wasm filter's configuration (one JSON document, key files inlined).
//!
//! A directory `serve` would refuse is refused here with `validate`'s messages, so a bundle
//! that was written is one the server would run. `--out` is replaced atomically (a temporary
//! file in the same directory, renamed over it), so an Envoy watching the file never reads
//! half of one.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::core::bundle::{Bundle, BundleError};
use crate::core::config::ConfigError;
use crate::core::load::Loader;
use crate::tools::validate::{self, Format};

/// What `claimgate bundle` does.
#[derive(Debug, Clone)]
pub struct BundleOptions {
    /// The configuration directory.
    pub dir: PathBuf,
    /// Trust the development key, as `serve --dev` does.
    pub dev: bool,
}

/// Why no bundle was written.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The configuration is invalid: `validate`'s report (or the load error), to print.
    #[error("{0}")]
    Invalid(String),
    /// A file could not be put in a bundle.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The output could not be written.
    #[error("cannot write {}: {source}", .path.display())]
    Write {
        /// The output file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// Load `options.dir` as `serve` would and return its bundle.
pub fn bundle(options: &BundleOptions) -> Result<Bundle, Refusal> {
    let loader = Loader::new(options.dir.clone()).refusing_dev_key(!options.dev);
    match loader.load_documents() {
        Ok((_, documents)) => Ok(Bundle::new(documents, options.dev)?),
        Err(e @ (ConfigError::DevKey { .. } | ConfigError::ReadDir { .. })) => {
            Err(Refusal::Invalid(e.to_string()))
        }
        // validate's messages, warnings included, exactly as it prints them.
        Err(_) => Err(Refusal::Invalid(
            validate::validate(&options.dir, &[]).render(Format::Text),
        )),
    }
}

/// Write `bundle` to `out`, replacing it atomically.
pub fn write(bundle: &Bundle, out: &Path) -> Result<(), Refusal> {
    let failed = |source| Refusal::Write {
        path: out.to_path_buf(),
        source,
    };
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(failed)?;
    tmp.write_all(bundle.to_json().as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(failed)?;
    tmp.persist(out).map_err(|e| failed(e.error))?;
    Ok(())
}
