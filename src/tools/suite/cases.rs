//! Reading decision test files: the YAML schema, and every mistake located at `file:line:col`.
//!
//! A file is parsed with the configuration's own rules (unknown fields are errors, serde's
//! location for schema errors); what only the configuration can tell (an SSO or identity that
//! does not exist, a reason code that is not one) is checked against the snapshot the tests run
//! on, so a typo in a test is an error, not a test that can never pass.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Case, Expect, TokenInput};
use crate::core::config::{Diagnostic, Marks, Severity};
use crate::core::decision::Reason;
use crate::core::role::Role;
use crate::core::snapshot::Snapshot;

/// The most one test file may hold.
const MAX_TEST_FILE_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    tests: Vec<CaseSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseSpec {
    name: String,
    // A literal token (a string) or a description of one (a mapping): told apart below.
    #[serde(default)]
    token: Option<serde_yaml::Value>,
    #[serde(default)]
    request: RequestSpec,
    expect: ExpectSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenSpec {
    sso: String,
    #[serde(default)]
    claims: serde_yaml::Mapping,
}

/// The request of a test case, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    /// HTTP method; default `GET`.
    pub method: Option<String>,
    /// Path, with query; default `/`.
    pub path: Option<String>,
    /// Host (`:authority`); default none.
    pub host: Option<String>,
    /// The resource Envoy's `context_extensions` would name.
    pub resource: Option<String>,
    /// The role Envoy's `context_extensions` would name.
    pub role: Option<String>,
    /// The parent Envoy's `context_extensions` would name, for a resource not declared.
    pub parent: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectSpec {
    allow: bool,
    identity: Option<String>,
    role: Option<String>,
    resource: Option<String>,
    reason: Option<String>,
}

/// Every `*.yaml`/`*.yml` file a path names: the file itself, or those directly in a directory.
pub(super) fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Diagnostic> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|e| unreadable(path, &e))?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy())
                        .unwrap_or_default();
                    !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml"))
                })
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(located(path, 1, 1, "holds no *.yaml or *.yml test file"));
            }
            out.extend(found);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

fn unreadable(path: &Path, e: &std::io::Error) -> Diagnostic {
    located(path, 1, 1, format!("cannot read: {e}"))
}

fn located(path: &Path, line: usize, col: usize, message: impl Into<String>) -> Diagnostic {
    Diagnostic::new(
        path.display().to_string(),
        (line, col),
        Severity::Error,
        message.into(),
    )
}

/// Read one test file into cases, or every error found in it.
pub(super) fn read(path: &Path, snap: &Snapshot) -> Result<Vec<Case>, Vec<Diagnostic>> {
    let meta = std::fs::metadata(path).map_err(|e| vec![unreadable(path, &e)])?;
    if !meta.is_file() {
        return Err(vec![located(path, 1, 1, "cannot read: not a regular file")]);
    }
    if meta.len() > MAX_TEST_FILE_BYTES {
        return Err(vec![located(path, 1, 1, "cannot read: larger than 16 MiB")]);
    }
    let text = std::fs::read_to_string(path).map_err(|e| vec![unreadable(path, &e)])?;
    parse(path, &text, snap)
}

/// Parse the text of a test file named `path`.
pub(super) fn parse(
    path: &Path,
    text: &str,
    snap: &Snapshot,
) -> Result<Vec<Case>, Vec<Diagnostic>> {
    let marks = Marks::scan(text).map_err(|(line, col, msg)| {
        vec![located(path, line, col, format!("invalid YAML: {msg}"))]
    })?;
    let file: TestFile = serde_yaml::from_str(text).map_err(|e| {
        let (line, col) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        let msg = e.to_string();
        let msg = msg.find(" at line ").map_or(msg.as_str(), |i| &msg[..i]);
        vec![located(path, line, col, msg)]
    })?;
    let mut errors = Vec::new();
    if file.tests.is_empty() {
        let (line, col) = marks.locate("tests");
        errors.push(located(path, line, col, "holds no tests"));
    }
    let mut cases = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for (i, spec) in file.tests.iter().enumerate() {
        let mut check = Check {
            path,
            marks: &marks,
            index: i,
            errors: &mut errors,
        };
        if spec.name.trim().is_empty() {
            check.error("name", "a test needs a name");
        } else if names.contains(&spec.name.as_str()) {
            check.error(
                "name",
                format!("test {:?} is defined twice in this file", spec.name),
            );
        }
        names.push(&spec.name);
        let token = check.token(spec.token.as_ref(), snap);
        let expect = check.expect(&spec.expect, snap);
        check.request(&spec.request);
        let (line, col) = marks.locate(&format!("tests[{i}].name"));
        if let (Some(token), Some(expect)) = (token, expect) {
            cases.push(Case {
                file: path.display().to_string(),
                line,
                col,
                name: spec.name.clone(),
                token,
                request: spec.request.clone(),
                expect,
            });
        }
    }
    if errors.is_empty() {
        Ok(cases)
    } else {
        Err(errors)
    }
}

/// Checks of one case, each error located at the field it is about.
struct Check<'a> {
    path: &'a Path,
    marks: &'a Marks,
    index: usize,
    errors: &'a mut Vec<Diagnostic>,
}

impl Check<'_> {
    fn error(&mut self, field: &str, message: impl Into<String>) {
        let (line, col) = self.marks.locate(&format!("tests[{}].{field}", self.index));
        self.errors.push(located(self.path, line, col, message));
    }

    fn token(&mut self, spec: Option<&serde_yaml::Value>, snap: &Snapshot) -> Option<TokenInput> {
        let spec = match spec {
            None | Some(serde_yaml::Value::Null) => return Some(TokenInput::None),
            Some(serde_yaml::Value::String(s)) => return Some(TokenInput::Literal(s.clone())),
            Some(v) => v,
        };
        let spec: TokenSpec = match serde_yaml::from_value(spec.clone()) {
            Ok(s) => s,
            Err(e) => {
                self.error(
                    "token",
                    format!("token: {e}; give a token as a string, or as {{sso: NAME, claims: {{...}}}}"),
                );
                return None;
            }
        };
        if !snap.ssos.iter().any(|s| *s.name == *spec.sso) {
            let known: Vec<&str> = snap.ssos.iter().map(|s| &*s.name).collect();
            self.error(
                "token.sso",
                format!(
                    "SSO {:?} is not defined in the configuration (defined: {})",
                    spec.sso,
                    known.join(", ")
                ),
            );
            return None;
        }
        let claims: Map<String, Value> = match serde_json::to_value(&spec.claims) {
            Ok(Value::Object(map)) => map,
            _ => {
                self.error(
                    "token.claims",
                    "claims must map names (strings) to JSON values",
                );
                return None;
            }
        };
        Some(TokenInput::Described {
            sso: spec.sso,
            claims,
        })
    }

    fn expect(&mut self, spec: &ExpectSpec, snap: &Snapshot) -> Option<Expect> {
        let before = self.errors.len();
        if let Some(name) = &spec.identity {
            if snap.identity(name).is_none() {
                self.error(
                    "expect.identity",
                    format!("external identity {name:?} is not defined in the configuration"),
                );
            }
        }
        let role = match spec.role.as_deref().map(|r| (r, Role::parse(r))) {
            None => None,
            Some((_, Some(role))) => Some(role),
            Some((r, None)) => {
                self.error(
                    "expect.role",
                    format!("role {r:?} is not viewer, editor or manager"),
                );
                None
            }
        };
        let reason = match spec.reason.as_deref() {
            None => None,
            Some(code) => match Reason::ALL.iter().find(|r| r.code() == code) {
                Some(r) => Some(*r),
                None => {
                    let codes: Vec<&str> = Reason::ALL.iter().map(|r| r.code()).collect();
                    self.error(
                        "expect.reason",
                        format!(
                            "{code:?} is not a reason code (one of {})",
                            codes.join(", ")
                        ),
                    );
                    None
                }
            },
        };
        if spec.allow && spec.reason.is_some() {
            self.error(
                "expect.reason",
                "an allowed request has no reason; remove it or set allow: false",
            );
        }
        if !spec.allow {
            for (field, given) in [
                ("identity", spec.identity.is_some()),
                ("role", spec.role.is_some()),
                ("resource", spec.resource.is_some()),
            ] {
                if given {
                    self.error(
                        &format!("expect.{field}"),
                        format!(
                            "{field} is checked only when the request is allowed (allow: true)"
                        ),
                    );
                }
            }
        }
        if self.errors.len() > before {
            return None;
        }
        Some(Expect {
            allow: spec.allow,
            identity: spec.identity.clone(),
            role,
            resource: spec.resource.clone(),
            reason,
        })
    }

    fn request(&mut self, spec: &RequestSpec) {
        if let Some(path) = &spec.path {
            if !path.starts_with('/') {
                self.error("request.path", format!("path {path:?} must start with '/'"));
            }
        }
        if spec.resource.is_some() != spec.role.is_some() {
            self.error(
                "request",
                "give both resource and role (as Envoy's context_extensions would), or neither",
            );
        }
        if spec.parent.is_some() && spec.resource.is_none() {
            self.error(
                "request.parent",
                "a parent places the resource the request names: give resource and role too",
            );
        }
    }
}
