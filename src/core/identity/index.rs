//! An index of the identities' exact conditions, so that selection checks the identities a
//! token could match instead of every identity of its SSO.
//!
//! Each identity gets one *anchor*: one of its exact conditions (claim place and value, or a
//! list of values, anchored at each), the one whose values are rarest in its SSO. Patterns,
//! negations and presence cannot be indexed: an identity with only those is checked for every
//! token of its SSO. The index maps each anchor place to its values and
//! each value to the identities anchored there. For a token, selection reads the token's value
//! at each anchor place of the SSO (each element, if it is an array), looks it up, and checks
//! the identities found plus those with no anchor (the fallback, and identities whose
//! conditions cannot be indexed). Every candidate is checked in full, so the index only has to
//! never miss an identity that matches; a hit that does not match costs one check, no more.
//!
//! The answer is the walk's ([`super::select_observed`] over the SSO most claims first): the
//! first matching identity in that order, or a tie with the next one if it has as many claims.
//! That depends only on the first two matches in walk order (their *ranks*), so the index
//! keeps the two lowest-ranked matches found so far and skips every identity that could no
//! longer change them. An exhaustive observer (`claimgate explain`) still gets the full walk.

use std::borrow::Cow;
use std::hash::{Hash, Hasher};

use hashbrown::{Equivalent, HashMap, HashSet};
use serde_json::Value;

use super::{
    Candidacy, ClaimMatcher, ClaimValue, Condition, Identity, IdentityObserver, Selection,
};

/// The identities of every SSO, ordered for the walk and indexed by their anchors. Built once
/// per snapshot, then only read.
#[derive(Debug, Default)]
pub struct Index {
    ssos: Box<[SsoIndex]>,
}

#[derive(Debug)]
struct SsoIndex {
    /// Identity indices in walk order (most claims first, then configuration order); a
    /// position in this list is a rank.
    order: Box<[usize]>,
    /// The claim count of each rank.
    counts: Box<[usize]>,
    /// Every place some identity of the SSO is anchored at.
    places: Box<[Place]>,
    /// Ranks of the identities with no anchor, ascending: checked for every token.
    unanchored: Box<[usize]>,
    /// Ranks by anchor value: each [`Span`] is an ascending run of this list.
    ranks: Box<[usize]>,
}

#[derive(Debug)]
struct Place {
    /// The JSON Pointer's reference tokens, unescaped once here rather than per token.
    segments: Box<[Segment]>,
    values: HashMap<Key, Span>,
}

#[derive(Debug)]
struct Segment {
    name: Box<str>,
    /// The array index this segment names, by the rules `serde_json::Value::pointer` uses.
    index: Option<usize>,
}

/// A run of [`SsoIndex::ranks`]; its start also names it, as no two runs share one.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    len: usize,
}

/// An anchor value. Two values that can match one token scalar have equal keys: numbers are
/// keyed by their `f64` value, which `1`, `1.0` and `-0.0`/`0` share. Distinct numbers that
/// round to one `f64` share a key too, which costs only a check.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Str(Box<str>),
    Num(u64),
    Bool(bool),
}

/// A [`Key`] borrowed from a token (or, while building, an identity): found without
/// allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyRef<'a> {
    Str(&'a str),
    Num(u64),
    Bool(bool),
}

impl Key {
    fn borrowed(&self) -> KeyRef<'_> {
        match self {
            Key::Str(s) => KeyRef::Str(s),
            Key::Num(n) => KeyRef::Num(*n),
            Key::Bool(b) => KeyRef::Bool(*b),
        }
    }
}

impl<'a> KeyRef<'a> {
    /// The key of an expected value.
    fn expected(value: &'a ClaimValue) -> KeyRef<'a> {
        match value {
            ClaimValue::Str(s) => KeyRef::Str(s),
            ClaimValue::Int(i) => KeyRef::Num(num_bits(*i as f64)),
            ClaimValue::Float(f) => KeyRef::Num(num_bits(*f)),
            ClaimValue::Bool(b) => KeyRef::Bool(*b),
        }
    }

    fn owned(self) -> Key {
        match self {
            KeyRef::Str(s) => Key::Str(s.into()),
            KeyRef::Num(n) => Key::Num(n),
            KeyRef::Bool(b) => Key::Bool(b),
        }
    }

    /// The key of a token scalar, or `None` for what no exact condition matches.
    fn of(value: &'a Value) -> Option<KeyRef<'a>> {
        match value {
            Value::String(s) => Some(KeyRef::Str(s)),
            Value::Bool(b) => Some(KeyRef::Bool(*b)),
            Value::Number(n) => n
                .as_f64()
                .or_else(|| n.as_i64().map(|i| i as f64))
                .map(|f| KeyRef::Num(num_bits(f))),
            Value::Null | Value::Array(_) | Value::Object(_) => None,
        }
    }
}

/// `0.0` and `-0.0` compare equal, so they share a key.
fn num_bits(f: f64) -> u64 {
    if f == 0.0 {
        0
    } else {
        f.to_bits()
    }
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            KeyRef::Str(s) => {
                state.write_u8(0);
                s.hash(state);
            }
            KeyRef::Num(n) => {
                state.write_u8(1);
                n.hash(state);
            }
            KeyRef::Bool(b) => {
                state.write_u8(2);
                b.hash(state);
            }
        }
    }
}

// Hashes exactly as its borrowed form, which is what lets a `KeyRef` find a `Key`.
impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.borrowed().hash(state);
    }
}

impl Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        *self == key.borrowed()
    }
}

/// Where and by which keys a condition can anchor its identity. Only a condition that can
/// hold solely when the token has one of these values at this place (or in an array there)
/// may anchor: an exact value or a list of them. Any other gives `None`, and an identity with
/// no anchor is checked for every token.
fn anchor_of(claim: &ClaimMatcher) -> Option<(Cow<'_, str>, &[ClaimValue])> {
    match &claim.condition {
        Condition::Equals(values) => Some((claim.path.pointer(), values)),
        _ => None,
    }
}

impl Index {
    /// Index `identities` (each of one of `sso_count` SSOs).
    pub fn build(identities: &[Identity], sso_count: usize) -> Index {
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); sso_count];
        for (i, id) in identities.iter().enumerate() {
            if let Some(list) = members.get_mut(id.sso) {
                list.push(i);
            }
        }
        let ssos = members
            .into_iter()
            .map(|mut order| {
                // Stable: among equal counts, configuration order decides which one a tie
                // names first, exactly as the snapshot's walk order.
                order.sort_by_key(|&i| std::cmp::Reverse(identities[i].claims.len()));
                SsoIndex::build(identities, order)
            })
            .collect();
        Index { ssos }
    }

    /// The identities of an SSO in walk order: most claims first, then configuration order.
    pub fn order(&self, sso: usize) -> &[usize] {
        self.ssos.get(sso).map(|s| &*s.order).unwrap_or(&[])
    }

    /// Select among the identities of SSO `sso` for `payload`; the same answer as
    /// [`super::select`] over [`Index::order`]. `identities` are those the index was built
    /// from.
    pub fn select(&self, identities: &[Identity], sso: usize, payload: &Value) -> Selection {
        self.select_observed(identities, sso, payload, &mut ())
    }

    /// [`Index::select`], reporting each identity checked to `obs`. An exhaustive observer
    /// gets the whole walk, exactly as [`super::select_observed`] reports it.
    pub fn select_observed<O: IdentityObserver>(
        &self,
        identities: &[Identity],
        sso: usize,
        payload: &Value,
        obs: &mut O,
    ) -> Selection {
        let Some(ix) = self.ssos.get(sso) else {
            return Selection::NoIdentity;
        };
        if O::EXHAUSTIVE {
            return super::select_observed(identities, &ix.order, payload, obs);
        }
        let mut scan = Scan {
            ix,
            identities,
            payload,
            first: None,
            second: None,
        };
        for place in ix.places.iter() {
            match place.lookup(payload) {
                Some(Value::Array(items)) => {
                    // A token may repeat a value; each run is checked once.
                    let mut seen = Seen::default();
                    for item in items {
                        if let Some(span) = place.find(item) {
                            if seen.insert(span.start) {
                                scan.run(ix.span(span), obs);
                            }
                        }
                    }
                }
                Some(value) => {
                    if let Some(span) = place.find(value) {
                        scan.run(ix.span(span), obs);
                    }
                }
                None => {}
            }
        }
        scan.run(&ix.unanchored, obs);
        scan.selection()
    }
}

impl SsoIndex {
    fn build(identities: &[Identity], order: Vec<usize>) -> SsoIndex {
        let counts: Box<[usize]> = order.iter().map(|&i| identities[i].claims.len()).collect();
        // Every distinct place and (place, value) pair among the SSO's conditions, numbered,
        // with how often each occurs; keys borrow from the identities until they are kept.
        let mut place_ids: HashMap<Cow<'_, str>, usize> = HashMap::new();
        let mut place_uses: Vec<usize> = Vec::new();
        let mut pair_ids: HashMap<(usize, KeyRef<'_>), usize> = HashMap::new();
        let mut pair_uses: Vec<(usize, usize)> = Vec::new();
        // Each anchorable condition: its identity's rank, and its pairs (one per value).
        let mut conditions: Vec<(usize, Vec<usize>)> = Vec::new();
        for (rank, &i) in order.iter().enumerate() {
            for claim in identities[i].claims.iter() {
                let Some((pointer, values)) = anchor_of(claim) else {
                    continue;
                };
                let next = place_uses.len();
                let place = *place_ids.entry(pointer).or_insert(next);
                if place == next {
                    place_uses.push(0);
                }
                place_uses[place] += 1;
                let mut pairs = Vec::with_capacity(values.len());
                for value in values.iter() {
                    let next = pair_uses.len();
                    let pair = *pair_ids
                        .entry((place, KeyRef::expected(value)))
                        .or_insert(next);
                    if pair == next {
                        pair_uses.push((place, 0));
                    }
                    // `1` and `1.0` in one list are one key: counted and anchored once.
                    if !pairs.contains(&pair) {
                        pair_uses[pair].1 += 1;
                        pairs.push(pair);
                    }
                }
                conditions.push((rank, pairs));
            }
        }
        // The rarest condition makes the shortest runs (a list is as rare as its values
        // together); among equally rare ones, the most used place, so a token has fewer
        // places to look up.
        let mut anchored: Vec<(usize, usize)> = Vec::with_capacity(order.len());
        let mut unanchored = Vec::new();
        let mut rest = &conditions[..];
        for rank in 0..order.len() {
            let own = rest.iter().take_while(|(r, _)| *r == rank).count();
            let (mine, after) = rest.split_at(own);
            rest = after;
            let best = mine.iter().map(|(_, pairs)| pairs).min_by_key(|pairs| {
                let uses: usize = pairs.iter().map(|&pair| pair_uses[pair].1).sum();
                let place = pairs
                    .first()
                    .map_or(0, |&pair| place_uses[pair_uses[pair].0]);
                (uses, std::cmp::Reverse(place))
            });
            match best {
                Some(pairs) => anchored.extend(pairs.iter().map(|&pair| (pair, rank))),
                None => unanchored.push(rank),
            }
        }
        // By pair, ranks ascending within each: the runs.
        anchored.sort_unstable();
        let mut keys: Vec<Option<(usize, KeyRef<'_>)>> = vec![None; pair_uses.len()];
        for (pair_key, pair) in pair_ids {
            keys[pair] = Some(pair_key);
        }
        let mut values: Vec<HashMap<Key, Span>> = vec![HashMap::new(); place_uses.len()];
        let mut ranks = Vec::with_capacity(anchored.len());
        for run in anchored.chunk_by(|a, b| a.0 == b.0) {
            let Some((place, key)) = run.first().and_then(|&(pair, _)| keys[pair]) else {
                continue;
            };
            let span = Span {
                start: ranks.len(),
                len: run.len(),
            };
            ranks.extend(run.iter().map(|&(_, rank)| rank));
            values[place].insert(key.owned(), span);
        }
        let mut pointers: Vec<(usize, Cow<'_, str>)> =
            place_ids.into_iter().map(|(p, id)| (id, p)).collect();
        pointers.sort_unstable_by_key(|(id, _)| *id);
        let places = pointers
            .into_iter()
            .zip(values)
            .filter(|(_, values)| !values.is_empty())
            .map(|((_, pointer), values)| Place {
                segments: segments(&pointer),
                values,
            })
            .collect();
        SsoIndex {
            order: order.into(),
            counts,
            places,
            unanchored: unanchored.into(),
            ranks: ranks.into(),
        }
    }

    fn span(&self, span: Span) -> &[usize] {
        self.ranks
            .get(span.start..span.start + span.len)
            .unwrap_or_default()
    }
}

/// The reference tokens of a JSON Pointer (which starts with `/`), unescaped.
fn segments(pointer: &str) -> Box<[Segment]> {
    pointer
        .split('/')
        .skip(1)
        .map(|raw| {
            let name = raw.replace("~1", "/").replace("~0", "~");
            let index = if name.starts_with('+') || (name.starts_with('0') && name.len() != 1) {
                None
            } else {
                name.parse().ok()
            };
            Segment {
                name: name.into(),
                index,
            }
        })
        .collect()
}

impl Place {
    /// The token's value here: `serde_json::Value::pointer` without its allocations.
    fn lookup<'v>(&self, payload: &'v Value) -> Option<&'v Value> {
        self.segments
            .iter()
            .try_fold(payload, |target, segment| match target {
                Value::Object(map) => map.get(&*segment.name),
                Value::Array(list) => segment.index.and_then(|i| list.get(i)),
                _ => None,
            })
    }

    fn find(&self, scalar: &Value) -> Option<Span> {
        KeyRef::of(scalar).and_then(|k| self.values.get(&k).copied())
    }
}

/// One selection in progress: the two lowest ranks found to match so far.
struct Scan<'a> {
    ix: &'a SsoIndex,
    identities: &'a [Identity],
    payload: &'a Value,
    first: Option<usize>,
    second: Option<usize>,
}

impl Scan<'_> {
    /// Whether `rank`, and every rank after it, can no longer change the answer: it is
    /// behind two matches, or has fewer claims than the best match (so it can neither win
    /// nor tie with it).
    fn beyond(&self, rank: usize) -> bool {
        let fewer = self
            .first
            .is_some_and(|f| self.ix.counts[rank] < self.ix.counts[f]);
        fewer || self.second.is_some_and(|s| rank > s)
    }

    /// Check the identities of an ascending run of ranks.
    fn run<O: IdentityObserver>(&mut self, ranks: &[usize], obs: &mut O) {
        for &rank in ranks {
            if self.beyond(rank) {
                break;
            }
            if self.first == Some(rank) || self.second == Some(rank) {
                continue;
            }
            let i = self.ix.order[rank];
            let identity = &self.identities[i];
            let matched = identity.matches_observed(i, self.payload, obs);
            let candidacy = if matched {
                Candidacy::Matched
            } else {
                Candidacy::Unmatched
            };
            obs.candidate(i, identity, candidacy);
            if matched {
                self.found(rank);
            }
        }
    }

    fn found(&mut self, rank: usize) {
        match self.first {
            None => self.first = Some(rank),
            Some(f) if rank < f => {
                self.second = self.first;
                self.first = Some(rank);
            }
            Some(_) if self.second.is_none_or(|s| rank < s) => self.second = Some(rank),
            Some(_) => {}
        }
    }

    fn selection(&self) -> Selection {
        let order = &self.ix.order;
        match (self.first, self.second) {
            (None, _) => Selection::NoIdentity,
            (Some(f), Some(s)) if self.ix.counts[f] == self.ix.counts[s] => {
                Selection::Ambiguous(order[f], order[s])
            }
            (Some(f), _) => Selection::Chosen(order[f]),
        }
    }
}

/// The runs a token's array has already hit: inline for the usual handful, a set beyond.
#[derive(Default)]
struct Seen {
    inline: [usize; 16],
    len: usize,
    spilled: Option<HashSet<usize>>,
}

impl Seen {
    fn insert(&mut self, run: usize) -> bool {
        if self.inline[..self.len].contains(&run) {
            return false;
        }
        if let Some(slot) = self.inline.get_mut(self.len) {
            *slot = run;
            self.len += 1;
            return true;
        }
        self.spilled.get_or_insert_with(HashSet::new).insert(run)
    }
}

#[cfg(test)]
mod tests;
