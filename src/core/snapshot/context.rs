//! What every section's compiler shares: the configuration being compiled, the key files
//! read for it, the diagnostics found so far, and the names of the sections they point into.
//!
//! It sits below `compile.rs`, `key_source.rs` and `enforcement.rs`, which all use it, so
//! none of them needs another.

use crate::core::config::{Config, ConfigError, Diagnostic, KeyFiles, Origin, Severity};

// The sections the diagnostics point into, by the short names every compiler uses.
pub(super) use crate::core::config::section::{
    EXTERNAL_IDENTITIES as IDS, RESOURCES as RES, ROUTES, SSO_INTEGRATIONS as SSO, TEAMS,
};

/// The configuration being compiled and every diagnostic found so far.
pub(super) struct Ctx<'c> {
    config: &'c Config,
    key_files: &'c KeyFiles,
    diags: Vec<Diagnostic>,
}

impl<'c> Ctx<'c> {
    /// A compilation of `config` with the key files read for it, no diagnostic yet.
    pub(super) fn new(config: &'c Config, key_files: &'c KeyFiles) -> Self {
        Ctx {
            config,
            key_files,
            diags: Vec::new(),
        }
    }

    pub(super) fn config(&self) -> &'c Config {
        self.config
    }

    pub(super) fn key_files(&self) -> &'c KeyFiles {
        self.key_files
    }

    pub(super) fn error(
        &mut self,
        origin: Origin,
        section: &str,
        field: Option<&str>,
        msg: impl Into<String>,
    ) {
        let d = self.config.at(origin, section, field, Severity::Error, msg);
        self.diags.push(d);
    }

    pub(super) fn warn(
        &mut self,
        origin: Origin,
        section: &str,
        field: Option<&str>,
        msg: impl Into<String>,
    ) {
        let d = self
            .config
            .at(origin, section, field, Severity::Warning, msg);
        self.diags.push(d);
    }

    /// The warnings, or every diagnostic when any of them is an error.
    pub(super) fn finish(self) -> Result<Vec<Diagnostic>, ConfigError> {
        if self.diags.iter().any(|d| d.severity == Severity::Error) {
            return Err(ConfigError::Invalid {
                diagnostics: self.diags,
            });
        }
        Ok(self.diags)
    }
}
