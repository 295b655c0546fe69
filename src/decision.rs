//! The whole decision for one request, as a value.
//!
//! [`decide`] is pure: it reads one snapshot and the request, and returns [`Decision`]. A
//! denial is a value with a [`Reason`], never an error, so every path ends in an explicit
//! answer for Envoy.
//!
//! [`decide_observed`] is the same function with an [`Observer`] watching each step (route
//! resolution, every token check, every identity candidate and claim, the binding looked
//! up). `claimgate explain` uses it, so what it shows is what the server did; [`decide`] runs
//! it with [`NoObserver`], a zero-sized type whose empty methods compile away.

use serde_json::Value;

use crate::identity::{self, ClaimMatcher, ClaimOutcome, Identity, Selection};
use crate::routing::{Route, RouteMatch, Target};
use crate::snapshot::{Role, Snapshot, Sso};
use crate::token::{self, Rejection};

/// Why a request was denied; each reason has a fixed code, HTTP status and message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// No bearer token was sent.
    MissingToken,
    /// The token could not be parsed, or broke a rule of its form.
    MalformedToken,
    /// No SSO integration has the token's issuer.
    UnknownIssuer,
    /// No key of the SSO fits the token's `kid`.
    UnknownKey,
    /// The token's algorithm is not allowed, or does not fit the key.
    AlgorithmNotAllowed,
    /// The signature does not verify.
    InvalidSignature,
    /// `exp` has passed.
    Expired,
    /// `nbf` is in the future.
    NotYetValid,
    /// `aud` holds none of the SSO's audiences.
    AudienceMismatch,
    /// No external identity of the SSO matches the token's claims.
    NoIdentity,
    /// Two identities match with equally many claims.
    AmbiguousIdentity,
    /// No route matches the request.
    NoRoute,
    /// The identity's role on the resource is too low, or it has none.
    InsufficientRole,
    /// claimgate is not ready to decide.
    NotReady,
    /// Something broke inside claimgate.
    Internal,
}

impl Reason {
    /// Every reason, in a fixed order (for metrics).
    pub const ALL: [Reason; 15] = [
        Reason::MissingToken,
        Reason::MalformedToken,
        Reason::UnknownIssuer,
        Reason::UnknownKey,
        Reason::AlgorithmNotAllowed,
        Reason::InvalidSignature,
        Reason::Expired,
        Reason::NotYetValid,
        Reason::AudienceMismatch,
        Reason::NoIdentity,
        Reason::AmbiguousIdentity,
        Reason::NoRoute,
        Reason::InsufficientRole,
        Reason::NotReady,
        Reason::Internal,
    ];

    /// The reason code, as in responses and metric labels.
    pub fn code(self) -> &'static str {
        match self {
            Reason::MissingToken => "missing_token",
            Reason::MalformedToken => "malformed_token",
            Reason::UnknownIssuer => "unknown_issuer",
            Reason::UnknownKey => "unknown_key",
            Reason::AlgorithmNotAllowed => "algorithm_not_allowed",
            Reason::InvalidSignature => "invalid_signature",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::AudienceMismatch => "audience_mismatch",
            Reason::NoIdentity => "no_identity",
            Reason::AmbiguousIdentity => "ambiguous_identity",
            Reason::NoRoute => "no_route",
            Reason::InsufficientRole => "insufficient_role",
            Reason::NotReady => "not_ready",
            Reason::Internal => "internal",
        }
    }

    /// The HTTP status Envoy returns to the client.
    pub fn status(self) -> u16 {
        match self {
            Reason::MissingToken
            | Reason::MalformedToken
            | Reason::UnknownIssuer
            | Reason::UnknownKey
            | Reason::AlgorithmNotAllowed
            | Reason::InvalidSignature
            | Reason::Expired
            | Reason::NotYetValid
            | Reason::AudienceMismatch => 401,
            Reason::NoIdentity
            | Reason::AmbiguousIdentity
            | Reason::NoRoute
            | Reason::InsufficientRole => 403,
            Reason::NotReady | Reason::Internal => 503,
        }
    }

    /// A fixed message for the client; it never echoes request data.
    pub fn message(self) -> &'static str {
        match self {
            Reason::MissingToken => "a bearer token is required",
            Reason::MalformedToken => "the bearer token is malformed",
            Reason::UnknownIssuer => "the token's issuer is not trusted",
            Reason::UnknownKey => "the token's signing key is not known",
            Reason::AlgorithmNotAllowed => "the token's signing algorithm is not allowed",
            Reason::InvalidSignature => "the token's signature is invalid",
            Reason::Expired => "the token has expired",
            Reason::NotYetValid => "the token is not valid yet",
            Reason::AudienceMismatch => "the token is not meant for this service",
            Reason::NoIdentity => "no external identity matches the token",
            Reason::AmbiguousIdentity => {
                "more than one external identity matches the token equally well"
            }
            Reason::NoRoute => "no route matches the request",
            Reason::InsufficientRole => "the identity's role on the resource is not sufficient",
            Reason::NotReady => "the authorization service is not ready",
            Reason::Internal => "the authorization service failed",
        }
    }
}

/// The Authorization header as found in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials<'a> {
    /// No Authorization header.
    Missing,
    /// An Authorization header with another scheme.
    NotBearer,
    /// More than one Authorization value.
    Multiple,
    /// `Bearer <token>`.
    Bearer(&'a str),
}

impl<'a> Credentials<'a> {
    /// Read one Authorization value. A comma means Envoy joined repeated headers.
    pub fn from_header(value: &'a str) -> Self {
        let value = value.trim();
        let Some((scheme, rest)) = value.split_once(' ') else {
            return Credentials::NotBearer;
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Credentials::NotBearer;
        }
        let token = rest.trim();
        if token.contains([',', ' ']) {
            return Credentials::Multiple;
        }
        Credentials::Bearer(token)
    }
}

/// What the decision needs to know about a request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// `:path`, with query.
    pub path: &'a str,
    /// `:authority`.
    pub host: &'a str,
    /// The caller's credentials.
    pub credentials: Credentials<'a>,
    /// `context_extensions.resource`, set by Envoy per route.
    pub ext_resource: Option<&'a str>,
    /// `context_extensions.role`, set by Envoy per route.
    pub ext_role: Option<&'a str>,
}

/// An allowed request and who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allow {
    /// A public route: no identity.
    Public {
        /// Index of the route.
        route: usize,
    },
    /// An identity with enough role.
    Identity(Grant),
}

/// The identity and role an allowed request carries upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The external identity.
    pub identity: Box<str>,
    /// The SSO that verified the token.
    pub sso: Box<str>,
    /// The token's `sub`.
    pub subject: String,
    /// The resource.
    pub resource: String,
    /// The identity's role on it.
    pub role: Role,
}

/// A denial and its detail (for logs; the client only sees the reason's fixed message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deny {
    /// The reason code.
    pub reason: Reason,
    /// What exactly failed.
    pub detail: String,
    /// Whether a token was sent (for `www-authenticate`).
    pub token_sent: bool,
}

/// The answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Let it through.
    Allow(Allow),
    /// Refuse it.
    Deny(Deny),
}

impl Decision {
    /// A denial with a detail.
    pub fn deny(reason: Reason, detail: impl Into<String>, token_sent: bool) -> Decision {
        Decision::Deny(Deny {
            reason,
            detail: detail.into(),
            token_sent,
        })
    }
}

impl From<Rejection> for Decision {
    fn from(r: Rejection) -> Self {
        Decision::deny(r.reason, r.detail, true)
    }
}

/// One step of choosing what a request targets.
#[derive(Debug, Clone, Copy)]
pub enum TargetStep<'a> {
    /// Envoy named the resource and role in `context_extensions`; routes are not consulted.
    Extensions {
        /// `context_extensions.resource`.
        resource: Option<&'a str>,
        /// `context_extensions.role`.
        role: Option<&'a str>,
    },
    /// The path is not normalized, so no route is tried.
    Unnormalized,
    /// A route was tried and did not match.
    Missed {
        /// Its index in the route list.
        index: usize,
        /// The route.
        route: &'a Route,
        /// The first of its conditions the request failed.
        miss: RouteMiss,
    },
    /// The first route that matched.
    Matched(&'a RouteMatch<'a, 'a>),
    /// No route matched.
    Unrouted,
}

/// The condition of a route a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteMiss {
    /// The method is not in the route's `methods`.
    Method,
    /// The host is not the route's `host`.
    Host,
    /// The path does not fit the route's template or prefix.
    Path,
}

/// One step of token verification, with what it looked at.
#[derive(Debug, Clone, Copy)]
pub enum TokenStep<'a> {
    /// Splitting the compact JWS and decoding header and payload.
    Parse {
        /// The decoded header, when parsing succeeded.
        header: Option<&'a serde_json::Map<String, Value>>,
        /// The decoded payload, when parsing succeeded.
        claims: Option<&'a Value>,
    },
    /// Header rules: no key-carrying or critical headers, no nested token, `alg` and `kid`.
    Header {
        /// The header.
        header: &'a serde_json::Map<String, Value>,
    },
    /// Choosing the SSO by the exact `iss`.
    Issuer {
        /// The `iss` claim, if a string.
        iss: Option<&'a str>,
        /// The SSO with exactly that issuer.
        sso: Option<&'a Sso>,
    },
    /// The token's `alg` against the SSO's allow-list.
    Algorithm {
        /// The header's `alg`.
        alg: &'a str,
        /// The SSO.
        sso: &'a Sso,
    },
    /// Finding the key by `kid` and algorithm.
    Key {
        /// The header's `kid`.
        kid: Option<&'a str>,
        /// The algorithm.
        alg: crate::keys::Alg,
        /// The SSO whose keys were searched.
        sso: &'a Sso,
        /// The key found.
        key: Option<&'a crate::keys::Key>,
    },
    /// The signature.
    Signature {
        /// The key's `kid` as the token named it.
        kid: Option<&'a str>,
        /// The algorithm.
        alg: crate::keys::Alg,
    },
    /// `exp` (required) and `nbf` against `now`, with the SSO's leeway.
    Times {
        /// The payload (read `exp` and `nbf` from it).
        claims: &'a Value,
        /// The time of the decision, seconds since the epoch.
        now: u64,
        /// The SSO's leeway in seconds.
        leeway: u64,
    },
    /// `aud` against the SSO's audiences.
    Audience {
        /// The payload (read `aud` from it).
        claims: &'a Value,
        /// The SSO.
        sso: &'a Sso,
    },
    /// `sub`, which must travel unchanged in a header.
    Subject {
        /// The payload (read `sub` from it).
        claims: &'a Value,
    },
}

/// How an identity fared in selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidacy {
    /// Every claim holds: it is a candidate.
    Matched,
    /// At least one claim does not hold.
    Unmatched,
    /// Selection had ended before this identity (a candidate with more claims had won, or a
    /// tie was found); reported only to an exhaustive observer, with whether it would match.
    NotReached {
        /// Whether every claim holds.
        matches: bool,
    },
}

/// Watches [`decide_observed`] make a decision. Every method does nothing by default.
///
/// Borrowed values live only for the call: an observer that keeps them copies them.
pub trait Observer {
    /// Whether to check every claim of every identity of the SSO, even after selection has
    /// its answer. The decision is the same either way; only what is reported differs.
    const EXHAUSTIVE: bool = false;

    /// A step of resolving the request's target.
    fn target(&mut self, _step: TargetStep<'_>) {}

    /// A step of token verification and its outcome.
    fn token(&mut self, _step: TokenStep<'_>, _outcome: Result<(), &Rejection>) {}

    /// One claim of identity `index` checked against the token's `actual` value.
    fn claim(
        &mut self,
        _index: usize,
        _claim: &ClaimMatcher,
        _outcome: ClaimOutcome,
        _actual: Option<&Value>,
    ) {
    }

    /// Identity `index` has been checked (after its claims were reported).
    fn candidate(&mut self, _index: usize, _identity: &Identity, _candidacy: Candidacy) {}

    /// The role `identity` holds on `resource`, looked up against the role `required`.
    fn binding(
        &mut self,
        _resource: &str,
        _identity: &Identity,
        _held: Option<Role>,
        _required: Role,
    ) {
    }
}

/// The observer of the request path: sees nothing and costs nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl Observer for NoObserver {}

enum Wanted {
    Resource(String, Role),
    Missing(&'static str),
    Invalid(String),
    Public(usize),
    Unrouted,
}

/// Decide one request against one snapshot at time `now` (seconds since the epoch).
pub fn decide(snap: &Snapshot, req: &Request<'_>, now: u64) -> Decision {
    decide_observed(snap, req, now, &mut NoObserver)
}

/// [`decide`], reporting each step to `obs`.
pub fn decide_observed<O: Observer>(
    snap: &Snapshot,
    req: &Request<'_>,
    now: u64,
    obs: &mut O,
) -> Decision {
    // Resolve the target first (public routes need no token) but report a missing route only
    // after authentication, so an anonymous caller learns nothing about the route table.
    if req.ext_resource.is_some() || req.ext_role.is_some() {
        obs.target(TargetStep::Extensions {
            resource: req.ext_resource,
            role: req.ext_role,
        });
    }
    let wanted = match (req.ext_resource, req.ext_role) {
        (Some(resource), Some(role)) => match Role::parse(role) {
            Some(role) if !resource.is_empty() => Wanted::Resource(resource.to_owned(), role),
            Some(_) => Wanted::Invalid("context_extensions resource is empty".into()),
            None => Wanted::Invalid(format!(
                "context_extensions role {role:?} is not viewer, editor or manager"
            )),
        },
        (Some(_), None) => Wanted::Missing("context_extensions names a resource but no role"),
        (None, Some(_)) => Wanted::Missing("context_extensions names a role but no resource"),
        (None, None) => match snap
            .router
            .find_observed(req.method, req.host, req.path, obs)
        {
            None => Wanted::Unrouted,
            Some(m) => match &m.route.target {
                Target::Public => Wanted::Public(m.index),
                Target::Protected { resource, role } => {
                    Wanted::Resource(m.resource(resource), *role)
                }
            },
        },
    };
    if let Wanted::Public(route) = wanted {
        return Decision::Allow(Allow::Public { route });
    }
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
    let verified = match token::verify_observed(snap, token, now, obs) {
        Ok(v) => v,
        Err(r) => return r.into(),
    };
    let candidates = snap.identities_of(verified.sso_index);
    let selection = identity::select_observed(&snap.identities, candidates, &verified.claims, obs);
    let (identity_index, identity) = match selection {
        Selection::Chosen(i) => (i, &snap.identities[i]),
        Selection::NoIdentity => {
            return Decision::deny(
                Reason::NoIdentity,
                format!(
                    "no external identity of SSO {} matches the token's claims",
                    verified.sso.name
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
    let (resource, required) = match wanted {
        Wanted::Resource(r, role) => (r, role),
        Wanted::Missing(why) => return Decision::deny(Reason::NoRoute, why, true),
        Wanted::Invalid(why) => return Decision::deny(Reason::NoRoute, why, true),
        Wanted::Unrouted | Wanted::Public(_) => {
            return Decision::deny(
                Reason::NoRoute,
                format!("no route matches {} {}", req.method, path_only(req.path)),
                true,
            )
        }
    };
    let held = snap.role_of(&resource, identity_index);
    obs.binding(&resource, identity, held, required);
    match held {
        Some(role) if role >= required => Decision::Allow(Allow::Identity(Grant {
            identity: identity.name.clone(),
            sso: verified.sso.name.clone(),
            subject: subject_of(&verified.claims),
            resource,
            role,
        })),
        Some(role) => Decision::deny(
            Reason::InsufficientRole,
            format!(
                "identity {} is {} on {resource}, {} is required",
                identity.name,
                role.as_str(),
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
    }
}

fn subject_of(claims: &Value) -> String {
    claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn path_only(path: &str) -> &str {
    path.split(['?', '#']).next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_the_specified_status() {
        let by_status = |s: u16| Reason::ALL.iter().filter(|r| r.status() == s).count();
        assert_eq!(by_status(401), 9);
        assert_eq!(by_status(403), 4);
        assert_eq!(by_status(503), 2);
        assert_eq!(Reason::InsufficientRole.code(), "insufficient_role");
    }

    #[test]
    fn the_request_path_observer_is_zero_sized_and_not_exhaustive() {
        assert_eq!(std::mem::size_of::<NoObserver>(), 0);
        const { assert!(!<NoObserver as Observer>::EXHAUSTIVE) };
    }

    #[test]
    fn credentials_are_read_strictly() {
        assert_eq!(
            Credentials::from_header("Bearer abc"),
            Credentials::Bearer("abc")
        );
        assert_eq!(
            Credentials::from_header("bearer abc"),
            Credentials::Bearer("abc")
        );
        assert_eq!(
            Credentials::from_header("Basic abc"),
            Credentials::NotBearer
        );
        assert_eq!(Credentials::from_header("Bearer"), Credentials::NotBearer);
        assert_eq!(
            Credentials::from_header("Bearer a, Bearer b"),
            Credentials::Multiple
        );
    }
}
