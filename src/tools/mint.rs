//! Development token minting (`claimgate token`). Never use it for anything but tests and
//! local demos: whoever holds the private key can be any identity.

use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Map, Value};

use crate::core::clock::unix_now;
use crate::core::keys::Alg;

/// Why a token could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// The key is not an RSA, EC or Ed25519 private key in PEM.
    #[error("the key is not an RSA, EC (P-256/P-384) or Ed25519 private key in PEM: {0}")]
    Key(String),
    /// The algorithm does not fit the key.
    #[error("cannot sign with {alg}: {reason}")]
    Sign {
        /// The algorithm.
        alg: &'static str,
        /// Why.
        reason: String,
    },
    /// A `--claim` is not `name=value`.
    #[error("claim {0:?} is not name=value")]
    Claim(String),
}

/// What to put in a minted token.
#[derive(Debug, Clone)]
pub struct MintOptions {
    /// PEM private key.
    pub key_pem: Vec<u8>,
    /// Algorithm; by default RS256, ES256/ES384 or EdDSA after the key.
    pub alg: Option<Alg>,
    /// `iss`.
    pub issuer: String,
    /// `aud`.
    pub audience: String,
    /// `sub`.
    pub subject: String,
    /// `kid` header.
    pub kid: Option<String>,
    /// Extra claims, `name=value` (a value that parses as JSON is JSON, else a string).
    pub claims: Vec<String>,
    /// Lifetime.
    pub ttl: Duration,
}

/// Parse one `name=value` claim.
pub fn parse_claim(kv: &str) -> Result<(String, Value), MintError> {
    let (k, v) = kv
        .split_once('=')
        .ok_or_else(|| MintError::Claim(kv.to_owned()))?;
    if k.is_empty() {
        return Err(MintError::Claim(kv.to_owned()));
    }
    let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()));
    Ok((k.to_owned(), value))
}

/// Sign a token with the given options.
pub fn mint(opts: &MintOptions) -> Result<String, MintError> {
    let now = unix_now();
    let mut claims = Map::new();
    claims.insert("iss".into(), opts.issuer.clone().into());
    claims.insert("aud".into(), opts.audience.clone().into());
    claims.insert("sub".into(), opts.subject.clone().into());
    claims.insert("iat".into(), now.into());
    claims.insert("nbf".into(), now.into());
    claims.insert("exp".into(), (now + opts.ttl.as_secs()).into());
    for kv in &opts.claims {
        let (k, v) = parse_claim(kv)?;
        claims.insert(k, v);
    }
    let (key, candidates): (EncodingKey, Vec<Alg>) =
        if let Ok(k) = EncodingKey::from_rsa_pem(&opts.key_pem) {
            (k, vec![Alg::RS256])
        } else if let Ok(k) = EncodingKey::from_ec_pem(&opts.key_pem) {
            (k, vec![Alg::ES256, Alg::ES384])
        } else if let Ok(k) = EncodingKey::from_ed_pem(&opts.key_pem) {
            (k, vec![Alg::EdDSA])
        } else {
            return Err(MintError::Key("unrecognized PEM".into()));
        };
    let candidates = match opts.alg {
        Some(a) => vec![a],
        None => candidates,
    };
    let mut last = None;
    for alg in candidates {
        let mut header = Header::new(alg.jwt());
        header.kid = opts.kid.clone();
        match jsonwebtoken::encode(&header, &claims, &key) {
            Ok(t) => return Ok(t),
            Err(e) => last = Some((alg, e)),
        }
    }
    let (alg, e) = last.ok_or_else(|| MintError::Key("no algorithm".into()))?;
    Err(MintError::Sign {
        alg: alg.name(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_json_when_they_parse_and_strings_otherwise() {
        assert_eq!(parse_claim("n=1").unwrap().1, Value::from(1));
        assert_eq!(parse_claim("b=true").unwrap().1, Value::from(true));
        assert_eq!(
            parse_claim("r=acme/api").unwrap().1,
            Value::from("acme/api")
        );
        assert_eq!(
            parse_claim("g=[\"a\"]").unwrap().1,
            serde_json::json!(["a"])
        );
        assert!(parse_claim("novalue").is_err());
        assert!(parse_claim("=x").is_err());
    }
}
