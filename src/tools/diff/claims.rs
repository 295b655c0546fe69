//! The one place the diff reads an identity's claim conditions: which claim a condition is
//! about, whether two conditions are the same, how one is shown, and whether two identities
//! could match one token. Every form of condition goes through these functions, so a new form
//! needs only them taught.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::core::identity::{ClaimMatcher, Identity};

/// The claim a condition reads, so that `repository` and `/repository` are one key.
pub(super) fn claim_key(c: &ClaimMatcher) -> String {
    c.path.pointer().into_owned()
}

/// Whether two conditions on one claim hold for exactly the same tokens.
pub(super) fn same_condition(a: &ClaimMatcher, b: &ClaimMatcher) -> bool {
    a.condition.canonical() == b.condition.canonical()
}

/// A condition as the diff shows it (JSON, as it would be written in YAML).
pub(super) fn condition(c: &ClaimMatcher) -> Value {
    c.condition.to_json()
}

/// An identity's conditions as ids (claim key, condition), sorted by key: an identity is
/// compared in many pairs, so its conditions are read once.
pub(super) struct Conditions<'i> {
    items: Vec<Item<'i>>,
}

impl Conditions<'_> {
    /// How many conditions (each counts as one claim in selection).
    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether every condition of `self` is one of `a` or `b` (the same claim and the same
    /// condition): then every token that satisfies both satisfies `self` too.
    pub(super) fn within(&self, a: &Conditions<'_>, b: &Conditions<'_>) -> bool {
        let has = |c: &Conditions<'_>, key: u32, form: u32| {
            c.items
                .binary_search_by_key(&key, |(k, ..)| *k)
                .is_ok_and(|i| c.items[i].1 == form)
        };
        self.items
            .iter()
            .all(|&(key, form, _)| has(a, key, form) || has(b, key, form))
    }
}

/// Whether two conditions on one claim exclude each other, asked once per pair of distinct
/// conditions however many identity pairs name them.
#[derive(Default)]
pub(super) struct Exclusions {
    keys: HashMap<String, u32>,
    forms: HashMap<String, u32>,
    // How many different conditions each claim key (by id) has, over every identity read.
    variety: Vec<usize>,
    seen: std::collections::HashSet<(u32, u32)>,
    cache: HashMap<(u32, u32), bool>,
}

impl Exclusions {
    /// The conditions of `identity`, as ids.
    pub(super) fn conditions<'i>(&mut self, identity: &'i Identity) -> Conditions<'i> {
        let mut items: Vec<(u32, u32, &ClaimMatcher)> = identity
            .claims
            .iter()
            .map(|c| {
                let key = intern(&mut self.keys, claim_key(c));
                let form = intern(&mut self.forms, condition(c).to_string());
                if self.seen.insert((key, form)) {
                    if let Some(n) = self.variety.get_mut(key as usize) {
                        *n += 1;
                    } else {
                        self.variety.push(1);
                    }
                }
                (key, form, c)
            })
            .collect();
        items.sort_by_key(|(key, ..)| *key);
        Conditions { items }
    }

    /// Whether one token could satisfy both identities: no claim they both name has
    /// conditions that exclude each other.
    pub(super) fn could_both_match(&mut self, a: &Conditions<'_>, b: &Conditions<'_>) -> bool {
        let mut shared = shared(a, b);
        // Claims with few different conditions first (an environment, a branch): their
        // answers repeat across pairs and are known after the first, while a claim whose
        // every identity has its own value (a repository) would be compared anew each time.
        shared.sort_by_key(|(x, _)| self.variety.get(x.0 as usize).copied().unwrap_or(0));
        for (x, y) in shared {
            if x.1 != y.1
                && *self
                    .cache
                    .entry((x.1, y.1))
                    .or_insert_with(|| excludes(x.2, y.2))
            {
                return false;
            }
        }
        true
    }
}

type Item<'i> = (u32, u32, &'i ClaimMatcher);

/// The conditions of `a` and `b` on the claims both name.
fn shared<'a, 'i>(
    a: &'a Conditions<'i>,
    b: &'a Conditions<'i>,
) -> Vec<(&'a Item<'i>, &'a Item<'i>)> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while let (Some(x), Some(y)) = (a.items.get(i), b.items.get(j)) {
        match x.0.cmp(&y.0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push((x, y));
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Whether no value (or absence) of the claim meets both conditions.
fn excludes(a: &ClaimMatcher, b: &ClaimMatcher) -> bool {
    a.excludes(b)
}

fn intern(ids: &mut HashMap<String, u32>, s: String) -> u32 {
    let next = ids.len() as u32;
    *ids.entry(s).or_insert(next)
}

/// An identity's conditions by claim key.
pub(super) fn by_key(identity: &Identity) -> BTreeMap<String, &ClaimMatcher> {
    identity.claims.iter().map(|c| (claim_key(c), c)).collect()
}

/// Whether two identities require the same conditions, whatever order they are written in.
pub(super) fn same_claims(a: &Identity, b: &Identity) -> bool {
    if a.claims.len() != b.claims.len() {
        return false;
    }
    let theirs = by_key(b);
    a.claims.iter().all(|c| {
        theirs
            .get(&claim_key(c))
            .is_some_and(|o| same_condition(c, o))
    })
}
