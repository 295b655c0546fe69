//! The throwaway keys of a test run: one generated per SSO the tests name, added to that SSO's
//! key set in the run's own snapshot, so described tokens are signed and verified for real.
//!
//! The private key lives only in this process for the run; nothing is written anywhere.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer as _;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Map, Value};

use crate::core::keys::{Alg, KeySet, KeyType};
use crate::core::snapshot::{Snapshot, Sso};

/// Why a throwaway key could not be made or trusted.
#[derive(Debug, thiserror::Error)]
#[error("cannot make a test key for SSO {sso}: {reason}")]
pub struct KeyError {
    /// The SSO.
    pub sso: String,
    /// What failed.
    pub reason: String,
}

/// One SSO's throwaway key.
struct TestKey {
    kid: String,
    alg: Alg,
    encoding: EncodingKey,
}

/// The throwaway keys of one run, by SSO index.
pub(super) struct Signer {
    keys: HashMap<usize, TestKey>,
}

impl Signer {
    /// Generate a key for each SSO in `ssos` (indexes into the snapshot) and make that SSO
    /// trust it, in this snapshot only.
    pub(super) fn trust(snap: &Snapshot, ssos: &[usize]) -> Result<Signer, KeyError> {
        let mut keys = HashMap::new();
        for &index in ssos {
            let Some(sso) = snap.ssos.get(index) else {
                continue;
            };
            if keys.contains_key(&index) {
                continue;
            }
            let fail = |reason: String| KeyError {
                sso: sso.name.to_string(),
                reason,
            };
            let key = generate(sso).map_err(fail)?;
            install(sso, &key).map_err(fail)?;
            keys.insert(index, key);
        }
        Ok(Signer { keys })
    }

    /// A token of SSO `index` with `claims` over the defaults the SSO accepts (`iss`, the
    /// first audience, `sub`, `iat`, an `exp` an hour away), signed with its test key.
    pub(super) fn sign(
        &self,
        snap: &Snapshot,
        index: usize,
        claims: &Map<String, Value>,
        now: u64,
    ) -> Result<String, String> {
        let (Some(key), Some(sso)) = (self.keys.get(&index), snap.ssos.get(index)) else {
            return Err("no test key for this SSO".into());
        };
        let mut payload = Map::new();
        payload.insert("iss".into(), Value::from(&*sso.issuer));
        let aud = sso.audiences.first().map(|a| &**a).unwrap_or_default();
        payload.insert("aud".into(), Value::from(aud));
        payload.insert("sub".into(), Value::from("claimgate-test"));
        payload.insert("iat".into(), Value::from(now));
        payload.insert("exp".into(), Value::from(now + 3600));
        for (k, v) in claims {
            payload.insert(k.clone(), v.clone());
        }
        let mut header = Header::new(key.alg.jwt());
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, &payload, &key.encoding).map_err(|e| e.to_string())
    }
}

/// The cheapest algorithm the SSO allows: Ed25519 and EC keys are made at once, RSA ones not.
fn pick(sso: &Sso) -> Option<Alg> {
    [
        Alg::EdDSA,
        Alg::ES256,
        Alg::ES384,
        Alg::RS256,
        Alg::PS256,
        Alg::RS384,
        Alg::PS384,
        Alg::RS512,
        Alg::PS512,
    ]
    .into_iter()
    .find(|a| sso.algorithms.contains(*a))
}

fn pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END PRIVATE KEY-----\n");
    out
}

fn generate(sso: &Sso) -> Result<TestKey, String> {
    use aws_lc_rs::signature::{
        EcdsaKeyPair, Ed25519KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
        ECDSA_P384_SHA384_FIXED_SIGNING,
    };
    let alg = pick(sso).ok_or("the SSO allows no algorithm")?;
    let failed = |e: &dyn std::fmt::Display| format!("key generation failed: {e}");
    let der: Vec<u8> = match alg.key_type() {
        KeyType::Ed25519 => Ed25519KeyPair::generate()
            .and_then(|k| k.to_pkcs8v1())
            .map_err(|e| failed(&e))?
            .as_ref()
            .to_vec(),
        KeyType::P256 | KeyType::P384 => {
            let curve = if alg.key_type() == KeyType::P256 {
                &ECDSA_P256_SHA256_FIXED_SIGNING
            } else {
                &ECDSA_P384_SHA384_FIXED_SIGNING
            };
            EcdsaKeyPair::generate(curve)
                .and_then(|k| k.to_pkcs8v1())
                .map_err(|e| failed(&e))?
                .as_ref()
                .to_vec()
        }
        KeyType::Rsa => {
            let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|e| failed(&e))?;
            let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> = kp.as_der().map_err(|e| failed(&e))?;
            der.as_ref().to_vec()
        }
    };
    let pem = pem(&der);
    let encoding = match alg.key_type() {
        KeyType::Ed25519 => EncodingKey::from_ed_pem(pem.as_bytes()),
        KeyType::P256 | KeyType::P384 => EncodingKey::from_ec_pem(pem.as_bytes()),
        KeyType::Rsa => EncodingKey::from_rsa_pem(pem.as_bytes()),
    }
    .map_err(|e| e.to_string())?;
    let mut suffix = [0u8; 8];
    aws_lc_rs::rand::fill(&mut suffix).map_err(|e| failed(&e))?;
    let kid = format!(
        "claimgate-test-{}",
        suffix
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    Ok(TestKey { kid, alg, encoding })
}

/// Add `key`'s public half to the SSO's key set, read as any JWKS document is.
fn install(sso: &Sso, key: &TestKey) -> Result<(), String> {
    let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key.encoding, key.alg.jwt())
        .map_err(|e| e.to_string())?;
    let mut jwk = serde_json::to_value(jwk).map_err(|e| e.to_string())?;
    if let Some(obj) = jwk.as_object_mut() {
        obj.retain(|k, _| ["kty", "n", "e", "crv", "x", "y"].contains(&k.as_str()));
        obj.insert("kid".into(), Value::from(key.kid.as_str()));
        obj.insert("use".into(), Value::from("sig"));
    }
    let doc = json!({ "keys": [jwk] }).to_string();
    let (set, skipped) =
        KeySet::from_jwks(doc.as_bytes(), sso.algorithms).map_err(|e| e.to_string())?;
    if set.len() != 1 {
        let why: Vec<String> = skipped.iter().map(|s| s.reason.clone()).collect();
        return Err(format!("the key was refused: {}", why.join("; ")));
    }
    let current = sso.keys.load_full();
    sso.keys.store(Arc::new(current.with_keys_of(&set)));
    Ok(())
}
