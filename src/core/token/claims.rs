//! The claim rules a verified signature does not cover: `exp` and `nbf` with the SSO's leeway,
//! `aud` against its audiences, and a `sub` that can travel upstream in a header.

use serde_json::Value;

use super::{reject, Rejection};
use crate::core::decision::Reason;
use crate::core::snapshot::Sso;

/// Longest `sub` accepted, in bytes: it travels upstream in a header.
pub const MAX_SUBJECT_LEN: usize = 1024;

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

#[cfg(test)]
mod tests {
    use super::*;

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
