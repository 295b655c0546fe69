//! A bundle: one configuration as a single JSON document, every file it reads inlined, for a
//! host that has no configuration directory (the proxy-wasm filter receives it as its plugin
//! configuration).
//!
//! `claimgate bundle` writes one from a directory it has loaded as `serve` would; the filter
//! loads it with [`Bundle::loader`], which reads the documents through the same steps as a
//! directory (see [`crate::core::load::Loader::in_memory`]), so a bundle is checked again, and
//! the same way, where it runs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::core::config::Documents;
use crate::core::load::Loader;

/// The format this build writes and reads.
pub const FORMAT: u32 = 1;

/// One configuration, every file inlined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// The bundle format; only [`FORMAT`] is read.
    pub claimgate_bundle: u32,
    /// Whether the development key may be trusted (`bundle --dev`, as `serve --dev`).
    #[serde(default)]
    pub dev: bool,
    /// Each file by its path relative to the configuration directory, and its text.
    pub files: BTreeMap<String, String>,
}

/// Why a bundle was not made or not read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A file read is not UTF-8 text, which a JSON string cannot carry unchanged.
    #[error("{0}: not UTF-8 text; a bundle holds configuration and key files as text")]
    NotText(String),
    /// The document is not a bundle.
    #[error("not a claimgate bundle: {0}")]
    Parse(#[from] serde_json::Error),
    /// A bundle of a format this build does not read.
    #[error("bundle format {0} is not {FORMAT}, the one this build reads")]
    Format(u32),
}

impl Bundle {
    /// The bundle of `documents` (what a load read), trusting the development key if `dev`.
    pub fn new(documents: Documents, dev: bool) -> Result<Bundle, BundleError> {
        let files = documents
            .into_iter()
            .map(|(name, bytes)| match String::from_utf8(bytes) {
                Ok(text) => Ok((name, text)),
                Err(_) => Err(BundleError::NotText(name)),
            })
            .collect::<Result<_, _>>()?;
        Ok(Bundle {
            claimgate_bundle: FORMAT,
            dev,
            files,
        })
    }

    /// Read a bundle's JSON.
    pub fn parse(json: &[u8]) -> Result<Bundle, BundleError> {
        let bundle: Bundle = serde_json::from_slice(json)?;
        if bundle.claimgate_bundle != FORMAT {
            return Err(BundleError::Format(bundle.claimgate_bundle));
        }
        Ok(bundle)
    }

    /// The bundle's JSON.
    pub fn to_json(&self) -> String {
        // A struct of strings and numbers always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A loader of the bundle's configuration, refusing the development key unless `dev`.
    pub fn loader(self) -> Loader {
        let documents = self
            .files
            .into_iter()
            .map(|(name, text)| (name, text.into_bytes()))
            .collect();
        Loader::in_memory(documents).refusing_dev_key(!self.dev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_reads_back_what_it_wrote() {
        let mut documents = Documents::new();
        documents.insert("sso.yaml".into(), b"routes: []\n".to_vec());
        let bundle = Bundle::new(documents, true).unwrap();
        assert_eq!(Bundle::parse(bundle.to_json().as_bytes()).unwrap(), bundle);
    }

    #[test]
    fn a_bundle_of_another_format_or_shape_is_refused() {
        let other = r#"{"claimgate_bundle": 2, "files": {}}"#;
        assert!(matches!(
            Bundle::parse(other.as_bytes()),
            Err(BundleError::Format(2))
        ));
        let unknown = r#"{"claimgate_bundle": 1, "files": {}, "extra": 1}"#;
        assert!(matches!(
            Bundle::parse(unknown.as_bytes()),
            Err(BundleError::Parse(_))
        ));
    }
}
