//! The decision core: everything that decides, and nothing that serves.
//!
//! One request flows target → credentials → token → identity → binding. Each group below
//! may use the groups before it and never one after it (so there is no import cycle):
//!
//! 1. Values: [`clock`] (the one place that reads the time), [`role`], [`decision`] (the
//!    request, the answer and its [`Reason`](decision::Reason)), [`decision_id`] (one
//!    sortable id per check), [`response`] (what a client and an upstream see of a
//!    decision), [`text`] (helpers for user-facing text), [`counters`] (what
//!    the core counts, for a host to keep).
//! 2. Inputs: [`config`] (the YAML schema, loading a directory, `file:line:col`), [`keys`]
//!    (JSON Web Key sets, and remote key sets as data a host fills).
//! 3. Stages, each with its own step types and observer trait: [`routing`]
//!    (request → resource and role), [`identity`] (selection by claims).
//! 4. [`snapshot`]: the compiled, immutable, indexed form of one configuration.
//! 5. [`token`]: strict JWT verification (RFC 8725) against a snapshot's SSOs, and
//!    [`token_cache`]: what a verification established, reused for the identical token.
//! 6. [`pipeline`]: the whole decision in one pass, and its combined observer.
//! 7. [`store`]: the atomically swapped current snapshot.
//! 8. [`load`]: a configuration directory read and compiled into a snapshot (every command
//!    loads through it), and a snapshot installed into the store and announced; [`bundle`]:
//!    a configuration as one JSON document, for a host without a directory.
//!
//! Nothing here names a module of the server or the tools: `tests/layering.rs` and
//! `cargo check --no-default-features --features rust-crypto --lib` (in `scripts/test.sh`)
//! keep it so. A host reaches in only through what the core defines:
//! [`keys::remote::KeyFeeds`] to fill remote key sets, [`counters::Counters`] to count.

/// A configuration as one JSON document, every file inlined.
pub mod bundle;
/// The wall clock, read in one place.
pub mod clock;
/// Configuration schema, directory loading and validation.
pub mod config;
/// What the core counts, for a host to keep.
pub mod counters;
/// The decision for one request, as a value.
pub mod decision;
/// One sortable, unique id per decision.
pub mod decision_id;
/// External-identity selection by claims.
pub mod identity;
/// JSON Web Key sets.
pub mod keys;
/// A configuration directory loaded into a snapshot, and the snapshot installed.
pub mod load;
/// The decision pipeline: target, credentials, token, identity, binding.
pub mod pipeline;
/// What a client and an upstream see of a decision.
pub mod response;
/// Collaborator roles.
pub mod role;
/// Request-to-resource routing.
pub mod routing;
/// The compiled, immutable configuration.
pub mod snapshot;
/// The current snapshot, swapped atomically.
pub mod store;
/// Small helpers for user-facing text.
pub mod text;
/// Strict JWT verification.
pub mod token;
/// The verified-token cache.
pub mod token_cache;
