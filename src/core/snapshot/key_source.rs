//! Where an SSO's keys come from: the one source its configuration names, the keys of a key
//! file, and remote key sets carried over from the previous snapshot while their source is
//! unchanged (so a reload that keeps an SSO's source does not refetch its keys).

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;

use super::context::{Ctx, SSO};
use super::Snapshot;
use crate::core::config::{DevKeyUse, Item, SsoSpec};
use crate::core::keys::remote::{check_url, KeyFeeds, Remote, RemoteKeySet};
use crate::core::keys::{AlgSet, KeySet};

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
    /// The remote key set, which a host fills.
    pub(super) remote: Option<Arc<RemoteKeySet>>,
    /// The CA file the configuration names (absolute path), so that editing it is a change.
    pub(super) ca_file: Option<std::path::PathBuf>,
    /// The committed development key, when the key file holds it.
    pub(super) dev_key: Option<DevKeyUse>,
}

/// The key source of one SSO integration and its keys.
pub(super) fn keys(
    cx: &mut Ctx<'_>,
    item: &Item<SsoSpec>,
    algorithms: AlgSet,
    previous: Option<&Snapshot>,
    feeds: Option<&dyn KeyFeeds>,
) -> Keys {
    let source = source(cx, item);
    let (ca_file, roots) = ca_roots(cx, item);
    if ca_file.is_some() && matches!(source, Some(KeySource::File(_))) {
        cx.error(
            item.origin,
            SSO,
            Some("ca_file"),
            "ca_file applies to jwks_uri and discovery; a jwks_file is read from disk",
        );
    }
    let mut dev_key = None;
    let (keys, remote) = match (&source, roots) {
        (Some(KeySource::File(path)), _) => {
            let keys = file_keys(cx, item, path, algorithms);
            dev_key = dev_key_file(cx, item, &keys.load());
            (keys, None)
        }
        (Some(KeySource::Remote(remote)), Some(roots)) => {
            match remote_keys(cx, item, remote, algorithms, roots, previous, feeds) {
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
        ca_file,
        dev_key,
    }
}

/// The development key in an SSO's key file, with a warning: `validate` shows it, `serve`
/// refuses it unless `--dev`, and with `--dev` every install logs it again.
fn dev_key_file(cx: &mut Ctx<'_>, item: &Item<SsoSpec>, set: &KeySet) -> Option<DevKeyUse> {
    let key = set.keys().iter().find(|k| k.is_dev_key())?;
    let s = &item.spec;
    let file = s.jwks_file.clone().unwrap_or_default();
    let found = DevKeyUse {
        sso: s.name.clone(),
        at: cx.config().place(item.origin, SSO, Some("jwks_file")),
        key: key.label(),
        file,
    };
    cx.warn(
        item.origin,
        SSO,
        Some("jwks_file"),
        format!(
            "{}: {} is the development key committed in claimgate's repository (RFC 7638 thumbprint {}): anyone can sign tokens that SSO {} accepts; serve refuses it unless --dev",
            found.file,
            found.key,
            key.thumbprint_b64(),
            s.name
        ),
    );
    Some(found)
}

/// The CA file's path and its certificates: `(None, Some([]))` without a `ca_file`, and
/// `None` certificates (with an error) when the file is unusable.
fn ca_roots(
    cx: &mut Ctx<'_>,
    item: &Item<SsoSpec>,
) -> (
    Option<std::path::PathBuf>,
    Option<Vec<CertificateDer<'static>>>,
) {
    let o = item.origin;
    let Some(rel) = item.spec.ca_file.as_deref() else {
        return (None, Some(Vec::new()));
    };
    let path = match cx.config().key_file(rel) {
        Ok(path) => path,
        Err(e) => {
            cx.error(o, SSO, Some("ca_file"), format!("{rel}: {e}"));
            return (None, None);
        }
    };
    let parsed = cx.key_files().get(&path).and_then(|pem| {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("not a PEM certificate: {e}"))?;
        if certs.is_empty() {
            return Err("no CERTIFICATE block".to_owned());
        }
        let mut store = rustls::RootCertStore::empty();
        for cert in &certs {
            store
                .add(cert.clone())
                .map_err(|e| format!("not a usable CA certificate: {e}"))?;
        }
        Ok(certs)
    });
    match parsed {
        Ok(certs) => (Some(path), Some(certs)),
        Err(msg) => {
            cx.error(o, SSO, Some("ca_file"), format!("{rel}: {msg}"));
            (Some(path), None)
        }
    }
}

fn source(cx: &mut Ctx<'_>, item: &Item<SsoSpec>) -> Option<KeySource> {
    let (s, o) = (&item.spec, item.origin);
    if s.pinned_keys && s.jwks_file.is_none() {
        cx.warn(
            o,
            SSO,
            Some("pinned_keys"),
            "pinned_keys applies to a jwks_file only; it changes nothing here",
        );
    }
    match [s.jwks_file.is_some(), s.jwks_uri.is_some(), s.discovery] {
        [true, false, false] => {
            let rel = s.jwks_file.as_deref().unwrap_or_default();
            if let (Some(service), false) =
                (super::tenant::hosting_service(&s.issuer), s.pinned_keys)
            {
                cx.error(
                    o,
                    SSO,
                    Some("jwks_file"),
                    format!(
                        "SSO {} has the issuer of {service} ({}), which publishes its keys: use discovery: true instead of jwks_file (or, as a deliberate and reviewed choice, pinned_keys: true)",
                        s.name, s.issuer
                    ),
                );
                return None;
            }
            match cx.config().key_file(rel) {
                Ok(path) => Some(KeySource::File(path)),
                Err(e) => {
                    cx.error(o, SSO, Some("jwks_file"), format!("{rel}: {e}"));
                    None
                }
            }
        }
        [false, true, false] => match check_url(s.jwks_uri.as_deref().unwrap_or_default()) {
            Ok(url) => Some(KeySource::Remote(Remote::Jwks(url))),
            Err(e) => {
                cx.error(o, SSO, Some("jwks_uri"), e.to_string());
                None
            }
        },
        [false, false, true] => match check_url(&s.issuer) {
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
) -> Result<(KeySet, Vec<crate::core::keys::SkippedKey>), String> {
    KeySet::from_jwks(read?, algorithms).map_err(|e| e.to_string())
}

/// The previous snapshot's key set for this SSO when its source is unchanged (its feed goes
/// on refreshing it), else a new one with a feed from `feeds`.
fn remote_keys(
    cx: &mut Ctx<'_>,
    item: &Item<SsoSpec>,
    remote: &Remote,
    algorithms: AlgSet,
    ca_roots: Vec<CertificateDer<'static>>,
    previous: Option<&Snapshot>,
    feeds: Option<&dyn KeyFeeds>,
) -> Option<Arc<RemoteKeySet>> {
    let s = &item.spec;
    let reused = previous.and_then(|p| {
        p.ssos
            .iter()
            .find(|old| *old.name == *s.name)
            .and_then(|old| old.remote.clone())
            .filter(|r| r.same_source(remote, algorithms, &ca_roots))
    });
    if reused.is_some() {
        return reused;
    }
    let set = Arc::new(RemoteKeySet::new(remote.clone(), algorithms, ca_roots));
    if let Some(feeds) = feeds {
        match feeds.feed(&s.name, &set) {
            Ok(feed) => {
                set.attach(feed);
            }
            Err(e) => {
                cx.error(item.origin, SSO, None, e);
                return None;
            }
        }
    }
    Some(set)
}
