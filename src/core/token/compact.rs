//! A compact JWS split, decoded and parsed strictly: canonical base64url without padding, JSON
//! objects without duplicate keys. Nothing here trusts the token's content yet.

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{reject, Rejection, MAX_TOKEN_LEN};
use crate::core::decision::Reason;

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
}
