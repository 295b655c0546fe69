//! JSON Web Key sets, filtered at load time to the keys an SSO may use.
//!
//! Filtering happens once, when a set is loaded, so the request path only has to find a key
//! by `kid` and algorithm family. Keys that could never verify a token of the SSO (symmetric
//! keys, encryption keys, weak RSA, RSA numbers the verifier refuses, EC points off their
//! curve, curves that don't fit the allowed algorithms) and Ed25519 keys anyone can sign for
//! (points of small order) are dropped like any other unusable key: a [`SkippedKey`] with a
//! reason the operator can read, so one bad key never takes the rest of its set down.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::DecodingKey;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The crypto backend's own answers: points on curves, RSA numbers, digests.
pub(crate) mod backend;
/// Keys an SSO needs from its identity provider, and the set a host fills.
pub mod remote;

/// Most keys a set may hold; a larger set is refused whole.
pub const MAX_KEYS: usize = 100;

/// The development key committed in `config/keys/` for the README's demo, as a JWKS. Anyone
/// can sign with it, so `serve` refuses to trust it without `--dev`. It is recognised by its
/// RFC 7638 thumbprint, so a copy under another file name, `kid` or set is caught too.
pub const DEV_JWKS: &str = include_str!("../../config/keys/dev-jwks.json");

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

/// An algorithm name that is unknown, `none` or HMAC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("algorithm {0:?} is not supported")]
pub struct UnsupportedAlg(pub String);

impl std::str::FromStr for Alg {
    type Err = UnsupportedAlg;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Alg::parse(name).ok_or_else(|| UnsupportedAlg(name.to_owned()))
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
    /// SHA-256 JWK thumbprint (RFC 7638) of the public key.
    pub thumbprint: [u8; 32],
}

impl Key {
    /// The RFC 7638 thumbprint, base64url as JOSE writes it.
    pub fn thumbprint_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.thumbprint)
    }

    /// Whether this is the committed development key ([`DEV_JWKS`]), by thumbprint.
    pub fn is_dev_key(&self) -> bool {
        dev_thumbprints().contains(&self.thumbprint)
    }

    /// How logs and diagnostics name the key: its `kid`, else its thumbprint.
    pub fn label(&self) -> String {
        match &self.kid {
            Some(kid) => format!("kid {kid:?}"),
            None => format!("thumbprint {}", self.thumbprint_b64()),
        }
    }
}

/// The thumbprints of the keys of [`DEV_JWKS`], computed once.
fn dev_thumbprints() -> &'static [[u8; 32]] {
    static DEV: std::sync::OnceLock<Vec<[u8; 32]>> = std::sync::OnceLock::new();
    DEV.get_or_init(|| {
        let mut every = AlgSet::default();
        for a in Alg::ALL {
            every.insert(a);
        }
        // The embedded document is this crate's own; a unit test proves it yields its key.
        KeySet::from_jwks(DEV_JWKS.as_bytes(), every)
            .map(|(set, _)| set.keys.iter().map(|k| k.thumbprint).collect())
            .unwrap_or_default()
    })
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
    // SHA-256 of the document the set was read from: a refresh that fetched the same
    // document keeps the set in place, so what was verified with it (the token cache) stays.
    document: [u8; 32],
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
        let document = Sha256::digest(json).into();
        Ok((KeySet { keys, document }, skipped))
    }

    /// Whether `other` was read from a byte-identical document.
    pub fn same_document(&self, other: &KeySet) -> bool {
        self.document == other.document
    }

    /// This set with the keys of `other` added (how `claimgate test` trusts its throwaway key).
    pub fn with_keys_of(&self, other: &KeySet) -> KeySet {
        let mut digest = Sha256::new();
        digest.update(self.document);
        digest.update(other.document);
        KeySet {
            keys: self.keys.iter().chain(other.keys.iter()).cloned().collect(),
            document: digest.finalize().into(),
        }
    }

    /// This set without the committed development key ([`DEV_JWKS`]), and the keys dropped.
    /// The document hash stays: the same document always loses the same keys.
    pub fn without_dev_keys(self) -> (KeySet, Vec<SkippedKey>) {
        let (dev, keys): (Vec<Key>, Vec<Key>) = self.keys.into_iter().partition(Key::is_dev_key);
        let dropped = dev
            .iter()
            .map(|k| SkippedKey {
                id: k.label(),
                reason: "it is the development key committed in claimgate's repository, which \
                         anyone can sign with (serve --dev trusts it)"
                    .into(),
            })
            .collect();
        (
            KeySet {
                keys,
                document: self.document,
            },
            dropped,
        )
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

#[cfg(test)]
mod tests;
