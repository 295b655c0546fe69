//! The whole decision for one request, as a value.
//!
//! [`decide`] is pure: it reads one snapshot and the request, and returns [`Decision`]. A
//! denial is a value with a [`Reason`], never an error, so every path ends in an explicit
//! answer for Envoy.

use serde_json::Value;

use crate::identity::{self, Selection};
use crate::routing::Target;
use crate::snapshot::{Role, Snapshot};
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

enum Wanted {
    Resource(String, Role),
    Missing(&'static str),
    Invalid(String),
    Public(usize),
    Unrouted,
}

/// Decide one request against one snapshot at time `now` (seconds since the epoch).
pub fn decide(snap: &Snapshot, req: &Request<'_>, now: u64) -> Decision {
    // Resolve the target first (public routes need no token) but report a missing route only
    // after authentication, so an anonymous caller learns nothing about the route table.
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
        (None, None) => match snap.router.find(req.method, req.host, req.path) {
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
    let verified = match token::verify(snap, token, now) {
        Ok(v) => v,
        Err(r) => return r.into(),
    };
    let candidates = snap.identities_of(verified.sso_index);
    let identity = match identity::select(&snap.identities, candidates, &verified.claims) {
        Selection::Chosen(i) => &snap.identities[i],
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
                    "identities {} and {} both match with {} claims",
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
    let held = snap.role_of(&resource, identity);
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
