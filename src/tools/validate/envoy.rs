//! Envoy configurations, scanned for the resources their ext_authz `context_extensions` name,
//! so that a resource no claimgate route targets is not reported when Envoy names it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize as _;

/// Why Envoy configurations could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EnvoyConfigError {
    /// A file or directory could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not YAML or JSON.
    #[error("{path}: not YAML or JSON: {message}")]
    Parse {
        /// The path.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
}

/// The resources Envoy configurations name in ext_authz `context_extensions`. Each path is
/// a file (YAML or JSON, several YAML documents allowed) or a directory of such files.
pub fn envoy_resources(paths: &[PathBuf]) -> Result<HashSet<String>, EnvoyConfigError> {
    let mut found = HashSet::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| EnvoyConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let files = if meta.is_dir() {
            let mut files = Vec::new();
            let entries = std::fs::read_dir(path).map_err(|source| EnvoyConfigError::Read {
                path: path.clone(),
                source,
            })?;
            for entry in entries.flatten() {
                let p = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                let wanted = [".yaml", ".yml", ".json"].iter().any(|e| name.ends_with(e));
                if wanted && !name.starts_with('.') && p.is_file() {
                    files.push(p);
                }
            }
            files.sort();
            files
        } else {
            vec![path.clone()]
        };
        for file in files {
            collect_envoy_file(&file, &mut found)?;
        }
    }
    Ok(found)
}

fn collect_envoy_file(path: &Path, found: &mut HashSet<String>) -> Result<(), EnvoyConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| EnvoyConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value = serde_yaml::Value::deserialize(doc).map_err(|e| EnvoyConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        collect_extensions(&value, found);
    }
    Ok(())
}

fn collect_extensions(value: &serde_yaml::Value, found: &mut HashSet<String>) {
    match value {
        serde_yaml::Value::Mapping(map) => {
            for (k, v) in map {
                if k.as_str() == Some("context_extensions") {
                    if let Some(r) = v.get("resource").and_then(serde_yaml::Value::as_str) {
                        found.insert(r.to_owned());
                    }
                }
                collect_extensions(v, found);
            }
        }
        serde_yaml::Value::Sequence(items) => {
            for v in items {
                collect_extensions(v, found);
            }
        }
        serde_yaml::Value::Tagged(t) => collect_extensions(&t.value, found),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoy_context_extensions_are_found_at_any_depth() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("envoy.yaml");
        std::fs::write(
            &p,
            "a:\n  - b:\n      check_settings:\n        context_extensions:\n          resource: mcp-server:search\n          role: viewer\n---\nother: {context_extensions: {resource: \"model:x\"}}\n",
        )
        .unwrap();
        let found = envoy_resources(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(found.len(), 2);
        assert!(found.contains("mcp-server:search") && found.contains("model:x"));
    }
}
