//! What `claimgate validate` adds to validity: findings about a configuration that loads but
//! probably does not do what its authors meant. Each is a warning (`--strict` fails on them).
//!
//! - **Possible ties**: two identities of one SSO with equally many claims that one token
//!   could satisfy both; such a token is denied `ambiguous_identity`. Two identities that
//!   name the same claim with different values are taken as exclusive, although an array
//!   claim could hold both values: configurations write such pairs to mean "one or the
//!   other". A pair is not reported when an identity with more claims matches every token
//!   that matches both, because that identity wins.
//! - **Shadowed routes**: a route that an earlier route covers entirely (first match wins).
//! - **Identities without collaborators**: every request they are selected for is denied.
//! - **Unreachable resources**: no route (and no Envoy `context_extensions` in the Envoy
//!   configurations given) can target them.
//!
//! Collaborators naming a missing identity are found by the snapshot compile itself.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::config::{self, Config, Diagnostic, Origin, Severity};
use crate::snapshot::{self, Snapshot};

mod coverage;
mod envoy;
mod ties;
mod unused;

pub use envoy::{envoy_resources, EnvoyConfigError};
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
    unused::identities_without_collaborators(config, &mut out);
    unused::unreachable_resources(config, snap, envoy_resources, &mut out);
    out
}

fn warn(
    config: &Config,
    origin: Origin,
    section: &str,
    field: Option<&str>,
    msg: String,
) -> Diagnostic {
    config.at(origin, section, field, Severity::Warning, msg)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// How `validate` prints its findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    let mut diagnostics = match config::load_dir(dir) {
        Err(e @ config::ConfigError::ReadDir { .. }) => return fatal(e.to_string()),
        Err(e) => e.diagnostics().to_vec(),
        Ok(cfg) => match snapshot::compile(&cfg) {
            Err(e) => e.diagnostics().to_vec(),
            Ok(snap) => {
                let mut d = snap.warnings.clone();
                d.extend(review(&cfg, &snap, envoy.as_ref()));
                d
            }
        },
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
mod tests {
    use super::*;
    use crate::config::parse_texts;

    const SSO: &str = "sso_integrations:\n  - name: ci\n    type: oidc\n    issuer: https://idp\n    audiences: [cg]\n    jwks_file: keys.json\n";

    fn review_text(text: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keys.json"), r#"{"keys":[]}"#).unwrap();
        let mut d = Vec::new();
        let cfg = parse_texts(dir.path(), &[("c.yaml".into(), text.into())], &mut d);
        assert!(d.is_empty(), "{d:?}");
        let snap = snapshot::compile(&cfg).unwrap();
        review(&cfg, &snap, None)
            .iter()
            .map(|d| d.to_string())
            .collect()
    }

    fn ids(list: &[(&str, &str)]) -> String {
        let mut s = format!("{SSO}external_identities:\n");
        for (name, claims) in list {
            s.push_str(&format!(
                "  - name: {name}\n    sso_fqn: ci\n    claims: {{{claims}}}\n"
            ));
        }
        s.push_str("resources:\n  - fqn: m:a\n    collaborators:\n");
        for (name, _) in list {
            s.push_str(&format!(
                "      - subject: external-identity:{name}\n        role: viewer\n"
            ));
        }
        s.push_str("routes:\n  - path: /a\n    resource: m:a\n    role: viewer\n");
        s
    }

    fn ties(w: &[String]) -> Vec<&String> {
        w.iter()
            .filter(|w| w.contains("ambiguous_identity"))
            .collect()
    }

    #[test]
    fn identities_that_one_token_could_both_match_are_a_possible_tie() {
        let w = review_text(&ids(&[("a", "repo: x"), ("b", "env: prod")]));
        let t = ties(&w);
        assert_eq!(t.len(), 1, "{w:?}");
        assert!(
            t[0].contains("\"a\" (at c.yaml:8:11) and \"b\""),
            "{}",
            t[0]
        );
        assert!(t[0].contains("repo=\"x\", env=\"prod\""), "{}", t[0]);
    }

    #[test]
    fn the_same_claim_with_different_values_is_exclusive() {
        let w = review_text(&ids(&[
            ("a", "repo: x"),
            ("b", "repo: y"),
            ("c", "/repo: z"),
            ("d", "n: 1"),
            ("e", "n: 2"),
        ]));
        // a, b, c name the same claim; d and e too; but a and d could tie.
        let t = ties(&w);
        assert_eq!(t.len(), 6, "{t:#?}");
        assert!(!t
            .iter()
            .any(|t| t.contains("\"a\" (at c.yaml:8:11) and \"b\"")));
    }

    #[test]
    fn a_more_specific_identity_that_covers_both_removes_the_tie() {
        let w = review_text(&ids(&[
            ("a", "repo: x"),
            ("b", "env: prod"),
            ("both", "repo: x, env: prod"),
        ]));
        assert!(ties(&w).is_empty(), "{w:?}");
    }

    #[test]
    fn two_fallbacks_always_tie() {
        let w = review_text(&ids(&[("a", ""), ("b", "")]));
        let t = ties(&w);
        assert_eq!(t.len(), 1, "{w:?}");
        assert!(t[0].contains("both have no claims"), "{}", t[0]);
    }

    #[test]
    fn a_route_covered_by_an_earlier_one_is_reported() {
        let text = format!(
            "{SSO}resources:\n  - fqn: m:a\nroutes:\n  - path: /v1/{{*rest}}\n    resource: m:a\n    role: viewer\n  - path: /v1/x\n    methods: [GET]\n    resource: m:a\n    role: editor\n"
        );
        let w = review_text(&text);
        assert!(
            w.iter().any(|w| w.starts_with(
                "c.yaml:13:11: warning: routes[1] is never used: routes[0] (at c.yaml:10:5)"
            )),
            "{w:#?}"
        );
    }

    #[test]
    fn github_annotations_escape_what_would_break_them() {
        assert_eq!(gh_data("a%b\nc"), "a%25b%0Ac");
        assert_eq!(gh_property("a:b,c"), "a%3Ab%2Cc");
    }
}
