//! What `claimgate validate` adds to validity: findings about a configuration that loads but
//! probably does not do what its authors meant. Each is a warning (`--strict` fails on them).
//!
//! - **Possible ties**: two identities of one SSO with equally many claims that one token
//!   could satisfy both; such a token is denied `ambiguous_identity`. Two identities that
//!   name the same claim with different values are taken as exclusive, although an array
//!   claim could hold both values: configurations write such pairs to mean "one or the
//!   other". Other conditions are exclusive only when no value meets both (two `like`
//!   patterns no string matches both, a value a `not` excludes, `present: false` against any
//!   other), or when one claim must be a value and the other needs an object inside it (`/a`
//!   and `/a/b`). A pair is not reported when an identity with more claims matches every
//!   token that matches both, because that identity wins.
//! - **Shadowed routes**: a route that an earlier route covers entirely (first match wins).
//! - **Routes skipped by letter case**: a strict route that a case variant of its requests
//!   misses while a looser later route takes it, where the configuration hints that the
//!   upstream folds case (see `case.rs`).
//! - **Identities without collaborators**: every request they are selected for is denied.
//! - **Unreachable resources**: no route (and no Envoy `context_extensions` in the Envoy
//!   configurations given) can target them.
//! - **Too large for a ConfigMap**: the files add up to nearly the 1 MiB a Kubernetes
//!   ConfigMap holds (see `size.rs`).
//! - **No configuration**: no SSO integration and no route; `serve` would never be ready.
//!
//! Collaborators naming a missing identity are found by the snapshot compile itself.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::core::config::{self, Config, Diagnostic, Origin, Severity};
use crate::core::load;
use crate::core::snapshot::Snapshot;

/// Routes a change of letter case can skip for a looser one.
mod case;
/// Which requests and resources a route can reach, for the unused-entry reviews.
mod coverage;
/// Envoy configurations scanned for `context_extensions` resources.
mod envoy;
/// A configuration too large for a ConfigMap.
mod size;
/// Possible ties between identities.
mod ties;
/// Shadowed routes, identities without collaborators, unreachable resources.
mod unused;

pub use envoy::{envoy_resources, EnvoyConfigError};
pub use size::{CONFIGMAP_BYTES, WARN_BYTES};
pub use ties::MAX_TIES_LISTED;

/// Review a configuration that compiled into `snap`: every warning of the kinds above.
///
/// `envoy_resources` are the resources Envoy configurations name in `context_extensions`
/// (see [`envoy_resources`]); `None` when none were given.
pub fn review(
    config: &Config,
    snap: &Snapshot,
    envoy_resources: Option<&HashSet<String>>,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    ties::possible_ties(config, snap, &mut out);
    unused::shadowed_routes(config, snap, &mut out);
    case::case_variants(config, &snap.router, &mut out);
    unused::identities_without_collaborators(config, &mut out);
    unused::unreachable_resources(config, snap, envoy_resources, &mut out);
    size::configmap_size(config, snap, &mut out);
    if snap.is_empty() {
        // No file to point into: the first one, or the directory itself.
        let file = config
            .files
            .first()
            .map_or(".".to_owned(), |f| f.name.clone());
        out.push(Diagnostic {
            file,
            line: 1,
            col: 1,
            severity: Severity::Warning,
            message: format!(
                "{}; `serve` loads it but is never ready",
                crate::core::snapshot::NO_CONFIGURATION
            ),
        });
    }
    out
}

/// A review finding at `origin`; every finding of the review is a warning.
fn warn(
    config: &Config,
    origin: Origin,
    section: &str,
    field: Option<&str>,
    msg: String,
) -> Diagnostic {
    config.at(origin, section, field, Severity::Warning, msg)
}

/// How `validate` prints its findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `file:line:col: severity: message`, then a summary line.
    Text,
    /// GitHub Actions workflow commands (`::error file=…,line=…,col=…::…`).
    Github,
    /// One JSON document.
    Json,
}

/// The outcome of `claimgate validate` on one directory.
#[derive(Debug, Clone)]
pub struct Validation {
    /// The directory, as given.
    pub dir: PathBuf,
    /// Every finding, in file and line order; files are relative to `dir`.
    pub diagnostics: Vec<Diagnostic>,
    /// A problem that stopped validation before any file could be checked.
    pub fatal: Option<String>,
}

/// Load, validate, compile and review `dir` exactly as `serve` would load it, plus the
/// review's warnings; `envoy_configs` name Envoy configurations to find resources in.
pub fn validate(dir: &Path, envoy_configs: &[PathBuf]) -> Validation {
    let fatal = |msg: String| Validation {
        dir: dir.to_path_buf(),
        diagnostics: Vec::new(),
        fatal: Some(msg),
    };
    let envoy = if envoy_configs.is_empty() {
        None
    } else {
        match envoy_resources(envoy_configs) {
            Ok(found) => Some(found),
            Err(e) => return fatal(e.to_string()),
        }
    };
    let mut diagnostics = match load::load(dir) {
        Err(e @ config::ConfigError::ReadDir { .. }) => return fatal(e.to_string()),
        Err(e) => e.diagnostics().to_vec(),
        Ok(loaded) => {
            let mut d = loaded.snapshot.warnings.clone();
            d.extend(review(&loaded.config, &loaded.snapshot, envoy.as_ref()));
            d
        }
    };
    diagnostics.sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
    Validation {
        dir: dir.to_path_buf(),
        diagnostics,
        fatal: None,
    }
}

/// Escape a GitHub workflow command's message.
fn gh_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escape a GitHub workflow command's property value.
fn gh_property(s: &str) -> String {
    gh_data(s).replace(':', "%3A").replace(',', "%2C")
}

impl Validation {
    /// How many errors were found (a fatal problem counts as one).
    pub fn errors(&self) -> usize {
        usize::from(self.fatal.is_some())
            + self
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count()
    }

    /// How many warnings were found.
    pub fn warnings(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count()
    }

    /// Whether the configuration passes: no error, and with `strict` no warning either.
    pub fn passes(&self, strict: bool) -> bool {
        self.errors() == 0 && (!strict || self.warnings() == 0)
    }

    /// The path of a finding's file as a CI tool opens it (the directory joined with it).
    pub fn path_of(&self, d: &Diagnostic) -> PathBuf {
        self.dir.join(&d.file)
    }

    /// The findings in `format`, each line ending in a newline.
    pub fn render(&self, format: Format) -> String {
        let (errors, warnings) = (self.errors(), self.warnings());
        let summary = match (&self.fatal, errors) {
            (Some(msg), _) => format!("error: {msg}"),
            (None, 0) => format!("{}: valid ({warnings} warning(s))", self.dir.display()),
            (None, _) => format!(
                "{}: invalid ({errors} error(s), {warnings} warning(s))",
                self.dir.display()
            ),
        };
        let mut out = String::new();
        match format {
            Format::Text => {
                for d in &self.diagnostics {
                    let _ = writeln!(out, "{d}");
                }
                let _ = writeln!(out, "{summary}");
            }
            Format::Github => {
                if let Some(msg) = &self.fatal {
                    let _ = writeln!(out, "::error::{}", gh_data(msg));
                }
                for d in &self.diagnostics {
                    let command = match d.severity {
                        Severity::Error => "error",
                        Severity::Warning => "warning",
                    };
                    let _ = writeln!(
                        out,
                        "::{command} file={},line={},col={}::{}",
                        gh_property(&self.path_of(d).display().to_string()),
                        d.line,
                        d.col,
                        gh_data(&d.message)
                    );
                }
                let _ = writeln!(out, "{summary}");
            }
            Format::Json => {
                let diagnostics: Vec<Value> = self
                    .diagnostics
                    .iter()
                    .map(|d| {
                        let mut v = serde_json::to_value(d).unwrap_or(Value::Null);
                        if let Value::Object(o) = &mut v {
                            o.insert(
                                "path".into(),
                                Value::from(self.path_of(d).display().to_string()),
                            );
                        }
                        v
                    })
                    .collect();
                let doc = serde_json::json!({
                    "config": self.dir.display().to_string(),
                    "valid": errors == 0,
                    "errors": errors,
                    "warnings": warnings,
                    "fatal": self.fatal,
                    "diagnostics": diagnostics,
                });
                let _ = writeln!(out, "{doc}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
