//! The YAML schema of a configuration directory, how it is read, and where its errors are.
//!
//! Every `*.yaml`/`*.yml` file directly in the directory is read (names starting with `.`
//! are skipped, so a ConfigMap mount with `..data` links works) and the lists of all files
//! are concatenated. Parse and schema errors come from `serde_yaml` with their location;
//! semantic errors found later (duplicates, references) are located through [`Marks`], a map
//! from a value's path in a file to its line and column.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

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
}

impl ConfigError {
    /// Every diagnostic carried by this error (a directory error yields none).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ConfigError::Invalid { diagnostics } => diagnostics,
            ConfigError::ReadDir { .. } => &[],
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
}

/// One collaborator binding as written in YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollaboratorSpec {
    /// `external-identity:NAME`.
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
    /// No token needed.
    #[serde(default)]
    pub public: bool,
    /// Literal segments and prefixes compare without ASCII case, for upstreams that do.
    #[serde(default)]
    pub case_insensitive: bool,
}

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
    /// [`text_digest`] of the files.
    pub hash: String,
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
        let (line, col) = file.marks().locate(&path);
        Diagnostic {
            file: file.name.clone(),
            line,
            col,
            severity: sev,
            message: message.into(),
        }
    }

    /// `file:line:col` of an item (or one of its fields), for output that points at the file.
    pub fn place(&self, origin: Origin, section: &str, field: Option<&str>) -> String {
        let d = self.at(origin, section, field, Severity::Warning, "");
        format!("{}:{}:{}", d.file, d.line, d.col)
    }

    /// Resolve a path written inside the configuration (relative to the directory).
    pub fn resolve(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
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

/// Read every configuration file of `dir`: `*.yaml`/`*.yml`, not starting with `.`.
pub fn read_dir(dir: &Path) -> Result<Sources, ConfigError> {
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
        match std::fs::read_to_string(dir.join(&name)) {
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

/// Read and parse every configuration file of `dir`. Schema errors of all files are reported together.
pub fn load_dir(dir: &Path) -> Result<Config, ConfigError> {
    parse_sources(dir, read_dir(dir)?)
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

/// A short SHA-256 of every file's name and text, to tell configurations apart.
pub fn text_digest(texts: &[(String, String)]) -> String {
    let mut hasher = Sha256::new();
    for (name, text) in texts {
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update((text.len() as u64).to_le_bytes());
        hasher.update(text.as_bytes());
    }
    hex16(&hasher.finalize())
}

/// The digest of the YAML texts combined with the content of the files they reference
/// (key files), so that editing only a key file is a change too.
pub fn combined_digest(text_digest: &str, referenced: &[PathBuf]) -> String {
    if referenced.is_empty() {
        return text_digest.to_owned();
    }
    let mut hasher = Sha256::new();
    hasher.update(text_digest.as_bytes());
    for path in referenced {
        hasher.update(path.as_os_str().as_encoded_bytes());
        match std::fs::read(path) {
            Ok(bytes) => {
                hasher.update((bytes.len() as u64).to_le_bytes());
                hasher.update(&bytes);
            }
            Err(_) => hasher.update(u64::MAX.to_le_bytes()),
        }
    }
    hex16(&hasher.finalize())
}

fn hex16(digest: &[u8]) -> String {
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
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
        hash: String::new(),
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
        let doc: FileDoc = match serde_yaml::from_str(text) {
            Ok(doc) => doc,
            Err(e) => {
                // Tell a broken document from a schema error: only the former fails a scan.
                let (line, col, message) = match Marks::scan(text) {
                    Err((line, col, msg)) => (line, col, format!("invalid YAML: {msg}")),
                    Ok(_) => {
                        let (line, col) = e
                            .location()
                            .map(|l| (l.line(), l.column()))
                            .unwrap_or((1, 1));
                        (line, col, strip_location(&e.to_string()))
                    }
                };
                diagnostics.push(Diagnostic {
                    file: name.clone(),
                    line,
                    col,
                    severity: Severity::Error,
                    message,
                });
                continue;
            }
        };
        push_items(&mut config.ssos, doc.sso_integrations, file);
        push_items(&mut config.identities, doc.external_identities, file);
        push_items(&mut config.resources, doc.resources, file);
        push_items(&mut config.routes, doc.routes, file);
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

/// Locations (1-based line and column) of every value in one YAML file, by path.
#[derive(Debug, Clone, Default)]
pub struct Marks {
    by_path: HashMap<String, (usize, usize)>,
}

impl Marks {
    /// Scan `text` for the location of every value, or where it is broken.
    fn scan(text: &str) -> Result<Marks, (usize, usize, String)> {
        let mut recv = MarkCollector::default();
        let mut parser = Parser::new_from_str(text);
        parser.load(&mut recv, false).map_err(|e| {
            let m = e.marker();
            (m.line().max(1), m.col() + 1, e.info().to_string())
        })?;
        Ok(Marks {
            by_path: recv.marks,
        })
    }

    /// The location of `path`, or of its nearest recorded parent.
    pub fn locate(&self, path: &str) -> (usize, usize) {
        let mut p = path;
        loop {
            if let Some(&loc) = self.by_path.get(p) {
                return loc;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return (1, 1),
            }
        }
    }
}

enum Frame {
    Map {
        path: String,
        expecting_key: bool,
        key: String,
        // Where the mapping started; used only if it has no key to point at.
        start: Marker,
    },
    Seq {
        path: String,
        index: usize,
    },
}

#[derive(Default)]
struct MarkCollector {
    stack: Vec<Frame>,
    marks: HashMap<String, (usize, usize)>,
}

impl MarkCollector {
    fn child_path(&mut self) -> String {
        match self.stack.last_mut() {
            None => String::new(),
            Some(Frame::Seq { path, index }) => {
                let p = format!("{path}[{index}]");
                *index += 1;
                p
            }
            Some(Frame::Map {
                path,
                expecting_key,
                key,
                ..
            }) => {
                *expecting_key = true;
                if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                }
            }
        }
    }

    fn record(&mut self, path: &str, mark: Marker) {
        self.marks
            .entry(path.to_string())
            .or_insert((mark.line().max(1), mark.col() + 1));
    }
}

impl MarkedEventReceiver for MarkCollector {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(value, ..) => {
                if let Some(Frame::Map {
                    expecting_key: expecting_key @ true,
                    key,
                    path,
                    ..
                }) = self.stack.last_mut()
                {
                    *key = value;
                    *expecting_key = false;
                    // A mapping is located at its first key: that is where a reader looks.
                    let path = path.clone();
                    self.record(&path, mark);
                    return;
                }
                let p = self.child_path();
                self.record(&p, mark);
            }
            Event::Alias(_) => {
                let p = self.child_path();
                self.record(&p, mark);
            }
            Event::MappingStart(..) => {
                let p = self.child_path();
                self.stack.push(Frame::Map {
                    path: p,
                    expecting_key: true,
                    key: String::new(),
                    start: mark,
                });
            }
            Event::SequenceStart(..) => {
                let p = self.child_path();
                self.record(&p, mark);
                self.stack.push(Frame::Seq { path: p, index: 0 });
            }
            Event::MappingEnd => {
                if let Some(Frame::Map { path, start, .. }) = self.stack.pop() {
                    self.record(&path, start);
                }
            }
            Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Config, Vec<Diagnostic>) {
        let mut d = Vec::new();
        let c = parse_texts(Path::new("."), &[("a.yaml".into(), text.into())], &mut d);
        (c, d)
    }

    #[test]
    fn marks_point_at_values_by_path() {
        let text = "external_identities:\n  - name: bot\n    sso_fqn: ci\n  - name: other\n    sso_fqn: x\n";
        let (c, d) = parse(text);
        assert!(d.is_empty(), "{d:?}");
        let marks = c.files[0].marks();
        assert_eq!(marks.locate("external_identities[1].sso_fqn"), (5, 14));
        assert_eq!(marks.locate("external_identities[0].name"), (2, 11));
        // A missing field falls back to its item.
        assert_eq!(marks.locate("external_identities[1].claims"), (4, 5));
    }

    #[test]
    fn unknown_field_is_an_error_with_location() {
        let (_, d) = parse("routes:\n  - path: /x\n    rol: viewer\n");
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].line, d[0].col), (3, 5));
        assert!(
            d[0].message.contains("unknown field `rol`"),
            "{}",
            d[0].message
        );
    }

    #[test]
    fn bad_yaml_is_an_error_with_location() {
        let (_, d) = parse("routes:\n  - path: [\n");
        assert_eq!(d.len(), 1);
        assert!(d[0].message.starts_with("invalid YAML"), "{}", d[0].message);
    }

    #[test]
    fn empty_and_comment_only_files_are_fine() {
        let (c, d) = parse("# nothing yet\n");
        assert!(d.is_empty());
        assert!(c.routes.is_empty());
    }

    #[test]
    fn duplicate_yaml_keys_are_refused() {
        let (_, d) = parse("routes: []\nroutes: []\n");
        assert_eq!(d.len(), 1, "{d:?}");
    }

    #[test]
    fn hash_changes_with_content() {
        let (a, _) = parse("routes: []\n");
        let (b, _) = parse("routes: [] # edited\n");
        assert_ne!(a.hash, b.hash);
        assert_eq!(a.hash.len(), 16);
    }
}
