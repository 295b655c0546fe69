//! The ext_authz server: the host that serves the core's decisions to Envoy.
//!
//! 1. Inputs it adds to the core: [`metrics`] (the Prometheus registry and its domain
//!    methods), [`provider`] (remote keys: discovery, refresh, unknown-kid refetch).
//! 2. Serving: [`listener`] (connection limits and timeouts of both ports), [`tls`] (the gRPC
//!    port's TLS, re-read on change), [`service`] (the gRPC ext_authz service), [`http`]
//!    (`/metrics`, `/healthz`, `/readyz`), [`health`] (`grpc.health.v1` following `/readyz`),
//!    [`reload`] (watching the directory, swapping in valid edits), [`decision_log`] (one JSON
//!    line per decision, written by its own thread).
//! 3. [`wiring`]: listeners, signals and graceful shutdown; what `claimgate serve` runs.

/// The decision log: one JSON line per decision, off the check path.
pub mod decision_log;
/// `grpc.health.v1.Health` on the gRPC port, following readiness.
pub mod health;
/// HTTP endpoints: metrics and health.
pub mod http;
/// Accepting connections: limits, keepalive and idle timeouts.
pub mod listener;
/// Prometheus metrics.
pub mod metrics;
/// Remote keys: discovery, JWKS fetching and refresh.
pub mod provider;
/// Hot reload of the configuration directory.
pub mod reload;
/// The gRPC ext_authz service.
pub mod service;
/// TLS and mTLS on the gRPC port, certificates re-read on change.
pub mod tls;
/// Listener wiring and graceful shutdown.
pub mod wiring;

pub use wiring::{shutdown_signal, Bound, ServeArgs, ServeError, ServeOptions};
