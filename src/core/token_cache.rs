//! The verified-token cache: a token is verified once; later checks with the byte-identical
//! token reuse what its verification established.
//!
//! What an entry keeps is what verification and identity selection established about the
//! token: its SSO, the selection's result, `sub`, `exp` and `nbf`; never the token, its
//! signature or its other claims. Route and role are still decided per request.
//!
//! An entry is used only while everything it was established under still holds:
//! - the same configuration generation (a reload changes identities, roles or SSOs);
//! - the very key set that verified the signature (a refresh, rotation or removal swaps the
//!   SSO's set, and the entry holds the old one, so its address cannot be reused);
//! - `exp` (+ leeway) and `nbf` are checked again on every hit, with the same rejections a
//!   fresh verification would give.
//!
//! A token that fails verification is never cached: a forger pays for every attempt, and a
//! flood of bad tokens cannot evict good entries.
//!
//! Keys are the SHA-256 of the token, so the cache never holds a bearer credential and a
//! token that merely collides in a fast hash cannot borrow another token's verification.
//! ECDSA signatures are malleable (`s` and `n - s` both verify): two token strings then carry
//! the same claims, and each is verified on its own before it is cached.

use std::sync::Arc;

use serde_json::Value;

use crate::core::counters::Counters;
use crate::core::identity::Selection;
use crate::core::keys::KeySet;
use crate::core::snapshot::Snapshot;
use crate::core::token::{self, Facts, Rejection, Verified};

/// Default number of entries (`serve --token-cache-entries`).
pub const DEFAULT_ENTRIES: usize = 65_536;

/// The most one entry can weigh: the bookkeeping plus a `sub` of the most a header carries
/// (and, while a decision log is written, its [`Facts`]).
pub const MAX_ENTRY_BYTES: usize = std::mem::size_of::<Entry>() + 32 + token::MAX_SUBJECT_LEN;

type Digest = [u8; 32];

/// What verification and selection established about one token.
#[derive(Debug)]
pub struct Entry {
    generation: u64,
    keys: Arc<KeySet>,
    /// Index of the SSO that verified the token.
    pub sso: usize,
    /// The identity selection's result for the token's claims.
    pub selection: Selection,
    /// The token's `sub`.
    pub subject: Arc<str>,
    /// What the decision log says about the token (kept only while a log is written; it
    /// weighs at most [`token::facts::MAX_BYTES`] more).
    pub facts: Option<Arc<Facts>>,
    exp: f64,
    nbf: Option<f64>,
}

impl Entry {
    /// What a fresh verification established, for the snapshot of `generation`.
    pub fn new(
        verified: &Verified<'_>,
        selection: Selection,
        generation: u64,
        subject: Arc<str>,
        facts: Option<Arc<Facts>>,
    ) -> Entry {
        let date = |name: &str| verified.claims.get(name).and_then(Value::as_f64);
        Entry {
            generation,
            keys: verified.keys.clone(),
            sso: verified.sso_index,
            selection,
            subject,
            facts,
            exp: date("exp").unwrap_or(f64::NEG_INFINITY),
            nbf: date("nbf"),
        }
    }
}

/// A bounded, concurrent map from a token's digest to what its verification established.
#[derive(Debug)]
pub struct TokenCache {
    entries: Option<quick_cache::sync::Cache<Digest, Arc<Entry>>>,
    counters: Box<dyn Counters>,
}

/// The outcome of looking a token up.
#[derive(Debug)]
pub enum Lookup {
    /// A usable entry, with the token's times checked again.
    Hit(Arc<Entry>),
    /// The entry is usable but the token is no longer (or not yet) valid.
    Rejected(Rejection, Arc<Entry>),
    /// Verify the token (and [`TokenCache::insert`] the result under this digest).
    Miss(Option<Digest>),
}

impl TokenCache {
    /// A cache of at most `entries` tokens, counting hits and misses in `counters`; 0
    /// disables it.
    pub fn new(entries: usize, counters: impl Counters + 'static) -> TokenCache {
        TokenCache {
            entries: (entries > 0).then(|| quick_cache::sync::Cache::new(entries)),
            counters: Box::new(counters),
        }
    }

    /// Whether the cache is on.
    pub fn enabled(&self) -> bool {
        self.entries.is_some()
    }

    /// How many tokens it holds.
    pub fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, |c| c.len())
    }

    /// Whether it holds no token.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Look `token` up for a decision on `snap` at `now`.
    pub fn lookup(&self, snap: &Snapshot, token: &str, now: u64) -> Lookup {
        let Some(entries) = &self.entries else {
            return Lookup::Miss(None);
        };
        if token.len() > token::MAX_TOKEN_LEN {
            // Verification refuses it; hashing it first would be work for nothing.
            self.counters.token_cache_miss();
            return Lookup::Miss(None);
        }
        let digest = digest(token);
        let Some(entry) = entries.get(&digest) else {
            self.counters.token_cache_miss();
            return Lookup::Miss(Some(digest));
        };
        let current = snap.ssos.get(entry.sso).filter(|sso| {
            entry.generation == snap.generation && Arc::ptr_eq(&entry.keys, &sso.keys.load())
        });
        let Some(sso) = current else {
            self.remove(entries, &digest);
            self.counters.token_cache_miss();
            return Lookup::Miss(Some(digest));
        };
        self.counters.token_cache_hit();
        match token::check_dates(entry.exp, entry.nbf, now, sso.leeway) {
            Ok(()) => Lookup::Hit(entry),
            Err(r) => {
                if r.reason == crate::core::decision::Reason::Expired {
                    // It can never be valid again.
                    self.remove(entries, &digest);
                }
                Lookup::Rejected(r, entry)
            }
        }
    }

    // The gauge follows removals too: a stale or expired entry whose token is not verified
    // again (key gone, token expired) would otherwise be counted until the next insert.
    fn remove(&self, entries: &quick_cache::sync::Cache<Digest, Arc<Entry>>, digest: &Digest) {
        entries.remove(digest);
        self.counters.token_cache_entries(entries.len());
    }

    /// Remember what a fresh verification established under `digest` (from a miss).
    pub fn insert(&self, digest: Digest, entry: Entry) {
        if let Some(entries) = &self.entries {
            entries.insert(digest, Arc::new(entry));
            self.counters.token_cache_entries(entries.len());
        }
    }
}

/// The cache key of a token.
fn digest(token: &str) -> Digest {
    crate::core::keys::backend::sha256(token.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disabled_cache_always_misses_without_a_digest() {
        let cache = TokenCache::new(0, crate::core::counters::NoCounters);
        assert!(!cache.enabled());
        assert!(cache.is_empty());
    }

    #[test]
    fn digests_differ_for_tokens_that_differ_in_one_byte() {
        assert_ne!(digest("a.b.c"), digest("a.b.d"));
        assert_eq!(digest("a.b.c"), digest("a.b.c"));
    }

    #[test]
    fn an_entry_is_small_whatever_the_token_weighed() {
        const { assert!(MAX_ENTRY_BYTES < 2048) };
    }
}
