//! `claimgate explain`: the whole decision for one token and request, step by step.
//!
//! The report is what an [`Observer`] saw while [`pipeline::decide_observed`], the function
//! every check of the server runs, made the decision, so it cannot drift from the server.
//! What the report adds changes nothing: where things are defined, the configured issuers
//! closest to an unknown one, and the claims of identities that selection never reached.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::Config;
use crate::decision::{self, Allow, Credentials, Decision, Reason};
use crate::identity::{Candidacy, ClaimMatcher, ClaimOutcome, Identity, IdentityObserver};
use crate::keys::KeyType;
use crate::pipeline::{self, Observer};
use crate::provider::Remote;
use crate::role::Role;
use crate::routing::{Route, RouteMiss, RouteObserver, Target, TargetStep};
use crate::snapshot::{KeySource, Snapshot};
use crate::token::{self, Rejection, TokenObserver, TokenStep};

mod report;
mod text;

pub use report::{
    BindingInfo, Candidate, Capture, ClaimCheck, Collaborator, IssuerHint, Report, RequestInfo,
    RouteInfo, RouteTried, SelectionInfo, Step, StepOutcome, TargetInfo, TokenInfo, Verdict,
};

/// The token verification steps, in the order they run.
pub const TOKEN_STEPS: [&str; 9] = [
    "parse",
    "header",
    "issuer",
    "algorithm",
    "key",
    "signature",
    "times",
    "audience",
    "subject",
];

/// The request to explain, as given on the command line.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The token, or a whole `Authorization` value such as `Bearer …`; empty for none.
    pub token: &'a str,
    /// HTTP method.
    pub method: &'a str,
    /// Path, with query.
    pub path: &'a str,
    /// Host (`:authority`).
    pub host: &'a str,
    /// The resource Envoy would name in `context_extensions`.
    pub resource: Option<&'a str>,
    /// The role Envoy would name in `context_extensions`.
    pub role: Option<&'a str>,
}

/// The `Authorization` value the input stands for: a bare token gets the `Bearer` scheme,
/// anything with a space is taken as a whole header value.
fn authorization(token: &str) -> Option<Cow<'_, str>> {
    let t = token.trim();
    if t.is_empty() {
        None
    } else if t.contains(char::is_whitespace) {
        Some(Cow::Borrowed(t))
    } else {
        Some(Cow::Owned(format!("Bearer {t}")))
    }
}

/// What loading an SSO's remote keys before the decision gave.
#[derive(Debug, Clone, Serialize)]
pub struct KeyLoad {
    /// The SSO whose keys were fetched.
    pub sso: String,
    /// Where they were fetched from.
    pub source: String,
    /// How many usable keys the set holds, when the fetch succeeded.
    pub keys: Option<usize>,
    /// Why the fetch failed.
    pub error: Option<String>,
}

/// Fetch the remote keys of the SSO the token names, once, so the decision sees what a
/// running server would have loaded. `None` when the token names no SSO with remote keys.
pub async fn load_remote_keys(snap: &Snapshot, token: &str) -> Option<KeyLoad> {
    let remote = {
        let auth = authorization(token)?;
        let Credentials::Bearer(raw) = Credentials::from_header(&auth) else {
            return None;
        };
        let parsed = token::parse(raw).ok()?;
        let (_, sso) = snap.sso_for_issuer(parsed.issuer()?)?;
        (
            sso.name.to_string(),
            source_text(&sso.source),
            sso.remote.clone()?,
        )
    };
    let (sso, source, keys) = remote;
    let result = keys.load_now().await;
    Some(KeyLoad {
        sso,
        source,
        keys: result.as_ref().ok().copied(),
        error: result.err(),
    })
}

fn source_text(source: &KeySource) -> String {
    match source {
        KeySource::File(p) => p.display().to_string(),
        KeySource::Remote(Remote::Jwks(url)) => url.to_string(),
        KeySource::Remote(Remote::Discovery(issuer)) => format!("discovery from {issuer}"),
        KeySource::None => "none".into(),
    }
}

/// Explain the decision for `input` against `snap` at time `now` (seconds since the epoch).
///
/// `config` (the files the snapshot came from) adds `file:line:col` locations; `keys` is the
/// result of [`load_remote_keys`], if it was run.
pub fn explain(
    snap: &Snapshot,
    config: Option<&Config>,
    input: &Input<'_>,
    now: u64,
    keys: Option<KeyLoad>,
) -> Report {
    let auth = authorization(input.token);
    let credentials = match &auth {
        None => Credentials::Missing,
        Some(v) => Credentials::from_header(v),
    };
    let req = decision::Request {
        method: input.method,
        path: input.path,
        host: input.host,
        credentials,
        ext_resource: input.resource,
        ext_role: input.role,
    };
    let mut watch = Watch::new(snap, config);
    let decision = pipeline::decide_observed(snap, &req, now, &mut watch);
    watch.report(input, credentials, decision, keys)
}

/// Locations of identities and routes, when the configuration files are at hand.
struct Places<'c> {
    config: Option<&'c Config>,
    identities: HashMap<&'c str, crate::config::Origin>,
}

impl<'c> Places<'c> {
    fn new(config: Option<&'c Config>) -> Self {
        let identities = config
            .map(|c| {
                c.identities
                    .iter()
                    .map(|i| (i.spec.name.as_str(), i.origin))
                    .collect()
            })
            .unwrap_or_default();
        Places { config, identities }
    }

    fn identity(&self, name: &str) -> Option<String> {
        let origin = self.identities.get(name)?;
        Some(
            self.config?
                .place(*origin, "external_identities", Some("name")),
        )
    }

    fn route(&self, index: usize) -> Option<String> {
        let c = self.config?;
        let item = c.routes.get(index)?;
        Some(c.place(item.origin, "routes", None))
    }
}

/// The observer that writes the report.
struct Watch<'s> {
    snap: &'s Snapshot,
    places: Places<'s>,
    extensions: bool,
    unnormalized: bool,
    tried: Vec<RouteTried>,
    matched: Option<TargetInfo>,
    steps: Vec<Step>,
    header: Option<Value>,
    claims: Option<Value>,
    issuer: Option<String>,
    sso: Option<String>,
    pending: Vec<ClaimCheck>,
    candidates: Vec<Candidate>,
    binding: Option<BindingInfo>,
}

fn route_info(places: &Places<'_>, index: usize, route: &Route) -> RouteInfo {
    RouteInfo {
        index,
        location: places.route(index),
        path: route.display.to_string(),
        prefix: route.is_prefix(),
        methods: route
            .methods()
            .map(|ms| ms.iter().map(|m| m.to_string()).collect()),
        host: route.host().map(str::to_owned),
    }
}

fn facts<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn key_type_name(kt: KeyType) -> &'static str {
    match kt {
        KeyType::Rsa => "RSA",
        KeyType::P256 => "EC P-256",
        KeyType::P384 => "EC P-384",
        KeyType::Ed25519 => "Ed25519",
    }
}

/// A NumericDate as RFC 3339 and relative to `now`.
fn when(t: f64, now: u64) -> String {
    if !t.is_finite() || t < 0.0 {
        return format!("{t}");
    }
    let at = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(t as u64));
    let now = now as f64;
    let rel = Duration::from_secs((t - now).abs() as u64);
    if rel.is_zero() {
        format!("{at} (now)")
    } else if t > now {
        format!("{at} (in {})", humantime::format_duration(rel))
    } else {
        format!("{at} ({} ago)", humantime::format_duration(rel))
    }
}

fn times_text(claims: &Value, now: u64, leeway: u64) -> String {
    let date = |name: &str| match claims.get(name) {
        None => format!("no {name}"),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(t) => format!("{name} {}", when(t, now)),
            None => format!("{name} {n}"),
        },
        Some(v) => format!("{name} {v} (not a number)"),
    };
    let now_text = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(now));
    format!(
        "{}, {}, now {now_text}, leeway {leeway}s",
        date("exp"),
        date("nbf")
    )
}

impl<'s> Watch<'s> {
    fn new(snap: &'s Snapshot, config: Option<&'s Config>) -> Self {
        Watch {
            snap,
            places: Places::new(config),
            extensions: false,
            unnormalized: false,
            tried: Vec::new(),
            matched: None,
            steps: Vec::new(),
            header: None,
            claims: None,
            issuer: None,
            sso: None,
            pending: Vec::new(),
            candidates: Vec::new(),
            binding: None,
        }
    }
}

impl RouteObserver for Watch<'_> {
    fn target(&mut self, step: TargetStep<'_>) {
        match step {
            TargetStep::Extensions { .. } => self.extensions = true,
            TargetStep::Unnormalized => self.unnormalized = true,
            TargetStep::Missed { index, route, miss } => self.tried.push(RouteTried {
                route: route_info(&self.places, index, route),
                miss: match miss {
                    RouteMiss::Method => "method",
                    RouteMiss::Host => "host",
                    RouteMiss::Path => "path",
                },
            }),
            TargetStep::Matched(m) => {
                let captures = m
                    .captures()
                    .map(|(name, value)| Capture {
                        name: name.to_owned(),
                        value: value.to_owned(),
                    })
                    .collect();
                let (public, resource, role) = match &m.route.target {
                    Target::Public => (true, None, None),
                    Target::Protected { resource, role } => {
                        (false, Some(m.resource(resource)), Some(*role))
                    }
                };
                self.matched = Some(TargetInfo {
                    by: "route",
                    normalized: true,
                    tried: Vec::new(),
                    route: Some(route_info(&self.places, m.index, m.route)),
                    captures,
                    public,
                    resource,
                    role,
                    problem: None,
                });
            }
            TargetStep::Unrouted => {}
        }
    }
}

impl TokenObserver for Watch<'_> {
    fn token(&mut self, step: TokenStep<'_>, outcome: Result<(), &Rejection>) {
        let (name, summary, facts) = match step {
            TokenStep::Parse { header, claims } => {
                self.header = header.map(|h| Value::Object(h.clone()));
                self.claims = claims.cloned();
                (
                    "parse",
                    "a compact JWS whose header and payload are JSON objects".to_owned(),
                    Map::new(),
                )
            }
            TokenStep::Header { header } => {
                let alg = header.get("alg").cloned().unwrap_or(Value::Null);
                let kid = header.get("kid").cloned().unwrap_or(Value::Null);
                (
                    "header",
                    format!("alg {alg}, kid {kid}"),
                    facts([("alg", alg), ("kid", kid)]),
                )
            }
            TokenStep::Issuer { iss, sso } => {
                self.issuer = iss.map(str::to_owned);
                self.sso = sso.map(|s| s.name.to_string());
                let summary = match sso {
                    Some(s) => format!("{:?} is the issuer of SSO {}", s.issuer, s.name),
                    None => format!("iss {}", iss.map(|i| format!("{i:?}")).unwrap_or_default()),
                };
                let sso_name = sso.map(|s| Value::from(&*s.name)).unwrap_or(Value::Null);
                (
                    "issuer",
                    summary,
                    facts([
                        ("iss", iss.map(Value::from).unwrap_or(Value::Null)),
                        ("sso", sso_name),
                    ]),
                )
            }
            TokenStep::Algorithm { alg, sso } => {
                let allowed = sso.algorithms.names();
                (
                    "algorithm",
                    format!("{alg} (SSO {} allows {})", sso.name, allowed.join(", ")),
                    facts([("alg", Value::from(alg)), ("allowed", Value::from(allowed))]),
                )
            }
            TokenStep::Key { kid, alg, sso, key } => {
                let kids: Vec<Value> = sso
                    .keys
                    .load()
                    .keys()
                    .iter()
                    .map(|k| k.kid.as_deref().map(Value::from).unwrap_or(Value::Null))
                    .collect();
                let summary = match (kid, key) {
                    (Some(k), Some(key)) => {
                        format!("key {k:?} ({})", key_type_name(key.key_type))
                    }
                    (None, Some(key)) => format!(
                        "no kid; the one {} key of SSO {} that fits {}",
                        key_type_name(key.key_type),
                        sso.name,
                        alg.name()
                    ),
                    _ => format!(
                        "SSO {} holds {} usable key(s), kids {}",
                        sso.name,
                        kids.len(),
                        Value::from(kids.clone())
                    ),
                };
                let kid = kid.map(Value::from).unwrap_or(Value::Null);
                (
                    "key",
                    summary,
                    facts([("kid", kid), ("available", Value::from(kids))]),
                )
            }
            TokenStep::Signature { kid, alg } => (
                "signature",
                format!("verifies with key {:?} ({})", kid.unwrap_or(""), alg.name()),
                Map::new(),
            ),
            TokenStep::Times {
                claims,
                now,
                leeway,
            } => {
                let get = |n: &str| claims.get(n).cloned().unwrap_or(Value::Null);
                (
                    "times",
                    times_text(claims, now, leeway),
                    facts([
                        ("exp", get("exp")),
                        ("nbf", get("nbf")),
                        ("now", Value::from(now)),
                        ("leeway_seconds", Value::from(leeway)),
                    ]),
                )
            }
            TokenStep::Audience { claims, sso } => {
                let aud = claims.get("aud").cloned().unwrap_or(Value::Null);
                let accepted: Vec<&str> = sso.audiences.iter().map(|a| &**a).collect();
                (
                    "audience",
                    format!(
                        "aud {aud}; SSO {} accepts {}",
                        sso.name,
                        accepted.join(", ")
                    ),
                    facts([("aud", aud), ("accepted", Value::from(accepted))]),
                )
            }
            TokenStep::Subject { claims } => {
                let sub = claims.get("sub").cloned().unwrap_or(Value::Null);
                ("subject", format!("sub {sub}"), facts([("sub", sub)]))
            }
        };
        let (outcome, detail, reason) = match outcome {
            Ok(()) => (StepOutcome::Ok, summary, None),
            Err(r) => {
                // The rejection's detail says what failed; add what it looked at where the
                // detail does not already say it.
                let detail = match name {
                    "header" | "key" | "times" | "audience" => format!("{} ({summary})", r.detail),
                    _ => r.detail.clone(),
                };
                (StepOutcome::Failed, detail, Some(r.reason.code()))
            }
        };
        self.steps.push(Step {
            step: name,
            outcome,
            detail,
            reason,
            facts,
        });
    }
}

impl IdentityObserver for Watch<'_> {
    const EXHAUSTIVE: bool = true;

    fn claim(
        &mut self,
        _index: usize,
        claim: &ClaimMatcher,
        outcome: ClaimOutcome,
        actual: Option<&Value>,
    ) {
        self.pending.push(ClaimCheck {
            key: claim.key.to_string(),
            expected: claim.value.to_json(),
            actual: actual.cloned(),
            outcome: outcome.as_str(),
        });
    }

    fn candidate(&mut self, _index: usize, identity: &Identity, candidacy: Candidacy) {
        let (verdict, would_match) = match candidacy {
            Candidacy::Matched => ("matched", None),
            Candidacy::Unmatched => ("unmatched", None),
            Candidacy::NotReached { matches } => ("not_reached", Some(matches)),
        };
        self.candidates.push(Candidate {
            name: identity.name.to_string(),
            location: self.places.identity(&identity.name),
            claim_count: identity.claims.len(),
            verdict,
            would_match,
            claims: std::mem::take(&mut self.pending),
        });
    }
}

impl Observer for Watch<'_> {
    fn binding(&mut self, resource: &str, identity: &Identity, held: Option<Role>, required: Role) {
        let mut collaborators: Vec<Collaborator> = self
            .snap
            .bindings(resource)
            .into_iter()
            .filter_map(|(i, role)| {
                let identity = self.snap.identities.get(i)?.name.to_string();
                Some(Collaborator { identity, role })
            })
            .collect();
        collaborators.sort_by(|a, b| b.role.cmp(&a.role).then(a.identity.cmp(&b.identity)));
        self.binding = Some(BindingInfo {
            resource: resource.to_owned(),
            defined: self.snap.has_resource(resource),
            identity: identity.name.to_string(),
            held,
            required,
            collaborators,
        });
    }
}

/// Configured issuers close to `iss`, and login-enabled SSOs that have it.
pub fn issuer_hints(snap: &Snapshot, iss: &str) -> Vec<IssuerHint> {
    let host = |s: &str| {
        url::Url::parse(s)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
    };
    let without_scheme = |s: &str| {
        s.split_once("://")
            .map(|(_, rest)| rest.to_owned())
            .unwrap_or_else(|| s.to_owned())
    };
    let mut hints = Vec::new();
    for sso in &snap.ssos {
        let configured = &*sso.issuer;
        let closeness = if configured == iss {
            Some("has exactly this issuer".to_owned())
        } else if configured.trim_end_matches('/') == iss.trim_end_matches('/') {
            Some("differs only by a trailing slash (issuers are compared byte for byte)".to_owned())
        } else if configured.eq_ignore_ascii_case(iss) {
            Some("differs only in letter case (issuers are compared byte for byte)".to_owned())
        } else if without_scheme(configured) == without_scheme(iss) {
            Some("differs only in the scheme".to_owned())
        } else if host(configured).is_some() && host(configured) == host(iss) {
            Some(format!("has the same host but issuer {configured:?}"))
        } else {
            None
        };
        let Some(mut why) = closeness else { continue };
        if sso.login_enabled {
            why.push_str(
                ", but it has login_enabled: true: an SSO used for login verifies no token for external identities",
            );
        }
        hints.push(IssuerHint {
            sso: sso.name.to_string(),
            issuer: configured.to_owned(),
            why,
        });
    }
    hints
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

impl Watch<'_> {
    fn report(
        mut self,
        input: &Input<'_>,
        credentials: Credentials<'_>,
        decision: Decision,
        keys: Option<KeyLoad>,
    ) -> Report {
        let request = RequestInfo {
            method: input.method.to_owned(),
            path: input.path.to_owned(),
            host: input.host.to_owned(),
            credentials: match credentials {
                Credentials::Missing => "missing",
                Credentials::NotBearer => "not_bearer",
                Credentials::Multiple => "multiple",
                Credentials::Bearer(_) => "bearer",
            },
            resource: input.resource.map(str::to_owned),
            role: input.role.map(str::to_owned),
        };
        let target = self.target_info(input);
        let failed = self
            .steps
            .iter()
            .find(|s| s.outcome == StepOutcome::Failed)
            .map(|s| s.step);
        if !self.steps.is_empty() {
            for name in TOKEN_STEPS.iter().skip(self.steps.len()) {
                self.steps.push(Step {
                    step: name,
                    outcome: StepOutcome::NotReached,
                    detail: "not reached".into(),
                    reason: None,
                    facts: Map::new(),
                });
            }
        }
        let unknown_issuer = self
            .steps
            .iter()
            .any(|s| s.step == "issuer" && s.reason == Some(Reason::UnknownIssuer.code()));
        let issuer_hints = match (&self.issuer, unknown_issuer) {
            (Some(iss), true) => issuer_hints(self.snap, iss),
            _ => Vec::new(),
        };
        let verified = !self.steps.is_empty() && failed.is_none();
        let identity = if verified {
            self.selection_info()
        } else {
            None
        };
        let token = TokenInfo {
            checked: !self.steps.is_empty(),
            header: self.header,
            claims: self.claims,
            issuer: self.issuer,
            sso: self.sso,
            keys,
            steps: self.steps,
            issuer_hints,
        };
        let verdict = match decision {
            Decision::Allow(Allow::Public { route }) => Verdict {
                allowed: true,
                status: 200,
                reason: "allowed",
                detail: format!("routes[{route}] is public: no token is needed"),
                failed_step: None,
                identity: None,
                sso: None,
                subject: None,
                resource: None,
                role: None,
            },
            Decision::Allow(Allow::Identity(g)) => Verdict {
                allowed: true,
                status: 200,
                reason: "allowed",
                detail: format!(
                    "identity {} is {} on {}",
                    g.identity,
                    g.role.as_str(),
                    g.resource
                ),
                failed_step: None,
                identity: Some(g.identity.to_string()),
                sso: Some(g.sso.to_string()),
                subject: Some(g.subject),
                resource: Some(g.resource),
                role: Some(g.role),
            },
            Decision::Deny(d) => Verdict {
                allowed: false,
                status: d.reason.status(),
                reason: d.reason.code(),
                failed_step: Some(match d.reason {
                    Reason::MissingToken => "credentials",
                    Reason::MalformedToken if credentials == Credentials::Multiple => "credentials",
                    Reason::NoIdentity | Reason::AmbiguousIdentity => "identity",
                    Reason::NoRoute => "route",
                    Reason::InsufficientRole => "role",
                    Reason::NotReady | Reason::Internal => "service",
                    _ => failed.unwrap_or("token"),
                }),
                detail: d.detail,
                identity: None,
                sso: None,
                subject: None,
                resource: None,
                role: None,
            },
        };
        Report {
            request,
            target,
            token,
            identity,
            binding: self.binding,
            verdict,
        }
    }

    fn target_info(&mut self, input: &Input<'_>) -> TargetInfo {
        let tried = std::mem::take(&mut self.tried);
        if self.extensions {
            let role = input.role.and_then(Role::parse);
            let usable = role.is_some() && input.resource.is_some_and(|r| !r.is_empty());
            return TargetInfo {
                by: "context_extensions",
                normalized: true,
                tried,
                route: None,
                captures: Vec::new(),
                public: false,
                resource: input.resource.map(str::to_owned),
                role,
                problem: (!usable).then(|| {
                    "context_extensions need both a resource and a role (viewer, editor or manager); the request is denied no_route once the token is verified".to_owned()
                }),
            };
        }
        match self.matched.take() {
            Some(matched) => TargetInfo { tried, ..matched },
            None => TargetInfo {
                by: "none",
                normalized: !self.unnormalized,
                tried,
                route: None,
                captures: Vec::new(),
                public: false,
                resource: None,
                role: None,
                problem: Some(if self.unnormalized {
                    "the path is not normalized ('.' or '..' segments, empty segments, backslashes or encoded slashes), so no route matches; the request is denied no_route once the token is verified".to_owned()
                } else {
                    format!(
                        "no route matches {} {} (host {:?}); the request is denied no_route once the token is verified",
                        input.method, input.path, input.host
                    )
                }),
            },
        }
    }

    fn selection_info(&mut self) -> Option<SelectionInfo> {
        let sso = self.sso.clone()?;
        let candidates = std::mem::take(&mut self.candidates);
        let matched: Vec<&Candidate> = candidates
            .iter()
            .filter(|c| c.verdict == "matched")
            .collect();
        let (outcome, chosen, why) = match matched.as_slice() {
            [] => {
                let closest = candidates
                    .iter()
                    .filter(|c| c.claim_count > 0)
                    .min_by_key(|c| c.claims.iter().filter(|k| k.outcome != "matched").count());
                let why = match (candidates.is_empty(), closest) {
                    (true, _) => format!("SSO {sso} backs no external identity"),
                    (false, Some(c)) => format!(
                        "no identity of SSO {sso} has all its claims in the token; closest: {} ({} of {} fail)",
                        c.name,
                        c.claims.iter().filter(|k| k.outcome != "matched").count(),
                        plural(c.claim_count, "claim", "claims")
                    ),
                    (false, None) => format!("no identity of SSO {sso} has all its claims in the token"),
                };
                ("no_identity", None, why)
            }
            [one] => {
                let also: Vec<String> = candidates
                    .iter()
                    .filter(|c| c.would_match == Some(true))
                    .map(|c| format!("{} ({})", c.name, plural(c.claim_count, "claim", "claims")))
                    .collect();
                let mut why = format!(
                    "{} matches with {}, and no other identity with as many claims matches",
                    one.name,
                    plural(one.claim_count, "claim", "claims")
                );
                if !also.is_empty() {
                    why.push_str(&format!(
                        "; also matching, with fewer claims: {}",
                        also.join(", ")
                    ));
                }
                ("chosen", Some(one.name.clone()), why)
            }
            [a, b, ..] => (
                "ambiguous",
                None,
                format!(
                    "{} and {} both match with {}: give the one that should win another claim, or make them exclusive (the same claim with different values)",
                    a.name,
                    b.name,
                    plural(a.claim_count, "claim", "claims")
                ),
            ),
        };
        Some(SelectionInfo {
            sso,
            candidates,
            outcome,
            chosen,
            why,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials_of(input: &str) -> String {
        match authorization(input) {
            None => "missing".into(),
            Some(v) => format!("{:?}", Credentials::from_header(&v)),
        }
    }

    #[test]
    fn a_bare_token_or_a_whole_authorization_value_is_accepted() {
        assert_eq!(credentials_of("abc.def.ghi\n"), "Bearer(\"abc.def.ghi\")");
        assert_eq!(
            credentials_of("Bearer abc.def.ghi"),
            "Bearer(\"abc.def.ghi\")"
        );
        assert_eq!(credentials_of("Basic dXNlcg=="), "NotBearer");
        assert_eq!(credentials_of("Bearer a, Bearer b"), "Multiple");
        assert_eq!(credentials_of("  "), "missing");
    }
}
