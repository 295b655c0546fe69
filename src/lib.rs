//! claimgate: an Envoy external-authorization (ext_authz) service for external identities.
//!
//! Envoy asks claimgate about every request. claimgate verifies the caller's OIDC bearer
//! token against the SSO integration that issued it, selects the external identity the
//! token belongs to (the identity whose claims all hold and that has the most claims),
//! and allows the request when that identity holds at least the required collaborator role
//! on the resource the request targets.
//!
//! # Layout
//! Three layers; each may use the ones before it and never one after it:
//!
//! 1. [`core`]: the decision. The configuration schema, the compiled snapshot, keys, token
//!    checks, identity selection, routing, roles, the decision value and the pipeline that
//!    produces it, the token cache and the store. Pure: no I/O beyond reading a configuration
//!    directory, no runtime, no network. It builds with default features off (and a crypto
//!    backend, `aws-lc` or `rust-crypto`), so every host decides with the same code.
//! 2. [`server`] (feature `server`): the ext_authz host. gRPC service and codec, listeners
//!    and TLS, the HTTP side and health, reload, the remote key provider, the decision log,
//!    Prometheus metrics, and their wiring.
//! 3. [`tools`] (feature `tools`): the CLI over a snapshot. `explain`, `validate`, `diff`,
//!    `test`, `who-can`, `token`. They may use the server's I/O pieces (explain fetches
//!    remote keys with its provider); the server never uses a tool.
//!
//! The core reaches its hosts only through what it defines: a snapshot's remote key sets
//! are data a host fills, and counters go through an observer trait a host implements.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

/// The decision core: configuration, snapshot, token, identity, routing, the pipeline.
pub mod core;
/// The ext_authz server: gRPC, HTTP, reload, remote keys, decision log, metrics.
#[cfg(feature = "server")]
pub mod server;
/// The command-line tools over a snapshot: explain, validate, diff, test, who-can, token.
#[cfg(feature = "tools")]
pub mod tools;

pub use crate::core::config::{ConfigError, Diagnostic, Severity};
pub use crate::core::decision::{Decision, Reason};
pub use crate::core::snapshot::Snapshot;
pub use crate::core::store::Store;
