//! One JSON Web Key read and checked: the keys the verifier would refuse on every token are
//! refused here, once, with a reason the operator can read.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::DecodingKey;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::{backend, Alg, AlgSet, Key, KeyType};

fn b64(jwk: &Value, field: &str) -> Result<Vec<u8>, String> {
    let s = jwk
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing \"{field}\""))?;
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| format!("\"{field}\" is not base64url"))
}

/// One key of a JWKS document, if it is usable with `allowed`; else why not.
pub(super) fn parse_jwk(jwk: &Value, allowed: AlgSet) -> Result<Key, String> {
    let kty = jwk
        .get("kty")
        .and_then(Value::as_str)
        .ok_or("missing \"kty\"")?;
    if let Some(u) = jwk.get("use") {
        if u.as_str() != Some("sig") {
            return Err(format!("\"use\" is {u}, not \"sig\""));
        }
    }
    if let Some(ops) = jwk.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|a| a.iter().any(|o| o.as_str() == Some("verify")));
        if !verifies {
            return Err("\"key_ops\" does not include \"verify\"".into());
        }
    }
    let alg = match jwk.get("alg") {
        None => None,
        Some(v) => {
            let name = v.as_str().ok_or("\"alg\" is not a string")?;
            let alg =
                Alg::parse(name).ok_or_else(|| format!("algorithm {name} is not supported"))?;
            if !allowed.contains(alg) {
                return Err(format!("algorithm {name} is not in the SSO's allow-list"));
            }
            Some(alg)
        }
    };
    let (key_type, decoding, thumbprint) = match kty {
        "RSA" => {
            let n = b64(jwk, "n")?;
            let e = b64(jwk, "e")?;
            // The verifier reads n and e only without leading zero octets; the value is the same.
            let (n, e) = (strip_leading_zeros(&n), strip_leading_zeros(&e));
            check_rsa(n, e)?;
            let print = thumbprint(&[
                ("e", &URL_SAFE_NO_PAD.encode(e)),
                ("kty", "RSA"),
                ("n", &URL_SAFE_NO_PAD.encode(n)),
            ]);
            (
                KeyType::Rsa,
                DecodingKey::from_rsa_raw_components(n, e),
                print,
            )
        }
        "EC" => {
            let crv = jwk
                .get("crv")
                .and_then(Value::as_str)
                .ok_or("missing \"crv\"")?;
            let (kt, len) = match crv {
                "P-256" => (KeyType::P256, 32),
                "P-384" => (KeyType::P384, 48),
                other => return Err(format!("curve {other} is not supported")),
            };
            let x = b64(jwk, "x")?;
            let y = b64(jwk, "y")?;
            if x.len() != len || y.len() != len {
                return Err(format!("coordinates do not fit curve {crv}"));
            }
            let mut point = Vec::with_capacity(1 + 2 * len);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            // The verifier parses the point only when a token arrives, and then every token
            // fails: parse it now, which checks that it lies on the curve.
            if !backend::on_curve(kt, &point) {
                return Err(format!("(x, y) is not a point on {crv}"));
            }
            let print = thumbprint(&[
                ("crv", crv),
                ("kty", "EC"),
                ("x", &URL_SAFE_NO_PAD.encode(&x)),
                ("y", &URL_SAFE_NO_PAD.encode(&y)),
            ]);
            (kt, DecodingKey::from_ec_der(&point), print)
        }
        "OKP" => {
            let crv = jwk
                .get("crv")
                .and_then(Value::as_str)
                .ok_or("missing \"crv\"")?;
            if crv != "Ed25519" {
                return Err(format!("curve {crv} is not supported"));
            }
            let x = b64(jwk, "x")?;
            if x.len() != 32 {
                return Err("Ed25519 key is not 32 bytes".into());
            }
            if is_small_order_ed25519(&x) {
                return Err(
                    "Ed25519 key is a point of small order (such as all zeros): signatures \
                     against it can be forged without a private key"
                        .into(),
                );
            }
            if !is_ed25519_point(&x) {
                return Err(
                    "Ed25519 key decodes to no curve point: no signature can verify against it"
                        .into(),
                );
            }
            let print = thumbprint(&[
                ("crv", crv),
                ("kty", "OKP"),
                ("x", &URL_SAFE_NO_PAD.encode(&x)),
            ]);
            (KeyType::Ed25519, DecodingKey::from_ed_der(&x), print)
        }
        "oct" => return Err("symmetric (\"oct\") keys are never used".into()),
        other => return Err(format!("key type {other} is not supported")),
    };
    if let Some(alg) = alg {
        if alg.key_type() != key_type {
            return Err(format!(
                "algorithm {} does not fit the key type",
                alg.name()
            ));
        }
    }
    if !allowed.accepts_key_type(key_type) {
        return Err(format!(
            "no allowed algorithm ({}) uses this key type",
            allowed.names().join(", ")
        ));
    }
    let kid = match jwk.get("kid") {
        None => None,
        Some(v) => Some(Box::from(v.as_str().ok_or("\"kid\" is not a string")?)),
    };
    Ok(Key {
        kid,
        key_type,
        alg,
        decoding,
        thumbprint,
    })
}

fn strip_leading_zeros(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| *b != 0).unwrap_or(v.len());
    &v[start..]
}

/// Bits of a big-endian number without leading zero octets.
fn bit_len(v: &[u8]) -> usize {
    v.first()
        .map_or(0, |b| v.len() * 8 - b.leading_zeros() as usize)
}

/// Refuse the RSA keys the verifier would refuse on every token: the sizes jsonwebtoken's
/// RSA algorithms accept (2048 to 8192 bits), and aws-lc's own checks of the public numbers
/// (an odd modulus; an odd exponent of 2 to 33 bits, so never e = 1).
fn check_rsa(n: &[u8], e: &[u8]) -> Result<(), String> {
    let bits = bit_len(n);
    if bits < 2048 {
        return Err(format!(
            "RSA key of {bits} bits; at least 2048 are required"
        ));
    }
    if bits > 8192 {
        return Err(format!(
            "RSA key of {bits} bits; verification supports at most 8192"
        ));
    }
    if n.last().is_some_and(|b| b & 1 == 0) {
        return Err("RSA modulus is even, so it is no RSA key".into());
    }
    match (bit_len(e), e.last()) {
        (0, _) => return Err("RSA exponent e = 0 verifies nothing".into()),
        (1, _) => return Err("RSA exponent e = 1 verifies nothing".into()),
        (_, Some(b)) if b & 1 == 0 => return Err("RSA exponent e is even".into()),
        (bits, _) if bits > 33 => {
            return Err(format!(
                "RSA exponent of {bits} bits; at most 33 are accepted"
            ))
        }
        _ => {}
    }
    match backend::rsa_refusal(n, e) {
        Some(why) => Err(format!("RSA key refused by the verifier: {why}")),
        None => Ok(()),
    }
}

/// Whether 32 bytes decode (canonically or not) to an Ed25519 point of small order. A public
/// key on one of them accepts signatures made without its private key (the tests show one),
/// and the verifier does not refuse it.
fn is_small_order_ed25519(x: &[u8]) -> bool {
    use curve25519_dalek::edwards::CompressedEdwardsY;
    // Decompression reduces `y` modulo p, so the non-canonical spellings count too.
    CompressedEdwardsY::from_slice(x)
        .ok()
        .and_then(|c| c.decompress())
        .is_some_and(|p| p.is_small_order())
}

/// Whether 32 bytes are the canonical encoding of a point on Ed25519 (RFC 8032 5.1.3).
/// The verifier takes any 32 bytes as a key and then refuses every signature, so such a key
/// would count as usable while it can verify nothing. Runs once per key at load.
fn is_ed25519_point(x: &[u8]) -> bool {
    use curve25519_dalek::edwards::CompressedEdwardsY;
    let Ok(compressed) = CompressedEdwardsY::from_slice(x) else {
        return false;
    };
    // Decompression reduces `y` modulo p and accepts `x = 0` with the sign bit set; RFC 8032
    // refuses both, so only an encoding that survives the round trip is a point.
    compressed
        .decompress()
        .is_some_and(|p| p.compress().as_bytes() == compressed.as_bytes())
}

/// SHA-256 of a JWK's required members in the RFC 7638 form: names sorted, no whitespace.
/// Values are re-encoded from the decoded bytes (RSA numbers without leading zero octets), so
/// the same public key has one thumbprint however its JWK spells it.
fn thumbprint(members: &[(&str, &str)]) -> [u8; 32] {
    let mut sorted = members.to_vec();
    sorted.sort_by_key(|(name, _)| *name);
    let body: Vec<String> = sorted
        .iter()
        .map(|(name, value)| format!("{}:{}", Value::from(*name), Value::from(*value)))
        .collect();
    Sha256::digest(format!("{{{}}}", body.join(","))).into()
}
