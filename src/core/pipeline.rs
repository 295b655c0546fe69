//! The pipeline: one pass from the request to its [`Decision`], target → credentials →
//! token → identity → binding.
//!
//! [`decide`] is pure: it reads one snapshot and the request at a given time, and returns a
//! [`Decision`]. [`decide_observed`] is the same function with an [`Observer`] watching each
//! step; the observer is the union of each stage's own observer trait
//! ([`RouteObserver`], [`TokenObserver`], [`IdentityObserver`]) plus the binding looked up.
//! `claimgate explain` uses it, so what it shows is what the server did; [`decide`] runs it
//! with [`NoObserver`], a zero-sized type whose empty methods compile away.

use std::borrow::Cow;
use std::sync::Arc;

use crate::core::decision::{
    Allow, Credentials, Decision, Deny, Enforcement, Grant, GrantSubject, GrantedBy, Reason,
    Request, Who,
};
use crate::core::identity::{Identity, IdentityObserver, Selection};
use crate::core::role::Role;
use crate::core::routing::{ResourceTemplate, RouteMatch, RouteObserver, Target};
use crate::core::snapshot::{Held, Place, Snapshot, Subject, NO_CONFIGURATION};
use crate::core::token::{self, Facts, Rejection, TokenObserver, TokenStep};
use crate::core::token_cache::{Entry, Lookup, TokenCache};

/// Watches [`decide_observed`] make a decision: every stage's steps, and the binding looked
/// up. Every method does nothing by default.
///
/// Borrowed values live only for the call: an observer that keeps them copies them.
pub trait Observer: RouteObserver + TokenObserver + IdentityObserver {
    /// Whether a denial at the binding is to name the identity it was found to be (for the
    /// decision log, or a dry run the server decides on); otherwise it is named only when
    /// the target is in dry run, so a plain check allocates nothing for it.
    const RECORDS_DENIALS: bool = false;

    /// The role `identity` holds on `resource`, looked up against the role `required`.
    fn binding(
        &mut self,
        _resource: &str,
        _identity: &Identity,
        _held: Option<Role>,
        _required: Role,
    ) {
    }

    /// The grant that gives the identity its effective role on the target, if any: which
    /// subject, on which resource (names through the snapshot's `subject_name` and
    /// `resource_name`), and whether inherited. Reported right after [`Observer::binding`].
    fn held(&mut self, _held: Option<&Held>) {}

    /// The token was found in the cache: what its first verification established.
    fn cached(&mut self, _entry: &Entry) {}

    /// What the decision log needs of the token just verified, to keep with its cache entry.
    fn token_facts(&self) -> Option<Arc<Facts>> {
        None
    }
}

/// The observer of the request path: sees nothing and costs nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl RouteObserver for NoObserver {}
impl TokenObserver for NoObserver {}
impl IdentityObserver for NoObserver {}
impl Observer for NoObserver {}

/// The decision log's observer: keeps what may be logged of the token, read where
/// verification decoded it or from its cache entry, so nothing is parsed twice.
#[derive(Debug, Clone, Default)]
pub struct FactsObserver {
    /// The token's facts, once its header and payload were decoded.
    pub facts: Option<Arc<Facts>>,
}

impl RouteObserver for FactsObserver {}
impl IdentityObserver for FactsObserver {}
impl TokenObserver for FactsObserver {
    fn token(&mut self, step: TokenStep<'_>, _outcome: Result<(), &Rejection>) {
        if let TokenStep::Parse {
            header: Some(header),
            claims: Some(claims),
        } = step
        {
            self.facts = Some(Facts::read(header, claims));
        }
    }
}
impl Observer for FactsObserver {
    const RECORDS_DENIALS: bool = true;

    fn cached(&mut self, entry: &Entry) {
        self.facts = entry.facts.clone();
    }

    fn token_facts(&self) -> Option<Arc<Facts>> {
        self.facts.clone()
    }
}

/// Sees nothing but asks denials to name their identity: for `serve --enforcement dry_run`
/// without a decision log.
#[derive(Debug, Clone, Copy, Default)]
pub struct DenialObserver;

impl RouteObserver for DenialObserver {}
impl TokenObserver for DenialObserver {}
impl IdentityObserver for DenialObserver {}
impl Observer for DenialObserver {
    const RECORDS_DENIALS: bool = true;
}

/// Resource names up to this long are filled in without a heap allocation.
const RESOURCE_BUF: usize = 256;

/// What the request asks for, as read from Envoy's context_extensions or the route table.
enum Wanted<'r, 'p> {
    Resource(&'p str, Option<&'p str>, Role),
    Routed(RouteMatch<'r, 'p>, &'r ResourceTemplate, Role),
    Public(usize),
    Aimless(Aimless),
}

/// Why a request names no target: its denial (`no_route`) says so once the caller is
/// authenticated.
enum Aimless {
    /// No route matches the request.
    Unrouted,
    /// Envoy's context_extensions name no usable target (or enforcement): why.
    Unnamed(Cow<'static, str>),
}

/// The target of a request once resolved: a resource, where it sits, and the role it
/// needs; or why there is none.
enum Aim<'a> {
    Target(&'a str, Place, Role),
    Aimless(Aimless),
}

impl<'a> Aim<'a> {
    fn target(&self) -> Option<(&'a str, Place, Role)> {
        match *self {
            Aim::Target(resource, place, role) => Some((resource, place, role)),
            Aim::Aimless(_) => None,
        }
    }
}

/// A request that names no usable target, for `why`.
fn unnamed<'r, 'p>(why: Cow<'static, str>) -> Wanted<'r, 'p> {
    Wanted::Aimless(Aimless::Unnamed(why))
}

/// Decide one request against one snapshot at time `now` (seconds since the epoch).
pub fn decide(snap: &Snapshot, req: &Request<'_>, now: u64) -> Decision {
    decide_observed(snap, req, now, &mut NoObserver)
}

/// [`decide`], reusing what `cache` holds for the token and remembering what a verification
/// establishes; the decision is the one [`decide`] makes.
pub fn decide_cached(snap: &Snapshot, cache: &TokenCache, req: &Request<'_>, now: u64) -> Decision {
    decide_with(snap, req, now, &mut NoObserver, Some(cache))
}

/// [`decide_cached`], reporting to `obs` what it sees: on a cache hit, the entry instead of
/// the token's steps.
pub fn decide_cached_observed<O: Observer>(
    snap: &Snapshot,
    cache: &TokenCache,
    req: &Request<'_>,
    now: u64,
    obs: &mut O,
) -> Decision {
    decide_with(snap, req, now, obs, Some(cache))
}

/// [`decide`], reporting each step to `obs` (never from a cache: every step is seen).
pub fn decide_observed<O: Observer>(
    snap: &Snapshot,
    req: &Request<'_>,
    now: u64,
    obs: &mut O,
) -> Decision {
    decide_with(snap, req, now, obs, None)
}

fn decide_with<O: Observer>(
    snap: &Snapshot,
    req: &Request<'_>,
    now: u64,
    obs: &mut O,
    cache: Option<&TokenCache>,
) -> Decision {
    // No configuration: say so, rather than the no_route or unknown_issuer it would give.
    if snap.is_empty() {
        return Decision::deny(Reason::NotReady, NO_CONFIGURATION, false);
    }
    // Resolve the target first (public routes need no token) but report a missing route only
    // after authentication, so an anonymous caller learns nothing about the route table.
    if req.ext_resource.is_some() || req.ext_role.is_some() {
        obs.target(crate::core::routing::TargetStep::Extensions {
            resource: req.ext_resource,
            role: req.ext_role,
        });
    }
    let wanted = match (req.ext_resource, req.ext_role) {
        (Some(resource), Some(role)) => match Role::parse(role) {
            Some(role) if !resource.is_empty() => Wanted::Resource(resource, req.ext_parent, role),
            Some(_) => unnamed("context_extensions resource is empty".into()),
            None => unnamed(
                format!("context_extensions role {role:?} is not viewer, editor or manager").into(),
            ),
        },
        (Some(_), None) => unnamed("context_extensions names a resource but no role".into()),
        (None, Some(_)) => unnamed("context_extensions names a role but no resource".into()),
        (None, None) => match snap
            .router
            .find_observed(req.method, req.host, req.path, obs)
        {
            None => Wanted::Aimless(Aimless::Unrouted),
            Some(m) => match &m.route.target {
                Target::Public => Wanted::Public(m.index),
                Target::Protected { resource, role } => Wanted::Routed(m, resource, *role),
            },
        },
    };
    let (wanted, ext) = match req.ext_enforcement.map(str::parse::<Enforcement>) {
        Some(Err(e)) => (
            unnamed(format!("context_extensions enforcement {e}").into()),
            None,
        ),
        Some(Ok(ext)) => (wanted, Some(ext)),
        None => (wanted, None),
    };
    if let Wanted::Public(route) = wanted {
        return Decision::Allow(Allow::Public { route });
    }
    // The target is resolved before the token is read, so that dry run can apply to any of
    // the request's denials; a templated resource (and parent) is filled into a stack buffer.
    let mut buf = [0u8; RESOURCE_BUF];
    let mut parent_buf = [0u8; RESOURCE_BUF];
    let (mut heap, mut parent_heap) = (String::new(), String::new());
    let aim = match wanted {
        Wanted::Resource(r, parent, role) => Aim::Target(r, snap.place(r, parent), role),
        Wanted::Routed(m, template, role) => {
            let resource = fill(&m, template, &mut buf, &mut heap);
            // The route's parent only matters for a resource that is not declared.
            let parent = match &m.route.parent {
                Some(p) if !snap.has_resource(resource) => {
                    Some(fill(&m, p, &mut parent_buf, &mut parent_heap))
                }
                _ => None,
            };
            Aim::Target(resource, snap.place(resource, parent), role)
        }
        // Answered above, before the token is read.
        Wanted::Public(_) => Aim::Aimless(Aimless::Unrouted),
        Wanted::Aimless(why) => Aim::Aimless(why),
    };
    let target = aim.target();
    // The stricter wins: an explicit `enforce` from Envoy's route or on the resource
    // enforces, whatever the other (or `serve --enforcement dry_run`) says; otherwise a
    // `dry_run` from either lets denials through.
    let configured = target.and_then(|(_, place, _)| snap.enforcement_at(place));
    let enforced = target.is_some()
        && (ext == Some(Enforcement::Enforce) || configured == Some(Enforcement::Enforce));
    let dry_run = target.is_some()
        && !enforced
        && (ext == Some(Enforcement::DryRun) || configured == Some(Enforcement::DryRun));
    let mut decision = authorize(snap, req, now, obs, cache, aim, dry_run);
    // A denial names what the request targeted when dry run or the decision log needs it.
    if let Decision::Deny(d) = &mut decision {
        d.dry_run = dry_run;
        d.enforced = enforced;
        if dry_run || O::RECORDS_DENIALS {
            d.target = target.map(|(resource, _, role)| (resource.to_owned(), role));
        }
    }
    decision
}

/// Authenticate the token and look the binding of the request's `target` up. A denial at the
/// binding names the identity when dry run may let it through (`dry_run`) or the observer
/// records denials.
fn authorize<O: Observer>(
    snap: &Snapshot,
    req: &Request<'_>,
    now: u64,
    obs: &mut O,
    cache: Option<&TokenCache>,
    aim: Aim<'_>,
    dry_run: bool,
) -> Decision {
    let token = match req.credentials {
        Credentials::Missing => {
            return Decision::deny(Reason::MissingToken, "no Authorization header", false)
        }
        Credentials::NotBearer => {
            return Decision::deny(
                Reason::MissingToken,
                "Authorization header is not a Bearer token",
                false,
            )
        }
        Credentials::Multiple => {
            return Decision::deny(
                Reason::MalformedToken,
                "more than one Authorization value",
                true,
            )
        }
        Credentials::Bearer(t) => t,
    };
    let (sso, selection, subject) = match authenticate(snap, token, now, obs, cache) {
        Ok(found) => found,
        Err(r) => {
            return Decision::Deny(Deny {
                reason: r.reason,
                detail: r.detail,
                token_sent: true,
                key_wait: r.key_wait,
                target: None,
                who: None,
                dry_run: false,
                enforced: false,
            })
        }
    };
    let sso = &snap.ssos[sso];
    let (identity_index, identity) = match selection {
        Selection::Chosen(i) => (i, &snap.identities[i]),
        Selection::NoIdentity => {
            return Decision::deny(
                Reason::NoIdentity,
                format!(
                    "no external identity of SSO {} matches the token's claims",
                    sso.name
                ),
                true,
            )
        }
        Selection::Ambiguous(a, b) => {
            return Decision::deny(
                Reason::AmbiguousIdentity,
                format!(
                    "identities {} and {} both match with {} claim(s)",
                    snap.identities[a].name,
                    snap.identities[b].name,
                    snap.identities[a].claims.len()
                ),
                true,
            )
        }
    };
    let (resource, place, required) = match aim {
        Aim::Target(resource, place, required) => (resource, place, required),
        Aim::Aimless(Aimless::Unnamed(why)) => {
            return Decision::deny(Reason::NoRoute, why, true);
        }
        Aim::Aimless(Aimless::Unrouted) => {
            let why = format!("no route matches {} {}", req.method, path_only(req.path));
            return Decision::deny(Reason::NoRoute, why, true);
        }
    };
    let held = snap.held_at(place, identity_index);
    obs.binding(resource, identity, held.map(|h| h.role), required);
    obs.held(held.as_ref());
    let denied = match held {
        Some(h) if h.role >= required => {
            // An undeclared target's name lives in the request: the one copy an allow of it
            // makes.
            let name = match snap.declared_name(place) {
                Some(name) => name.clone(),
                None => Arc::from(resource),
            };
            return Decision::Allow(Allow::Identity(Grant {
                identity: identity.name.clone(),
                sso: sso.name.clone(),
                subject,
                resource: name,
                role: h.role,
                required,
                granted_by: granted_by(snap, &h),
            }));
        }
        Some(h) if h.subject == Subject::Identity(identity_index as u32) && !h.inherited => {
            Decision::deny(
                Reason::InsufficientRole,
                format!(
                    "identity {} is {} on {resource}, {} is required",
                    identity.name,
                    h.role.as_str(),
                    required.as_str()
                ),
                true,
            )
        }
        Some(h) => Decision::deny(
            Reason::InsufficientRole,
            format!(
                "identity {} is {} on {resource} (via {}{} on {}), {} is required",
                identity.name,
                h.role.as_str(),
                h.subject.prefix(),
                snap.subject_name(h.subject),
                snap.resource_name(h.on),
                required.as_str()
            ),
            true,
        ),
        None => Decision::deny(
            Reason::InsufficientRole,
            format!(
                "identity {} has no role on {resource}, {} is required",
                identity.name,
                required.as_str()
            ),
            true,
        ),
    };
    match denied {
        Decision::Deny(mut d) if dry_run || O::RECORDS_DENIALS => {
            d.who = Some(Box::new(Who {
                identity: identity.name.clone(),
                sso: sso.name.clone(),
                subject,
                role: held.map(|h| h.role),
                granted_by: held.map(|h| granted_by(snap, &h)),
            }));
            Decision::Deny(d)
        }
        allowed => allowed,
    }
}

/// Verify the token and select its identity, or take both from the cache: the SSO's index,
/// the selection and `sub`.
fn authenticate<O: Observer>(
    snap: &Snapshot,
    token: &str,
    now: u64,
    obs: &mut O,
    cache: Option<&TokenCache>,
) -> Result<(usize, Selection, Arc<str>), Rejection> {
    let digest = match cache.map(|c| c.lookup(snap, token, now)) {
        Some(Lookup::Hit(entry)) => {
            obs.cached(&entry);
            return Ok((entry.sso, entry.selection, entry.subject.clone()));
        }
        Some(Lookup::Rejected(r, entry)) => {
            obs.cached(&entry);
            return Err(r);
        }
        Some(Lookup::Miss(digest)) => digest,
        None => None,
    };
    let verified = token::verify_observed(snap, token, now, obs)?;
    let selection = snap.identity_index.select_observed(
        &snap.identities,
        verified.sso_index,
        &verified.claims,
        obs,
    );
    let subject: Arc<str> = Arc::from(verified.subject());
    if let (Some(cache), Some(digest)) = (cache, digest) {
        let facts = obs.token_facts();
        let entry = Entry::new(
            &verified,
            selection,
            snap.generation,
            subject.clone(),
            facts,
        );
        cache.insert(digest, entry);
    }
    Ok((verified.sso_index, selection, subject))
}

/// A route's template filled from the match: in `buf` when it fits, else in `heap`.
fn fill<'a>(
    m: &RouteMatch<'_, 'a>,
    template: &'a ResourceTemplate,
    buf: &'a mut [u8],
    heap: &'a mut String,
) -> &'a str {
    if let Some(r) = template.literal() {
        return r;
    }
    match m.resource_in(template, buf) {
        Some(r) => r,
        None => {
            *heap = m.resource(template);
            heap.as_str()
        }
    }
}

/// The decision's account of a grant: the snapshot's shared names, no copy.
fn granted_by(snap: &Snapshot, h: &Held) -> GrantedBy {
    let name = snap.subject_name(h.subject).clone();
    GrantedBy {
        subject: match h.subject {
            Subject::Identity(_) => GrantSubject::Identity(name),
            Subject::Team(_) => GrantSubject::Team(name),
        },
        resource: snap.resource_name(h.on).clone(),
        role: h.role,
        inherited: h.inherited,
    }
}

fn path_only(path: &str) -> &str {
    path.split(['?', '#']).next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_path_observer_is_zero_sized_and_not_exhaustive() {
        assert_eq!(std::mem::size_of::<NoObserver>(), 0);
        const { assert!(!<NoObserver as IdentityObserver>::EXHAUSTIVE) };
    }
}
