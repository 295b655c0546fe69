//! Where an SSO's keys come from: the one source its configuration names, the keys of a key
//! file, and remote key sets carried over from the previous snapshot while their source is
//! unchanged (so a reload that keeps an SSO's source does not refetch its keys).

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::compile::{Ctx, SSO};
use super::Snapshot;
use crate::config::{Item, SsoSpec};
use crate::keys::{AlgSet, KeySet};
use crate::provider::{self, ProviderOptions, Remote, RemoteKeys};

/// Where an SSO's keys come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeySource {
    /// A local JWKS file (absolute path).
    File(std::path::PathBuf),
    /// The identity provider: a JWKS URL or OIDC discovery.
    Remote(Remote),
    /// No valid source was configured (only in a refused configuration).
    None,
}

/// An SSO's key source and the keys it gave.
pub(super) struct Keys {
    /// The source, when the configuration names exactly one valid source.
    pub(super) source: Option<KeySource>,
    /// The keys: a key file's, or the remote key set's shared slot.
    pub(super) keys: Arc<ArcSwap<KeySet>>,
    /// The refresher of remote keys.
    pub(super) remote: Option<Arc<RemoteKeys>>,
}

/// The key source of one SSO integration and its keys.
pub(super) fn keys(
    cx: &mut Ctx<'_>,
    item: &Item<SsoSpec>,
    algorithms: AlgSet,
    previous: Option<&Snapshot>,
    provider_opts: &ProviderOptions,
) -> Keys {
    let source = source(cx, item);
    let (keys, remote) = match &source {
        Some(KeySource::File(path)) => (file_keys(cx, item, path, algorithms), None),
        Some(KeySource::Remote(remote)) => {
            match remote_keys(cx, item, remote, algorithms, previous, provider_opts) {
                Some(r) => (r.keys().clone(), Some(r)),
                None => (Arc::default(), None),
            }
        }
        _ => (Arc::default(), None),
    };
    Keys {
        source,
        keys,
        remote,
    }
}

fn source(cx: &mut Ctx<'_>, item: &Item<SsoSpec>) -> Option<KeySource> {
    let (s, o) = (&item.spec, item.origin);
    match [s.jwks_file.is_some(), s.jwks_uri.is_some(), s.discovery] {
        [true, false, false] => {
            let rel = s.jwks_file.as_deref().unwrap_or_default();
            match cx.config().key_file(rel) {
                Ok(path) => Some(KeySource::File(path)),
                Err(e) => {
                    cx.error(o, SSO, Some("jwks_file"), format!("{rel}: {e}"));
                    None
                }
            }
        }
        [false, true, false] => {
            match provider::check_url(s.jwks_uri.as_deref().unwrap_or_default()) {
                Ok(url) => Some(KeySource::Remote(Remote::Jwks(url))),
                Err(e) => {
                    cx.error(o, SSO, Some("jwks_uri"), e.to_string());
                    None
                }
            }
        }
        [false, false, true] => match provider::check_url(&s.issuer) {
            Ok(_) => Some(KeySource::Remote(Remote::Discovery(s.issuer.clone()))),
            Err(e) => {
                cx.error(
                    o,
                    SSO,
                    Some("issuer"),
                    format!("discovery needs a fetchable issuer: {e}"),
                );
                None
            }
        },
        _ => {
            cx.error(
                o,
                SSO,
                None,
                "give exactly one of jwks_file, jwks_uri, discovery: true",
            );
            None
        }
    }
}

// A key file is read on every load: a new snapshot never shares key state with the one it
// replaces, so a refused reload cannot leak new keys.
fn file_keys(
    cx: &mut Ctx<'_>,
    item: &Item<SsoSpec>,
    path: &std::path::Path,
    algorithms: AlgSet,
) -> Arc<ArcSwap<KeySet>> {
    let (s, o) = (&item.spec, item.origin);
    let shown = s.jwks_file.as_deref().unwrap_or_default();
    let read = cx.key_files().get(path);
    match read_keys(read, algorithms) {
        Ok((set, skipped)) => {
            for k in &skipped {
                cx.warn(
                    o,
                    SSO,
                    Some("jwks_file"),
                    format!("{shown}: key {} is not used: {}", k.id, k.reason),
                );
            }
            if set.is_empty() {
                cx.warn(
                    o,
                    SSO,
                    Some("jwks_file"),
                    format!(
                        "{shown}: no usable key; every token of SSO {} will be refused",
                        s.name
                    ),
                );
            }
            Arc::new(ArcSwap::from_pointee(set))
        }
        Err(msg) => {
            cx.error(o, SSO, Some("jwks_file"), format!("{shown}: {msg}"));
            Arc::default()
        }
    }
}

fn read_keys(
    read: Result<&[u8], String>,
    algorithms: AlgSet,
) -> Result<(KeySet, Vec<crate::keys::SkippedKey>), String> {
    KeySet::from_jwks(read?, algorithms).map_err(|e| e.to_string())
}

/// The previous snapshot's refresher for this SSO when its source is unchanged, else a new one.
fn remote_keys(
    cx: &mut Ctx<'_>,
    item: &Item<SsoSpec>,
    remote: &Remote,
    algorithms: AlgSet,
    previous: Option<&Snapshot>,
    provider_opts: &ProviderOptions,
) -> Option<Arc<RemoteKeys>> {
    let s = &item.spec;
    let reused = previous.and_then(|p| {
        p.ssos
            .iter()
            .find(|old| *old.name == *s.name)
            .and_then(|old| old.remote.clone())
            .filter(|r| r.same_source(remote, algorithms))
    });
    if reused.is_some() {
        return reused;
    }
    match RemoteKeys::new(&s.name, remote.clone(), algorithms, provider_opts) {
        Ok(r) => Some(r),
        Err(e) => {
            cx.error(item.origin, SSO, None, e.to_string());
            None
        }
    }
}
