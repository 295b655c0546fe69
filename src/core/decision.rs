//! The decision for one request, as a value: what was asked ([`Request`], [`Credentials`])
//! and what was answered ([`Decision`]: an [`Allow`] with its [`Grant`], or a [`Deny`] with
//! its [`Reason`]).
//!
//! A denial is a value, never an error, so every path ends in an explicit answer for Envoy.
//! This module sits at the bottom of the layering: it knows no stage, and every stage and the
//! pipeline that runs them ([`crate::core::pipeline`]) speak its vocabulary.

use std::sync::Arc;

use crate::core::role::Role;

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

/// Whether denials on a resource are enforced, or let through and only reported (dry run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Enforcement {
    /// Denials are denials.
    #[default]
    Enforce,
    /// Denials become allows that say what would have been denied.
    DryRun,
}

impl Enforcement {
    /// `enforce` or `dry_run`, as configured.
    pub fn parse(s: &str) -> Option<Enforcement> {
        match s {
            "enforce" => Some(Enforcement::Enforce),
            "dry_run" => Some(Enforcement::DryRun),
            _ => None,
        }
    }

    /// The configured spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Enforce => "enforce",
            Enforcement::DryRun => "dry_run",
        }
    }
}

/// A spelling that is not `enforce` or `dry_run`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not enforce or dry_run")]
pub struct UnknownEnforcement(pub String);

impl std::str::FromStr for Enforcement {
    type Err = UnknownEnforcement;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Enforcement::parse(s).ok_or_else(|| UnknownEnforcement(s.to_owned()))
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
        // A token is long (hundreds of bytes): search its bytes, not its chars.
        if memchr::memchr2(b',', b' ', token.as_bytes()).is_some() {
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
    /// `context_extensions.enforcement` (`enforce` or `dry_run`), set by Envoy per route.
    pub ext_enforcement: Option<&'a str>,
    /// `context_extensions.parent`: the parent of `ext_resource` when that is not declared.
    pub ext_parent: Option<&'a str>,
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
    /// A denial let through because its target is in dry run.
    DryRun(Box<Deny>),
}

/// The identity and role an allowed request carries upstream.
///
/// Every name is shared with the snapshot (or, for `sub`, with the token cache's entry), so
/// an allow copies no string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The external identity.
    pub identity: Arc<str>,
    /// The SSO that verified the token.
    pub sso: Arc<str>,
    /// The token's `sub`.
    pub subject: Arc<str>,
    /// The resource.
    pub resource: Arc<str>,
    /// The identity's role on it.
    pub role: Role,
    /// The role the request required.
    pub required: Role,
    /// The binding that gives the role.
    pub granted_by: GrantedBy,
}

/// Whom a collaborator binding names, by the subject's shared name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantSubject {
    /// An external identity: the identity itself.
    Identity(Arc<str>),
    /// A team the identity is a member of.
    Team(Arc<str>),
}

impl GrantSubject {
    /// The prefix the configuration writes before the name.
    pub fn prefix(&self) -> &'static str {
        match self {
            GrantSubject::Identity(_) => "external-identity:",
            GrantSubject::Team(_) => "team:",
        }
    }

    /// The name, without its kind.
    pub fn name(&self) -> &Arc<str> {
        match self {
            GrantSubject::Identity(n) | GrantSubject::Team(n) => n,
        }
    }
}

/// As configured: `external-identity:NAME` or `team:NAME`.
impl std::fmt::Display for GrantSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.prefix(), self.name())
    }
}

/// The binding that gives an identity its effective role: whom it names, the resource it is
/// written on, and whether that is an ancestor of the target (inherited) or the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantedBy {
    /// The identity or one of its teams.
    pub subject: GrantSubject,
    /// The resource the binding is on.
    pub resource: Arc<str>,
    /// The role it grants (the effective role).
    pub role: Role,
    /// Whether the resource is an ancestor of the target rather than the target itself.
    pub inherited: bool,
}

/// The identity a denied request's token selected, and its role on the target (none held):
/// known only when the denial came at the binding (`insufficient_role`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    /// The external identity.
    pub identity: Arc<str>,
    /// The SSO that verified the token.
    pub sso: Arc<str>,
    /// The token's `sub`.
    pub subject: Arc<str>,
    /// The identity's role on the resource, if any.
    pub role: Option<Role>,
    /// The binding that gives that role, if any.
    pub granted_by: Option<GrantedBy>,
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
    /// For `unknown_key` from an SSO with remote keys: what a check may wait for before
    /// deciding once more.
    pub key_wait: Option<KeyWait>,
    /// The resource and role the request targeted, when routing (or Envoy) named them.
    pub target: Option<(String, Role)>,
    /// The identity the token selected, when the denial came at the binding.
    pub who: Option<Box<Who>>,
    /// Whether the target is in dry run (configured on the resource, or by Envoy).
    pub dry_run: bool,
    /// Whether an explicit `enforce` (on the resource, or by Envoy) applies: then neither a
    /// `dry_run` elsewhere nor `serve --enforcement dry_run` lets the denial through.
    pub enforced: bool,
}

/// The remote keys an `unknown_key` denial could be cured by: the SSO (an index into the
/// snapshot's SSOs) and the `kid` the token named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyWait {
    /// Index of the SSO.
    pub sso: usize,
    /// The token's `kid`, if it named one.
    pub kid: Option<Box<str>>,
}

/// The answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Let it through.
    Allow(Allow),
    /// Refuse it.
    Deny(Deny),
}

/// The kind of answer a decision is, as metrics and logs label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionKind {
    /// Let through.
    Allow,
    /// Refused.
    Deny,
    /// A denial let through by dry run.
    DryRunDeny,
}

impl DecisionKind {
    /// The label: `allow`, `deny` or `dry_run_deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Allow => "allow",
            DecisionKind::Deny => "deny",
            DecisionKind::DryRunDeny => "dry_run_deny",
        }
    }
}

impl Decision {
    /// Which kind of answer this is.
    pub fn kind(&self) -> DecisionKind {
        match self {
            Decision::Allow(Allow::DryRun(_)) => DecisionKind::DryRunDeny,
            Decision::Allow(_) => DecisionKind::Allow,
            Decision::Deny(_) => DecisionKind::Deny,
        }
    }

    /// A denial with a detail.
    pub fn deny(reason: Reason, detail: impl Into<String>, token_sent: bool) -> Decision {
        Decision::Deny(Deny {
            reason,
            detail: detail.into(),
            token_sent,
            key_wait: None,
            target: None,
            who: None,
            dry_run: false,
            enforced: false,
        })
    }

    /// The decision the service answers with: a denial of a request that targets a resource
    /// in dry run (or any resource, with `everything`) is let through, unless an explicit
    /// `enforce` applies to it. A request that named no resource (no route matched) stays
    /// denied.
    pub fn waived(self, everything: bool) -> Decision {
        match self {
            Decision::Deny(d) if d.target.is_some() && !d.enforced && (d.dry_run || everything) => {
                Decision::Allow(Allow::DryRun(Box::new(d)))
            }
            decision => decision,
        }
    }
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
