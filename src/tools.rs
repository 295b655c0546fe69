//! The command-line tools: each loads a snapshot through [`crate::core::load`] and runs the
//! server's own decision code over it, so what a tool says is what the server would do.
//!
//! [`explain`] (`claimgate explain`: one token's decision, step by step), [`validate`]
//! (`claimgate validate`: validity, then a review for ties, shadowed routes, unused
//! entries), [`audit`] (`claimgate who-can`), [`mint`] (`claimgate token`: dev tokens),
//! [`suite`] (`claimgate test`: decision tests), [`diff`] (`claimgate diff`: what a change
//! does), [`bundle`] (`claimgate bundle`: the proxy-wasm filter's configuration). [`grant`]
//! names the grant behind an effective role the same way for all of them.

/// Who holds which role on a resource, for audits.
pub mod audit;
/// `claimgate bundle`: a configuration directory as the proxy-wasm filter's configuration.
pub mod bundle;
/// `claimgate diff`: the effective access, identities, SSOs and routes two configurations differ in.
pub mod diff;
/// The decision for one token, step by step.
pub mod explain;
/// The grant behind an effective role, named the same way by every tool.
pub mod grant;
/// Development token minting.
pub mod mint;
/// `claimgate test`: decision tests run with the server's decision function.
pub mod suite;
/// `claimgate validate`: validity, then a review for ties, shadowed routes, unused entries.
pub mod validate;
