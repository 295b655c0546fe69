//! Keys from the identity provider: OIDC discovery, remote JWKS, background refresh,
//! unknown-`kid` refetch, outages.
//!
//! Failure semantics, written down because they are the point of this module:
//! - A failed or suspicious fetch (network error, non-2xx, body over 1 MiB, invalid JSON, more
//!   than 100 keys, no usable key) never replaces the last good key set; it is retried with
//!   backoff. An empty set is treated as a failure, so an outage can't turn into reject-all.
//! - An unknown `kid` triggers at most one refetch per SSO per `refetch_min_interval`,
//!   shared by every request that wants it (single flight), waited for at most
//!   `refetch_wait`; kids a refetch proved absent are remembered, so a flood of random kids
//!   costs the provider one request per window and claimgate no more than a map lookup.
//! - Key sets are swapped atomically per SSO; a configuration reload that keeps an SSO's key
//!   source keeps its [`RemoteKeys`] (no refetch storm on every edit).

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use reqwest::Url;
use tokio::sync::watch;

use crate::core::counters::Counters;
use crate::core::keys::remote::{check_url, KeyFeed, KeyFeeds, Remote, RemoteKeySet};
use crate::core::keys::{AlgSet, KeySet};
use crate::core::snapshot::Snapshot;
use crate::core::text::redact_url;
use crate::server::metrics::Metrics;

mod error;
pub use error::ProviderError;

/// Largest JWKS or discovery document accepted.
pub const MAX_BODY: usize = 1024 * 1024;
/// Longest redirect chain followed (same host only).
const MAX_REDIRECTS: usize = 3;
/// Most kids remembered as absent.
const NEGATIVE_CACHE: usize = 4096;

/// Tunables of remote key loading; the doc line of each field with a flag is its `serve` help.
#[derive(Debug, Clone, clap::Args)]
pub struct ProviderOptions {
    /// Refresh remote keys this often when the provider sends no Cache-Control max-age.
    #[arg(id = "jwks_refresh", long = "jwks-refresh", value_name = "JWKS_REFRESH",
          env = "CLAIMGATE_JWKS_REFRESH", default_value = "10m", value_parser = humantime::parse_duration)]
    pub refresh: Duration,
    /// At most one unknown-kid refetch per SSO per this interval.
    #[arg(id = "jwks_refetch_interval", long = "jwks-refetch-interval", value_name = "JWKS_REFETCH_INTERVAL",
          env = "CLAIMGATE_JWKS_REFETCH_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub refetch_min_interval: Duration,
    /// How long a check waits for remote keys before it is denied.
    #[arg(id = "jwks_refetch_wait", long = "jwks-refetch-wait", value_name = "JWKS_REFETCH_WAIT",
          env = "CLAIMGATE_JWKS_REFETCH_WAIT", default_value = "100ms", value_parser = humantime::parse_duration)]
    pub refetch_wait: Duration,
    /// TCP/TLS connect timeout.
    #[arg(skip = ProviderOptions::default().connect_timeout)]
    pub connect_timeout: Duration,
    /// Whole-request timeout, body included.
    #[arg(skip = ProviderOptions::default().timeout)]
    pub timeout: Duration,
    /// Trust anchors added to the public web roots (a private CA in front of a provider).
    #[arg(skip)]
    pub extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// Use the development key committed in claimgate's repository when a provider serves it
    /// (`serve --dev`, which sets it); otherwise it is dropped like any unusable key.
    #[arg(skip)]
    pub trust_dev_key: bool,
}

impl Default for ProviderOptions {
    fn default() -> Self {
        ProviderOptions {
            refresh: Duration::from_secs(600),
            refetch_min_interval: Duration::from_secs(30),
            refetch_wait: Duration::from_millis(100),
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            extra_roots: Vec::new(),
            trust_dev_key: false,
        }
    }
}

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

#[derive(Debug, Default)]
struct Refetch {
    in_flight: bool,
    last_start: Option<Instant>,
    absent: HashMap<Box<str>, Instant>,
}

#[derive(Debug, Default, Clone)]
struct Status {
    last_error: Option<String>,
    last_success: Option<SystemTime>,
}

/// The live, refreshed key set of one SSO whose keys are remote.
#[derive(Debug)]
pub struct RemoteKeys {
    sso: Box<str>,
    source: Remote,
    algorithms: AlgSet,
    keys: Arc<ArcSwap<KeySet>>,
    opts: ProviderOptions,
    client: reqwest::Client,
    first_load: watch::Sender<bool>,
    fetched: watch::Sender<u64>,
    status: Mutex<Status>,
    refetch: Mutex<Refetch>,
    started: AtomicBool,
    metrics: OnceLock<Metrics>,
}

/// What one fetch produced.
struct Fetched {
    keys: KeySet,
    skipped: Vec<crate::core::keys::SkippedKey>,
    max_age: Option<Duration>,
}

impl RemoteKeys {
    /// The feed of `set`, the keys of `sso`, not fetching yet: it trusts the public roots,
    /// `opts.extra_roots` and the set's `ca_file`.
    pub fn new(
        sso: &str,
        set: &RemoteKeySet,
        opts: &ProviderOptions,
    ) -> Result<Arc<Self>, ProviderError> {
        let mut opts = opts.clone();
        opts.extra_roots.extend(set.ca_roots().iter().cloned());
        Ok(Arc::new(RemoteKeys {
            sso: sso.into(),
            source: set.source().clone(),
            algorithms: set.algorithms(),
            keys: set.keys().clone(),
            client: http_client(&opts)?,
            opts,
            first_load: watch::Sender::new(false),
            fetched: watch::Sender::new(0),
            status: Mutex::default(),
            refetch: Mutex::default(),
            started: AtomicBool::new(false),
            metrics: OnceLock::new(),
        }))
    }

    /// The feed attached to `set`, when it is this provider's.
    pub fn of(set: &RemoteKeySet) -> Option<Arc<RemoteKeys>> {
        set.feed()?.clone().into_any().downcast().ok()
    }

    /// The feed attached to `set`, or a new one made with `opts`: for one-shot tools, whose
    /// snapshots are compiled without feeds.
    pub fn attached(
        sso: &str,
        set: &RemoteKeySet,
        opts: &ProviderOptions,
    ) -> Result<Arc<RemoteKeys>, ProviderError> {
        if let Some(feed) = Self::of(set) {
            return Ok(feed);
        }
        let feed = Self::new(sso, set, opts)?;
        set.attach(feed.clone());
        Ok(Self::of(set).unwrap_or(feed))
    }

    /// Whether the first load has finished (with or without keys).
    pub fn first_load_done(&self) -> bool {
        *self.first_load.borrow()
    }

    /// The error of the last failed load, if the last load failed.
    pub fn last_error(&self) -> Option<String> {
        self.lock_status().last_error.clone()
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_refetch(&self) -> std::sync::MutexGuard<'_, Refetch> {
        self.refetch.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start the background refresh (once); it stops when the last snapshot using it is gone.
    pub fn start(self: &Arc<Self>, metrics: &Metrics) {
        let _ = self.metrics.set(metrics.clone());
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(refresh_loop(weak));
    }

    /// Wait (at most `max`) for the first load to finish; returns whether it has.
    pub async fn wait_first_load(&self, max: Duration) -> bool {
        let mut rx = self.first_load.subscribe();
        let waited = tokio::time::timeout(max, async {
            let _ = rx.wait_for(|done| *done).await;
        })
        .await;
        waited.is_ok() && self.first_load_done()
    }

    /// Fetch once now and swap in the result if it is usable, without starting the
    /// background refresh: for one-shot tools such as `claimgate explain`. Returns how many
    /// usable keys the set holds afterwards.
    pub async fn load_now(&self) -> Result<usize, ProviderError> {
        self.load_once("one-shot").await?;
        Ok(self.keys.load().len())
    }

    /// A token names `kid` (or none) that the current set lacks: refetch once, shared and
    /// rate-limited, and wait at most `refetch_wait`. Returns whether the key is there now.
    pub async fn refetch_for(self: &Arc<Self>, kid: Option<&str>) -> bool {
        let kid_key: &str = kid.unwrap_or("");
        let mut rx = {
            let mut st = self.lock_refetch();
            let now = Instant::now();
            if let Some(seen) = st.absent.get(kid_key) {
                if now.duration_since(*seen) < self.opts.refetch_min_interval {
                    return false;
                }
            }
            let rx = self.fetched.subscribe();
            if !st.in_flight {
                let recent = st
                    .last_start
                    .is_some_and(|t| now.duration_since(t) < self.opts.refetch_min_interval);
                if recent {
                    return false;
                }
                st.in_flight = true;
                st.last_start = Some(now);
                let this = self.clone();
                tokio::spawn(async move {
                    let _ = this.load_once("unknown-kid").await;
                    this.lock_refetch().in_flight = false;
                    this.fetched.send_modify(|n| *n += 1);
                });
            }
            rx
        };
        let finished = matches!(
            tokio::time::timeout(self.opts.refetch_wait, rx.changed()).await,
            Ok(Ok(()))
        );
        let present = match kid {
            Some(k) => self.keys.load().has_kid(k),
            None => !self.keys.load().is_empty(),
        };
        if finished && !present {
            let mut st = self.lock_refetch();
            if st.absent.len() >= NEGATIVE_CACHE {
                let window = self.opts.refetch_min_interval;
                st.absent.retain(|_, t| t.elapsed() < window);
                if st.absent.len() >= NEGATIVE_CACHE {
                    st.absent.clear();
                }
            }
            st.absent.insert(kid_key.into(), Instant::now());
        }
        present
    }

    /// Fetch once and, if the result is usable, swap it in. Returns the provider's max-age.
    async fn load_once(&self, trigger: &'static str) -> Result<Option<Duration>, ProviderError> {
        let result = self.fetch().await;
        // Every dropped key is named, also when none is left: the reason is the fix.
        if let Ok(f) = &result {
            for k in &f.skipped {
                tracing::warn!(sso = %self.sso, key = %k.id, reason = %k.reason, "key not used");
            }
        }
        let outcome = match result {
            Ok(f) if f.keys.is_empty() => Err(ProviderError::NoUsableKey {
                skipped: f.skipped.len(),
            }),
            Ok(f) => {
                let count = f.keys.len();
                // The same document again: keep the set, so the tokens it verified stay
                // cached (the token cache drops entries whenever the set is swapped).
                if !self.keys.load().same_document(&f.keys) {
                    self.keys.store(Arc::new(f.keys));
                }
                tracing::info!(sso = %self.sso, trigger, keys = count, "keys loaded");
                Ok((f.max_age, count))
            }
            Err(e) => Err(e),
        };
        let result = match outcome {
            Ok((max_age, count)) => {
                {
                    let mut st = self.lock_status();
                    st.last_error = None;
                    st.last_success = Some(crate::core::clock::now());
                }
                if let Some(m) = self.metrics.get() {
                    m.keys_loaded(&self.sso, true, count);
                }
                Ok(max_age)
            }
            Err(e) => {
                let kept = self.keys.load().len();
                tracing::warn!(sso = %self.sso, trigger, error = %e, kept_keys = kept, "key refresh failed");
                self.lock_status().last_error = Some(e.to_string());
                if let Some(m) = self.metrics.get() {
                    m.keys_loaded(&self.sso, false, kept);
                }
                Err(e)
            }
        };
        self.first_load.send_replace(true);
        result
    }

    async fn fetch(&self) -> Result<Fetched, ProviderError> {
        let jwks_url = match &self.source {
            Remote::Jwks(u) => u.clone(),
            Remote::Discovery(issuer) => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    issuer.trim_end_matches('/')
                );
                let discovery = check_url(&url)?;
                let (body, _) = get_limited(&self.client, discovery.clone()).await?;
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
                check_jwks_uri(&discovery, jwks_uri)?
            }
        };
        let (body, max_age) = get_limited(&self.client, jwks_url).await?;
        let (mut keys, mut skipped) = KeySet::from_jwks(&body, self.algorithms)?;
        // A provider serving the committed development key is as unsafe as a file holding it.
        // A start cannot be refused for keys that arrive later, so the key is dropped instead.
        if self.opts.trust_dev_key {
            for k in keys.keys().iter().filter(|k| k.is_dev_key()) {
                tracing::warn!(sso = %self.sso, key = %k.label(), "DEVELOPMENT KEY TRUSTED (--dev): the provider serves the key committed in claimgate's repository; anyone can sign tokens this SSO accepts");
            }
        } else {
            let dropped;
            (keys, dropped) = keys.without_dev_keys();
            skipped.extend(dropped);
        }
        Ok(Fetched {
            keys,
            skipped,
            max_age,
        })
    }
}

async fn get_limited(
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

/// `max-age` from a Cache-Control value.
pub fn parse_max_age(v: &str) -> Option<Duration> {
    v.split(',')
        .filter_map(|d| d.trim().strip_prefix("max-age="))
        .find_map(|n| n.trim_matches('"').parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// The next refresh after a success: the provider's max-age clamped to 1 min..24 h, else
/// the configured interval; with ±10% jitter so replicas don't refresh in lockstep.
pub fn next_refresh(max_age: Option<Duration>, default: Duration) -> Duration {
    let base = match max_age {
        Some(a) => a.clamp(Duration::from_secs(60), Duration::from_secs(24 * 3600)),
        None => default,
    };
    jitter(base)
}

fn jitter(d: Duration) -> Duration {
    let f: f64 = rand::random_range(0.9..1.1);
    d.mul_f64(f)
}

/// Backoff after `failures` consecutive failed loads: 1 s doubling, at most the refresh
/// interval and 5 min.
pub fn backoff(failures: u32, refresh: Duration) -> Duration {
    let cap = refresh.min(Duration::from_secs(300));
    let d = Duration::from_secs(1).saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    jitter(d.min(cap))
}

impl KeyFeed for RemoteKeys {
    fn first_load_done(&self) -> bool {
        RemoteKeys::first_load_done(self)
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

// The server compiles every configuration with its options: each remote key set gets a
// provider feed, and a configuration whose feed cannot be built (its TLS roots) is refused.
impl KeyFeeds for ProviderOptions {
    fn feed(&self, sso: &str, set: &RemoteKeySet) -> Result<Arc<dyn KeyFeed>, String> {
        match RemoteKeys::new(sso, set, self) {
            Ok(feed) => Ok(feed),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Start refreshing every remote key set of `snap` that is not refreshing yet (needs a
/// runtime); each stops when the last snapshot holding its set is gone.
pub fn start(snap: &Snapshot, metrics: &Metrics) {
    for set in snap.ssos.iter().filter_map(|s| s.remote.as_deref()) {
        if let Some(feed) = RemoteKeys::of(set) {
            feed.start(metrics);
        }
    }
}

async fn refresh_loop(weak: Weak<RemoteKeys>) {
    let mut failures = 0u32;
    loop {
        let Some(this) = weak.upgrade() else { return };
        let next = match this.load_once("refresh").await {
            Ok(max_age) => {
                failures = 0;
                next_refresh(max_age, this.opts.refresh)
            }
            Err(_) => {
                failures += 1;
                backoff(failures, this.opts.refresh)
            }
        };
        drop(this);
        tokio::time::sleep(next).await;
    }
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

    #[test]
    fn max_age_is_read_and_clamped() {
        assert_eq!(
            parse_max_age("public, max-age=120"),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_max_age("no-store"), None);
        let short = next_refresh(Some(Duration::from_secs(5)), Duration::from_secs(600));
        assert!(short >= Duration::from_secs(54) && short <= Duration::from_secs(66));
        let long = next_refresh(
            Some(Duration::from_secs(10 * 86400)),
            Duration::from_secs(600),
        );
        assert!(long <= Duration::from_secs(24 * 3600 * 11 / 10));
        let default = next_refresh(None, Duration::from_secs(600));
        assert!(default >= Duration::from_secs(540) && default <= Duration::from_secs(660));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let ten_min = Duration::from_secs(600);
        assert!(backoff(1, ten_min) <= Duration::from_millis(1100));
        assert!(backoff(4, ten_min) >= Duration::from_millis(7200));
        assert!(backoff(30, ten_min) <= Duration::from_secs(330));
        assert!(backoff(30, Duration::from_secs(2)) <= Duration::from_millis(2200));
    }
}
