//! claimgate: an Envoy external-authorization (ext_authz) service for external identities.
//!
//! Envoy asks claimgate about every request. claimgate verifies the caller's OIDC bearer
//! token against the SSO integration that issued it, selects the external identity the
//! token belongs to (the identity whose claims all hold and that has the most claims),
//! and allows the request when that identity holds at least the required collaborator role
//! on the resource the request targets.
//!
//! # Layout
//! One request flows target → credentials → token → identity → binding. Each layer below
//! may use the layers under it and never one above it (so there is no import cycle):
//!
//! 1. Values: [`clock`] (the one place that reads the time), [`role`], [`decision`] (the
//!    request, the answer and its [`Reason`]), [`decision_id`] (one sortable id per check),
//!    [`text`] (helpers for user-facing text).
//! 2. Inputs: [`config`] (the YAML schema, loading a directory, `file:line:col`), [`keys`]
//!    (JSON Web Key sets), [`metrics`] (the Prometheus registry and its domain methods),
//!    [`provider`] (remote keys: discovery, refresh, unknown-kid refetch).
//! 3. Stages, each with its own step types and observer trait: [`routing`]
//!    (request → resource and role), [`identity`] (selection by claims).
//! 4. [`snapshot`]: the compiled, immutable, indexed form of one configuration.
//! 5. [`token`]: strict JWT verification (RFC 8725) against a snapshot's SSOs, and
//!    [`token_cache`]: what a verification established, reused for the identical token.
//! 6. [`pipeline`]: the whole decision in one pass, and its combined observer.
//! 7. [`store`]: the atomically swapped current snapshot.
//! 8. [`load`]: a configuration directory read and compiled into a snapshot (every command
//!    loads through it), and a snapshot installed into the store and announced.
//! 9. Tools over a snapshot: [`explain`] (`claimgate explain`), [`validate`]
//!    (`claimgate validate`: validity, then a review for ties, shadowed routes, unused
//!    entries), [`audit`] (`claimgate who-can`), [`mint`] (dev tokens), [`suite`]
//!    (`claimgate test`: decision tests), [`diff`] (`claimgate diff`: what a change does).
//! 10. Serving: [`listener`] (connection limits and timeouts of both ports), [`tls`] (the gRPC
//!     port's TLS, re-read on change), [`service`] (the gRPC ext_authz service), [`http`]
//!     (`/metrics`, `/healthz`, `/readyz`), [`health`] (`grpc.health.v1` following `/readyz`),
//!     [`reload`] (watching the directory, swapping in valid edits), [`decision_log`] (one JSON
//!     line per decision, written by its own thread).
//! 11. [`server`]: wiring of listeners, signals and graceful shutdown.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

/// Who holds which role on a resource, for audits.
pub mod audit;
/// The wall clock, read in one place.
pub mod clock;
/// Configuration schema, directory loading and validation.
pub mod config;
/// The decision for one request, as a value.
pub mod decision;
/// One sortable, unique id per decision.
pub mod decision_id;
/// The decision log: one JSON line per decision, off the check path.
pub mod decision_log;
/// `claimgate diff`: the effective access, identities, SSOs and routes two configurations differ in.
pub mod diff;
/// The decision for one token, step by step.
pub mod explain;
/// `grpc.health.v1.Health` on the gRPC port, following readiness.
pub mod health;
/// HTTP endpoints: metrics and health.
pub mod http;
/// External-identity selection by claims.
pub mod identity;
/// JSON Web Key sets.
pub mod keys;
/// Accepting connections: limits, keepalive and idle timeouts.
pub mod listener;
/// A configuration directory loaded into a snapshot, and the snapshot installed.
pub mod load;
/// Prometheus metrics.
pub mod metrics;
/// Development token minting.
pub mod mint;
/// The decision pipeline: target, credentials, token, identity, binding.
pub mod pipeline;
/// Remote keys: discovery, JWKS fetching and refresh.
pub mod provider;
/// Hot reload of the configuration directory.
pub mod reload;
/// Collaborator roles.
pub mod role;
/// Request-to-resource routing.
pub mod routing;
/// Listener wiring and graceful shutdown.
pub mod server;
/// The gRPC ext_authz service.
pub mod service;
/// The compiled, immutable configuration.
pub mod snapshot;
/// The current snapshot, swapped atomically.
pub mod store;
/// `claimgate test`: decision tests run with the server's decision function.
pub mod suite;
/// Small helpers for user-facing text.
pub mod text;
/// TLS and mTLS on the gRPC port, certificates re-read on change.
pub mod tls;
/// Strict JWT verification.
pub mod token;
/// The verified-token cache.
pub mod token_cache;
/// `claimgate validate`: validity, then a review for ties, shadowed routes, unused entries.
pub mod validate;

pub use config::{ConfigError, Diagnostic, Severity};
pub use decision::{Decision, Reason};
pub use snapshot::Snapshot;
pub use store::Store;
