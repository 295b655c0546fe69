//! claimgate's decision inside Envoy: a proxy-wasm HTTP filter around the same decision core
//! as the ext_authz server, so a request costs no gRPC hop and is decided the same way.
//!
//! Layout:
//! - [`host`]: every call into Envoy behind one small trait ([`host::Host`]: request headers
//!   in, headers set and removed, a local reply, the time, route settings, counters), and the
//!   real host that makes those calls;
//! - [`check`]: one request decided and answered through a [`host::Host`]; nothing in it
//!   decides (the core's pipeline does), it only reads the request and renders the decision
//!   with the core's response builders;
//! - [`plugin`]: the proxy-wasm root and HTTP contexts: the bundle loaded into a snapshot on
//!   configuration, and each request handed to [`check`].
//!
//! Failure semantics: every request gets an explicit answer from the decision. No bundle, or
//! one that does not load, keeps Envoy from serving the filter (Envoy refuses the plugin
//! configuration and keeps the previous one, or does not start). A panic is a trap, and a
//! trap cannot answer: Envoy answers the request 503 itself (`failure_policy: FAIL_RELOAD` in
//! `envoy/envoy-wasm.yaml`, or `fail_open: false`), never passing it, and reloads the VM.

#![deny(unsafe_code)]
#![deny(rust_2018_idioms)]

/// One request decided and answered.
pub mod check;
/// Every call into Envoy, behind one trait.
pub mod host;
/// The proxy-wasm root and HTTP contexts.
pub mod plugin;

// The proxy-wasm entry point: Envoy calls `_initialize`, which registers the root context.
// The SDK's macro exports it with `#[no_mangle]` and an `unsafe` call to the constructors.
#[allow(unsafe_code)]
mod entry {
    proxy_wasm::main! {{
        crate::plugin::register();
    }}
}
