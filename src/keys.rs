//! JSON Web Key sets, filtered at load time to the keys an SSO may use.
//!
//! Filtering happens once, when a set is loaded, so the request path only has to find a key
//! by `kid` and algorithm family. Keys that could never verify a token of the SSO (symmetric
//! keys, encryption keys, weak RSA, curves that don't fit the allowed algorithms) are dropped
//! with a reason the operator can read.

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
            let bits = rsa_bits(&n);
            if bits < 2048 {
                return Err(format!(
                    "RSA key of {bits} bits; at least 2048 are required"
                ));
            }
            (KeyType::Rsa, DecodingKey::from_rsa_raw_components(&n, &e))
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

fn rsa_bits(n: &[u8]) -> usize {
    let n = match n.iter().position(|b| *b != 0) {
        Some(i) => &n[i..],
        None => return 0,
    };
    n.len() * 8 - n[0].leading_zeros() as usize
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

    #[test]
    fn ed25519_is_also_called_eddsa() {
        assert_eq!(Alg::parse("Ed25519"), Some(Alg::EdDSA));
        assert_eq!(Alg::parse("none"), None);
        assert_eq!(Alg::parse("HS256"), None);
    }
}
