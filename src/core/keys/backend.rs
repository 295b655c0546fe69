//! The crypto the core asks directly, on the backend that verifies signatures: jsonwebtoken's
//! `aws_lc_rs` (feature `aws-lc`, the server's) or its `rust_crypto` (feature `rust-crypto`,
//! pure Rust, for a core built without the server). Exactly one is chosen, so a key is
//! refused at load when the verifier that runs would refuse it on every token.

#[cfg(all(feature = "aws-lc", feature = "rust-crypto"))]
compile_error!("choose one crypto backend: feature `aws-lc` (the server's) or `rust-crypto`");
#[cfg(not(any(feature = "aws-lc", feature = "rust-crypto")))]
compile_error!(
    "the core needs a crypto backend: feature `aws-lc` (on with `server`) or `rust-crypto`"
);

use super::KeyType;

/// Whether `point` (uncompressed SEC1) lies on the curve of `kt`, P-256 or P-384.
#[cfg(feature = "aws-lc")]
pub(super) fn on_curve(kt: KeyType, point: &[u8]) -> bool {
    use aws_lc_rs::signature;
    let verifier = match kt {
        KeyType::P384 => &signature::ECDSA_P384_SHA384_FIXED,
        _ => &signature::ECDSA_P256_SHA256_FIXED,
    };
    signature::ParsedPublicKey::new(verifier, point).is_ok()
}

/// Whether `point` (uncompressed SEC1) lies on the curve of `kt`, P-256 or P-384.
#[cfg(all(feature = "rust-crypto", not(feature = "aws-lc")))]
pub(super) fn on_curve(kt: KeyType, point: &[u8]) -> bool {
    match kt {
        KeyType::P384 => p384::PublicKey::from_sec1_bytes(point).is_ok(),
        _ => p256::PublicKey::from_sec1_bytes(point).is_ok(),
    }
}

/// The verifier's own refusal of RSA public numbers that passed the checks every backend
/// shares (size, parity, exponent).
#[cfg(feature = "aws-lc")]
pub(super) fn rsa_refusal(n: &[u8], e: &[u8]) -> Option<String> {
    use aws_lc_rs::signature;
    let components = signature::RsaPublicKeyComponents { n, e };
    components
        .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
        .err()
        .map(|e| e.to_string())
}

/// The verifier's own refusal of RSA public numbers that passed the checks every backend
/// shares (size, parity, exponent): RustCrypto's verifier refuses no more than those.
#[cfg(all(feature = "rust-crypto", not(feature = "aws-lc")))]
pub(super) fn rsa_refusal(_n: &[u8], _e: &[u8]) -> Option<String> {
    None
}

/// The SHA-256 digest of `data`.
#[cfg(feature = "aws-lc")]
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The SHA-256 digest of `data`.
#[cfg(all(feature = "rust-crypto", not(feature = "aws-lc")))]
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).into()
}
