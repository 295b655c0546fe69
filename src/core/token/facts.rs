//! What the decision log may say about a token: `iss`, `sub`, `aud`, `kid`, `jti` and `exp`,
//! read from the header and payload verification already decoded. Never the token, its
//! signature or any other claim.
//!
//! Each text is cut at [`MAX_TEXT`] bytes and `aud` at [`MAX_AUDIENCES`] values, so what a
//! cache entry keeps for the log stays small whatever the token carried.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

/// The most bytes kept of one text claim.
pub const MAX_TEXT: usize = 256;

/// The most `aud` values kept.
pub const MAX_AUDIENCES: usize = 8;

/// The most a [`Facts`] weighs on the heap.
pub const MAX_BYTES: usize = (5 + MAX_AUDIENCES) * (MAX_TEXT + 16);

/// The loggable facts of one token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Facts {
    /// `iss`, if a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<Box<str>>,
    /// `sub`, if a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<Box<str>>,
    /// `aud`: one string, or the strings of an array.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aud: Vec<Box<str>>,
    /// The header's `kid`, if a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<Box<str>>,
    /// `jti`, if a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<Box<str>>,
    /// `exp`, if a number (whole seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
}

impl Facts {
    /// Read the facts from a decoded header and payload.
    pub fn read(header: &Map<String, Value>, claims: &Value) -> Arc<Facts> {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(cut);
        let aud = match claims.get("aud") {
            Some(Value::String(a)) => vec![cut(a)],
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .take(MAX_AUDIENCES)
                .map(cut)
                .collect(),
            _ => Vec::new(),
        };
        Arc::new(Facts {
            iss: text(claims.get("iss")),
            sub: text(claims.get("sub")),
            aud,
            kid: text(header.get("kid")),
            jti: text(claims.get("jti")),
            exp: claims
                .get("exp")
                .and_then(Value::as_f64)
                .filter(|e| e.is_finite())
                .map(|e| e as i64),
        })
    }
}

/// `s`, at most [`MAX_TEXT`] bytes of it, cut at a character boundary.
fn cut(s: &str) -> Box<str> {
    let mut end = s.len().min(MAX_TEXT);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_listed_claims_are_read_and_long_ones_are_cut() {
        let header = json!({"alg": "RS256", "kid": "k1"});
        let claims = json!({
            "iss": "https://idp", "sub": "é".repeat(200), "aud": ["a", 1, "b"],
            "jti": "j", "exp": 1764439200, "secret": "never",
        });
        let f = Facts::read(header.as_object().unwrap(), &claims);
        assert_eq!(f.iss.as_deref(), Some("https://idp"));
        assert_eq!(f.sub.as_deref().map(str::len), Some(MAX_TEXT));
        assert_eq!(f.aud, vec!["a".into(), "b".into()] as Vec<Box<str>>);
        assert_eq!(f.kid.as_deref(), Some("k1"));
        assert_eq!(f.exp, Some(1764439200));
        let text = serde_json::to_string(&*f).unwrap();
        assert!(!text.contains("never") && !text.contains("RS256"), "{text}");
    }
}
