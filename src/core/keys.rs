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

/// Signature algorithms and the key types they verify with.
mod alg;
/// The crypto backend's own answers: points on curves, RSA numbers, digests.
pub(crate) mod backend;
/// One JSON Web Key read and checked.
mod jwk;
/// Keys an SSO needs from its identity provider, and the set a host fills.
pub mod remote;

pub use alg::{Alg, AlgSet, KeyType, UnsupportedAlg};

/// Most keys a set may hold; a larger set is refused whole.
pub const MAX_KEYS: usize = 100;

/// The development key committed in `config/keys/` for the README's demo, as a JWKS. Anyone
/// can sign with it, so `serve` refuses to trust it without `--dev`. It is recognised by its
/// RFC 7638 thumbprint, so a copy under another file name, `kid` or set is caught too.
pub const DEV_JWKS: &str = include_str!("../../config/keys/dev-jwks.json");

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
            match jwk::parse_jwk(jwk, allowed) {
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

#[cfg(test)]
mod tests;
