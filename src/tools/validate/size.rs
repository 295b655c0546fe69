//! A configuration too large for the ConfigMap that usually carries it into Kubernetes.
//!
//! The API server refuses a ConfigMap whose data adds up to more than 1 MiB. The warning comes
//! a little before that ([`WARN_BYTES`]), so a configuration that grows by a few routes does not
//! fail its next deploy; it names the alternative, the git-sync overlay, which has no such
//! limit. Sizes are what a ConfigMap would hold: every configuration file and every key or CA
//! file the configuration names.

use crate::core::config::{Config, Diagnostic, Severity};
use crate::core::snapshot::Snapshot;

/// The most a ConfigMap's data may hold.
pub const CONFIGMAP_BYTES: u64 = 1024 * 1024;

/// Warn from this total on.
pub const WARN_BYTES: u64 = 900 * 1024;

/// A warning, at the largest file, when the files add up to [`WARN_BYTES`] or more.
pub(super) fn configmap_size(config: &Config, snap: &Snapshot, out: &mut Vec<Diagnostic>) {
    let size = |path: &std::path::Path| std::fs::metadata(path).map_or(0, |m| m.len());
    let mut files: Vec<(String, u64)> = config
        .files
        .iter()
        .map(|f| (f.name.clone(), size(&config.dir.join(&f.name))))
        .collect();
    for path in &snap.referenced_files {
        let name = path.strip_prefix(&config.dir).unwrap_or(path);
        files.push((name.display().to_string(), size(path)));
    }
    let total: u64 = files.iter().map(|(_, n)| n).sum();
    if total < WARN_BYTES {
        return;
    }
    let Some((largest, _)) = files.iter().max_by_key(|(_, n)| *n) else {
        return;
    };
    out.push(Diagnostic {
        file: largest.clone(),
        line: 1,
        col: 1,
        severity: Severity::Warning,
        message: format!(
            "the configuration's files add up to {} KiB, near or over the {} KiB a Kubernetes \
             ConfigMap holds; deploy it from git with the git-sync overlay \
             (deploy/kubernetes/overlays/git-sync) instead of a ConfigMap",
            total.div_ceil(1024),
            CONFIGMAP_BYTES / 1024
        ),
    });
}
