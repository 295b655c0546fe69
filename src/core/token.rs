//! Strict JWT verification, after RFC 8725 (JWT Best Current Practices).
//!
//! The token's header never chooses anything the configuration did not allow: the SSO is
//! chosen by the exact `iss`, the algorithm must be in that SSO's allow-list and fit the key,
//! and key-carrying headers (`jku`, `x5u`, `jwk`, `x5c`) are refused outright. Parsing is
//! strict too: canonical base64url without padding, JSON objects without duplicate keys.

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::core::decision::{KeyWait, Reason};
use crate::core::keys::{Alg, KeyMiss, KeySet};
use crate::core::snapshot::{Snapshot, Sso};

/// The claim rules beside the signature: times, audience, subject.
mod claims;
/// A compact JWS split, decoded and parsed strictly.
mod compact;
pub mod facts;
mod step;

pub use claims::{
    check_audience, check_dates, check_subject, check_times, header_safe, MAX_SUBJECT_LEN,
};
pub use compact::{parse, Parsed};
pub use facts::Facts;
pub use step::{TokenObserver, TokenStep, TokenStepKind};

/// Longest token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Headers that would let a token bring or point at its own key, or demand unknown processing.
const REFUSED_HEADERS: [&str; 5] = ["crit", "jku", "x5u", "jwk", "x5c"];

/// A token whose signature and claims were verified.
#[derive(Debug)]
pub struct Verified<'s> {
    /// Index of the SSO that verified it.
    pub sso_index: usize,
    /// That SSO.
    pub sso: &'s Sso,
    /// The payload (a JSON object).
    pub claims: Value,
    /// The algorithm used.
    pub alg: Alg,
    /// The key set the signature was verified with (a later swap makes it stale).
    pub keys: Arc<KeySet>,
}

impl Verified<'_> {
    /// The `sub` claim (verification guarantees it is a string).
    pub fn subject(&self) -> &str {
        self.claims.get("sub").and_then(Value::as_str).unwrap_or("")
    }
}

/// Why a token was refused: the reason code and a human detail for logs and explain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The reason code Envoy's client sees.
    pub reason: Reason,
    /// What exactly failed; never contains the token.
    pub detail: String,
    /// Set on `unknown_key` from an SSO whose keys are remote: what a wait needs.
    pub key_wait: Option<KeyWait>,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.code(), self.detail)
    }
}

fn reject(reason: Reason, detail: impl Into<String>) -> Rejection {
    Rejection {
        reason,
        detail: detail.into(),
        key_wait: None,
    }
}

/// Verify `token` against the snapshot's SSOs at time `now` (seconds since the epoch).
pub fn verify<'s>(snap: &'s Snapshot, token: &str, now: u64) -> Result<Verified<'s>, Rejection> {
    verify_observed(snap, token, now, &mut ())
}

/// Report one step's outcome to `obs` and pass the result on.
fn step<O: TokenObserver, T>(
    obs: &mut O,
    step: TokenStep<'_>,
    result: Result<T, Rejection>,
) -> Result<T, Rejection> {
    obs.token(step, result.as_ref().map(|_| ()));
    result
}

/// [`verify`], reporting each step to `obs`; the first failing step ends verification.
pub fn verify_observed<'s, O: TokenObserver>(
    snap: &'s Snapshot,
    token: &str,
    now: u64,
    obs: &mut O,
) -> Result<Verified<'s>, Rejection> {
    let parsed = match parse(token) {
        Ok(p) => p,
        Err(r) => {
            let none = TokenStep::Parse {
                header: None,
                claims: None,
            };
            return step(obs, none, Err(r));
        }
    };
    let parsed_step = TokenStep::Parse {
        header: Some(&parsed.header),
        claims: Some(&parsed.claims),
    };
    obs.token(parsed_step, Ok(()));
    let header = &parsed.header;
    let (alg_name, kid) = step(obs, TokenStep::Header { header }, check_header(header))?;
    let iss = match parsed.claims.get("iss") {
        Some(Value::String(i)) => Ok(i.as_str()),
        Some(_) => Err(reject(Reason::MalformedToken, "\"iss\" is not a string")),
        None => Err(reject(Reason::UnknownIssuer, "token has no \"iss\"")),
    };
    let found = match &iss {
        Ok(iss) => snap.sso_for_issuer(iss).ok_or_else(|| {
            reject(
                Reason::UnknownIssuer,
                format!("no SSO integration has issuer {iss:?}"),
            )
        }),
        Err(r) => Err(r.clone()),
    };
    let issuer_step = TokenStep::Issuer {
        iss: iss.ok(),
        sso: found.as_ref().ok().map(|(_, sso)| *sso),
    };
    let (sso_index, sso) = step(obs, issuer_step, found)?;
    // A key the SSO lacks may still arrive from its provider: say what to wait for.
    let key_wait = || {
        sso.remote.as_ref().map(|_| KeyWait {
            sso: sso_index,
            kid: kid.map(Box::from),
        })
    };
    let alg = Alg::parse(alg_name)
        .filter(|a| sso.algorithms.contains(*a))
        .ok_or_else(|| {
            reject(
                Reason::AlgorithmNotAllowed,
                format!(
                    "algorithm {alg_name:?} is not allowed for SSO {} (allowed: {})",
                    sso.name,
                    sso.algorithms.names().join(", ")
                ),
            )
        });
    let alg = step(obs, TokenStep::Algorithm { alg: alg_name, sso }, alg)?;
    let keys = sso.keys.load_full();
    let key = keys.find(kid, alg).map_err(|miss| match miss {
        KeyMiss::Unknown => Rejection {
            key_wait: key_wait(),
            ..reject(
                Reason::UnknownKey,
                match kid {
                    Some(k) => format!("SSO {} has no key with kid {k:?}", sso.name),
                    None => format!(
                        "token has no kid and SSO {} has not exactly one {} key",
                        sso.name,
                        alg.name()
                    ),
                },
            )
        },
        KeyMiss::WrongType => reject(
            Reason::AlgorithmNotAllowed,
            format!(
                "key {:?} of SSO {} cannot verify {}",
                kid.unwrap_or(""),
                sso.name,
                alg.name()
            ),
        ),
    });
    let key_step = TokenStep::Key {
        kid,
        alg,
        sso,
        key: key.as_ref().ok().copied(),
    };
    let key = step(obs, key_step, key)?;
    let ok = jsonwebtoken::crypto::verify(
        parsed.signature,
        parsed.signing_input.as_bytes(),
        &key.decoding,
        alg.jwt(),
    )
    .unwrap_or(false);
    let signature = if ok {
        Ok(())
    } else {
        Err(reject(
            Reason::InvalidSignature,
            format!(
                "signature does not verify with key {:?} ({})",
                kid.unwrap_or(""),
                alg.name()
            ),
        ))
    };
    step(obs, TokenStep::Signature { kid, alg }, signature)?;
    let claims = parsed.claims;
    let times = TokenStep::Times {
        claims: &claims,
        now,
        leeway: sso.leeway,
    };
    step(obs, times, check_times(&claims, now, sso.leeway))?;
    let audience = TokenStep::Audience {
        claims: &claims,
        sso,
    };
    step(obs, audience, check_audience(&claims, sso))?;
    step(
        obs,
        TokenStep::Subject { claims: &claims },
        check_subject(&claims),
    )?;
    Ok(Verified {
        sso_index,
        sso,
        claims,
        alg,
        keys,
    })
}

/// The header rules that need no key: refused headers, nested tokens, `alg`, `kid`.
fn check_header(header: &Map<String, Value>) -> Result<(&str, Option<&str>), Rejection> {
    for h in REFUSED_HEADERS {
        if header.contains_key(h) {
            return Err(reject(
                Reason::MalformedToken,
                format!("header {h:?} is not accepted"),
            ));
        }
    }
    if let Some(cty) = header.get("cty") {
        if cty.as_str().is_none_or(|c| c.eq_ignore_ascii_case("JWT")) {
            return Err(reject(
                Reason::MalformedToken,
                "nested tokens (cty: JWT) are not accepted",
            ));
        }
    }
    let alg_name = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| reject(Reason::MalformedToken, "header has no \"alg\" string"))?;
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.as_str()),
        Some(_) => return Err(reject(Reason::MalformedToken, "\"kid\" is not a string")),
    };
    Ok((alg_name, kid))
}
