//! Shared pieces of claimgate's fuzz targets: the references they compare claimgate with,
//! written the slow and obvious way, and the fixtures they decide on.
#![forbid(unsafe_code)]

/// What a request path means: RFC 3986 normalization and full decoding.
pub mod path_reference;
/// The glob semantics of `like`, by a table over pattern and value.
pub mod pattern_reference;

/// The repository's root, where `config/` and the corpora live.
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}
