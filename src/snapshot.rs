//! The compiled form of one configuration: immutable and indexed for the request path.
//!
//! [`compile`] validates the whole parsed [`Config`] (names, references, roles, routes, key
//! files) and builds every lookup table a check needs: SSOs by issuer, identities per SSO
//! sorted by claim count, role bindings by resource. A check then only reads.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::{Config, Diagnostic, Origin, Severity};
use crate::identity::{ClaimMatcher, ClaimPath, ClaimValue, Identity};
use crate::keys::{Alg, AlgSet, KeySet};
use crate::provider::{self, ProviderOptions, Remote, RemoteKeys};
use crate::role::Role;
use crate::routing::{Route, RouteSource, Router, Target};
use crate::ConfigError;

/// Where an SSO's keys come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeySource {
    /// A local JWKS file (absolute path).
    File(std::path::PathBuf),
    /// The identity provider: a JWKS URL or OIDC discovery.
    Remote(Remote),
    /// No valid source was configured (only in a refused configuration).
    None,
}

/// One compiled SSO integration.
#[derive(Debug)]
pub struct Sso {
    /// The SSO FQN.
    pub name: Box<str>,
    /// The exact issuer.
    pub issuer: Box<str>,
    /// Accepted audiences.
    pub audiences: Box<[Box<str>]>,
    /// Allowed algorithms.
    pub algorithms: AlgSet,
    /// Clock skew for `exp`/`nbf`, in seconds.
    pub leeway: u64,
    /// Whether login is enabled (then it backs no identity and verifies no token).
    pub login_enabled: bool,
    /// Where the keys come from.
    pub source: KeySource,
    /// The current keys, swapped on their own when they are refreshed.
    pub keys: Arc<ArcSwap<KeySet>>,
    /// The refresher of remote keys (shared across snapshots while the source is unchanged).
    pub remote: Option<Arc<RemoteKeys>>,
}

impl Sso {
    /// Whether this SSO's first key load has finished (always, for a key file).
    pub fn keys_loaded(&self) -> bool {
        self.remote.as_ref().is_none_or(|r| r.first_load_done())
    }
}

/// One resource and who holds which role on it.
#[derive(Debug, Clone, Default)]
pub struct Resource {
    bindings: HashMap<usize, Role>,
}

/// The compiled, immutable configuration.
#[derive(Debug)]
pub struct Snapshot {
    /// Which configuration this is; set by the [`crate::Store`] when it is installed.
    pub generation: u64,
    /// Content hash of the files it came from, key files included.
    pub hash: String,
    /// Files outside the YAML that the configuration reads (key files).
    pub referenced_files: Vec<std::path::PathBuf>,
    /// SSO integrations, in configuration order.
    pub ssos: Vec<Sso>,
    issuers: HashMap<Box<str>, usize>,
    /// External identities, in configuration order.
    pub identities: Vec<Identity>,
    by_sso: Vec<Vec<usize>>,
    /// The identities' exact conditions, indexed: what a check selects with.
    pub identity_index: crate::identity::Index,
    identity_by_name: HashMap<Box<str>, usize>,
    resources: HashMap<Box<str>, Resource>,
    binding_count: usize,
    /// The routes.
    pub router: Router,
    /// Warnings found while compiling.
    pub warnings: Vec<Diagnostic>,
}

impl Snapshot {
    /// The SSO (index and value) that verifies tokens with this exact issuer.
    pub fn sso_for_issuer(&self, iss: &str) -> Option<(usize, &Sso)> {
        self.issuers.get(iss).map(|&i| (i, &self.ssos[i]))
    }

    /// The identities of an SSO, most claims first.
    pub fn identities_of(&self, sso: usize) -> &[usize] {
        self.by_sso.get(sso).map(Vec::as_slice).unwrap_or(&[])
    }

    /// An identity by name.
    pub fn identity(&self, name: &str) -> Option<&Identity> {
        self.identity_by_name
            .get(name)
            .map(|&i| &self.identities[i])
    }

    /// The role the identity (an index into [`Snapshot::identities`]) holds on `resource`.
    pub fn role_of(&self, resource: &str, identity: usize) -> Option<Role> {
        self.resources
            .get(resource)?
            .bindings
            .get(&identity)
            .copied()
    }

    /// Whether a resource is defined.
    pub fn has_resource(&self, fqn: &str) -> bool {
        self.resources.contains_key(fqn)
    }

    /// Every binding of a resource: identity index and role.
    pub fn bindings(&self, fqn: &str) -> Vec<(usize, Role)> {
        let mut v: Vec<(usize, Role)> = self
            .resources
            .get(fqn)
            .map(|r| r.bindings.iter().map(|(i, r)| (*i, *r)).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Start refreshing every remote key set that is not refreshing yet (needs a runtime).
    pub fn start_remote_keys(&self, metrics: &crate::metrics::Metrics) {
        for remote in self.ssos.iter().filter_map(|s| s.remote.as_ref()) {
            remote.start(metrics);
        }
    }

    /// Counts for logs: identities, bindings, routes.
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.identities.len(),
            self.binding_count,
            self.router.routes().len(),
        )
    }
}

fn valid_sso_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn valid_identity_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn valid_fqn(s: &str) -> bool {
    match s.split_once(':') {
        Some((kind, name)) => {
            !kind.is_empty()
                && kind
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !name.is_empty()
                && !name.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

fn valid_pointer(p: &str) -> bool {
    let b = p.as_bytes();
    b.iter()
        .enumerate()
        .all(|(i, c)| *c != b'~' || matches!(b.get(i + 1), Some(b'0' | b'1')))
}

/// The prefix of collaborator subjects that name external identities.
pub const IDENTITY_SUBJECT: &str = "external-identity:";

struct Ctx<'c> {
    config: &'c Config,
    diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn error(
        &mut self,
        origin: Origin,
        section: &str,
        field: Option<&str>,
        msg: impl Into<String>,
    ) {
        let d = self.config.at(origin, section, field, Severity::Error, msg);
        self.diags.push(d);
    }
    fn warn(&mut self, origin: Origin, section: &str, field: Option<&str>, msg: impl Into<String>) {
        let d = self
            .config
            .at(origin, section, field, Severity::Warning, msg);
        self.diags.push(d);
    }
    fn place(&self, origin: Origin, section: &str, field: Option<&str>) -> String {
        let d = self.config.at(origin, section, field, Severity::Error, "");
        format!("{}:{}:{}", d.file, d.line, d.col)
    }
}

/// Validate a parsed configuration and compile it into a snapshot.
///
/// Errors and warnings are all collected; any error refuses the whole configuration.
pub fn compile(config: &Config) -> Result<Snapshot, ConfigError> {
    compile_with(config, None, &ProviderOptions::default())
}

/// [`compile`], keeping the remote key sets of `previous` whose source is unchanged.
pub fn compile_with(
    config: &Config,
    previous: Option<&Snapshot>,
    provider_opts: &ProviderOptions,
) -> Result<Snapshot, ConfigError> {
    let mut cx = Ctx {
        config,
        diags: Vec::new(),
    };

    // SSO integrations.
    const SSO: &str = "sso_integrations";
    let mut ssos = Vec::new();
    let mut referenced_files = Vec::new();
    let mut sso_by_name: HashMap<&str, usize> = HashMap::new();
    let mut issuers: HashMap<Box<str>, usize> = HashMap::new();
    for item in &config.ssos {
        let s = &item.spec;
        let o = item.origin;
        if !valid_sso_name(&s.name) {
            cx.error(
                o,
                SSO,
                Some("name"),
                format!(
                    "SSO name {:?} must be lowercase letters, digits and hyphens",
                    s.name
                ),
            );
        }
        if let Some(&first) = sso_by_name.get(s.name.as_str()) {
            let at = cx.place(config.ssos[first].origin, SSO, Some("name"));
            cx.error(
                o,
                SSO,
                Some("name"),
                format!("SSO {:?} is defined twice (first at {at})", s.name),
            );
            continue;
        }
        if s.kind != "oidc" {
            cx.error(
                o,
                SSO,
                Some("type"),
                format!("SSO type {:?} is not supported; only \"oidc\"", s.kind),
            );
        }
        if s.issuer.is_empty() {
            cx.error(o, SSO, Some("issuer"), "issuer must not be empty");
        }
        if s.audiences.is_empty() || s.audiences.iter().any(String::is_empty) {
            cx.error(
                o,
                SSO,
                Some("audiences"),
                "audiences must list at least one non-empty audience",
            );
        }
        let mut algorithms = AlgSet::default();
        match &s.algorithms {
            None => algorithms.insert(Alg::RS256),
            Some(list) if list.is_empty() => {
                cx.error(o, SSO, Some("algorithms"), "algorithms must not be empty");
            }
            Some(list) => {
                for name in list {
                    match Alg::parse(name) {
                        Some(a) => algorithms.insert(a),
                        None => cx.error(
                            o,
                            SSO,
                            Some("algorithms"),
                            format!("algorithm {name:?} is not allowed; use RS256/384/512, PS256/384/512, ES256, ES384 or EdDSA"),
                        ),
                    }
                }
            }
        }
        let leeway = s.leeway_seconds.unwrap_or(30);
        if leeway > 300 {
            cx.error(
                o,
                SSO,
                Some("leeway_seconds"),
                format!("leeway_seconds is {leeway}; at most 300"),
            );
        }
        let sources = [s.jwks_file.is_some(), s.jwks_uri.is_some(), s.discovery];
        let source = match sources {
            [true, false, false] => {
                let rel = s.jwks_file.as_deref().unwrap_or_default();
                Some(KeySource::File(config.resolve(rel)))
            }
            [false, true, false] => {
                match provider::check_url(s.jwks_uri.as_deref().unwrap_or_default()) {
                    Ok(url) => Some(KeySource::Remote(Remote::Jwks(url))),
                    Err(e) => {
                        cx.error(o, SSO, Some("jwks_uri"), e.to_string());
                        None
                    }
                }
            }
            [false, false, true] => match provider::check_url(&s.issuer) {
                Ok(_) => Some(KeySource::Remote(Remote::Discovery(s.issuer.clone()))),
                Err(e) => {
                    cx.error(
                        o,
                        SSO,
                        Some("issuer"),
                        format!("discovery needs a fetchable issuer: {e}"),
                    );
                    None
                }
            },
            _ => {
                cx.error(
                    o,
                    SSO,
                    None,
                    "give exactly one of jwks_file, jwks_uri, discovery: true",
                );
                None
            }
        };
        if let Some(KeySource::File(path)) = &source {
            referenced_files.push(path.clone());
        }
        let keys = match &source {
            // A key file is re-read on every compile: a new snapshot never shares key state
            // with the one it replaces, so a refused reload cannot leak new keys.
            Some(KeySource::File(path)) => match load_key_file(path, algorithms) {
                Ok((set, skipped)) => {
                    for k in &skipped {
                        cx.warn(
                            o,
                            SSO,
                            Some("jwks_file"),
                            format!(
                                "{}: key {} is not used: {}",
                                path_display(s),
                                k.id,
                                k.reason
                            ),
                        );
                    }
                    if set.is_empty() {
                        cx.warn(
                            o,
                            SSO,
                            Some("jwks_file"),
                            format!(
                                "{}: no usable key; every token of SSO {} will be refused",
                                path_display(s),
                                s.name
                            ),
                        );
                    }
                    Arc::new(ArcSwap::from_pointee(set))
                }
                Err(msg) => {
                    cx.error(
                        o,
                        SSO,
                        Some("jwks_file"),
                        format!("{}: {msg}", path_display(s)),
                    );
                    Arc::default()
                }
            },
            _ => Arc::default(),
        };
        let remote = match &source {
            Some(KeySource::Remote(remote)) => {
                let reused = previous.and_then(|p| {
                    p.ssos
                        .iter()
                        .find(|old| *old.name == *s.name)
                        .and_then(|old| old.remote.clone())
                        .filter(|r| r.same_source(remote, algorithms))
                });
                match reused {
                    Some(r) => Some(r),
                    None => {
                        match RemoteKeys::new(&s.name, remote.clone(), algorithms, provider_opts) {
                            Ok(r) => Some(r),
                            Err(e) => {
                                cx.error(o, SSO, None, e.to_string());
                                None
                            }
                        }
                    }
                }
            }
            _ => None,
        };
        let keys = match &remote {
            Some(r) => r.keys().clone(),
            None => keys,
        };
        let index = ssos.len();
        sso_by_name.insert(&s.name, index);
        if !s.login_enabled && !s.issuer.is_empty() {
            if let Some(&other) = issuers.get(s.issuer.as_str()) {
                let first: &Sso = &ssos[other];
                cx.error(
                    o,
                    SSO,
                    Some("issuer"),
                    format!(
                        "issuer {:?} is already used by SSO {}; tokens could not tell them apart",
                        s.issuer, first.name
                    ),
                );
            } else {
                issuers.insert(s.issuer.as_str().into(), index);
            }
        }
        ssos.push(Sso {
            name: s.name.as_str().into(),
            issuer: s.issuer.as_str().into(),
            audiences: s.audiences.iter().map(|a| Box::from(a.as_str())).collect(),
            algorithms,
            leeway,
            login_enabled: s.login_enabled,
            source: source.unwrap_or(KeySource::None),
            keys,
            remote,
        });
    }

    // External identities.
    const IDS: &str = "external_identities";
    let mut identities: Vec<Identity> = Vec::new();
    let mut identity_by_name: HashMap<Box<str>, usize> = HashMap::new();
    let mut identity_origin = Vec::new();
    for item in &config.identities {
        let s = &item.spec;
        let o = item.origin;
        if !valid_identity_name(&s.name) {
            cx.error(
                o,
                IDS,
                Some("name"),
                format!(
                    "identity name {:?} must be letters, digits and hyphens",
                    s.name
                ),
            );
        }
        if let Some(&first) = identity_by_name.get(s.name.as_str()) {
            let at = cx.place(identity_origin[first], IDS, Some("name"));
            cx.error(
                o,
                IDS,
                Some("name"),
                format!(
                    "external identity {:?} is defined twice (first at {at})",
                    s.name
                ),
            );
            continue;
        }
        let sso = match sso_by_name.get(s.sso_fqn.as_str()) {
            None => {
                cx.error(
                    o,
                    IDS,
                    Some("sso_fqn"),
                    format!("sso_fqn {:?} names no SSO integration", s.sso_fqn),
                );
                continue;
            }
            Some(&i) if ssos[i].login_enabled => {
                cx.error(
                    o,
                    IDS,
                    Some("sso_fqn"),
                    format!("SSO {:?} has login_enabled: true; an SSO used for login cannot back external identities", s.sso_fqn),
                );
                continue;
            }
            Some(&i) => i,
        };
        let mut claims = Vec::new();
        for (k, v) in &s.claims {
            let Some(key) = k.as_str() else {
                cx.error(o, IDS, Some("claims"), "claim names must be strings");
                continue;
            };
            let field = format!("claims.{key}");
            let path = if key.starts_with('/') {
                if !valid_pointer(key) {
                    cx.error(
                        o,
                        IDS,
                        Some(&field),
                        format!(
                            "{key:?} is not a valid JSON Pointer ('~' must be followed by 0 or 1)"
                        ),
                    );
                    continue;
                }
                ClaimPath::Pointer(key.into())
            } else if key.is_empty() {
                cx.error(o, IDS, Some("claims"), "claim names must not be empty");
                continue;
            } else {
                ClaimPath::Top(key.into())
            };
            let value = match v {
                serde_yaml::Value::String(s) => ClaimValue::Str(s.as_str().into()),
                serde_yaml::Value::Bool(b) => ClaimValue::Bool(*b),
                serde_yaml::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                    (Some(i), _) => ClaimValue::Int(i),
                    (None, Some(f)) if f.is_finite() => ClaimValue::Float(f),
                    _ => {
                        cx.error(
                            o,
                            IDS,
                            Some(&field),
                            format!("claim {key:?}: number {n} cannot be matched"),
                        );
                        continue;
                    }
                },
                _ => {
                    cx.error(
                        o,
                        IDS,
                        Some(&field),
                        format!("claim {key:?} must be a string, number or boolean"),
                    );
                    continue;
                }
            };
            claims.push(ClaimMatcher {
                key: key.into(),
                path,
                value,
            });
        }
        identity_by_name.insert(s.name.as_str().into(), identities.len());
        identity_origin.push(o);
        identities.push(Identity {
            name: s.name.as_str().into(),
            sso,
            claims: claims.into(),
        });
    }
    let mut by_sso: Vec<Vec<usize>> = vec![Vec::new(); ssos.len()];
    for (i, id) in identities.iter().enumerate() {
        by_sso[id.sso].push(i);
    }
    for list in &mut by_sso {
        // Stable: among equal counts, configuration order decides which one a tie names first.
        list.sort_by_key(|&i| std::cmp::Reverse(identities[i].claims.len()));
    }
    let identity_index = crate::identity::Index::build(&identities, ssos.len());

    // Resources and collaborators.
    const RES: &str = "resources";
    let mut resources: HashMap<Box<str>, Resource> = HashMap::new();
    let mut resource_origin: HashMap<&str, Origin> = HashMap::new();
    let mut binding_count = 0;
    for item in &config.resources {
        let s = &item.spec;
        let o = item.origin;
        if !valid_fqn(&s.fqn) {
            cx.error(o, RES, Some("fqn"), format!("resource fqn {:?} must be kind:name (kind in lowercase letters, digits, hyphens)", s.fqn));
        }
        if let Some(first) = resource_origin.get(s.fqn.as_str()) {
            let at = cx.place(*first, RES, Some("fqn"));
            cx.error(
                o,
                RES,
                Some("fqn"),
                format!("resource {:?} is defined twice (first at {at})", s.fqn),
            );
            continue;
        }
        resource_origin.insert(&s.fqn, o);
        let mut res = Resource::default();
        for (ci, c) in s.collaborators.iter().enumerate() {
            let field = format!("collaborators[{ci}]");
            let role = Role::parse(&c.role);
            if role.is_none() {
                cx.error(
                    o,
                    RES,
                    Some(&format!("{field}.role")),
                    format!("role {:?} is not viewer, editor or manager", c.role),
                );
            }
            let Some(name) = c.subject.strip_prefix(IDENTITY_SUBJECT) else {
                cx.error(
                    o,
                    RES,
                    Some(&format!("{field}.subject")),
                    format!("subject {:?} must be external-identity:NAME", c.subject),
                );
                continue;
            };
            let Some(&idx) = identity_by_name.get(name) else {
                cx.warn(
                    o,
                    RES,
                    Some(&format!("{field}.subject")),
                    format!(
                        "external identity {name:?} does not exist; this collaborator is ignored"
                    ),
                );
                continue;
            };
            let Some(role) = role else { continue };
            if res.bindings.insert(idx, role).is_some() {
                cx.error(
                    o,
                    RES,
                    Some(&format!("{field}.subject")),
                    format!("{:?} is listed twice on {}", c.subject, s.fqn),
                );
            }
            binding_count += 1;
        }
        resources.insert(s.fqn.as_str().into(), res);
    }

    // Routes.
    const ROUTES: &str = "routes";
    let mut routes = Vec::new();
    for item in &config.routes {
        let s = &item.spec;
        let o = item.origin;
        let role = match &s.role {
            None => None,
            Some(r) => match Role::parse(r) {
                Some(r) => Some(r),
                None => {
                    cx.error(
                        o,
                        ROUTES,
                        Some("role"),
                        format!("role {r:?} is not viewer, editor or manager"),
                    );
                    continue;
                }
            },
        };
        let src = RouteSource {
            path: s.path.as_deref(),
            path_prefix: s.path_prefix.as_deref(),
            methods: s.methods.as_deref(),
            host: s.host.as_deref(),
            resource: s.resource.as_deref(),
            role,
            public: s.public,
            case_insensitive: s.case_insensitive,
        };
        match Route::compile(&src) {
            Ok(route) => {
                if let Target::Protected { resource, .. } = &route.target {
                    if let Some(lit) = resource.literal() {
                        if !resource_origin.contains_key(lit) {
                            cx.error(
                                o,
                                ROUTES,
                                Some("resource"),
                                format!("resource {lit:?} is not defined in resources"),
                            );
                        }
                    }
                }
                routes.push(route);
            }
            Err(e) => {
                let field = if s.path.is_none() && e.field == "path" && s.path_prefix.is_some() {
                    "path_prefix"
                } else {
                    e.field
                };
                cx.error(o, ROUTES, Some(field), e.message)
            }
        }
    }

    let has_errors = cx.diags.iter().any(|d| d.severity == Severity::Error);
    if has_errors {
        return Err(ConfigError::Invalid {
            diagnostics: cx.diags,
        });
    }
    Ok(Snapshot {
        generation: 0,
        hash: crate::config::combined_digest(&config.hash, &referenced_files),
        referenced_files,
        ssos,
        issuers,
        identities,
        by_sso,
        identity_index,
        identity_by_name,
        resources,
        binding_count,
        router: Router::new(routes),
        warnings: cx.diags,
    })
}

fn path_display(s: &crate::config::SsoSpec) -> String {
    s.jwks_file.clone().unwrap_or_default()
}

fn load_key_file(
    path: &std::path::Path,
    algorithms: AlgSet,
) -> Result<(KeySet, Vec<crate::keys::SkippedKey>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    KeySet::from_jwks(&bytes, algorithms).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_texts;
    use std::path::Path;

    fn compile_text(text: &str) -> Result<Snapshot, Vec<Diagnostic>> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keys.json"), r#"{"keys":[]}"#).unwrap();
        let mut d = Vec::new();
        let cfg = parse_texts(dir.path(), &[("c.yaml".into(), text.into())], &mut d);
        assert!(d.is_empty(), "{d:?}");
        compile(&cfg).map_err(|e| e.diagnostics().to_vec())
    }

    const SSO: &str = "sso_integrations:\n  - name: ci\n    type: oidc\n    issuer: https://idp\n    audiences: [cg]\n    jwks_file: keys.json\n";

    fn errors(text: &str) -> Vec<String> {
        match compile_text(text) {
            Ok(_) => vec![],
            Err(d) => d
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .map(|d| d.to_string())
                .collect(),
        }
    }

    #[test]
    fn a_minimal_config_compiles() {
        let snap = compile_text(&format!(
            "{SSO}external_identities:\n  - name: bot\n    sso_fqn: ci\n"
        ))
        .unwrap();
        assert_eq!(snap.identities.len(), 1);
        assert!(snap.sso_for_issuer("https://idp").is_some());
        assert!(snap.sso_for_issuer("https://idp/").is_none());
    }

    #[test]
    fn references_and_names_are_checked_with_locations() {
        let e = errors(&format!(
            "{SSO}external_identities:\n  - name: bot\n    sso_fqn: nope\n"
        ));
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("c.yaml:9:14: error: sso_fqn \"nope\""),
            "{e:?}"
        );
        let e = errors(&format!("{SSO}external_identities:\n  - name: bot\n    sso_fqn: ci\n  - name: bot\n    sso_fqn: ci\n"));
        assert!(
            e[0].contains("defined twice (first at c.yaml:8:11)"),
            "{e:?}"
        );
        let e = errors(&format!(
            "{SSO}external_identities:\n  - name: bad name\n    sso_fqn: ci\n"
        ));
        assert!(e[0].contains("letters, digits and hyphens"), "{e:?}");
    }

    #[test]
    fn login_enabled_sso_cannot_back_identities() {
        let text = SSO.replace("type: oidc", "type: oidc\n    login_enabled: true");
        let e = errors(&format!(
            "{text}external_identities:\n  - name: bot\n    sso_fqn: ci\n"
        ));
        assert!(e[0].contains("login_enabled: true"), "{e:?}");
    }

    #[test]
    fn bad_roles_routes_and_claims_are_errors() {
        let base = format!("{SSO}external_identities:\n  - name: bot\n    sso_fqn: ci\n");
        let e = errors(&format!("{base}resources:\n  - fqn: model:a\n    collaborators:\n      - subject: external-identity:bot\n        role: owner\n"));
        assert!(e[0].contains("role \"owner\""), "{e:?}");
        let e = errors(&format!(
            "{base}routes:\n  - path: /a/{{x}}\n    resource: model:{{y}}\n    role: viewer\n"
        ));
        assert!(e[0].contains("{y} is not a variable"), "{e:?}");
        let e = errors(&format!(
            "{base}routes:\n  - path: /a\n    resource: model:missing\n    role: viewer\n"
        ));
        assert!(e[0].contains("not defined in resources"), "{e:?}");
        let e = errors(&format!("{SSO}external_identities:\n  - name: bot\n    sso_fqn: ci\n    claims:\n      groups: [a, b]\n"));
        assert!(e[0].contains("string, number or boolean"), "{e:?}");
        let e = errors(&SSO.replace(
            "jwks_file: keys.json",
            "jwks_uri: http://idp.example.com/keys",
        ));
        assert!(e[0].contains("must use https"), "{e:?}");
        assert!(
            errors(&SSO.replace("jwks_file: keys.json", "jwks_uri: https://idp/keys")).is_empty()
        );
        let e = errors(&SSO.replace(
            "audiences: [cg]",
            "audiences: [cg]\n    algorithms: [HS256]",
        ));
        assert!(e[0].contains("HS256"), "{e:?}");
    }

    #[test]
    fn a_missing_collaborator_identity_is_a_warning_and_ignored() {
        let snap = compile_text(&format!(
            "{SSO}resources:\n  - fqn: model:a\n    collaborators:\n      - subject: external-identity:gone\n        role: viewer\n"
        ))
        .unwrap();
        assert_eq!(snap.warnings.len(), 2, "{:?}", snap.warnings); // plus: the empty key set
        assert!(snap
            .warnings
            .iter()
            .any(|w| w.message.contains("\"gone\" does not exist")));
        assert!(snap.bindings("model:a").is_empty());
    }

    #[test]
    fn identities_are_indexed_most_claims_first() {
        let snap = compile_text(&format!(
            "{SSO}external_identities:\n  - name: any\n    sso_fqn: ci\n  - name: two\n    sso_fqn: ci\n    claims: {{a: 1, b: true}}\n  - name: one\n    sso_fqn: ci\n    claims: {{a: 1}}\n"
        ))
        .unwrap();
        let order: Vec<&str> = snap
            .identities_of(0)
            .iter()
            .map(|i| &*snap.identities[*i].name)
            .collect();
        assert_eq!(order, ["two", "one", "any"]);
        assert_eq!(snap.identity_index.order(0), snap.identities_of(0));
        let _ = Path::new(".");
    }
}
