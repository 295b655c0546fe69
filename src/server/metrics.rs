//! Prometheus metrics behind domain methods; handler code never names a metric.
//!
//! Label values come only from configuration (SSO names) and fixed code lists (reason
//! codes). Counters for every decision are resolved once at start-up, so recording a check
//! is two atomic adds and no label lookup.

use std::time::Instant;

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::core::counters::Counters;
use crate::core::decision::{Allow, Decision, DecisionKind, Reason};

/// Every metric claimgate exports.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    allowed: IntCounter,
    allowed_public: IntCounter,
    denied: Vec<IntCounter>,
    dry_run_denied: Vec<IntCounter>,
    check_duration: Histogram,
    reloads: IntCounterVec,
    generation: IntGauge,
    last_reload_ok: IntGauge,
    last_reload_success: Gauge,
    jwks_refreshes: IntCounterVec,
    jwks_keys: IntGaugeVec,
    jwks_last_success: prometheus::GaugeVec,
    token_cache_hits: IntCounter,
    token_cache_misses: IntCounter,
    token_cache_entries: IntGauge,
    ready: IntGauge,
    log_events: IntCounter,
    log_dropped: IntCounter,
    log_write_errors: IntCounter,
    open_connections: IntGaugeVec,
    refused_in_flight: IntCounter,
    refused_too_large: IntCounter,
}

/// The listeners whose open connections are counted: the only values of the `listener` label.
pub const LISTENERS: [&str; 2] = ["grpc", "http"];

/// Counts the open connections of one listener.
#[derive(Clone)]
pub struct OpenConnections(IntGauge);

impl std::fmt::Debug for OpenConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpenConnections")
    }
}

impl OpenConnections {
    /// A connection opened; it counts until the returned guard drops.
    pub fn opened(&self) -> OpenConnection {
        self.0.inc();
        OpenConnection(self.0.clone())
    }
}

/// One open connection, counted until dropped.
pub struct OpenConnection(IntGauge);

impl std::fmt::Debug for OpenConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpenConnection")
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Counters for Metrics {
    fn token_cache_hit(&self) {
        self.token_cache_hits.inc();
    }

    fn token_cache_miss(&self) {
        self.token_cache_misses.inc();
    }

    fn token_cache_entries(&self, n: usize) {
        self.token_cache_entries.set(n as i64);
    }

    fn config_installed(&self, generation: u64) {
        self.reloads.with_label_values(&["success"]).inc();
        self.generation.set(generation as i64);
        self.last_reload_ok.set(1);
        self.last_reload_success
            .set(crate::core::clock::unix_now_f64());
    }

    fn keys_loaded(&self, sso: &str, ok: bool, keys: usize) {
        let result = if ok { "success" } else { "failure" };
        self.jwks_refreshes.with_label_values(&[sso, result]).inc();
        self.jwks_keys.with_label_values(&[sso]).set(keys as i64);
        if ok {
            self.jwks_last_success
                .with_label_values(&[sso])
                .set(crate::core::clock::unix_now_f64());
        }
    }

    fn retain_ssos(&self, names: &[&str]) {
        for mf in self.registry.gather() {
            if !mf.name().starts_with("claimgate_jwks") {
                continue;
            }
            for m in mf.get_metric() {
                let labels: Vec<(&str, &str)> = m
                    .get_label()
                    .iter()
                    .map(|l| (l.name(), l.value()))
                    .collect();
                let Some((_, sso)) = labels.iter().find(|(n, _)| *n == "sso") else {
                    continue;
                };
                if names.contains(sso) {
                    continue;
                }
                let map: std::collections::HashMap<&str, &str> = labels.iter().copied().collect();
                let _ = self.jwks_refreshes.remove(&map);
                let _ = self.jwks_keys.remove(&map);
                let _ = self.jwks_last_success.remove(&map);
            }
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Records the duration of one check when dropped.
pub struct CheckTimer<'m> {
    histogram: &'m Histogram,
    start: Instant,
}

impl Drop for CheckTimer<'_> {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Register every metric in a fresh registry.
    pub fn new() -> Self {
        let registry = Registry::new();
        let checks = IntCounterVec::new(
            Opts::new(
                "claimgate_checks_total",
                "Authorization checks by decision and reason.",
            ),
            &["decision", "reason"],
        )
        .expect("static metric definition");
        let check_duration = Histogram::with_opts(
            HistogramOpts::new(
                "claimgate_check_duration_seconds",
                "Time to decide one check.",
            )
            .buckets(vec![
                0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01,
                0.025, 0.05, 0.1,
            ]),
        )
        .expect("static metric definition");
        let reloads = IntCounterVec::new(
            Opts::new(
                "claimgate_config_reloads_total",
                "Configuration reloads by result.",
            ),
            &["result"],
        )
        .expect("static metric definition");
        let generation = IntGauge::new(
            "claimgate_config_generation",
            "Generation of the configuration in use.",
        )
        .expect("static metric definition");
        let last_reload_ok = IntGauge::new(
            "claimgate_config_last_reload_successful",
            "1 if the last reload attempt succeeded, 0 if it was refused.",
        )
        .expect("static metric definition");
        let last_reload_success = Gauge::new(
            "claimgate_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load.",
        )
        .expect("static metric definition");
        let jwks_refreshes = IntCounterVec::new(
            Opts::new(
                "claimgate_jwks_refreshes_total",
                "Key set loads by SSO and result.",
            ),
            &["sso", "result"],
        )
        .expect("static metric definition");
        let jwks_keys = IntGaugeVec::new(
            Opts::new("claimgate_jwks_keys", "Usable keys per SSO."),
            &["sso"],
        )
        .expect("static metric definition");
        let jwks_last_success = prometheus::GaugeVec::new(
            Opts::new(
                "claimgate_jwks_last_success_timestamp_seconds",
                "Unix time of the last successful key set load per SSO.",
            ),
            &["sso"],
        )
        .expect("static metric definition");
        let token_cache_hits = IntCounter::new(
            "claimgate_token_cache_hits_total",
            "Checks whose token was found verified in the token cache.",
        )
        .expect("static metric definition");
        let token_cache_misses = IntCounter::new(
            "claimgate_token_cache_misses_total",
            "Checks whose token had to be verified (not cached, or cached for an older configuration or key set).",
        )
        .expect("static metric definition");
        let token_cache_entries = IntGauge::new(
            "claimgate_token_cache_entries",
            "Tokens held in the token cache.",
        )
        .expect("static metric definition");
        let ready = IntGauge::new(
            "claimgate_ready",
            "1 while /readyz answers 200 (and gRPC health is SERVING), else 0.",
        )
        .expect("static metric definition");
        let log_events = IntCounter::new(
            "claimgate_decision_log_events_total",
            "Decisions written to the decision log.",
        )
        .expect("static metric definition");
        let log_dropped = IntCounter::new(
            "claimgate_decision_log_dropped_total",
            "Decisions not written to the decision log: its queue was full or its sink failed.",
        )
        .expect("static metric definition");
        let log_write_errors = IntCounter::new(
            "claimgate_decision_log_write_errors_total",
            "Failures to open or write the decision log (each retried on the next reopen).",
        )
        .expect("static metric definition");
        let open_connections = IntGaugeVec::new(
            Opts::new(
                "claimgate_open_connections",
                "Connections open now, per listener (grpc, http).",
            ),
            &["listener"],
        )
        .expect("static metric definition");
        for listener in LISTENERS {
            open_connections.with_label_values(&[listener]);
        }
        let refused = IntCounterVec::new(
            Opts::new(
                "claimgate_grpc_refused_total",
                "Check requests refused with RESOURCE_EXHAUSTED before a decision: reason in_flight (too many checks at once) or message_too_large.",
            ),
            &["reason"],
        )
        .expect("static metric definition");
        for c in [
            Box::new(checks.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(open_connections.clone()),
            Box::new(refused.clone()),
            Box::new(ready.clone()),
            Box::new(log_events.clone()),
            Box::new(log_dropped.clone()),
            Box::new(log_write_errors.clone()),
            Box::new(token_cache_hits.clone()),
            Box::new(token_cache_misses.clone()),
            Box::new(token_cache_entries.clone()),
            Box::new(check_duration.clone()),
            Box::new(reloads.clone()),
            Box::new(generation.clone()),
            Box::new(last_reload_ok.clone()),
            Box::new(last_reload_success.clone()),
            Box::new(jwks_refreshes.clone()),
            Box::new(jwks_keys.clone()),
            Box::new(jwks_last_success.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        for result in ["success", "failure"] {
            reloads.with_label_values(&[result]);
        }
        Metrics {
            allowed: checks.with_label_values(&[DecisionKind::Allow.as_str(), "allowed"]),
            allowed_public: checks.with_label_values(&[DecisionKind::Allow.as_str(), "public"]),
            denied: Reason::ALL
                .iter()
                .map(|r| checks.with_label_values(&[DecisionKind::Deny.as_str(), r.code()]))
                .collect(),
            dry_run_denied: Reason::ALL
                .iter()
                .map(|r| checks.with_label_values(&[DecisionKind::DryRunDeny.as_str(), r.code()]))
                .collect(),
            registry,
            check_duration,
            reloads,
            generation,
            last_reload_ok,
            last_reload_success,
            jwks_refreshes,
            jwks_keys,
            ready,
            jwks_last_success,
            token_cache_hits,
            token_cache_misses,
            token_cache_entries,
            log_events,
            log_dropped,
            log_write_errors,
            open_connections,
            refused_in_flight: refused.with_label_values(&["in_flight"]),
            refused_too_large: refused.with_label_values(&["message_too_large"]),
        }
    }

    /// A check was refused because too many were in flight.
    pub fn refused_in_flight(&self) {
        self.refused_in_flight.inc();
    }

    /// A check was refused because its message was over the size limit.
    pub fn refused_too_large(&self) {
        self.refused_too_large.inc();
    }

    /// The open-connections gauge of `listener`, one of [`LISTENERS`].
    pub fn open_connections(&self, listener: &'static str) -> OpenConnections {
        OpenConnections(self.open_connections.with_label_values(&[listener]))
    }

    /// `lines` decisions were written to the decision log.
    pub fn decision_logged(&self, lines: u64) {
        self.log_events.inc_by(lines);
    }

    /// `lines` decisions could not be written to the decision log.
    pub fn decision_log_dropped(&self, lines: u64) {
        self.log_dropped.inc_by(lines);
    }

    /// The decision log could not be opened or written.
    pub fn decision_log_failed(&self) {
        self.log_write_errors.inc();
    }

    /// Start timing a check; the duration is recorded when the guard drops.
    pub fn time_check(&self) -> CheckTimer<'_> {
        CheckTimer {
            histogram: &self.check_duration,
            start: Instant::now(),
        }
    }

    /// Count one decision.
    pub fn record(&self, decision: &Decision) {
        match decision {
            Decision::Allow(Allow::Public { .. }) => self.allowed_public.inc(),
            Decision::Allow(Allow::Identity(_)) => self.allowed.inc(),
            Decision::Allow(Allow::DryRun(d)) => {
                if let Some(i) = Reason::ALL.iter().position(|r| *r == d.reason) {
                    self.dry_run_denied[i].inc();
                }
            }
            Decision::Deny(d) => self.count_denial(d.reason),
        }
    }

    /// Count one denial by reason.
    pub fn count_denial(&self, reason: Reason) {
        if let Some(i) = Reason::ALL.iter().position(|r| *r == reason) {
            self.denied[i].inc();
        }
    }

    /// A reload found the files identical to what is served (e.g. a refused edit was reverted).
    pub fn config_unchanged(&self) {
        self.last_reload_ok.set(1);
    }

    /// A configuration was refused.
    pub fn config_refused(&self) {
        self.reloads.with_label_values(&["failure"]).inc();
        self.last_reload_ok.set(0);
    }

    /// Whether the server is ready, as `/readyz` and gRPC health answer.
    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if encoder.encode(&self.registry.gather(), &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}
