//! What each token step looked at, in words and as values.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::core::keys::KeyType;
use crate::core::token::{Rejection, TokenStep, TokenStepKind};
use crate::tools::explain::{Step, StepOutcome};

/// The report's line for one token step and its outcome.
pub(super) fn describe(step: TokenStep<'_>, outcome: Result<(), &Rejection>) -> Step {
    let kind = step.kind();
    let (summary, facts) = match step {
        TokenStep::Parse { .. } => (
            "a compact JWS whose header and payload are JSON objects".to_owned(),
            Map::new(),
        ),
        TokenStep::Header { header } => {
            let alg = header.get("alg").cloned().unwrap_or(Value::Null);
            let kid = header.get("kid").cloned().unwrap_or(Value::Null);
            (
                format!("alg {alg}, kid {kid}"),
                facts([("alg", alg), ("kid", kid)]),
            )
        }
        TokenStep::Issuer { iss, sso } => {
            let summary = match sso {
                Some(s) => format!("{:?} is the issuer of SSO {}", s.issuer, s.name),
                None => format!("iss {}", iss.map(|i| format!("{i:?}")).unwrap_or_default()),
            };
            let sso_name = sso.map(|s| Value::from(&*s.name)).unwrap_or(Value::Null);
            (
                summary,
                facts([
                    ("iss", iss.map(Value::from).unwrap_or(Value::Null)),
                    ("sso", sso_name),
                ]),
            )
        }
        TokenStep::Algorithm { alg, sso } => {
            let allowed = sso.algorithms.names();
            (
                format!("{alg} (SSO {} allows {})", sso.name, allowed.join(", ")),
                facts([("alg", Value::from(alg)), ("allowed", Value::from(allowed))]),
            )
        }
        TokenStep::Key { kid, alg, sso, key } => {
            let kids: Vec<Value> = sso
                .keys
                .load()
                .keys()
                .iter()
                .map(|k| k.kid.as_deref().map(Value::from).unwrap_or(Value::Null))
                .collect();
            let summary = match (kid, key) {
                (Some(k), Some(key)) => {
                    format!("key {k:?} ({})", key_type_name(key.key_type))
                }
                (None, Some(key)) => format!(
                    "no kid; the one {} key of SSO {} that fits {}",
                    key_type_name(key.key_type),
                    sso.name,
                    alg.name()
                ),
                _ => format!(
                    "SSO {} holds {} usable key(s), kids {}",
                    sso.name,
                    kids.len(),
                    Value::from(kids.clone())
                ),
            };
            let kid = kid.map(Value::from).unwrap_or(Value::Null);
            (
                summary,
                facts([("kid", kid), ("available", Value::from(kids))]),
            )
        }
        TokenStep::Signature { kid, alg } => (
            format!("verifies with key {:?} ({})", kid.unwrap_or(""), alg.name()),
            Map::new(),
        ),
        TokenStep::Times {
            claims,
            now,
            leeway,
        } => {
            let get = |n: &str| claims.get(n).cloned().unwrap_or(Value::Null);
            (
                times_text(claims, now, leeway),
                facts([
                    ("exp", get("exp")),
                    ("nbf", get("nbf")),
                    ("now", Value::from(now)),
                    ("leeway_seconds", Value::from(leeway)),
                ]),
            )
        }
        TokenStep::Audience { claims, sso } => {
            let aud = claims.get("aud").cloned().unwrap_or(Value::Null);
            let accepted: Vec<&str> = sso.audiences.iter().map(|a| &**a).collect();
            (
                format!(
                    "aud {aud}; SSO {} accepts {}",
                    sso.name,
                    accepted.join(", ")
                ),
                facts([("aud", aud), ("accepted", Value::from(accepted))]),
            )
        }
        TokenStep::Subject { claims } => {
            let sub = claims.get("sub").cloned().unwrap_or(Value::Null);
            (format!("sub {sub}"), facts([("sub", sub)]))
        }
    };
    let (outcome, detail, reason) = match outcome {
        Ok(()) => (StepOutcome::Ok, summary, None),
        Err(r) => {
            // The rejection's detail says what failed; add what it looked at where the
            // detail does not already say it.
            let detail = match kind {
                TokenStepKind::Header
                | TokenStepKind::Key
                | TokenStepKind::Times
                | TokenStepKind::Audience => format!("{} ({summary})", r.detail),
                _ => r.detail.clone(),
            };
            (StepOutcome::Failed, detail, Some(r.reason))
        }
    };
    Step {
        step: kind,
        outcome,
        detail,
        reason,
        facts,
    }
}

fn facts<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn key_type_name(kt: KeyType) -> &'static str {
    match kt {
        KeyType::Rsa => "RSA",
        KeyType::P256 => "EC P-256",
        KeyType::P384 => "EC P-384",
        KeyType::Ed25519 => "Ed25519",
    }
}

/// A NumericDate as RFC 3339 and relative to `now`.
fn when(t: f64, now: u64) -> String {
    if !t.is_finite() || t < 0.0 {
        return format!("{t}");
    }
    let at = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(t as u64));
    let now = now as f64;
    let rel = Duration::from_secs((t - now).abs() as u64);
    if rel.is_zero() {
        format!("{at} (now)")
    } else if t > now {
        format!("{at} (in {})", humantime::format_duration(rel))
    } else {
        format!("{at} ({} ago)", humantime::format_duration(rel))
    }
}

fn times_text(claims: &Value, now: u64, leeway: u64) -> String {
    let date = |name: &str| match claims.get(name) {
        None => format!("no {name}"),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(t) => format!("{name} {}", when(t, now)),
            None => format!("{name} {n}"),
        },
        Some(v) => format!("{name} {v} (not a number)"),
    };
    let now_text = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(now));
    format!(
        "{}, {}, now {now_text}, leeway {leeway}s",
        date("exp"),
        date("nbf")
    )
}
