//! Why a key URL was refused or a key load failed.

use crate::core::keys::remote::UrlError;
use crate::core::keys::KeySetError;

use super::MAX_BODY;

/// Why a key URL was refused or a key load failed. The text is what `/readyz`, the logs and
/// `claimgate explain` show, so every variant names the URL or document it is about.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Not a URL claimgate may fetch keys from.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// A discovery document of an HTTPS issuer names a plain-http `jwks_uri`.
    #[error("discovery document of {issuer} names jwks_uri {url:?} over plain http; the keys of an https issuer must come over https")]
    PlainHttpKeysOfHttpsIssuer {
        /// The `jwks_uri`.
        url: String,
        /// The discovery document's URL.
        issuer: String,
    },
    /// The TLS configuration could not be built.
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
    /// The HTTP client could not be built.
    #[error("HTTP client setup: {}", chain(.0))]
    Client(#[source] reqwest::Error),
    /// The request failed before an answer arrived (connect, TLS, timeout, redirect, body).
    #[error("GET {url}: {}", chain(.source))]
    Request {
        /// The URL fetched.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The provider answered with a status other than 2xx.
    #[error("GET {url}: HTTP {status}")]
    Status {
        /// The URL fetched.
        url: String,
        /// The status it answered.
        status: reqwest::StatusCode,
    },
    /// The body is larger than [`MAX_BODY`].
    #[error("GET {url}: body larger than {MAX_BODY} bytes")]
    TooLarge {
        /// The URL fetched.
        url: String,
    },
    /// The discovery document is not JSON.
    #[error("discovery document is not JSON: {0}")]
    DiscoveryNotJson(#[source] serde_json::Error),
    /// The discovery document speaks for another issuer.
    #[error("discovery document names issuer {found:?}, not the configured {configured:?}")]
    IssuerMismatch {
        /// The `issuer` it names, if any.
        found: Option<String>,
        /// The configured issuer.
        configured: String,
    },
    /// The discovery document has no `jwks_uri`.
    #[error("discovery document has no jwks_uri")]
    NoJwksUri,
    /// The JWKS document is refused whole.
    #[error(transparent)]
    Jwks(#[from] KeySetError),
    /// The set holds no key claimgate can use.
    #[error("no usable key in the set ({skipped} skipped); keeping the last good keys")]
    NoUsableKey {
        /// How many keys were dropped.
        skipped: usize,
    },
}

/// An error and its sources on one line: reqwest's own text ("error sending request") says
/// nothing about why without them.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}
