//! The YAML schema of a configuration directory, how it is read, and where its errors are.
//!
//! Every `*.yaml`/`*.yml` file directly in the directory is read (names starting with `.`
//! are skipped, so a ConfigMap mount with `..data` links works; [`Files`] says what may be
//! read and how much) and the lists of all files are concatenated. Parse and schema errors come from `serde_yaml` with their location;
//! semantic errors found later (duplicates, references) are located through [`Marks`], a map
//! from a value's path in a file to its line and column.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

mod depth;
mod excerpt;
mod files;
mod marks;

pub use depth::MAX_NESTING;
pub use excerpt::{excerpt_quotes, MAX_QUOTED_CHARS};
#[cfg(test)]
pub(crate) use files::read_regular;
pub use files::{
    relative_name, Documents, FileError, Files, KeyFiles, Sources, MAX_CONFIG_FILE_BYTES,
    MAX_KEY_FILE_BYTES,
};
pub use marks::Marks;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The configuration cannot be used.
    Error,
    /// The configuration is usable but probably not what was meant.
    Warning,
}

/// One finding about the configuration, with the place a user must look at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// The file, relative to the configuration directory.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong and, where it helps, what to do.
    pub message: String,
}

impl Diagnostic {
    /// A finding at `file:line:col`; a value quoted in `message` shows as a short excerpt.
    pub fn new(
        file: impl Into<String>,
        (line, col): (usize, usize),
        severity: Severity,
        message: impl AsRef<str>,
    ) -> Diagnostic {
        Diagnostic {
            file: file.into(),
            line,
            col,
            severity,
            message: excerpt_quotes(message.as_ref()),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.col, sev, self.message
        )
    }
}

/// Why a configuration directory could not be turned into a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The directory itself could not be listed.
    #[error("cannot read configuration directory {dir}: {source}")]
    ReadDir {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// One or more files are invalid; every finding is listed.
    #[error("{}", render(.diagnostics))]
    Invalid {
        /// All errors and warnings found.
        diagnostics: Vec<Diagnostic>,
    },
    /// SSOs trust the development key committed in claimgate's repository, and `serve` was
    /// not started with `--dev`.
    #[error("{}", render_dev_keys(.uses))]
    DevKey {
        /// Each SSO that trusts it, and where.
        uses: Vec<DevKeyUse>,
    },
}

/// An SSO whose key file holds the development key committed in claimgate's repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevKeyUse {
    /// The SSO FQN.
    pub sso: String,
    /// The `jwks_file` as configured.
    pub file: String,
    /// Where the SSO names it: `file:line:col`.
    pub at: String,
    /// How the key is named in the file (`kid "…"`, or its thumbprint).
    pub key: String,
}

fn render_dev_keys(uses: &[DevKeyUse]) -> String {
    uses.iter()
        .map(|u| {
            format!(
                "{}: error: SSO {} trusts the development key committed in claimgate's repository ({} in {}): anyone can sign tokens it accepts; use your identity provider's keys, or start serve with --dev (CLAIMGATE_DEV=true) for a local demo",
                u.at, u.sso, u.key, u.file
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl ConfigError {
    /// Every diagnostic carried by this error (a directory error yields none).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ConfigError::Invalid { diagnostics } => diagnostics,
            ConfigError::ReadDir { .. } | ConfigError::DevKey { .. } => &[],
        }
    }
}

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// An SSO integration as written in YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsoSpec {
    /// The SSO FQN.
    pub name: String,
    /// Only `oidc`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Must be false for an SSO that backs external identities.
    #[serde(default)]
    pub login_enabled: bool,
    /// Compared byte for byte with the token's `iss`.
    pub issuer: String,
    /// The token's `aud` must contain at least one of these.
    pub audiences: Vec<String>,
    /// A local JWKS file, relative to the configuration directory.
    pub jwks_file: Option<String>,
    /// A remote JWKS URL.
    pub jwks_uri: Option<String>,
    /// Find `jwks_uri` through OIDC discovery.
    #[serde(default)]
    pub discovery: bool,
    /// A deliberate choice to trust a `jwks_file` for an issuer that publishes its keys (a
    /// public hosting service's); default false.
    #[serde(default)]
    pub pinned_keys: bool,
    /// CA certificates (PEM, relative to the configuration directory) trusted in addition to
    /// the public roots for `jwks_uri` and discovery: a provider behind a private CA.
    pub ca_file: Option<String>,
    /// Allowed signature algorithms; default `[RS256]`.
    pub algorithms: Option<Vec<String>>,
    /// Clock skew allowed for `exp`/`nbf`; default 30, at most 300.
    pub leeway_seconds: Option<u64>,
}

/// An external identity as written in YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySpec {
    /// Unique name.
    pub name: String,
    /// The SSO integration whose tokens this identity matches.
    pub sso_fqn: String,
    /// Claims that must all hold; keys starting with `/` are JSON Pointers.
    #[serde(default)]
    pub claims: serde_yaml::Mapping,
}

/// A resource and its collaborators as written in YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    /// `kind:name`.
    pub fqn: String,
    /// Who holds which role.
    #[serde(default)]
    pub collaborators: Vec<CollaboratorSpec>,
    /// `enforce` (the default) or `dry_run`: denials let through and only reported.
    pub enforcement: Option<String>,
    /// The FQN of the declared resource this one lives inside (a model in a workspace).
    pub parent: Option<String>,
}

/// A team and its members as written in YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamSpec {
    /// Unique among teams: letters, digits and hyphens.
    pub name: String,
    /// `external-identity:NAME` each; teams do not nest.
    #[serde(default)]
    pub members: Vec<String>,
}

/// One collaborator binding as written in YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollaboratorSpec {
    /// `external-identity:NAME` or `team:NAME`.
    pub subject: String,
    /// `viewer`, `editor` or `manager`.
    pub role: String,
}

/// A route as written in YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// A path template: literal segments, `{var}`, `{*rest}`.
    pub path: Option<String>,
    /// A path prefix, matched on whole segments.
    pub path_prefix: Option<String>,
    /// Allowed methods; default any.
    pub methods: Option<Vec<String>>,
    /// Exact host.
    pub host: Option<String>,
    /// The resource template, e.g. `model:{name}`.
    pub resource: Option<String>,
    /// The role required on the resource.
    pub role: Option<String>,
    /// The parent template, e.g. `workspace:{ws}`: the parent of a resource not declared.
    pub parent: Option<String>,
    /// No token needed.
    #[serde(default)]
    pub public: bool,
    /// Literal segments and prefixes compare without ASCII case, for upstreams that do.
    #[serde(default)]
    pub case_insensitive: bool,
}

/// The names of a configuration file's top-level sections, as diagnostics locate them.
pub mod section {
    /// `sso_integrations`: who issues the tokens.
    pub const SSO_INTEGRATIONS: &str = "sso_integrations";
    /// `external_identities`: the identities tokens are selected into.
    pub const EXTERNAL_IDENTITIES: &str = "external_identities";
    /// `resources`: who holds which role on what.
    pub const RESOURCES: &str = "resources";
    /// `routes`: requests to resources and roles.
    pub const ROUTES: &str = "routes";
    /// `teams`: named groups of external identities, bound as one collaborator.
    pub const TEAMS: &str = "teams";
}

/// One file of the configuration; its field names are the [`section`] names.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    sso_integrations: Vec<SsoSpec>,
    #[serde(default)]
    external_identities: Vec<IdentitySpec>,
    #[serde(default)]
    resources: Vec<ResourceSpec>,
    #[serde(default)]
    routes: Vec<RouteSpec>,
    #[serde(default)]
    teams: Vec<TeamSpec>,
}

/// Where an item of a list came from: which file, which index in that file's section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// Index into [`Config::files`].
    pub file: usize,
    /// The item's index in its section of that file.
    pub index: usize,
}

/// A schema item with its origin.
#[derive(Debug, Clone)]
pub struct Item<T> {
    /// The item as parsed.
    pub spec: T,
    /// Where it was written.
    pub origin: Origin,
}

/// One configuration file as read.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The file name, relative to the directory.
    pub name: String,
    text: std::sync::Arc<str>,
    // Locations are only needed to report a diagnostic, so they are computed on first use:
    // a clean reload of a large configuration never pays for them.
    marks: std::sync::OnceLock<Marks>,
}

impl SourceFile {
    /// Locations of values in the file.
    pub fn marks(&self) -> &Marks {
        self.marks
            .get_or_init(|| Marks::scan(&self.text).unwrap_or_default())
    }
}

/// Every file of a configuration directory, parsed but not yet validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// The directory.
    pub dir: PathBuf,
    /// The files read, in name order.
    pub files: Vec<SourceFile>,
    /// All SSO integrations.
    pub ssos: Vec<Item<SsoSpec>>,
    /// All external identities.
    pub identities: Vec<Item<IdentitySpec>>,
    /// All resources.
    pub resources: Vec<Item<ResourceSpec>>,
    /// All routes, in order (files by name, then items in file order).
    pub routes: Vec<Item<RouteSpec>>,
    /// All teams.
    pub teams: Vec<Item<TeamSpec>>,
    /// [`text_digest`] of the files.
    pub hash: String,
    // Only tools that point at an identity's definition need this map: built on first use.
    identity_origins: std::sync::OnceLock<HashMap<String, Origin>>,
}

impl Config {
    /// A diagnostic located at `path` (e.g. `external_identities[2].sso_fqn`) of the item's file.
    pub fn at(
        &self,
        origin: Origin,
        section: &str,
        field: Option<&str>,
        sev: Severity,
        message: impl Into<String>,
    ) -> Diagnostic {
        let file = &self.files[origin.file];
        let mut path = format!("{section}[{}]", origin.index);
        if let Some(field) = field {
            path.push('.');
            path.push_str(field);
        }
        Diagnostic::new(
            file.name.clone(),
            file.marks().locate(&path),
            sev,
            message.into(),
        )
    }

    /// `file:line:col` of an item (or one of its fields), for output that points at the file.
    pub fn place(&self, origin: Origin, section: &str, field: Option<&str>) -> String {
        let d = self.at(origin, section, field, Severity::Warning, "");
        format!("{}:{}:{}", d.file, d.line, d.col)
    }

    /// Where the external identity `name` is first defined.
    pub fn identity_origin(&self, name: &str) -> Option<Origin> {
        let origins = self.identity_origins.get_or_init(|| {
            let mut map = HashMap::new();
            for item in &self.identities {
                map.entry(item.spec.name.clone()).or_insert(item.origin);
            }
            map
        });
        origins.get(name).copied()
    }

    /// `file:line:col` of the name of the external identity `name`.
    pub fn identity_place(&self, name: &str) -> Option<String> {
        let origin = self.identity_origin(name)?;
        Some(self.place(origin, section::EXTERNAL_IDENTITIES, Some("name")))
    }

    /// The path of a key file named `rel` in the configuration: relative to the directory.
    pub fn key_file(&self, rel: &str) -> Result<PathBuf, FileError> {
        if Path::new(rel).is_absolute() {
            return Err(FileError::Absolute);
        }
        Ok(self.dir.join(rel))
    }
}

/// Parse files already read from `dir`.
pub fn parse_sources(dir: &Path, sources: Sources) -> Result<Config, ConfigError> {
    let mut diagnostics = sources.unreadable;
    let config = parse_texts(dir, &sources.texts, &mut diagnostics);
    if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        return Err(ConfigError::Invalid { diagnostics });
    }
    Ok(config)
}

/// The SHA-256 of every file's name and text, to tell configurations apart.
pub fn text_digest(texts: &[(String, String)]) -> String {
    let mut hasher = Sha256::new();
    for (name, text) in texts {
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update((text.len() as u64).to_le_bytes());
        hasher.update(text.as_bytes());
    }
    hex(&hasher.finalize())
}

/// The whole SHA-256 in hex: a shortened digest could be made to collide, and the decision
/// log's `config_digest` is evidence of which configuration decided.
fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parse already-read files (name, text); errors are appended to `diagnostics`.
pub fn parse_texts(
    dir: &Path,
    texts: &[(String, String)],
    diagnostics: &mut Vec<Diagnostic>,
) -> Config {
    let mut config = Config {
        dir: dir.to_path_buf(),
        files: Vec::new(),
        ssos: Vec::new(),
        identities: Vec::new(),
        resources: Vec::new(),
        routes: Vec::new(),
        teams: Vec::new(),
        hash: String::new(),
        identity_origins: std::sync::OnceLock::new(),
    };
    config.hash = text_digest(texts);
    for (name, text) in texts {
        let file = config.files.len();
        config.files.push(SourceFile {
            name: name.clone(),
            text: text.as_str().into(),
            marks: std::sync::OnceLock::new(),
        });
        if blank_yaml(text) {
            continue;
        }
        // Before any parser sees it: deep nesting costs the parsers quadratic time.
        if let Err((line, col, message)) = depth::check(text) {
            diagnostics.push(Diagnostic::new(
                name.clone(),
                (line, col),
                Severity::Error,
                message,
            ));
            continue;
        }
        let doc: FileDoc = match serde_yaml::from_str(text) {
            Ok(doc) => doc,
            Err(e) => {
                // Tell a broken document from a schema error: only the former fails a scan.
                let (line, col, message) = match Marks::scan(text) {
                    Err((line, col, msg)) => (line, col, format!("invalid YAML: {msg}")),
                    Ok(_) => {
                        let (line, col) = e
                            .location()
                            .map(|l| marks::within(text, l.line(), l.column()))
                            .unwrap_or((1, 1));
                        (line, col, strip_location(&e.to_string()))
                    }
                };
                diagnostics.push(Diagnostic::new(
                    name.clone(),
                    (line, col),
                    Severity::Error,
                    message,
                ));
                continue;
            }
        };
        push_items(&mut config.ssos, doc.sso_integrations, file);
        push_items(&mut config.identities, doc.external_identities, file);
        push_items(&mut config.resources, doc.resources, file);
        push_items(&mut config.routes, doc.routes, file);
        push_items(&mut config.teams, doc.teams, file);
    }
    config
}

/// Whether a file holds no YAML content at all (only blank lines, comments, markers).
fn blank_yaml(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---" || l == "..."
    })
}

fn push_items<T>(into: &mut Vec<Item<T>>, items: Vec<T>, file: usize) {
    into.extend(items.into_iter().enumerate().map(|(index, spec)| Item {
        spec,
        origin: Origin { file, index },
    }));
}

// serde_yaml appends " at line X column Y"; the location is already in front of the message.
fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests;
