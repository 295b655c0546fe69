//! JSON Web Key sets, filtered at load time to the keys an SSO may use.
//!
//! Filtering happens once, when a set is loaded, so the request path only has to find a key
//! by `kid` and algorithm family. Keys that could never verify a token of the SSO (symmetric
//! keys, encryption keys, weak RSA, RSA numbers the verifier refuses, EC points off their
//! curve, curves that don't fit the allowed algorithms) and Ed25519 keys anyone can sign for
//! (points of small order) are dropped like any other unusable key: a [`SkippedKey`] with a
//! reason the operator can read, so one bad key never takes the rest of its set down.

use aws_lc_rs::signature;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::DecodingKey;
use serde_json::Value;

/// Most keys a set may hold; a larger set is refused whole.
pub const MAX_KEYS: usize = 100;

/// A signature algorithm claimgate can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// ECDSA P-384 with SHA-384.
    ES384,
    /// Ed25519 (`EdDSA`, or `Ed25519` as RFC 9864 names it).
    EdDSA,
}

/// The kind of public key an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// RSA, at least 2048 bits.
    Rsa,
    /// EC on P-256.
    P256,
    /// EC on P-384.
    P384,
    /// OKP on Ed25519.
    Ed25519,
}

impl Alg {
    /// Every algorithm, in a fixed order.
    pub const ALL: [Alg; 9] = [
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::EdDSA,
    ];

    /// Parse a JOSE `alg` name; `none`, HMAC and anything unknown give `None`.
    pub fn parse(name: &str) -> Option<Alg> {
        Some(match name {
            "RS256" => Alg::RS256,
            "RS384" => Alg::RS384,
            "RS512" => Alg::RS512,
            "PS256" => Alg::PS256,
            "PS384" => Alg::PS384,
            "PS512" => Alg::PS512,
            "ES256" => Alg::ES256,
            "ES384" => Alg::ES384,
            "EdDSA" | "Ed25519" => Alg::EdDSA,
            _ => return None,
        })
    }

    /// The JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
        }
    }

    /// The same algorithm in `jsonwebtoken`'s terms.
    pub fn jwt(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as A;
        match self {
            Alg::RS256 => A::RS256,
            Alg::RS384 => A::RS384,
            Alg::RS512 => A::RS512,
            Alg::PS256 => A::PS256,
            Alg::PS384 => A::PS384,
            Alg::PS512 => A::PS512,
            Alg::ES256 => A::ES256,
            Alg::ES384 => A::ES384,
            Alg::EdDSA => A::EdDSA,
        }
    }

    /// The key type this algorithm verifies with.
    pub fn key_type(self) -> KeyType {
        match self {
            Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512 => {
                KeyType::Rsa
            }
            Alg::ES256 => KeyType::P256,
            Alg::ES384 => KeyType::P384,
            Alg::EdDSA => KeyType::Ed25519,
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of algorithms, as a bit set so the request path never allocates for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AlgSet(u16);

impl AlgSet {
    /// Add an algorithm.
    pub fn insert(&mut self, alg: Alg) {
        self.0 |= alg.bit();
    }

    /// Whether the set holds `alg`.
    pub fn contains(self, alg: Alg) -> bool {
        self.0 & alg.bit() != 0
    }

    /// Whether any algorithm of the set verifies with `kt`.
    pub fn accepts_key_type(self, kt: KeyType) -> bool {
        Alg::ALL
            .iter()
            .any(|a| self.contains(*a) && a.key_type() == kt)
    }

    /// The algorithms held, by name.
    pub fn names(self) -> Vec<&'static str> {
        Alg::ALL
            .iter()
            .filter(|a| self.contains(**a))
            .map(|a| a.name())
            .collect()
    }
}

/// One usable verification key.
#[derive(Clone)]
pub struct Key {
    /// The key ID, if the set gave one.
    pub kid: Option<Box<str>>,
    /// The key type.
    pub key_type: KeyType,
    /// The algorithm the set pinned for this key, if any.
    pub alg: Option<Alg>,
    /// The key, ready for verification.
    pub decoding: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("key_type", &self.key_type)
            .field("alg", &self.alg)
            .finish()
    }
}

/// Why no key was found for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMiss {
    /// No key has that `kid` (or, without `kid`, no or several keys fit).
    Unknown,
    /// A key has that `kid`, but it cannot verify the token's algorithm.
    WrongType,
}

/// The usable keys of one SSO.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Key>,
}

/// A key that was dropped while loading a set, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// Its `kid`, or its position.
    pub id: String,
    /// Why it cannot be used.
    pub reason: String,
}

/// Why a JWKS document was refused whole.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum KeySetError {
    /// Not JSON, or not `{"keys": [...]}`.
    #[error("not a JWKS document: {0}")]
    Malformed(String),
    /// More keys than [`MAX_KEYS`].
    #[error("JWKS holds {0} keys, more than the {MAX_KEYS} allowed")]
    TooMany(usize),
}

impl KeySet {
    /// Parse a JWKS document, keeping only keys usable with `allowed`.
    pub fn from_jwks(
        json: &[u8],
        allowed: AlgSet,
    ) -> Result<(KeySet, Vec<SkippedKey>), KeySetError> {
        let doc: Value =
            serde_json::from_slice(json).map_err(|e| KeySetError::Malformed(e.to_string()))?;
        let list = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| KeySetError::Malformed("no \"keys\" array".into()))?;
        if list.len() > MAX_KEYS {
            return Err(KeySetError::TooMany(list.len()));
        }
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for (i, jwk) in list.iter().enumerate() {
            match parse_jwk(jwk, allowed) {
                Ok(key) => keys.push(key),
                Err(reason) => skipped.push(SkippedKey {
                    id: jwk
                        .get("kid")
                        .and_then(Value::as_str)
                        .map(|k| format!("kid {k:?}"))
                        .unwrap_or_else(|| format!("key #{i}")),
                    reason,
                }),
            }
        }
        Ok((KeySet { keys }, skipped))
    }

    /// How many usable keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no usable key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// Whether a key with this `kid` exists.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// The key that verifies a token with this `kid` (if any) and `alg`.
    ///
    /// Without a `kid` the token is accepted only when exactly one key fits the algorithm,
    /// so a set that gains a second key never makes claimgate guess.
    pub fn find(&self, kid: Option<&str>, alg: Alg) -> Result<&Key, KeyMiss> {
        let fits = |k: &&Key| k.key_type == alg.key_type() && k.alg.is_none_or(|a| a == alg);
        match kid {
            Some(kid) => {
                let mut named = self
                    .keys
                    .iter()
                    .filter(|k| k.kid.as_deref() == Some(kid))
                    .peekable();
                if named.peek().is_none() {
                    return Err(KeyMiss::Unknown);
                }
                named.find(fits).ok_or(KeyMiss::WrongType)
            }
            None => {
                let mut fitting = self.keys.iter().filter(fits);
                match (fitting.next(), fitting.next()) {
                    (Some(k), None) => Ok(k),
                    _ => Err(KeyMiss::Unknown),
                }
            }
        }
    }
}

fn b64(jwk: &Value, field: &str) -> Result<Vec<u8>, String> {
    let s = jwk
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing \"{field}\""))?;
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| format!("\"{field}\" is not base64url"))
}

fn parse_jwk(jwk: &Value, allowed: AlgSet) -> Result<Key, String> {
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
    let (key_type, decoding) = match kty {
        "RSA" => {
            let n = b64(jwk, "n")?;
            let e = b64(jwk, "e")?;
            // The verifier reads n and e only without leading zero octets; the value is the same.
            let (n, e) = (strip_leading_zeros(&n), strip_leading_zeros(&e));
            check_rsa(n, e)?;
            (KeyType::Rsa, DecodingKey::from_rsa_raw_components(n, e))
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
            let verifier = match kt {
                KeyType::P384 => &signature::ECDSA_P384_SHA384_FIXED,
                _ => &signature::ECDSA_P256_SHA256_FIXED,
            };
            if signature::ParsedPublicKey::new(verifier, &point).is_err() {
                return Err(format!("(x, y) is not a point on {crv}"));
            }
            (kt, DecodingKey::from_ec_der(&point))
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
            (KeyType::Ed25519, DecodingKey::from_ed_der(&x))
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
    let components = signature::RsaPublicKeyComponents { n, e };
    components
        .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
        .map_err(|e| format!("RSA key refused by the verifier: {e}"))?;
    Ok(())
}

/// The y-coordinates (little-endian, sign bit clear) of the Ed25519 points of small order,
/// canonical or not. A public key on one of them accepts signatures made without its private
/// key (the tests show one), and the verifier does not refuse it.
const SMALL_ORDER_ED25519: [[u8; 32]; 7] = [
    // 0 (order 4)
    [
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00,
    ],
    // 1 (the identity)
    [
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00,
    ],
    // p - 1 (order 2)
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    // p (0 again, not canonical)
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    // p + 1 (1 again, not canonical)
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    // order 8
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    // order 8
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
];

fn is_small_order_ed25519(x: &[u8]) -> bool {
    x.len() == 32
        && SMALL_ORDER_ED25519
            .iter()
            .any(|y| y[..31] == x[..31] && y[31] == x[31] & 0x7f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> AlgSet {
        let mut s = AlgSet::default();
        for a in Alg::ALL {
            s.insert(a);
        }
        s
    }

    fn rsa_jwk(kid: &str, bytes: usize) -> Value {
        let mut n = vec![0xC5u8; bytes];
        n[bytes - 1] |= 1;
        serde_json::json!({"kty": "RSA", "kid": kid, "n": URL_SAFE_NO_PAD.encode(&n), "e": "AQAB"})
    }

    #[test]
    fn oct_and_weak_rsa_keys_are_dropped() {
        let doc = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
            rsa_jwk("weak", 128),
            rsa_jwk("good", 256),
        ]});
        let (set, skipped) = KeySet::from_jwks(doc.to_string().as_bytes(), all()).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(skipped.len(), 2);
        assert!(skipped[1].reason.contains("1024 bits"), "{:?}", skipped);
        assert!(set.find(Some("good"), Alg::RS256).is_ok());
        assert_eq!(
            set.find(Some("h"), Alg::RS256).unwrap_err(),
            KeyMiss::Unknown
        );
    }

    #[test]
    fn encryption_keys_and_foreign_algorithms_are_dropped() {
        let mut enc = rsa_jwk("enc", 256);
        enc["use"] = "enc".into();
        let mut ps = rsa_jwk("ps", 256);
        ps["alg"] = "PS256".into();
        let mut rs_only = AlgSet::default();
        rs_only.insert(Alg::RS256);
        let doc = serde_json::json!({ "keys": [enc, ps] });
        let (set, skipped) = KeySet::from_jwks(doc.to_string().as_bytes(), rs_only).unwrap();
        assert!(set.is_empty());
        assert_eq!(skipped.len(), 2);
    }

    #[test]
    fn key_without_kid_needs_exactly_one_fitting_key() {
        let doc = serde_json::json!({"keys": [rsa_jwk("a", 256)]});
        let (one, _) = KeySet::from_jwks(doc.to_string().as_bytes(), all()).unwrap();
        assert!(one.find(None, Alg::RS256).is_ok());
        assert_eq!(one.find(None, Alg::ES256).unwrap_err(), KeyMiss::Unknown);
        assert_eq!(
            one.find(Some("a"), Alg::ES256).unwrap_err(),
            KeyMiss::WrongType
        );
        let doc = serde_json::json!({"keys": [rsa_jwk("a", 256), rsa_jwk("b", 256)]});
        let (two, _) = KeySet::from_jwks(doc.to_string().as_bytes(), all()).unwrap();
        assert_eq!(two.find(None, Alg::RS256).unwrap_err(), KeyMiss::Unknown);
    }

    #[test]
    fn too_many_keys_and_garbage_are_refused() {
        let keys: Vec<Value> = (0..101).map(|i| rsa_jwk(&i.to_string(), 256)).collect();
        let doc = serde_json::json!({ "keys": keys });
        assert_eq!(
            KeySet::from_jwks(doc.to_string().as_bytes(), all()).unwrap_err(),
            KeySetError::TooMany(101)
        );
        assert!(KeySet::from_jwks(b"{}", all()).is_err());
        assert!(KeySet::from_jwks(b"not json", all()).is_err());
    }

    fn skipped_reason(jwk: Value) -> Option<String> {
        let doc = serde_json::json!({ "keys": [jwk] });
        let (set, skipped) = KeySet::from_jwks(doc.to_string().as_bytes(), all()).unwrap();
        assert_eq!(set.len() + skipped.len(), 1);
        skipped.into_iter().next().map(|k| k.reason)
    }

    fn with(mut jwk: Value, field: &str, bytes: &[u8]) -> Value {
        jwk[field] = URL_SAFE_NO_PAD.encode(bytes).into();
        jwk
    }

    #[test]
    fn rsa_keys_whose_numbers_no_verifier_accepts_are_dropped() {
        let good = rsa_jwk("k", 256);
        assert_eq!(skipped_reason(good.clone()), None);
        for (e, why) in [
            (&[1u8][..], "e = 1"),
            (&[0u8][..], "e = 0"),
            (&[2u8][..], "even"),
            (&[1, 0, 0][..], "even"),
            (&[3, 0, 0, 0, 1][..], "34 bits"),
        ] {
            let reason = skipped_reason(with(good.clone(), "e", e)).unwrap_or_default();
            assert!(reason.contains(why), "e = {e:?}: {reason:?}");
        }
        let mut even = vec![0xC5u8; 256];
        even[255] = 0xC4;
        let reason = skipped_reason(with(good.clone(), "n", &even)).unwrap_or_default();
        assert!(reason.contains("modulus is even"), "{reason:?}");
        let huge = vec![0xC5u8; 1025];
        let reason = skipped_reason(with(good, "n", &huge)).unwrap_or_default();
        assert!(reason.contains("8200 bits"), "{reason:?}");
    }

    #[test]
    fn an_rsa_modulus_with_leading_zero_octets_is_read_as_its_value() {
        use aws_lc_rs::signature::{KeyPair as _, RsaPublicKeyComponents};
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let public: RsaPublicKeyComponents<Vec<u8>> = pair.public_key().into();
        let mut n = vec![0u8, 0];
        n.extend_from_slice(&public.n);
        let jwk = serde_json::json!({"kty": "RSA", "kid": "z",
            "n": URL_SAFE_NO_PAD.encode(&n), "e": URL_SAFE_NO_PAD.encode(&public.e)});
        let doc = serde_json::json!({ "keys": [jwk] });
        let (set, skipped) = KeySet::from_jwks(doc.to_string().as_bytes(), all()).unwrap();
        assert!(skipped.is_empty(), "{skipped:?}");
        let mut sig = vec![0u8; pair.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        pair.sign(
            &aws_lc_rs::signature::RSA_PKCS1_SHA256,
            &rng,
            b"msg",
            &mut sig,
        )
        .unwrap();
        let key = set.find(Some("z"), Alg::RS256).unwrap();
        let sig = URL_SAFE_NO_PAD.encode(&sig);
        assert!(
            jsonwebtoken::crypto::verify(&sig, b"msg", &key.decoding, Alg::RS256.jwt()).unwrap()
        );
    }

    #[test]
    fn ec_points_off_the_curve_are_dropped() {
        let pair = aws_lc_rs::signature::EcdsaKeyPair::generate(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        )
        .unwrap();
        use aws_lc_rs::signature::KeyPair as _;
        let point = pair.public_key().as_ref();
        let on = serde_json::json!({"kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])});
        assert_eq!(skipped_reason(on.clone()), None);
        let mut y = point[33..].to_vec();
        y[31] ^= 1;
        let reason = skipped_reason(with(on.clone(), "y", &y)).unwrap_or_default();
        assert!(reason.contains("not a point on P-256"), "{reason:?}");
        let reason = skipped_reason(with(with(on, "x", &[0; 32]), "y", &[0; 32]));
        assert!(reason.is_some_and(|r| r.contains("not a point on P-256")));
    }

    /// Every encoding of an Ed25519 point of small order: each y of the table with either
    /// sign bit.
    fn small_order_ed25519() -> Vec<[u8; 32]> {
        SMALL_ORDER_ED25519
            .iter()
            .flat_map(|y| {
                let mut signed = *y;
                signed[31] |= 0x80;
                [*y, signed]
            })
            .collect()
    }

    #[test]
    fn small_order_ed25519_keys_are_dropped_because_anyone_can_sign_for_them() {
        // Why: with the all-zero key, the signature R = identity, S = 0 verifies about one
        // message in four, so whoever finds one forges a token without any private key.
        let zero = DecodingKey::from_ed_der(&[0; 32]);
        let mut trivial = [0u8; 64];
        trivial[0] = 1;
        let trivial = URL_SAFE_NO_PAD.encode(trivial);
        let forged = (0..32)
            .filter(|i| {
                let msg = format!("claims {i}");
                jsonwebtoken::crypto::verify(&trivial, msg.as_bytes(), &zero, Alg::EdDSA.jwt())
                    .unwrap_or(false)
            })
            .count();
        assert!(
            forged > 0,
            "the verifier itself does not refuse the zero key"
        );

        let okp = |x: &[u8]| serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(x)});
        assert!(small_order_ed25519().contains(&[0; 32]));
        for x in small_order_ed25519() {
            let reason = skipped_reason(okp(&x)).unwrap_or_default();
            assert!(reason.contains("small order"), "{x:02x?}: {reason:?}");
        }
        let pair = aws_lc_rs::signature::Ed25519KeyPair::generate().unwrap();
        use aws_lc_rs::signature::KeyPair as _;
        assert_eq!(skipped_reason(okp(pair.public_key().as_ref())), None);
    }

    #[test]
    fn ed25519_is_also_called_eddsa() {
        assert_eq!(Alg::parse("Ed25519"), Some(Alg::EdDSA));
        assert_eq!(Alg::parse("none"), None);
        assert_eq!(Alg::parse("HS256"), None);
    }
}
