//! Every call the filter makes into Envoy, behind [`Host`]: the request headers (read once,
//! in one call), the route's claimgate settings, headers set and removed, a local reply, the
//! time and the counters. [`Envoy`] makes the real host calls; the check never names one.

use std::time::UNIX_EPOCH;

use claimgate::core::counters::Counters;
use claimgate::core::decision::{Decision, DecisionKind, Reason};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{MapType, MetricType};

/// What the filter asks of its host for one request.
pub trait Host {
    /// Every request header (pseudo-headers included), names lowercase, as Envoy holds them.
    fn request_headers(&self) -> Vec<(String, String)>;
    /// The route's `filter_metadata.claimgate.<name>` string, if it sets one.
    fn route_setting(&self, name: &str) -> Option<String>;
    /// Set (overwrite) a request header for the upstream.
    fn set_request_header(&self, name: &str, value: &str);
    /// Remove a request header before the upstream sees it.
    fn remove_request_header(&self, name: &str);
    /// Answer the client directly; the request goes no further.
    fn reply(&self, status: u16, headers: Vec<(&str, &str)>, body: &str);
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> u64;
    /// Count one decision.
    fn count(&self, decision: &Decision);
}

/// The stats the filter keeps in Envoy, by id (defined once per VM).
#[derive(Debug, Clone, Default)]
pub struct Stats {
    allowed: u32,
    allowed_public: u32,
    denied: Vec<u32>,
    dry_run_denied: Vec<u32>,
    cache_hits: u32,
    cache_misses: u32,
}

impl Stats {
    /// Define every counter in Envoy's stats (`claimgate.…`, shown with Envoy's own prefix).
    pub fn define() -> Stats {
        let counter = |name: &str| hostcalls::define_metric(MetricType::Counter, name).unwrap_or(0);
        let by_reason = |kind: DecisionKind| {
            Reason::ALL
                .iter()
                .map(|r| counter(&format!("claimgate.checks.{}.{}", kind.as_str(), r.code())))
                .collect()
        };
        Stats {
            allowed: counter("claimgate.checks.allow.allowed"),
            allowed_public: counter("claimgate.checks.allow.public"),
            denied: by_reason(DecisionKind::Deny),
            dry_run_denied: by_reason(DecisionKind::DryRunDeny),
            cache_hits: counter("claimgate.token_cache.hits"),
            cache_misses: counter("claimgate.token_cache.misses"),
        }
    }

    /// The counter of `decision`, as the server's `claimgate_checks_total` labels it.
    fn of(&self, decision: &Decision) -> Option<u32> {
        use claimgate::core::decision::Allow;
        let reason = |r: Reason| Reason::ALL.iter().position(|x| *x == r);
        match decision {
            Decision::Allow(Allow::Public { .. }) => Some(self.allowed_public),
            Decision::Allow(Allow::Identity(_)) => Some(self.allowed),
            Decision::Allow(Allow::DryRun(d)) => {
                reason(d.reason).and_then(|i| self.dry_run_denied.get(i).copied())
            }
            Decision::Deny(d) => reason(d.reason).and_then(|i| self.denied.get(i).copied()),
        }
    }
}

/// The token cache's counters, in Envoy's stats.
impl Counters for Stats {
    fn token_cache_hit(&self) {
        let _ = hostcalls::increment_metric(self.cache_hits, 1);
    }

    fn token_cache_miss(&self) {
        let _ = hostcalls::increment_metric(self.cache_misses, 1);
    }
}

/// The real host: Envoy, through proxy-wasm host calls.
#[derive(Debug)]
pub struct Envoy<'a> {
    /// The VM's counters.
    pub stats: &'a Stats,
}

impl Host for Envoy<'_> {
    fn request_headers(&self) -> Vec<(String, String)> {
        // Values as bytes: the SDK's string read panics on a value that is not UTF-8, which
        // a client controls. Such a value reads as U+FFFD, as the server reads it.
        hostcalls::get_map_bytes(MapType::HttpRequestHeaders)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| {
                let value = String::from_utf8(value).unwrap_or_else(|_| "\u{fffd}".into());
                (name, value)
            })
            .collect()
    }

    fn route_setting(&self, name: &str) -> Option<String> {
        let path = vec![
            "xds",
            "route_metadata",
            "filter_metadata",
            "claimgate",
            name,
        ];
        let bytes = hostcalls::get_property(path).ok().flatten()?;
        String::from_utf8(bytes).ok()
    }

    fn set_request_header(&self, name: &str, value: &str) {
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value));
    }

    fn remove_request_header(&self, name: &str) {
        let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name);
    }

    fn reply(&self, status: u16, headers: Vec<(&str, &str)>, body: &str) {
        let _ = hostcalls::send_http_response(u32::from(status), headers, Some(body.as_bytes()));
    }

    fn now_millis(&self) -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as u64)
    }

    fn count(&self, decision: &Decision) {
        if let Some(id) = self.stats.of(decision) {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }
}
