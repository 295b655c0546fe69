//! Signature algorithms, the key types they verify with, and sets of them.

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
