//! Compiling a parsed [`Config`] into a [`Snapshot`], one function per section.
//!
//! Sections are compiled in the order they depend on each other (SSOs, identities, teams,
//! resources and their collaborators, routes); each collects its diagnostics, located at the item and
//! field that caused them, and any error refuses the whole configuration.

use std::collections::HashMap;

use super::context::{Ctx, IDS, RES, ROUTES, SSO};
use super::hierarchy::{self, Teams};
use super::key_source::{self, KeySource};
use super::{Resource, Snapshot, Sso, Subject, IDENTITY_SUBJECT, TEAM_SUBJECT};
use crate::core::config::ConfigError;
use crate::core::config::{Config, Item, KeyFiles, Origin, SsoSpec};
use crate::core::identity::{ClaimMatcher, Identity};
use crate::core::keys::remote::KeyFeeds;
use crate::core::keys::{Alg, AlgSet};
use crate::core::role::Role;
use crate::core::routing::{Route, RouteSource, Router, Target};

/// Validate a parsed configuration and compile it into a snapshot, with its key files as
/// [`load`](crate::core::load) read them (the snapshot's hash covers exactly those bytes):
/// compiling reads nothing itself. Errors and warnings are all collected; any error refuses
/// the whole configuration. Keeps the remote key sets of `previous` whose source is unchanged, and
/// giving each new one a feed from `feeds` (none: the sets stay empty).
pub fn compile_with(
    config: &Config,
    key_files: &KeyFiles,
    previous: Option<&Snapshot>,
    feeds: Option<&dyn KeyFeeds>,
) -> Result<Snapshot, ConfigError> {
    let mut cx = Ctx::new(config, key_files);
    let ssos = ssos(&mut cx, previous, feeds);
    let identities = identities(&mut cx, &ssos);
    let teams = hierarchy::teams(&mut cx, &identities.by_name, identities.list.len());
    let resources = resources(&mut cx, &identities.by_name, &teams);
    let routes = routes(&mut cx, &resources.origins);
    let warnings = cx.finish()?;
    Ok(Snapshot {
        generation: 0,
        hash: key_files
            .digest(&config.hash, &ssos.referenced_files)
            .into(),
        referenced_files: ssos.referenced_files,
        ssos: ssos.list,
        issuers: ssos.issuers,
        identities: identities.list,
        by_sso: identities.by_sso,
        identity_index: identities.index,
        identity_by_name: identities.by_name,
        teams: teams.list,
        team_by_name: teams.by_name,
        member_of: teams.member_of,
        resources: resources.list,
        resource_by_fqn: resources.by_fqn,
        binding_count: resources.binding_count,
        router: Router::new(routes),
        warnings,
    })
}

/// The compiled SSO integrations and their indexes.
struct Ssos<'c> {
    list: Vec<Sso>,
    by_name: HashMap<&'c str, usize>,
    issuers: HashMap<Box<str>, usize>,
    referenced_files: Vec<std::path::PathBuf>,
}

fn ssos<'c>(
    cx: &mut Ctx<'c>,
    previous: Option<&Snapshot>,
    feeds: Option<&dyn KeyFeeds>,
) -> Ssos<'c> {
    let config = cx.config();
    let mut out = Ssos {
        list: Vec::new(),
        by_name: HashMap::new(),
        issuers: HashMap::new(),
        referenced_files: Vec::new(),
    };
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
        if let Some(&first) = out.by_name.get(s.name.as_str()) {
            let at = cx
                .config()
                .place(config.ssos[first].origin, SSO, Some("name"));
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
        let algorithms = algorithms(cx, o, s);
        let leeway = s.leeway_seconds.unwrap_or(30);
        if leeway > 300 {
            cx.error(
                o,
                SSO,
                Some("leeway_seconds"),
                format!("leeway_seconds is {leeway}; at most 300"),
            );
        }
        let keys = key_source::keys(cx, item, algorithms, previous, feeds);
        if let Some(KeySource::File(path)) = &keys.source {
            out.referenced_files.push(path.clone());
        }
        if let Some(path) = &keys.ca_file {
            out.referenced_files.push(path.clone());
        }
        let index = out.list.len();
        out.by_name.insert(&s.name, index);
        if !s.login_enabled && !s.issuer.is_empty() {
            if let Some(&other) = out.issuers.get(s.issuer.as_str()) {
                let first: &Sso = &out.list[other];
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
                out.issuers.insert(s.issuer.as_str().into(), index);
            }
        }
        out.list.push(Sso {
            name: s.name.as_str().into(),
            issuer: s.issuer.as_str().into(),
            audiences: s.audiences.iter().map(|a| Box::from(a.as_str())).collect(),
            algorithms,
            leeway,
            login_enabled: s.login_enabled,
            source: keys.source.unwrap_or(KeySource::None),
            keys: keys.keys,
            remote: keys.remote,
            dev_key: keys.dev_key,
        });
    }
    out
}

fn algorithms(cx: &mut Ctx<'_>, o: Origin, s: &SsoSpec) -> AlgSet {
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
    algorithms
}

/// The compiled external identities and their indexes.
struct Identities {
    list: Vec<Identity>,
    by_name: HashMap<Box<str>, usize>,
    by_sso: Vec<Vec<usize>>,
    index: crate::core::identity::Index,
}

fn identities(cx: &mut Ctx<'_>, ssos: &Ssos<'_>) -> Identities {
    let config = cx.config();
    let mut list: Vec<Identity> = Vec::new();
    let mut by_name: HashMap<Box<str>, usize> = HashMap::new();
    let mut origins = Vec::new();
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
        if let Some(&first) = by_name.get(s.name.as_str()) {
            let at = cx.config().place(origins[first], IDS, Some("name"));
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
        let sso = match ssos.by_name.get(s.sso_fqn.as_str()) {
            None => {
                cx.error(
                    o,
                    IDS,
                    Some("sso_fqn"),
                    format!("sso_fqn {:?} names no SSO integration", s.sso_fqn),
                );
                continue;
            }
            Some(&i) if ssos.list[i].login_enabled => {
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
        let claims = claims(cx, o, &s.claims);
        let sso_spec = &ssos.list[sso];
        if let Some(msg) =
            super::tenant::unpinned(&s.name, &sso_spec.name, &sso_spec.issuer, &claims)
        {
            cx.error(o, IDS, Some("name"), msg);
        }
        by_name.insert(s.name.as_str().into(), list.len());
        origins.push(o);
        list.push(Identity {
            name: s.name.as_str().into(),
            sso,
            claims: claims.into(),
        });
    }
    let mut by_sso: Vec<Vec<usize>> = vec![Vec::new(); ssos.list.len()];
    for (i, id) in list.iter().enumerate() {
        by_sso[id.sso].push(i);
    }
    for ids in &mut by_sso {
        // Stable: among equal counts, configuration order decides which one a tie names first.
        ids.sort_by_key(|&i| std::cmp::Reverse(list[i].claims.len()));
    }
    let index = crate::core::identity::Index::build(&list, ssos.list.len());
    Identities {
        list,
        by_name,
        by_sso,
        index,
    }
}

fn claims(cx: &mut Ctx<'_>, o: Origin, spec: &serde_yaml::Mapping) -> Vec<ClaimMatcher> {
    let mut claims = Vec::new();
    for (k, v) in spec {
        let Some(key) = k.as_str() else {
            cx.error(o, IDS, Some("claims"), "claim names must be strings");
            continue;
        };
        let field = format!("claims.{key}");
        if key.starts_with('/') && !valid_pointer(key) {
            cx.error(
                o,
                IDS,
                Some(&field),
                format!("{key:?} is not a valid JSON Pointer ('~' must be followed by 0 or 1)"),
            );
            continue;
        }
        if key.is_empty() {
            cx.error(o, IDS, Some("claims"), "claim names must not be empty");
            continue;
        }
        // The claim's place (top-level name or JSON Pointer) follows from its key.
        match super::claims::condition(key, v) {
            Ok(claim) => claims.push(claim),
            Err(e) => {
                let at = match e.field.as_str() {
                    "" => field,
                    f if f.starts_with('[') => format!("{field}{f}"),
                    f => format!("{field}.{f}"),
                };
                cx.error(o, IDS, Some(&at), e.to_string());
            }
        }
    }
    if spec.len() > super::claims::MAX_CLAIMS {
        cx.error(
            o,
            IDS,
            Some("claims"),
            format!(
                "{} claims; an identity has at most {}",
                spec.len(),
                super::claims::MAX_CLAIMS
            ),
        );
    }
    claims
}

/// The compiled resources, where each was defined, and how many bindings they hold.
struct Resources<'c> {
    list: Vec<Resource>,
    by_fqn: HashMap<std::sync::Arc<str>, u32>,
    origins: HashMap<&'c str, Origin>,
    binding_count: usize,
}

fn resources<'c>(
    cx: &mut Ctx<'c>,
    identities: &HashMap<Box<str>, usize>,
    teams: &Teams,
) -> Resources<'c> {
    let config = cx.config();
    let mut out = Resources {
        list: Vec::new(),
        by_fqn: HashMap::new(),
        origins: HashMap::new(),
        binding_count: 0,
    };
    let mut parents = Vec::new();
    for item in &config.resources {
        let s = &item.spec;
        let o = item.origin;
        if !valid_fqn(&s.fqn) {
            cx.error(o, RES, Some("fqn"), format!("resource fqn {:?} must be kind:name (kind in lowercase letters, digits, hyphens)", s.fqn));
        }
        if let Some(first) = out.origins.get(s.fqn.as_str()) {
            let at = cx.config().place(*first, RES, Some("fqn"));
            cx.error(
                o,
                RES,
                Some("fqn"),
                format!("resource {:?} is defined twice (first at {at})", s.fqn),
            );
            continue;
        }
        out.origins.insert(&s.fqn, o);
        let name: std::sync::Arc<str> = s.fqn.as_str().into();
        let bindings = collaborators(cx, item, identities, teams, &mut out.binding_count);
        let enforcement = super::enforcement::of(cx, item);
        out.by_fqn.insert(name.clone(), out.list.len() as u32);
        parents.push(s.parent.as_deref().map(|p| (o, p)));
        out.list.push(Resource {
            name,
            parent: None,
            chain: Box::default(),
            binds_identities: bindings.keys().any(|s| matches!(s, Subject::Identity(_))),
            binds_teams: bindings.keys().any(|s| matches!(s, Subject::Team(_))),
            bindings,
            enforcement,
            inherited_enforcement: None,
        });
    }
    hierarchy::link(cx, &mut out.list, &parents, &out.by_fqn);
    out
}

/// A resource's collaborators: external identities and teams, each with its role.
fn collaborators(
    cx: &mut Ctx<'_>,
    item: &Item<crate::core::config::ResourceSpec>,
    identities: &HashMap<Box<str>, usize>,
    teams: &Teams,
    binding_count: &mut usize,
) -> hashbrown::HashMap<Subject, Role> {
    let s = &item.spec;
    let o = item.origin;
    let mut bindings = hashbrown::HashMap::new();
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
        let at = format!("{field}.subject");
        let subject = if let Some(name) = c.subject.strip_prefix(IDENTITY_SUBJECT) {
            match identities.get(name) {
                Some(&i) => Subject::Identity(i as u32),
                None if teams.by_name.contains_key(name) => {
                    cx.error(
                        o,
                        RES,
                        Some(&at),
                        format!("{name:?} is a team, not an external identity; write team:{name}"),
                    );
                    continue;
                }
                None => {
                    cx.warn(
                        o,
                        RES,
                        Some(&at),
                        format!("external identity {name:?} does not exist; this collaborator is ignored"),
                    );
                    continue;
                }
            }
        } else if let Some(name) = c.subject.strip_prefix(TEAM_SUBJECT) {
            match teams.by_name.get(name) {
                Some(&t) => Subject::Team(t),
                None => {
                    let hint = if identities.contains_key(name) {
                        format!("; {name} is an external identity: write external-identity:{name}")
                    } else {
                        String::new()
                    };
                    cx.warn(
                        o,
                        RES,
                        Some(&at),
                        format!("team {name:?} does not exist; this collaborator is ignored{hint}"),
                    );
                    continue;
                }
            }
        } else {
            cx.error(
                o,
                RES,
                Some(&at),
                format!(
                    "subject {:?} must be external-identity:NAME or team:NAME",
                    c.subject
                ),
            );
            continue;
        };
        let Some(role) = role else { continue };
        if bindings.insert(subject, role).is_some() {
            cx.error(
                o,
                RES,
                Some(&at),
                format!("{:?} is listed twice on {}", c.subject, s.fqn),
            );
        }
        *binding_count += 1;
    }
    bindings
}

fn routes(cx: &mut Ctx<'_>, resources: &HashMap<&str, Origin>) -> Vec<Route> {
    let config = cx.config();
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
        let compiled = Route::compile(&src).and_then(|r| match &s.parent {
            Some(p) => r.with_parent(p),
            None => Ok(r),
        });
        match compiled {
            Ok(route) => {
                if let Some(parent) = &route.parent {
                    if !resources.keys().any(|fqn| parent.can_name(fqn)) {
                        cx.warn(
                            o,
                            ROUTES,
                            Some("parent"),
                            format!(
                                "parent {:?} can never name a declared resource; it adds nothing",
                                parent.as_str()
                            ),
                        );
                    }
                }
                if let Target::Protected { resource, .. } = &route.target {
                    if let Some(lit) = resource.literal() {
                        if !resources.contains_key(lit) {
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
    routes
}

fn valid_sso_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

pub(super) fn valid_identity_name(s: &str) -> bool {
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
