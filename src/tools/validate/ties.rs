//! Possible ties: two identities of one SSO with equally many claims that one token could
//! satisfy both; such a token is denied `ambiguous_identity`.
//!
//! Tie detection runs in CI on large configurations, so it never compares every pair: within
//! a group of identities of one SSO with one claim count, it splits on the claim most of
//! them name with one exact value, and identities with different values for it are never
//! compared. Every other pair is checked condition by condition ([`compatible`]): the same
//! claim with conditions no value meets both (patterns that no string matches both, a value
//! a negation excludes), or a claim that must be a value where another identity needs an
//! object inside it (`/a` against `/a/b`), makes a pair exclusive.
//!
//! Except on claims that providers send as arrays ([`ARRAY_CLAIMS`](crate::core::identity::ARRAY_CLAIMS): groups, roles, audiences,
//! …): `groups: [a, b]` meets both `groups: a` and `groups: b`, so different values of such a
//! claim never make a pair exclusive ([`ClaimMatcher::excludes`], which `diff` uses too).

use std::collections::{HashMap, HashSet};

use super::warn;
use crate::core::config::{section, Config, Diagnostic};
use crate::core::identity::{array_claim, ClaimMatcher, Condition, Identity, Overlap};
use crate::core::snapshot::{self, Snapshot};
use crate::core::text::plural;

/// Most possible ties listed per SSO; the rest are counted.
pub const MAX_TIES_LISTED: usize = 50;
/// Most identity pairs examined per SSO before the tie search gives up (and says so).
const MAX_PAIRS_EXAMINED: usize = 5_000;
/// Bound on the tie search's work, in identity visits per SSO.
const MAX_VISITS: usize = 20_000_000;
/// Most pairs checked condition by condition per SSO before the search gives up.
const MAX_CHECKS: usize = 2_000_000;

/// One identity's claims as interned (claim, condition) ids, sorted by claim.
#[derive(Debug)]
struct Member {
    identity: usize,
    claims: Vec<(u32, u32)>,
    /// The claims with one exact value: the ones the search splits on.
    split: Vec<(u32, u32)>,
}

impl Member {
    fn value_of(&self, key: u32) -> Option<u32> {
        self.split
            .binary_search_by_key(&key, |(k, _)| *k)
            .ok()
            .map(|i| self.split[i].1)
    }
}

/// Pairs found by the search, bounded.
#[derive(Debug, Default)]
struct Pairs<'i> {
    /// The identities, to check a pair condition by condition; without them every pair the
    /// split leaves is taken.
    identities: Option<&'i [Identity]>,
    found: Vec<(usize, usize)>,
    more: u64,
    visits: usize,
    checks: usize,
    gave_up: bool,
}

impl Pairs<'_> {
    /// A pair no exact claim tells apart: a possible tie unless its conditions exclude it.
    fn consider(&mut self, a: &Member, b: &Member) {
        if let Some(ids) = self.identities {
            self.checks += 1;
            if self.checks > MAX_CHECKS {
                self.gave_up = true;
                return;
            }
            if !compatible(&ids[a.identity], &ids[b.identity]) {
                return;
            }
        }
        self.add(a, b);
    }

    fn add(&mut self, a: &Member, b: &Member) {
        if self.found.len() < MAX_PAIRS_EXAMINED {
            self.found.push((a.identity, b.identity));
        } else {
            self.more += 1;
        }
    }

    fn add_all(&mut self, n: u64) {
        self.more += n;
    }

    fn spend(&mut self, n: usize) -> bool {
        self.visits += n;
        if self.visits > MAX_VISITS {
            self.gave_up = true;
        }
        !self.gave_up
    }
}

/// The claim named by the most of `sets` (counting each set's members), among those not
/// `settled`, if at least `min` members name it; with `need_both`, it must appear in each set.
fn split_key(sets: &[&[&Member]], settled: &[u32], min: usize, need_both: bool) -> Option<u32> {
    let mut counts: HashMap<u32, (usize, [bool; 2])> = HashMap::new();
    for (side, set) in sets.iter().enumerate() {
        for m in set.iter() {
            for (k, _) in &m.split {
                if settled.contains(k) {
                    continue;
                }
                let e = counts.entry(*k).or_default();
                e.0 += 1;
                e.1[side.min(1)] = true;
            }
        }
    }
    counts
        .into_iter()
        .filter(|(_, (n, sides))| *n >= min && (!need_both || (sides[0] && sides[1])))
        .max_by_key(|(k, (n, _))| (*n, std::cmp::Reverse(*k)))
        .map(|(k, _)| k)
}

type Split<'m> = (Vec<(u32, Vec<&'m Member>)>, Vec<&'m Member>);

/// Members by their value for `key` (in first-seen order), and those without it.
fn partition<'m>(set: &[&'m Member], key: u32) -> Split<'m> {
    let mut by_value: Vec<(u32, Vec<&Member>)> = Vec::new();
    let mut index: HashMap<u32, usize> = HashMap::new();
    let mut lacking = Vec::new();
    for m in set {
        match m.value_of(key) {
            None => lacking.push(*m),
            Some(v) => {
                let i = *index.entry(v).or_insert_with(|| {
                    by_value.push((v, Vec::new()));
                    by_value.len() - 1
                });
                by_value[i].1.push(*m);
            }
        }
    }
    (by_value, lacking)
}

/// Every pair within `set` that no claim tells apart.
fn within(set: &[&Member], settled: &mut Vec<u32>, pairs: &mut Pairs<'_>) {
    if set.len() < 2 || !pairs.spend(set.len()) {
        return;
    }
    let Some(key) = split_key(&[set], settled, 2, false) else {
        // No two members name the same claim with exact values: only their other
        // conditions can tell a pair apart.
        if pairs.identities.is_none() && pairs.found.len() >= MAX_PAIRS_EXAMINED {
            let n = set.len() as u64;
            pairs.add_all(n * (n - 1) / 2);
            return;
        }
        for (i, a) in set.iter().enumerate() {
            for b in &set[i + 1..] {
                if pairs.gave_up {
                    return;
                }
                pairs.consider(a, b);
            }
        }
        return;
    };
    let (by_value, lacking) = partition(set, key);
    settled.push(key);
    for (_, group) in &by_value {
        within(group, settled, pairs);
    }
    // Whatever value a member has for `key`, one that lacks it can't disagree: cross all of
    // them at once rather than group by group.
    let having: Vec<&Member> = by_value
        .iter()
        .flat_map(|(_, g)| g.iter().copied())
        .collect();
    cross(&having, &lacking, settled, pairs);
    within(&lacking, settled, pairs);
    settled.pop();
}

/// Every pair across `a` and `b` that no claim tells apart.
fn cross(a: &[&Member], b: &[&Member], settled: &mut Vec<u32>, pairs: &mut Pairs<'_>) {
    if a.is_empty() || b.is_empty() || !pairs.spend(a.len() + b.len()) {
        return;
    }
    let Some(key) = split_key(&[a, b], settled, 2, true) else {
        if pairs.identities.is_none() && pairs.found.len() >= MAX_PAIRS_EXAMINED {
            pairs.add_all(a.len() as u64 * b.len() as u64);
            return;
        }
        for x in a {
            for y in b {
                if pairs.gave_up {
                    return;
                }
                pairs.consider(x, y);
            }
        }
        return;
    };
    let (a_by, a_lacking) = partition(a, key);
    let (b_by, b_lacking) = partition(b, key);
    let a_having: Vec<&Member> = a_by.iter().flat_map(|(_, g)| g.iter().copied()).collect();
    settled.push(key);
    for (v, ga) in &a_by {
        if let Some((_, gb)) = b_by.iter().find(|(w, _)| w == v) {
            cross(ga, gb, settled, pairs);
        }
    }
    cross(&a_lacking, b, settled, pairs);
    cross(&a_having, &b_lacking, settled, pairs);
    settled.pop();
}

/// Interns claims and values so the search compares integers.
#[derive(Default)]
struct Interner {
    ids: HashMap<String, u32>,
}

impl Interner {
    fn id(&mut self, s: String) -> u32 {
        let next = self.ids.len() as u32;
        *self.ids.entry(s).or_insert(next)
    }
}

/// A warning for each pair of identities one token could both match (bounded per SSO),
/// unless an identity with more claims wins over the pair.
pub(super) fn possible_ties(config: &Config, snap: &Snapshot, out: &mut Vec<Diagnostic>) {
    let mut keys = Interner::default();
    let mut values = Interner::default();
    for (sso_index, sso) in snap.ssos.iter().enumerate() {
        let ids = snap.identities_of(sso_index);
        let members: Vec<Member> = ids
            .iter()
            .map(|&i| {
                let mut claims = Vec::new();
                let mut split = Vec::new();
                for c in snap.identities[i].claims.iter() {
                    let pointer = c.path.pointer();
                    let array = array_claim(&pointer);
                    let kv = (
                        keys.id(pointer.into_owned()),
                        values.id(c.condition.canonical()),
                    );
                    claims.push(kv);
                    // Different values of an array claim don't tell identities apart.
                    if c.condition.exact().is_some() && !array {
                        split.push(kv);
                    }
                }
                claims.sort_unstable();
                split.sort_unstable();
                Member {
                    identity: i,
                    claims,
                    split,
                }
            })
            .collect();
        // Which identities of this SSO name each (claim, value), to find a more specific
        // identity that would win over a pair.
        let mut holders: HashMap<(u32, u32), Vec<usize>> = HashMap::new();
        for (pos, m) in members.iter().enumerate() {
            for kv in &m.claims {
                holders.entry(*kv).or_default().push(pos);
            }
        }
        let mut pairs = Pairs {
            identities: Some(&snap.identities),
            ..Pairs::default()
        };
        // `identities_of` is sorted by claim count, so equal counts are runs.
        let mut start = 0;
        while start < members.len() {
            let count = members[start].claims.len();
            let end = start
                + members[start..]
                    .iter()
                    .take_while(|m| m.claims.len() == count)
                    .count();
            let group: Vec<&Member> = members[start..end].iter().collect();
            within(&group, &mut Vec::new(), &mut pairs);
            start = end;
        }
        let position: HashMap<usize, usize> = members
            .iter()
            .enumerate()
            .map(|(pos, m)| (m.identity, pos))
            .collect();
        let mut listed = 0usize;
        let mut unlisted = pairs.more;
        for (a, b) in pairs.found {
            let (Some(&pa), Some(&pb)) = (position.get(&a), position.get(&b)) else {
                continue;
            };
            let union = union_claims(&members[pa], &members[pb]);
            let winner = more_specific(&members, &holders, &union, members[pa].claims.len());
            if winner.is_some() {
                continue;
            }
            if listed == MAX_TIES_LISTED {
                unlisted += 1;
                continue;
            }
            listed += 1;
            // Report at the one defined later, pointing back at the other.
            let (first, second) = order_by_origin(config, &snap.identities[a], &snap.identities[b]);
            let Some(o2) = config.identity_origin(&second.name) else {
                continue;
            };
            let first_at = config.identity_place(&first.name).unwrap_or_default();
            let example = example_claims(first, second);
            let shared = shared_teams(snap, a, b);
            let msg = if first.claims.is_empty() {
                format!(
                    "external identities {:?} (at {first_at}) and {:?} of SSO {} both have no claims: every token of the SSO that no identity with claims matches is denied ambiguous_identity; keep one fallback",
                    first.name, second.name, sso.name
                )
            } else {
                format!(
                    "external identities {:?} (at {first_at}) and {:?} of SSO {} both have {} and a token with {example} matches both: it is denied ambiguous_identity; make them exclusive (the same claim with different values) or give the one that should win another claim",
                    first.name,
                    second.name,
                    sso.name,
                    plural(first.claims.len(), "claim", "claims"),
                )
            };
            let msg = match shared {
                Some(teams) => format!(
                    "{msg} (both are members of {teams}: the team's roles do not help, a tie is denied before any role is looked up)"
                ),
                None => msg,
            };
            out.push(warn(
                config,
                o2,
                section::EXTERNAL_IDENTITIES,
                Some("name"),
                msg,
            ));
        }
        if unlisted > 0 || pairs.gave_up {
            let Some(first) = ids
                .first()
                .and_then(|i| config.identity_origin(&snap.identities[*i].name))
            else {
                continue;
            };
            let msg = if pairs.gave_up {
                format!("the search for possible ties among the identities of SSO {} stopped early (too many identities name different claims); more pairs may tie", sso.name)
            } else {
                format!(
                    "{unlisted} more pairs of identities of SSO {} may tie (not listed); fix the ones above and validate again",
                    sso.name
                )
            };
            out.push(warn(
                config,
                first,
                section::EXTERNAL_IDENTITIES,
                Some("name"),
                msg,
            ));
        }
    }
}

/// The teams identities `a` and `b` are both members of, as `team:x, team:y`, if any: a
/// reviewer may take two members of one team for interchangeable, and a tie still denies.
fn shared_teams(snap: &Snapshot, a: usize, b: usize) -> Option<String> {
    let theirs = snap.teams_of(b);
    let shared: Vec<String> = snap
        .teams_of(a)
        .iter()
        .filter(|t| theirs.contains(t))
        .filter_map(|t| snap.teams.get(*t as usize))
        .map(|t| format!("{}{}", snapshot::TEAM_SUBJECT, t.name))
        .collect();
    (!shared.is_empty()).then(|| shared.join(", "))
}

fn union_claims(a: &Member, b: &Member) -> Vec<(u32, u32)> {
    let mut u: Vec<(u32, u32)> = a.claims.iter().chain(b.claims.iter()).copied().collect();
    u.sort_unstable();
    u.dedup();
    u
}

/// An identity with more than `count` claims, all of them in `union`: it matches every token
/// that matches both members of a pair, and wins.
fn more_specific(
    members: &[Member],
    holders: &HashMap<(u32, u32), Vec<usize>>,
    union: &[(u32, u32)],
    count: usize,
) -> Option<usize> {
    for kv in union {
        for &pos in holders.get(kv).map(Vec::as_slice).unwrap_or_default() {
            let m = &members[pos];
            if m.claims.len() > count
                && m.claims.len() <= union.len()
                && m.claims.iter().all(|c| union.binary_search(c).is_ok())
            {
                return Some(m.identity);
            }
        }
    }
    None
}

fn order_by_origin<'i>(
    config: &Config,
    a: &'i Identity,
    b: &'i Identity,
) -> (&'i Identity, &'i Identity) {
    let key = |i: &Identity| config.identity_origin(&i.name).map(|o| (o.file, o.index));
    if key(a) <= key(b) {
        (a, b)
    } else {
        (b, a)
    }
}

/// Whether one token can meet every condition of both identities, as far as pairs of
/// their conditions tell (see the module's doc for what is taken as exclusive).
fn compatible(a: &Identity, b: &Identity) -> bool {
    a.claims
        .iter()
        .all(|x| b.claims.iter().all(|y| !excludes(x, y) && !excludes(y, x)))
}

/// Whether `x` rules out `y`: the same claim with conditions no value meets both, or `x` on
/// a claim that `y` needs to be an object with a member inside it.
fn excludes(x: &ClaimMatcher, y: &ClaimMatcher) -> bool {
    let (px, py) = (x.path.pointer(), y.path.pointer());
    if px == py {
        return x.excludes(y);
    }
    let Some(below) = py.strip_prefix(&*px).and_then(|r| r.strip_prefix('/')) else {
        return false;
    };
    if y.condition == Condition::Present(false) {
        return false;
    }
    // `y` needs the claim at `px` to exist and to hold a member named `segment`: an object,
    // or (for an index) an array.
    let segment = below.split('/').next().unwrap_or_default();
    let index = !segment.is_empty()
        && segment.bytes().all(|b| b.is_ascii_digit())
        && (segment == "0" || !segment.starts_with('0'));
    match &x.condition {
        Condition::Present(false) => true,
        Condition::Equals(_) | Condition::Like(_) | Condition::NotLike(_) => !index,
        Condition::Not(_) | Condition::Present(true) => false,
    }
}

/// The claims of both identities, as a token that matches both would carry them.
fn example_claims(a: &Identity, b: &Identity) -> String {
    let mut seen = HashSet::new();
    let mut parts = Vec::new();
    for c in a.claims.iter().chain(b.claims.iter()) {
        let pointer = c.path.pointer();
        if !seen.insert(pointer.clone().into_owned()) {
            continue;
        }
        let other = a
            .claims
            .iter()
            .chain(b.claims.iter())
            .filter(|o| o.path.pointer() == pointer)
            .find(|o| o.condition != c.condition);
        let overlap = match other {
            Some(o)
                if array_claim(&pointer)
                    && c.condition.accumulates()
                    && o.condition.accumulates() =>
            {
                match (c.condition.witness(), o.condition.witness()) {
                    (Overlap::Value(v), Overlap::Value(w)) if v == w => Overlap::Value(v),
                    (Overlap::Value(v), Overlap::Value(w)) => Overlap::Value(vec![v, w].into()),
                    _ => Overlap::Possible,
                }
            }
            Some(o) => c.condition.overlap(&o.condition),
            None => c.condition.witness(),
        };
        parts.push(match overlap {
            Overlap::Value(v) => format!("{}={v}", c.key),
            Overlap::Absent => format!("no {}", c.key),
            Overlap::Possible | Overlap::Exclusive => match other {
                Some(o) => format!(
                    "{} {} and {}",
                    c.key,
                    c.condition.phrase(),
                    o.condition.phrase()
                ),
                None => format!("{} {}", c.key, c.condition.phrase()),
            },
        });
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tie_search_splits_instead_of_comparing_every_pair() {
        // 20k identities with two claims each, exclusive by repository: no tie, found with
        // work linear in their number rather than by looking at 200M pairs.
        let members: Vec<Member> = (0..20_000u32)
            .map(|i| Member {
                identity: i as usize,
                claims: vec![(0, i), (1, 100_000 + i % 7)],
                split: vec![(0, i), (1, 100_000 + i % 7)],
            })
            .collect();
        let group: Vec<&Member> = members.iter().collect();
        let mut pairs = Pairs::default();
        within(&group, &mut Vec::new(), &mut pairs);
        assert!(pairs.found.is_empty() && pairs.more == 0);
        assert!(pairs.visits <= 2 * members.len(), "{} visits", pairs.visits);
        // Half of them name another claim instead: every cross pair could tie, and they
        // are counted rather than enumerated once enough are listed.
        let other: Vec<Member> = (0..2_000u32)
            .map(|i| Member {
                identity: 100_000 + i as usize,
                claims: vec![(1, 100_000 + i % 7), (2, i)],
                split: vec![(1, 100_000 + i % 7), (2, i)],
            })
            .collect();
        let group: Vec<&Member> = members.iter().take(2_000).chain(other.iter()).collect();
        let mut pairs = Pairs::default();
        within(&group, &mut Vec::new(), &mut pairs);
        // Pairs agreeing on environment: 2000 x 2000 / 7, give or take rounding.
        let total = pairs.found.len() as u64 + pairs.more;
        assert!((570_000..=572_000).contains(&total), "{total}");
        assert!(!pairs.gave_up);
    }
}
