//! The counters the core reports, for a host to keep: the server keeps them in Prometheus,
//! the tools keep none ([`NoCounters`], a zero-sized type whose empty methods compile away).

/// What the core counts while it installs snapshots and caches tokens.
pub trait Counters: Send + Sync + std::fmt::Debug {
    /// A token was found verified in the cache.
    fn token_cache_hit(&self) {}

    /// A token had to be verified.
    fn token_cache_miss(&self) {}

    /// The cache now holds `entries` tokens.
    fn token_cache_entries(&self, entries: usize) {
        let _ = entries;
    }

    /// A configuration was installed as `generation`.
    fn config_installed(&self, generation: u64) {
        let _ = generation;
    }

    /// A key set load of `sso` ended; `keys` is the count now in use.
    fn keys_loaded(&self, sso: &str, ok: bool, keys: usize) {
        let _ = (sso, ok, keys);
    }

    /// Only these SSOs are configured now: forget what was counted for others.
    fn retain_ssos(&self, names: &[&str]) {
        let _ = names;
    }
}

/// Counts nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCounters;

impl Counters for NoCounters {}
