//! Whether two conditions on one claim can both hold for one token, and a value for which
//! they do: what `validate` needs to tell a possible tie from a pair that is exclusive.
//!
//! The answer is about one value of the claim, as for exact values: two identities that
//! name one claim with different values are exclusive, although an array claim could hold
//! both (configurations write such pairs to mean "one or the other"). Within that, the
//! answer is exact for values and patterns (two patterns overlap when their product
//! automaton accepts a string); where it is not decided (a pattern against a set of negated
//! patterns), it is [`Overlap::Possible`], never exclusive.

use serde_json::Value;

use super::pattern::Shared;
use super::{ClaimMatcher, ClaimValue, Condition, Pattern};

/// The last segment of the claims that identity providers send as arrays: group and role
/// memberships (also nested, as Keycloak's `/realm_access/roles`), audiences, authentication
/// methods, scopes, entitlements. Other claims are compared as one value, as configurations
/// mean them (`repository: a` and `repository: b` are "one or the other").
pub const ARRAY_CLAIMS: &[&str] = &[
    "groups",
    "roles",
    "aud",
    "amr",
    "scp",
    "entitlements",
    "permissions",
    "teams",
    "wids",
];

/// Whether the claim at this JSON Pointer is one that tokens carry as an array.
pub fn array_claim(pointer: &str) -> bool {
    let last = pointer.rsplit('/').next().unwrap_or_default();
    ARRAY_CLAIMS.contains(&last)
}

impl ClaimMatcher {
    /// Whether no token meets both this condition and `other`, on the same claim. On an
    /// [array claim](ARRAY_CLAIMS) one array can hold a value for each of two conditions
    /// that an extra element never breaks (`groups: [a, b]` meets `groups: a` and
    /// `groups: b`); elsewhere the claim is read as one value.
    pub fn excludes(&self, other: &ClaimMatcher) -> bool {
        let (x, y) = (&self.condition, &other.condition);
        if x.accumulates() && y.accumulates() && array_claim(&self.path.pointer()) {
            return x.witness() == Overlap::Exclusive || y.witness() == Overlap::Exclusive;
        }
        x.overlap(y) == Overlap::Exclusive
    }
}

/// How two conditions on one claim relate.
#[derive(Debug, Clone, PartialEq)]
pub enum Overlap {
    /// No value (or absence) of the claim meets both.
    Exclusive,
    /// Both hold when the claim is missing.
    Absent,
    /// Both hold for this value.
    Value(Value),
    /// Both may hold; no example was found.
    Possible,
}

/// How many candidate strings a search for a value outside some negations tries.
const TRIES: usize = 64;

impl Condition {
    /// Whether an array claim that meets this condition still meets it with one more element
    /// (a value, a pattern, presence; not a negation).
    pub fn accumulates(&self) -> bool {
        matches!(
            self,
            Condition::Equals(_) | Condition::Like(_) | Condition::Present(true)
        )
    }

    /// A value (or absence) for which the condition holds, as a token would carry it.
    pub fn witness(&self) -> Overlap {
        self.overlap(self)
    }

    /// Whether this condition and `other`, on the same claim, can both hold.
    pub fn overlap(&self, other: &Condition) -> Overlap {
        use Condition::*;
        match (self, other) {
            (Present(false), Present(false)) => Overlap::Absent,
            (Present(false), _) | (_, Present(false)) => Overlap::Exclusive,
            (Present(true), Present(true)) => Overlap::Value(Value::from("any")),
            (Present(true), c) | (c, Present(true)) => c.overlap(c),
            (Equals(a), b) | (b, Equals(a)) => a
                .iter()
                .find(|v| b.holds(&v.to_json()))
                .map_or(Overlap::Exclusive, |v| Overlap::Value(v.to_json())),
            (Like(p), Like(q)) => {
                let mut answer = Overlap::Exclusive;
                for (x, y) in p.iter().flat_map(|x| q.iter().map(move |y| (x, y))) {
                    match x.common_match(y) {
                        Shared::Yes(s) => return Overlap::Value(s.into()),
                        Shared::Unknown => answer = Overlap::Possible,
                        Shared::No => {}
                    }
                }
                answer
            }
            (Like(p), Not(vs)) | (Not(vs), Like(p)) => {
                match p.iter().flat_map(samples).find(|s| !excluded(vs, s)) {
                    Some(s) => Overlap::Value(s.into()),
                    // Patterns without wildcards were each tried in full.
                    None if p.iter().all(|x| !x.literal_prefix().1) => Overlap::Exclusive,
                    None => Overlap::Possible,
                }
            }
            (Like(p), NotLike(q)) | (NotLike(q), Like(p)) => {
                let open: Vec<&Pattern> = p
                    .iter()
                    .filter(|x| !q.iter().any(|y| x.surely_within(y)))
                    .collect();
                if open.is_empty() {
                    return Overlap::Exclusive;
                }
                let hit = open
                    .into_iter()
                    .flat_map(samples)
                    .find(|s| !q.iter().any(|y| y.matches(s)));
                hit.map_or(Overlap::Possible, |s| Overlap::Value(s.into()))
            }
            (Not(a), Not(b)) => found(fresh().find(|s| !excluded(a, s) && !excluded(b, s))),
            (Not(vs), NotLike(ps)) | (NotLike(ps), Not(vs)) => {
                outside(ps, &[], |s| !excluded(vs, s))
            }
            (NotLike(p), NotLike(q)) => outside(p, q, |_| true),
        }
    }
}

/// Distinct strings a pattern matches (one when it has no wildcard).
fn samples(p: &Pattern) -> impl Iterator<Item = String> + '_ {
    let n = if p.literal_prefix().1 { TRIES } else { 1 };
    (0..n).map(|k| p.sample(k))
}

/// Plain strings, all distinct.
fn fresh() -> impl Iterator<Item = String> {
    (0..TRIES).map(|k| format!("other-{k}"))
}

fn excluded(values: &[ClaimValue], s: &str) -> bool {
    values.iter().any(|v| v.matches(&Value::from(s)))
}

fn found(s: Option<String>) -> Overlap {
    s.map_or(Overlap::Possible, |s| Overlap::Value(s.into()))
}

/// A string matching none of `p` and `q` that `also` accepts; exclusive only when a pattern
/// matches every string.
fn outside(p: &[Pattern], q: &[Pattern], also: impl Fn(&str) -> bool) -> Overlap {
    let all: Vec<&Pattern> = p.iter().chain(q).collect();
    if all.iter().any(|x| x.matches_everything()) {
        return Overlap::Exclusive;
    }
    let hit = fresh().find(|s| also(s) && !all.iter().any(|x| x.matches(s)));
    found(hit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::identity::ClaimOutcome;
    use serde_json::json;

    fn pats(ps: &[&str]) -> Box<[Pattern]> {
        ps.iter()
            .map(|p| Pattern::compile(p).expect("valid"))
            .collect()
    }

    fn strs(vs: &[&str]) -> Box<[ClaimValue]> {
        vs.iter().map(|v| ClaimValue::Str((*v).into())).collect()
    }

    /// Whether the overlap's example really meets both conditions.
    fn sound(a: &Condition, b: &Condition) -> Overlap {
        let o = a.overlap(b);
        match &o {
            Overlap::Value(v) => assert!(a.holds(v) && b.holds(v), "{a:?} {b:?} {v}"),
            Overlap::Absent => assert!(
                a.judge(None) == ClaimOutcome::Matched && b.judge(None) == ClaimOutcome::Matched
            ),
            _ => {}
        }
        o
    }

    fn condition() -> impl proptest::strategy::Strategy<Value = Condition> {
        use proptest::prelude::*;
        let value = prop::sample::select(vec![
            ClaimValue::Str("a".into()),
            ClaimValue::Str("ab".into()),
            ClaimValue::Str("1".into()),
            ClaimValue::Int(1),
            ClaimValue::Bool(true),
        ]);
        let pattern = prop::sample::select(vec!["a", "a*", "*b", "?", "*", "a?", "b*"])
            .prop_map(|p| Pattern::compile(p).expect("valid"));
        let values = prop::collection::vec(value, 1..3).prop_map(Vec::into_boxed_slice);
        let patterns = prop::collection::vec(pattern, 1..3).prop_map(Vec::into_boxed_slice);
        prop_oneof![
            values.clone().prop_map(Condition::Equals),
            patterns.clone().prop_map(Condition::Like),
            values.prop_map(Condition::Not),
            patterns.prop_map(Condition::NotLike),
            any::<bool>().prop_map(Condition::Present),
        ]
    }

    proptest::proptest! {
        #[test]
        fn conditions_called_exclusive_share_no_value(a in condition(), b in condition()) {
            let o = a.overlap(&b);
            if o == Overlap::Exclusive {
                let mut values: Vec<Option<Value>> = vec![None, Some(Value::Null)];
                values.extend(
                    ["", "a", "b", "ab", "ba", "abb", "1", "x", "other-0"].map(|s| Some(json!(s))),
                );
                values.extend([json!(1), json!(1.0), json!(true)].map(Some));
                for v in &values {
                    let both = a.judge(v.as_ref()) == ClaimOutcome::Matched
                        && b.judge(v.as_ref()) == ClaimOutcome::Matched;
                    proptest::prop_assert!(!both, "{:?} and {:?} both hold for {:?}", a, b, v);
                }
            } else {
                sound(&a, &b);
            }
        }
    }

    #[test]
    fn exact_lists_overlap_when_they_share_a_value() {
        let a = Condition::Equals(strs(&["main", "release"]));
        let b = Condition::Equals(strs(&["release", "dev"]));
        let c = Condition::Equals(strs(&["dev"]));
        assert_eq!(sound(&a, &b), Overlap::Value(json!("release")));
        assert_eq!(sound(&a, &c), Overlap::Exclusive);
        let one = Condition::Equals(Box::new([ClaimValue::Int(1)]));
        let one_f = Condition::Equals(Box::new([ClaimValue::Float(1.0)]));
        assert_eq!(sound(&one, &one_f), Overlap::Value(json!(1)));
    }

    #[test]
    fn patterns_overlap_exactly_when_some_string_matches_both() {
        let acme = Condition::Like(pats(&["repo:acme/*"]));
        let prod = Condition::Like(pats(&["repo:*:environment:prod"]));
        let other = Condition::Like(pats(&["repo:other/*"]));
        assert!(matches!(sound(&acme, &prod), Overlap::Value(_)));
        assert_eq!(sound(&acme, &other), Overlap::Exclusive);
        let exact = Condition::Equals(strs(&["repo:acme/api"]));
        assert!(matches!(sound(&acme, &exact), Overlap::Value(_)));
        assert_eq!(sound(&other, &exact), Overlap::Exclusive);
    }

    #[test]
    fn negations_and_presence_overlap_unless_they_cannot() {
        let bot = Condition::Not(strs(&["dependabot[bot]"]));
        let is_bot = Condition::Equals(strs(&["dependabot[bot]"]));
        assert_eq!(sound(&bot, &is_bot), Overlap::Exclusive);
        assert!(matches!(
            sound(&bot, &Condition::Not(strs(&["x"]))),
            Overlap::Value(_)
        ));
        let absent = Condition::Present(false);
        assert_eq!(sound(&absent, &bot), Overlap::Exclusive);
        assert_eq!(sound(&absent, &absent), Overlap::Absent);
        assert!(matches!(
            sound(&Condition::Present(true), &bot),
            Overlap::Value(_)
        ));
        let literal = Condition::Like(pats(&["dependabot[bot]"]));
        assert_eq!(sound(&literal, &bot), Overlap::Exclusive);
        let acme = Condition::Like(pats(&["repo:acme/*"]));
        let no_acme = Condition::NotLike(pats(&["repo:acme/*"]));
        assert_eq!(sound(&acme, &no_acme), Overlap::Exclusive);
        let no_pr = Condition::NotLike(pats(&["*:pull_request"]));
        assert!(matches!(sound(&acme, &no_pr), Overlap::Value(_)));
        let nothing = Condition::NotLike(pats(&["*"]));
        assert_eq!(sound(&nothing, &bot), Overlap::Exclusive);
        assert!(matches!(sound(&no_pr, &bot), Overlap::Value(_)));
        // Not decided is never called exclusive.
        let narrow = Condition::Like(pats(&["a?"]));
        let cover = Condition::NotLike(pats(&["a*"]));
        assert_eq!(sound(&narrow, &cover), Overlap::Possible);
    }
}
