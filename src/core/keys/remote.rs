//! Keys an SSO needs from its identity provider: what to fetch, as data, and the swappable
//! set a check reads.
//!
//! The core fetches nothing. A host attaches a [`KeyFeed`] to each [`RemoteKeySet`] (the
//! server's provider fetches, refreshes and swaps the set over HTTPS); [`KeyFeeds`] is how it
//! makes one while a configuration is compiled. Without a feed the set stays empty and its
//! first load never finishes, so every token of the SSO is refused `unknown_key`.

use std::any::Any;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use rustls::pki_types::CertificateDer;
use url::Url;

use super::{AlgSet, KeySet};
use crate::core::text::redact_url;

/// Where remote keys come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Remote {
    /// A JWKS URL.
    Jwks(Url),
    /// OIDC discovery from this issuer.
    Discovery(String),
}

/// Why a URL is not one claimgate may fetch keys from.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    /// Not a URL at all.
    #[error("{url:?} is not a URL: {source}")]
    NotAUrl {
        /// The text given.
        url: String,
        /// Why it does not parse.
        source: url::ParseError,
    },
    /// Plain http to a host that is not loopback.
    #[error("{url:?} must use https (plain http only for loopback addresses)")]
    PlainHttp {
        /// The URL.
        url: String,
    },
    /// A scheme other than http or https.
    #[error("{url:?}: scheme {scheme} is not supported; use https")]
    Scheme {
        /// The URL.
        url: String,
        /// Its scheme.
        scheme: String,
    },
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Parse a URL claimgate may fetch keys from: HTTPS, or HTTP on a loopback address only.
pub fn check_url(raw: &str) -> Result<Url, UrlError> {
    let url = Url::parse(raw).map_err(|source| UrlError::NotAUrl {
        url: redact_url(raw),
        source,
    })?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(UrlError::PlainHttp {
            url: redact_url(raw),
        }),
        other => Err(UrlError::Scheme {
            url: redact_url(raw),
            scheme: other.to_owned(),
        }),
    }
}

/// What a host attaches to a remote key set to fill it.
pub trait KeyFeed: Send + Sync + std::fmt::Debug {
    /// Whether the first load has finished (with or without keys).
    fn first_load_done(&self) -> bool;

    /// This feed as the host's own type, for the host to call what only it knows.
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

/// How a host makes the feed of a remote key set while a configuration is compiled.
pub trait KeyFeeds: Send + Sync + std::fmt::Debug {
    /// A feed for the keys of `sso`; an error refuses the configuration at that SSO.
    fn feed(&self, sso: &str, set: &RemoteKeySet) -> Result<Arc<dyn KeyFeed>, String>;
}

/// The keys of one SSO whose keys are remote, shared by the snapshots that keep its source.
#[derive(Debug)]
pub struct RemoteKeySet {
    source: Remote,
    algorithms: AlgSet,
    ca_roots: Vec<CertificateDer<'static>>,
    keys: Arc<ArcSwap<KeySet>>,
    feed: OnceLock<Arc<dyn KeyFeed>>,
}

impl RemoteKeySet {
    /// An empty set to be filled from `source`, trusting `ca_roots` besides the public roots.
    pub fn new(source: Remote, algorithms: AlgSet, ca_roots: Vec<CertificateDer<'static>>) -> Self {
        RemoteKeySet {
            source,
            algorithms,
            ca_roots,
            keys: Arc::default(),
            feed: OnceLock::new(),
        }
    }

    /// Where the keys come from.
    pub fn source(&self) -> &Remote {
        &self.source
    }

    /// The algorithms the SSO allows (keys for no other are dropped).
    pub fn algorithms(&self) -> AlgSet {
        self.algorithms
    }

    /// The certificates of the SSO's `ca_file`, trusted besides the public roots.
    pub fn ca_roots(&self) -> &[CertificateDer<'static>] {
        &self.ca_roots
    }

    /// The current keys: what a check reads, and what a feed swaps.
    pub fn keys(&self) -> &Arc<ArcSwap<KeySet>> {
        &self.keys
    }

    /// Whether this set can stand for an SSO with this source, allow-list and CA.
    pub fn same_source(
        &self,
        source: &Remote,
        algorithms: AlgSet,
        ca_roots: &[CertificateDer<'static>],
    ) -> bool {
        self.source == *source && self.algorithms == algorithms && self.ca_roots == ca_roots
    }

    /// Attach `feed` unless one is attached already; returns the one attached.
    pub fn attach(&self, feed: Arc<dyn KeyFeed>) -> &Arc<dyn KeyFeed> {
        self.feed.get_or_init(|| feed)
    }

    /// The feed a host attached, if any.
    pub fn feed(&self) -> Option<&Arc<dyn KeyFeed>> {
        self.feed.get()
    }

    /// Whether the feed's first load has finished (never, without a feed).
    pub fn first_load_done(&self) -> bool {
        self.feed.get().is_some_and(|f| f.first_load_done())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_is_fetched() {
        assert!(check_url("https://idp.example.com/keys").is_ok());
        assert!(check_url("http://127.0.0.1:8080/keys").is_ok());
        assert!(check_url("http://[::1]:8080/keys").is_ok());
        assert!(check_url("http://localhost/keys").is_ok());
        assert!(matches!(
            check_url("http://idp.example.com/keys"),
            Err(UrlError::PlainHttp { .. })
        ));
        assert!(matches!(
            check_url("http://10.0.0.1/keys"),
            Err(UrlError::PlainHttp { .. })
        ));
        assert!(matches!(
            check_url("file:///etc/keys"),
            Err(UrlError::Scheme { .. })
        ));
        assert!(matches!(
            check_url("not a url"),
            Err(UrlError::NotAUrl { .. })
        ));
        let e = check_url("http://idp.example.com/keys").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#""http://idp.example.com/keys" must use https (plain http only for loopback addresses)"#
        );
    }

    #[test]
    fn a_set_without_a_feed_never_finishes_loading() {
        let set = RemoteKeySet::new(
            Remote::Discovery("https://idp.example.com".into()),
            AlgSet::default(),
            Vec::new(),
        );
        assert!(!set.first_load_done());
        assert!(set.keys().load().is_empty());
    }
}
