//! Strict JWT verification, after RFC 8725 (JWT Best Current Practices).
//!
//! The token's header never chooses anything the configuration did not allow: the SSO is
//! chosen by the exact `iss`, the algorithm must be in that SSO's allow-list and fit the key,
//! and key-carrying headers (`jku`, `x5u`, `jwk`, `x5c`) are refused outright. Parsing is
//! strict too: canonical base64url without padding, JSON objects without duplicate keys.

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::core::decision::{KeyWait, Reason};
use crate::core::keys::{Alg, KeyMiss, KeySet};
use crate::core::snapshot::{Snapshot, Sso};

pub mod facts;
mod step;

pub use facts::Facts;
pub use step::{TokenObserver, TokenStep, TokenStepKind};

/// Longest token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Longest `sub` accepted, in bytes: it travels upstream in a header.
pub const MAX_SUBJECT_LEN: usize = 1024;

/// Largest signature of any allowed algorithm (RSA-4096: 512 bytes), with room to spare.
const MAX_SIGNATURE: usize = 1024;

/// base64url without padding, refusing non-canonical trailing bits.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

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

/// The parts of a token that can be read before any key is involved.
#[derive(Debug)]
pub struct Parsed<'t> {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The payload.
    pub claims: Value,
    /// `header.payload`, the signed bytes.
    pub signing_input: &'t str,
    /// The signature, base64url.
    pub signature: &'t str,
}

impl Parsed<'_> {
    /// The `iss` claim, if a string.
    pub fn issuer(&self) -> Option<&str> {
        self.claims.get("iss").and_then(Value::as_str)
    }

    /// The `kid` header, if present.
    pub fn kid(&self) -> Option<&Value> {
        self.header.get("kid")
    }
}

/// Split, decode and parse a compact JWS; nothing here trusts its content yet.
pub fn parse(token: &str) -> Result<Parsed<'_>, Rejection> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(reject(
            Reason::MalformedToken,
            format!("token is {} bytes, more than {MAX_TOKEN_LEN}", token.len()),
        ));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(reject(
            Reason::MalformedToken,
            "not a compact JWS (three dot-separated parts)",
        ));
    };
    if h.is_empty() || p.is_empty() || s.is_empty() {
        return Err(reject(
            Reason::MalformedToken,
            "a part of the token is empty",
        ));
    }
    let header = decode_object(h, "header")?;
    let Value::Object(header) = header else {
        return Err(reject(
            Reason::MalformedToken,
            "header is not a JSON object",
        ));
    };
    let claims = decode_object(p, "payload")?;
    if !claims.is_object() {
        return Err(reject(
            Reason::MalformedToken,
            "payload is not a JSON object",
        ));
    }
    // Checked here so a malformed signature is malformed_token, not invalid_signature; decoded
    // into the stack: the verifier decodes it again from the text.
    let mut sig = [0u8; MAX_SIGNATURE];
    if B64.decode_slice(s, &mut sig).is_err() {
        return Err(reject(
            Reason::MalformedToken,
            "signature is not canonical base64url",
        ));
    }
    Ok(Parsed {
        header,
        claims,
        signing_input: &token[..h.len() + 1 + p.len()],
        signature: s,
    })
}

fn decode_object(part: &str, what: &str) -> Result<Value, Rejection> {
    let bytes = B64.decode(part).map_err(|_| {
        reject(
            Reason::MalformedToken,
            format!("{what} is not canonical base64url"),
        )
    })?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let value = StrictValue::deserialize(&mut de)
        .and_then(|v| de.end().map(|_| v))
        .map_err(|e| {
            reject(
                Reason::MalformedToken,
                format!("{what} is not valid JSON: {e}"),
            )
        })?;
    Ok(value.0)
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

/// Check that `sub` is a string that can travel upstream in a header.
pub fn check_subject(claims: &Value) -> Result<(), Rejection> {
    match claims.get("sub") {
        Some(Value::String(s)) if header_safe(s) => Ok(()),
        Some(Value::String(s)) if !s.is_empty() => {
            // The subject travels upstream in x-claimgate-subject: a value Envoy would refuse
            // (control characters) or alter (surrounding spaces, raw non-ASCII bytes) must not
            // turn an allow into a 503 or make two subjects look alike.
            Err(reject(
                Reason::MalformedToken,
                "\"sub\" cannot be carried in a header: only visible ASCII and inner spaces, at most 1024 bytes",
            ))
        }
        _ => Err(reject(
            Reason::MalformedToken,
            "token has no \"sub\" string",
        )),
    }
}

/// Whether a value passes through an HTTP header unchanged.
pub fn header_safe(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= MAX_SUBJECT_LEN
        && v.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && !v.starts_with(' ')
        && !v.ends_with(' ')
}

fn numeric_date(claims: &Value, name: &str) -> Result<Option<f64>, Rejection> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(_) => Err(reject(
            Reason::MalformedToken,
            format!("\"{name}\" is not a number"),
        )),
    }
}

/// Check `exp` (required) and `nbf` (optional) with the SSO's leeway.
pub fn check_times(claims: &Value, now: u64, leeway: u64) -> Result<(), Rejection> {
    let exp = numeric_date(claims, "exp")?
        .ok_or_else(|| reject(Reason::MalformedToken, "token has no \"exp\""))?;
    // `exp` first: an expired token with a malformed `nbf` is `expired`.
    check_dates(exp, None, now, leeway)?;
    let nbf = numeric_date(claims, "nbf")?;
    check_dates(exp, nbf, now, leeway)
}

/// Check an `exp` and optional `nbf` already read from a token, with the SSO's leeway.
pub fn check_dates(exp: f64, nbf: Option<f64>, now: u64, leeway: u64) -> Result<(), Rejection> {
    let now = now as f64;
    let leeway = leeway as f64;
    if now >= exp + leeway {
        return Err(reject(
            Reason::Expired,
            format!("expired at {exp} (now {now}, leeway {leeway}s)"),
        ));
    }
    if let Some(nbf) = nbf {
        if now + leeway < nbf {
            return Err(reject(
                Reason::NotYetValid,
                format!("not valid before {nbf} (now {now}, leeway {leeway}s)"),
            ));
        }
    }
    Ok(())
}

/// Check that `aud` (string or array) holds one of the SSO's audiences.
pub fn check_audience(claims: &Value, sso: &Sso) -> Result<(), Rejection> {
    let hit = |a: &Value| {
        a.as_str()
            .is_some_and(|a| sso.audiences.iter().any(|w| **w == *a))
    };
    let ok = match claims.get("aud") {
        Some(Value::Array(list)) => list.iter().any(hit),
        Some(v @ Value::String(_)) => hit(v),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(reject(
            Reason::AudienceMismatch,
            format!("\"aud\" holds none of {:?}", sso.audiences),
        ))
    }
}

/// A JSON value whose objects, at any depth, had no duplicate keys.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            // The map itself is the set of keys seen: no second structure, no key copies.
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            let StrictValue(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &str) -> String {
        B64.encode(s)
    }

    fn token(header: &str, payload: &str) -> String {
        format!("{}.{}.{}", enc(header), enc(payload), enc("sig"))
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        let t = token(r#"{"alg":"RS256","alg":"none"}"#, r#"{"iss":"x"}"#);
        assert_eq!(parse(&t).unwrap_err().reason, Reason::MalformedToken);
        let t = token(r#"{"alg":"RS256"}"#, r#"{"a":{"b":1,"b":2}}"#);
        assert!(parse(&t).unwrap_err().detail.contains("duplicate key"));
        let t = token(r#"{"alg":"RS256"}"#, r#"{"a":{"b":1,"c":[{"d":2}]}}"#);
        assert!(parse(&t).is_ok());
    }

    #[test]
    fn non_canonical_base64_and_shapes_are_refused() {
        let good = token(r#"{"alg":"RS256"}"#, r#"{"iss":"x"}"#);
        assert!(parse(&good).is_ok());
        for bad in [
            format!("{}=", good),
            good.replace('.', "..").to_string(),
            format!("{good}.x.y"),
            format!("{}+.{}.{}", enc("{}"), enc("{}"), enc("s")),
            format!("{}.{}.{}", enc("[]"), enc("{}"), enc("s")),
            format!("{}.{}.{}", enc("{}"), enc("1"), enc("s")),
            format!("{}.{}.{}", enc("{} x"), enc("{}"), enc("s")),
            "a".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert_eq!(
                parse(&bad).unwrap_err().reason,
                Reason::MalformedToken,
                "{bad}"
            );
        }
        // "QQ" decodes to one byte; "QR" has trailing bits set and is not canonical.
        let t = format!("{}.{}.QR", enc("{}"), enc("{}"));
        assert!(parse(&t).is_err());
    }

    #[test]
    fn only_header_safe_subjects_pass() {
        assert!(header_safe("repo:acme/api:ref:refs/heads/main"));
        assert!(header_safe("a b"));
        for bad in [
            "",
            "a\r\nx-evil: 1",
            " lead",
            "trail ",
            "caf\u{e9}",
            "tab\there",
        ] {
            assert!(!header_safe(bad), "{bad:?}");
        }
        assert!(!header_safe(&"a".repeat(1025)));
    }

    #[test]
    fn times_honour_leeway() {
        let c = serde_json::json!({"exp": 1000, "nbf": 900});
        assert!(check_times(&c, 950, 0).is_ok());
        assert_eq!(
            check_times(&c, 1000, 0).unwrap_err().reason,
            Reason::Expired
        );
        assert!(check_times(&c, 1029, 30).is_ok());
        assert_eq!(
            check_times(&c, 1030, 30).unwrap_err().reason,
            Reason::Expired
        );
        assert_eq!(
            check_times(&c, 800, 30).unwrap_err().reason,
            Reason::NotYetValid
        );
        assert!(check_times(&c, 880, 30).is_ok());
        let no_exp = serde_json::json!({"nbf": 1});
        assert_eq!(
            check_times(&no_exp, 5, 0).unwrap_err().reason,
            Reason::MalformedToken
        );
        let text_exp = serde_json::json!({"exp": "1000"});
        assert_eq!(
            check_times(&text_exp, 5, 0).unwrap_err().reason,
            Reason::MalformedToken
        );
    }
}
