//! claimgate: an Envoy external-authorization (ext_authz) service for external identities.
//!
//! Envoy asks claimgate about every request. claimgate verifies the caller's OIDC bearer
//! token against the SSO integration that issued it, selects the external identity the
//! token belongs to (the identity whose claims all hold and that has the most claims),
//! and allows the request when that identity holds at least the required collaborator role
//! on the resource the request targets.
//!
//! # Layout
//! - [`config`]: the YAML schema, loading a directory, validation with `file:line:col`.
//! - [`snapshot`]: the compiled, immutable, indexed form of one configuration.
//! - [`keys`]: JSON Web Key sets, filtered to what an SSO may use.
//! - [`provider`]: keys from the identity provider: discovery, refresh, unknown-kid refetch.
//! - [`token`]: strict JWT verification (RFC 8725).
//! - [`identity`]: external-identity selection by claims.
//! - [`routing`]: request-to-resource routes.
//! - [`decision`]: the whole decision for one request, as a value, and its [`decision::Observer`].
//! - [`explain`]: `claimgate explain`, the decision for one token shown step by step.
//! - [`lint`]: `claimgate validate`'s review: possible ties, shadowed routes, unused entries.
//! - [`audit`]: `claimgate who-can`, who holds a role on a resource and what token that takes.
//! - [`service`]: the gRPC `envoy.service.auth.v3.Authorization` service.
//! - [`http`]: `/metrics`, `/healthz`, `/readyz`.
//! - [`metrics`]: the Prometheus registry and its domain methods.
//! - [`store`]: the atomically swapped current snapshot.
//! - [`reload`]: watching the configuration directory and swapping in valid edits.
//! - [`server`]: wiring of listeners, signals and graceful shutdown.
//! - [`mint`]: development token minting.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

/// Who holds which role on a resource, for audits.
pub mod audit;
/// Configuration schema, directory loading and validation.
pub mod config;
/// The whole decision for one request, as a value.
pub mod decision;
/// The decision for one token, step by step.
pub mod explain;
/// HTTP endpoints: metrics and health.
pub mod http;
/// External-identity selection by claims.
pub mod identity;
/// JSON Web Key sets.
pub mod keys;
/// Configuration review beyond validity: ties, shadowed routes, unreachable entries.
pub mod lint;
/// Prometheus metrics.
pub mod metrics;
/// Development token minting.
pub mod mint;
/// Remote keys: discovery, JWKS fetching and refresh.
pub mod provider;
/// Hot reload of the configuration directory.
pub mod reload;
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
/// Strict JWT verification.
pub mod token;

pub use config::{ConfigError, Diagnostic, Severity};
pub use decision::{Decision, Reason};
pub use snapshot::Snapshot;
pub use store::Store;
