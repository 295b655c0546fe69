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
use tokio::sync::watch;

use crate::core::counters::Counters;
use crate::core::keys::remote::{KeyFeed, KeyFeeds, Remote, RemoteKeySet};
use crate::core::keys::{AlgSet, KeySet};
use crate::core::snapshot::Snapshot;
use crate::server::metrics::Metrics;

mod error;
/// Fetching keys over HTTP.
mod fetch;
/// When a key set is fetched again.
mod schedule;

pub use error::ProviderError;
pub use fetch::{check_jwks_uri, http_client};
pub use schedule::{backoff, next_refresh, parse_max_age};

/// Largest JWKS or discovery document accepted.
pub const MAX_BODY: usize = 1024 * 1024;
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
        let jwks_url = fetch::jwks_url(&self.client, &self.source).await?;
        let (body, max_age) = fetch::get_limited(&self.client, jwks_url).await?;
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
