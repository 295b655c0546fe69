//! The steps of token verification, as an observer sees them.

use serde::Serialize;
use serde_json::{Map, Value};

use super::Rejection;
use crate::core::keys::{Alg, Key};
use crate::core::snapshot::Sso;

/// One step of token verification, with what it looked at.
#[derive(Debug, Clone, Copy)]
pub enum TokenStep<'a> {
    /// Splitting the compact JWS and decoding header and payload.
    Parse {
        /// The decoded header, when parsing succeeded.
        header: Option<&'a Map<String, Value>>,
        /// The decoded payload, when parsing succeeded.
        claims: Option<&'a Value>,
    },
    /// Header rules: no key-carrying or critical headers, no nested token, `alg` and `kid`.
    Header {
        /// The header.
        header: &'a Map<String, Value>,
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
        alg: Alg,
        /// The SSO whose keys were searched.
        sso: &'a Sso,
        /// The key found.
        key: Option<&'a Key>,
    },
    /// The signature.
    Signature {
        /// The key's `kid` as the token named it.
        kid: Option<&'a str>,
        /// The algorithm.
        alg: Alg,
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

/// Watches [`verify_observed`](super::verify_observed) check a token, step by step. Does nothing by default.
pub trait TokenObserver {
    /// A step of token verification and its outcome.
    fn token(&mut self, _step: TokenStep<'_>, _outcome: Result<(), &Rejection>) {}
}

/// The unit observer sees nothing: what [`verify`](super::verify) uses.
impl TokenObserver for () {}

/// Which step of token verification, without what it looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenStepKind {
    /// [`TokenStep::Parse`].
    Parse,
    /// [`TokenStep::Header`].
    Header,
    /// [`TokenStep::Issuer`].
    Issuer,
    /// [`TokenStep::Algorithm`].
    Algorithm,
    /// [`TokenStep::Key`].
    Key,
    /// [`TokenStep::Signature`].
    Signature,
    /// [`TokenStep::Times`].
    Times,
    /// [`TokenStep::Audience`].
    Audience,
    /// [`TokenStep::Subject`].
    Subject,
}

impl TokenStepKind {
    /// Every step, in the order verification runs them.
    pub const ALL: [TokenStepKind; 9] = [
        TokenStepKind::Parse,
        TokenStepKind::Header,
        TokenStepKind::Issuer,
        TokenStepKind::Algorithm,
        TokenStepKind::Key,
        TokenStepKind::Signature,
        TokenStepKind::Times,
        TokenStepKind::Audience,
        TokenStepKind::Subject,
    ];

    /// The step's name in reports (as serialized).
    pub fn name(self) -> &'static str {
        match self {
            TokenStepKind::Parse => "parse",
            TokenStepKind::Header => "header",
            TokenStepKind::Issuer => "issuer",
            TokenStepKind::Algorithm => "algorithm",
            TokenStepKind::Key => "key",
            TokenStepKind::Signature => "signature",
            TokenStepKind::Times => "times",
            TokenStepKind::Audience => "audience",
            TokenStepKind::Subject => "subject",
        }
    }
}

impl TokenStep<'_> {
    /// Which step this is.
    pub fn kind(&self) -> TokenStepKind {
        match self {
            TokenStep::Parse { .. } => TokenStepKind::Parse,
            TokenStep::Header { .. } => TokenStepKind::Header,
            TokenStep::Issuer { .. } => TokenStepKind::Issuer,
            TokenStep::Algorithm { .. } => TokenStepKind::Algorithm,
            TokenStep::Key { .. } => TokenStepKind::Key,
            TokenStep::Signature { .. } => TokenStepKind::Signature,
            TokenStep::Times { .. } => TokenStepKind::Times,
            TokenStep::Audience { .. } => TokenStepKind::Audience,
            TokenStep::Subject { .. } => TokenStepKind::Subject,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_kind_serializes_as_its_name_and_is_listed_once() {
        for (i, kind) in TokenStepKind::ALL.into_iter().enumerate() {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
            assert_eq!(TokenStepKind::ALL.iter().position(|k| *k == kind), Some(i));
        }
    }
}
