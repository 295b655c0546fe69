//! Selection shifts the configurations prove: among identities one token could both match,
//! the one with more claims wins. When an identity's claims change, or a new one comes, its
//! standing against every other identity of its SSO can change:
//!
//! - a **shift**: two identities on both sides that one token could match both before and now,
//!   where the one that had no more claims than the other now has more, so such tokens now
//!   select it;
//! - a **possible tie**: two identities one token could both match, with equally many claims,
//!   that were not such a pair before; the token would be denied `ambiguous_identity`.
//!
//! Only pairs with a changed identity are examined, so an edit of a few identities among
//! thousands costs a few thousand comparisons.

use std::collections::HashSet;

use super::access::Identities;
use super::claims::{same_claims, Conditions, Exclusions};
use super::{Change, Diff};
use crate::core::text::plural;

/// Most identity pairs examined; beyond it the rest are not, and a note says so.
const MAX_PAIRS: usize = 5_000_000;
/// Most possible ties listed; more are counted in a note.
const MAX_TIES: usize = 100;

pub(super) fn shifts(ids: &Identities<'_>, out: &mut Diff) {
    let (base, new) = (ids.base, ids.new);
    let changed: Vec<usize> = ids
        .by_name
        .iter()
        .filter_map(|(name, (_, n))| {
            let n = (*n)?;
            match ids.kept(name) {
                Some((b, _)) if same_claims(&base.identities[b], &new.identities[n]) => None,
                _ => Some(n),
            }
        })
        .collect();
    if changed.is_empty() {
        return;
    }
    let mut exclusions = Exclusions::default();
    let new_conditions: Vec<Conditions<'_>> = new
        .identities
        .iter()
        .map(|i| exclusions.conditions(i))
        .collect();
    let base_conditions: Vec<Conditions<'_>> = base
        .identities
        .iter()
        .map(|i| exclusions.conditions(i))
        .collect();
    // A pair of two changed identities is examined once, from the lower index.
    let is_changed: HashSet<usize> = changed.iter().copied().collect();
    let mut examined = 0usize;
    let mut ties = 0usize;
    for &n in &changed {
        let a = &new.identities[n];
        let others = new.identities_of(a.sso);
        examined += others.len();
        if examined > MAX_PAIRS {
            out.notes.push(format!(
                "selection shifts and possible ties were examined for part of the changed identities only ({} changed)",
                changed.len()
            ));
            return;
        }
        for &m in others {
            if m == n || (m < n && is_changed.contains(&m)) {
                continue;
            }
            let b = &new.identities[m];
            if !exclusions.could_both_match(&new_conditions[n], &new_conditions[m]) {
                continue;
            }
            let before = match (ids.kept(&a.name), ids.kept(&b.name)) {
                (Some((ba, _)), Some((bb, _)))
                    if exclusions.could_both_match(&base_conditions[ba], &base_conditions[bb]) =>
                {
                    Some((base_conditions[ba].len(), base_conditions[bb].len()))
                }
                _ => None,
            };
            let now = (a.claims.len(), b.claims.len());
            let sso = new.ssos[a.sso].name.to_string();
            if now.0 == now.1 {
                if ties >= MAX_TIES {
                    ties += 1;
                    continue;
                }
                // An identity with more claims, all of them the pair's, wins every token that
                // matches both: the pair never ties.
                let settled = others.iter().any(|&z| {
                    let z_conditions = &new_conditions[z];
                    z_conditions.len() > now.0
                        && z_conditions.within(&new_conditions[n], &new_conditions[m])
                });
                if !settled && before.is_none_or(|(x, y)| x != y) {
                    let mut pair = [a.name.to_string(), b.name.to_string()];
                    pair.sort();
                    ties += 1;
                    out.changes.push(Change::PossibleTie {
                        identities: pair,
                        sso,
                        claims: now.0,
                    });
                }
                continue;
            }
            let Some(before) = before else { continue };
            // Orient the pair so the first is the one with more claims now.
            let (winner, loser, now, before) = if now.0 > now.1 {
                (a, b, now, before)
            } else {
                (b, a, (now.1, now.0), (before.1, before.0))
            };
            if before.0 <= before.1 {
                out.changes.push(Change::SelectionShift {
                    identity: winner.name.to_string(),
                    outranks: loser.name.to_string(),
                    sso,
                    claims: [now.0, now.1],
                    was: [before.0, before.1],
                });
            }
        }
    }
    note_ties(ties, out);
}

fn note_ties(ties: usize, out: &mut Diff) {
    if ties > MAX_TIES {
        out.notes.push(format!(
            "{} more possible ties are not listed; run claimgate validate on the new configuration for all of them",
            ties - MAX_TIES
        ));
    }
}

/// A shift in words, for text and Markdown.
pub(super) fn shift_text(
    identity: &str,
    outranks: &str,
    claims: [usize; 2],
    was: [usize; 2],
) -> String {
    let before = if was[0] == was[1] {
        "before, such a token was ambiguous_identity".to_owned()
    } else {
        format!("before, {outranks} won them")
    };
    format!(
        "{identity} now wins tokens that also match {outranks} ({} to {}; {before}, {} to {})",
        plural(claims[0], "claim", "claims"),
        claims[1],
        was[0],
        was[1]
    )
}
