//! Fetching keys over HTTP: the client (its roots, timeouts, same-host redirects), the
//! discovery document's `jwks_uri`, and bodies read up to [`MAX_BODY`].

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use super::{parse_max_age, ProviderError, ProviderOptions, MAX_BODY};
use crate::core::keys::remote::{check_url, Remote};
use crate::core::text::redact_url;

/// Longest redirect chain followed (same host only).
const MAX_REDIRECTS: usize = 3;
/// Build the HTTP client used for discovery and JWKS: rustls on aws-lc-rs, webpki roots,
/// bounded timeouts, redirects only to the same host.
pub fn http_client(opts: &ProviderOptions) -> Result<reqwest::Client, ProviderError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in &opts.extra_roots {
        roots.add(cert.clone())?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        let verdict = match attempt.previous().first() {
            Some(first) => redirect_refusal(first, attempt.url(), attempt.previous().len()),
            None => Some("redirect without an origin refused"),
        };
        match verdict {
            Some(why) => attempt.error(why),
            None => attempt.follow(),
        }
    });
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(opts.connect_timeout)
        .timeout(opts.timeout)
        .redirect(redirects)
        .user_agent(concat!("claimgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(ProviderError::Client)
}

/// Why a redirect from `first` (the URL first requested) to `next`, after `hops` redirects,
/// is refused; `None` to follow it.
fn redirect_refusal(first: &Url, next: &Url, hops: usize) -> Option<&'static str> {
    if hops > MAX_REDIRECTS {
        return Some("too many redirects");
    }
    let same_host = first.host_str() == next.host_str()
        && first.port_or_known_default() == next.port_or_known_default();
    if !same_host {
        return Some("redirect to another host refused");
    }
    if check_url(next.as_str()).is_err() || (first.scheme() == "https" && next.scheme() != "https")
    {
        return Some("redirect to an insecure URL refused");
    }
    None
}

/// The `jwks_uri` a discovery document names, checked against the issuer that named it. The
/// keys of an HTTPS issuer come over HTTPS: plain http (on loopback only, as [`check_url`]
/// says) is for an issuer that is itself a loopback http URL, such as a local test provider.
pub fn check_jwks_uri(issuer: &Url, raw: &str) -> Result<Url, ProviderError> {
    let url = check_url(raw)?;
    if url.scheme() != "https" && issuer.scheme() == "https" {
        return Err(ProviderError::PlainHttpKeysOfHttpsIssuer {
            url: redact_url(raw),
            issuer: redact_url(issuer.as_str()),
        });
    }
    Ok(url)
}

/// The URL of the JWKS of `source`: itself, or what its issuer's discovery document names.
pub(super) async fn jwks_url(
    client: &reqwest::Client,
    source: &Remote,
) -> Result<Url, ProviderError> {
    match source {
        Remote::Jwks(u) => Ok(u.clone()),
        Remote::Discovery(issuer) => {
            let url = format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            );
            let discovery = check_url(&url)?;
            let (body, _) = get_limited(client, discovery.clone()).await?;
            let doc: serde_json::Value =
                serde_json::from_slice(&body).map_err(ProviderError::DiscoveryNotJson)?;
            let found = doc.get("issuer").and_then(|v| v.as_str());
            if found != Some(issuer.as_str()) {
                return Err(ProviderError::IssuerMismatch {
                    found: found.map(str::to_owned),
                    configured: issuer.clone(),
                });
            }
            let jwks_uri = doc
                .get("jwks_uri")
                .and_then(|v| v.as_str())
                .ok_or(ProviderError::NoJwksUri)?;
            check_jwks_uri(&discovery, jwks_uri)
        }
    }
}

/// GET `url` as JSON, refusing a body over [`MAX_BODY`]; the body and its Cache-Control
/// max-age.
pub(super) async fn get_limited(
    client: &reqwest::Client,
    url: Url,
) -> Result<(Vec<u8>, Option<Duration>), ProviderError> {
    let shown = redact_url(url.as_str());
    // reqwest's own text names the URL whole: its copy is dropped, ours is redacted.
    let failed = |source: reqwest::Error| ProviderError::Request {
        url: shown.clone(),
        source: source.without_url(),
    };
    let too_large = || ProviderError::TooLarge { url: shown.clone() };
    let mut resp = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(failed)?;
    if !resp.status().is_success() {
        return Err(ProviderError::Status {
            url: shown.clone(),
            status: resp.status(),
        });
    }
    if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let max_age = resp
        .headers()
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_max_age);
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(failed)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, max_age))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::keys::remote::UrlError;

    #[test]
    fn an_https_issuer_names_only_an_https_jwks_uri() {
        let https = Url::parse("https://idp.example.com/.well-known/openid-configuration").unwrap();
        let local = Url::parse("http://127.0.0.1:8080/.well-known/openid-configuration").unwrap();
        assert!(check_jwks_uri(&https, "https://keys.example.com/jwks").is_ok());
        assert!(matches!(
            check_jwks_uri(&https, "http://127.0.0.1:9000/keys"),
            Err(ProviderError::PlainHttpKeysOfHttpsIssuer { .. })
        ));
        assert!(matches!(
            check_jwks_uri(&https, "http://keys.example.com/jwks"),
            Err(ProviderError::Url(UrlError::PlainHttp { .. }))
        ));
        assert!(check_jwks_uri(&local, "http://127.0.0.1:9000/keys").is_ok());
        assert!(check_jwks_uri(&local, "https://keys.example.com/jwks").is_ok());
        assert!(check_jwks_uri(&local, "http://keys.example.com/jwks").is_err());
    }

    #[test]
    fn redirects_stay_on_the_host_and_never_leave_https() {
        let url = |s: &str| Url::parse(s).unwrap();
        let first = url("https://localhost:8443/keys");
        assert_eq!(
            redirect_refusal(&first, &url("https://localhost:8443/v2/keys"), 1),
            None
        );
        assert!(redirect_refusal(&first, &url("https://other.example.com/keys"), 1).is_some());
        assert!(redirect_refusal(&first, &url("https://localhost:8443/keys"), 4).is_some());
        // Same host and port, plain http: a downgrade, even on loopback.
        assert!(redirect_refusal(&first, &url("http://localhost:8443/keys"), 1).is_some());
        let plain = url("http://127.0.0.1:8080/keys");
        assert_eq!(
            redirect_refusal(&plain, &url("http://127.0.0.1:8080/v2/keys"), 1),
            None
        );
    }
}
