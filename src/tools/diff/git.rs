//! `--base git:REF`: the configuration directory as it is at a revision of the repository
//! that holds the new one, written to a temporary directory, so CI needs no second checkout.
//!
//! Only the `git` binary is used (`rev-parse`, `ls-tree`, `cat-file`), read-only; nothing in
//! the repository or its working tree is touched.

use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// Why the base could not be read from git.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// `git` could not be run.
    #[error("cannot run git ({0}); --base git:REF needs git installed")]
    NoGit(std::io::Error),
    /// The new configuration is not inside a git working tree (or git refuses to read it).
    #[error("{} is not inside a git repository; --base git:REF reads the configuration from the repository that holds --config (git said: {why})", .dir.display())]
    NotARepository {
        /// The `--config` directory.
        dir: PathBuf,
        /// What git said.
        why: String,
    },
    /// The revision is not one git knows.
    #[error("git:{rev} is not a revision of the repository: {why}")]
    UnknownRevision {
        /// The revision.
        rev: String,
        /// What git said.
        why: String,
    },
    /// The directory does not exist at that revision.
    #[error("the configuration directory {dir} does not exist at git:{rev}")]
    NoDirectory {
        /// The directory, relative to the repository.
        dir: String,
        /// The revision.
        rev: String,
    },
    /// Writing the files out failed.
    #[error("cannot write the base configuration to a temporary directory: {0}")]
    Write(std::io::Error),
    /// git failed in another way.
    #[error("git {command} failed: {why}")]
    Failed {
        /// The git command.
        command: String,
        /// What git said.
        why: String,
    },
}

fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, GitError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(GitError::NoGit)?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(GitError::Failed {
            command: args.first().copied().unwrap_or_default().to_owned(),
            why: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// The configuration directory `config` as it is at revision `rev` of its repository, written
/// to a temporary directory (removed when the returned value is dropped). Also returns the
/// directory's path in the repository, for messages.
pub fn checkout(config: &Path, rev: &str) -> Result<(tempfile::TempDir, String), GitError> {
    if rev.is_empty() || rev.starts_with('-') {
        return Err(GitError::UnknownRevision {
            rev: rev.to_owned(),
            why: "not a revision name".into(),
        });
    }
    let prefix = match git(config, &["rev-parse", "--show-prefix"]) {
        Ok(p) => String::from_utf8_lossy(&p).trim().to_owned(),
        Err(GitError::Failed { why, .. }) => {
            return Err(GitError::NotARepository {
                dir: config.to_path_buf(),
                why,
            })
        }
        Err(e) => return Err(e),
    };
    let shown = if prefix.is_empty() {
        ".".to_owned()
    } else {
        prefix.trim_end_matches('/').to_owned()
    };
    let commit = format!("{rev}^{{commit}}");
    git(config, &["rev-parse", "--verify", "--quiet", &commit]).map_err(|_| {
        GitError::UnknownRevision {
            rev: rev.to_owned(),
            why: "git rev-parse --verify found no such commit".into(),
        }
    })?;
    let tree = format!("{rev}:{prefix}");
    let listing = git(config, &["ls-tree", "-r", "-z", "--full-tree", &tree]).map_err(|_| {
        GitError::NoDirectory {
            dir: shown.clone(),
            rev: rev.to_owned(),
        }
    })?;
    let dir = tempfile::Builder::new()
        .prefix("claimgate-base-")
        .tempdir()
        .map_err(GitError::Write)?;
    for entry in listing.split(|b| *b == 0).filter(|e| !e.is_empty()) {
        // "<mode> <type> <object>\t<path>"
        let entry = String::from_utf8_lossy(entry);
        let Some((meta, path)) = entry.split_once('\t') else {
            continue;
        };
        let mut meta = meta.split(' ');
        let (Some(mode), Some(kind), Some(object)) = (meta.next(), meta.next(), meta.next()) else {
            continue;
        };
        let rel = Path::new(path);
        if kind != "blob" || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            continue;
        }
        let content = git(config, &["cat-file", "blob", object])?;
        let target = dir.path().join(rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(GitError::Write)?;
        }
        write_entry(&target, mode, &content).map_err(GitError::Write)?;
    }
    Ok((dir, shown))
}

/// A file, or a symbolic link (mode 120000) as git stores it: its target as the content.
fn write_entry(target: &Path, mode: &str, content: &[u8]) -> std::io::Result<()> {
    #[cfg(unix)]
    if mode == "120000" {
        let link = String::from_utf8_lossy(content).into_owned();
        return std::os::unix::fs::symlink(link, target);
    }
    let _ = mode;
    std::fs::write(target, content)
}
