//! External-identity selection: among the identities of the SSO that verified a token, those
//! whose claims all hold are candidates, and the candidate with the most claims wins. Each
//! claim is one [`Condition`]: a value, a list, a `like` [`Pattern`], a negation or presence.
//!
//! The rule is a walk ([`select`]): the SSO's identities sorted by claim count (most first),
//! stopping as soon as the count drops below the best match or a tie is found. The request
//! path asks the [`Index`] instead, which gives the walk's answer while checking only the
//! identities whose rarest exact condition the token meets, plus those it cannot index.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;

mod condition;
mod index;
mod overlap;
mod pattern;

pub use condition::Condition;
pub use index::Index;
pub use overlap::{array_claim, Overlap, ARRAY_CLAIMS};
pub use pattern::{Pattern, PatternError, Shared, MAX_PATTERN_BYTES, MAX_WILDCARDS};

/// Where a claim is read from the token payload.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimPath {
    /// A top-level claim by name.
    Top(Box<str>),
    /// A JSON Pointer (RFC 6901) into nested claims.
    Pointer(Box<str>),
}

impl ClaimPath {
    /// The claim's place as a JSON Pointer, so `repository` and `/repository` compare equal.
    pub fn pointer(&self) -> Cow<'_, str> {
        match self {
            ClaimPath::Pointer(p) => Cow::Borrowed(p),
            ClaimPath::Top(name) if !name.contains(['~', '/']) => Cow::Owned(format!("/{name}")),
            ClaimPath::Top(name) => {
                Cow::Owned(format!("/{}", name.replace('~', "~0").replace('/', "~1")))
            }
        }
    }
}

/// `serde_json::Value::pointer`, which allocates a string per reference token, without
/// allocating unless a token is escaped (`~0`, `~1`): it runs for every condition checked.
fn pointer<'v>(payload: &'v Value, pointer: &str) -> Option<&'v Value> {
    let rest = pointer.strip_prefix('/')?;
    rest.split('/').try_fold(payload, |target, raw| {
        let name: Cow<'_, str> = if raw.contains('~') {
            Cow::Owned(raw.replace("~1", "/").replace("~0", "~"))
        } else {
            Cow::Borrowed(raw)
        };
        match target {
            Value::Object(map) => map.get(&*name),
            Value::Array(list)
                if !name.starts_with('+') && (name == "0" || !name.starts_with('0')) =>
            {
                name.parse::<usize>().ok().and_then(|i| list.get(i))
            }
            _ => None,
        }
    })
}

/// An expected claim value. Values of different JSON types never match.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimValue {
    /// A string.
    Str(Box<str>),
    /// An integer, compared exactly (an `i64` or a `u64`, as JSON and YAML parse them).
    Int(i128),
    /// A non-integer number.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

impl ClaimValue {
    /// The value as JSON, for display and explain output.
    pub fn to_json(&self) -> Value {
        match self {
            ClaimValue::Str(s) => Value::from(&**s),
            ClaimValue::Int(i) => match (i64::try_from(*i), u64::try_from(*i)) {
                (Ok(i), _) => Value::from(i),
                (_, Ok(u)) => Value::from(u),
                _ => Value::Null,
            },
            ClaimValue::Float(f) => Value::from(*f),
            ClaimValue::Bool(b) => Value::from(*b),
        }
    }

    /// A key that is equal for two values exactly when they match the same tokens (`1` and
    /// `1.0` are one number; `"1"` is another value).
    pub fn canonical(&self) -> String {
        match self {
            ClaimValue::Str(s) => format!("s{s}"),
            ClaimValue::Int(i) => format!("n{i}"),
            ClaimValue::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                format!("n{}", *f as i64)
            }
            ClaimValue::Float(f) => format!("n{f}"),
            ClaimValue::Bool(b) => format!("b{b}"),
        }
    }

    fn matches_scalar(&self, actual: &Value) -> bool {
        match (self, actual) {
            (ClaimValue::Str(e), Value::String(a)) => **e == **a,
            (ClaimValue::Bool(e), Value::Bool(a)) => e == a,
            (ClaimValue::Int(e), Value::Number(a)) => match integer(a) {
                Some(a) => a == *e,
                None => a.as_f64().is_some_and(|a| integer_equals_float(*e, a)),
            },
            (ClaimValue::Float(e), Value::Number(a)) => match integer(a) {
                Some(a) => integer_equals_float(a, *e),
                None => a.as_f64() == Some(*e),
            },
            _ => false,
        }
    }

    /// Whether `actual` equals this value or, if it is an array, contains it.
    pub fn matches(&self, actual: &Value) -> bool {
        match actual {
            Value::Array(items) => items.iter().any(|v| self.matches_scalar(v)),
            v => self.matches_scalar(v),
        }
    }
}

/// A JSON integer exactly, or `None` for a number parsed as a float.
fn integer(n: &serde_json::Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// Whether the float `f` is exactly the integer `i`: never through a rounding of `i` to `f64`
/// (9007199254740993 is not 9007199254740992.0, though it rounds to it).
fn integer_equals_float(i: i128, f: f64) -> bool {
    // The bound keeps the cast exact; `fract` of an infinity or NaN is NaN, never 0.
    f.fract() == 0.0 && f.abs() < 1.0e38 && f as i128 == i
}

/// One claim condition of an identity.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimMatcher {
    /// The key as written in the configuration.
    pub key: Box<str>,
    /// Where to read it.
    pub path: ClaimPath,
    /// What it must be.
    pub condition: Condition,
}

/// How one claim condition fared against a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimOutcome {
    /// The claim holds.
    Matched,
    /// The claim is present with another value.
    Mismatched,
    /// The token has no such claim.
    Missing,
}

impl ClaimMatcher {
    /// The token's value for this claim, if present.
    pub fn lookup<'v>(&self, payload: &'v Value) -> Option<&'v Value> {
        match &self.path {
            ClaimPath::Top(name) => payload.get(&**name),
            ClaimPath::Pointer(p) => pointer(payload, p),
        }
    }

    /// Check this condition against a token payload.
    pub fn check(&self, payload: &Value) -> ClaimOutcome {
        self.judge(self.lookup(payload))
    }

    /// Check this condition against the token's value for it, as [`ClaimMatcher::lookup`]
    /// found it.
    pub fn judge(&self, actual: Option<&Value>) -> ClaimOutcome {
        self.condition.judge(actual)
    }

    /// The condition that the claim at `key` equals `value` (a key starting with `/` is a
    /// JSON Pointer).
    pub fn exact(key: &str, value: ClaimValue) -> ClaimMatcher {
        ClaimMatcher::new(key, Condition::Equals(Box::new([value])))
    }

    /// The condition `condition` on the claim at `key` (a key starting with `/` is a JSON
    /// Pointer).
    pub fn new(key: &str, condition: Condition) -> ClaimMatcher {
        let path = if key.starts_with('/') {
            ClaimPath::Pointer(key.into())
        } else {
            ClaimPath::Top(key.into())
        };
        ClaimMatcher {
            key: key.into(),
            path,
            condition,
        }
    }
}

/// An external identity, compiled.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Its unique name (shared with every grant it backs: no copy per check).
    pub name: std::sync::Arc<str>,
    /// Index of its SSO in the snapshot.
    pub sso: usize,
    /// All conditions; every one must hold.
    pub claims: Box<[ClaimMatcher]>,
}

impl Identity {
    /// Whether every condition holds for `payload`.
    pub fn matches(&self, payload: &Value) -> bool {
        self.matches_observed(0, payload, &mut ())
    }

    /// [`Identity::matches`] for identity `index`, reporting each claim to `obs`. Stops at
    /// the first claim that fails unless the observer is exhaustive.
    pub fn matches_observed<O: IdentityObserver>(
        &self,
        index: usize,
        payload: &Value,
        obs: &mut O,
    ) -> bool {
        let mut all = true;
        for claim in self.claims.iter() {
            let actual = claim.lookup(payload);
            let outcome = claim.judge(actual);
            obs.claim(index, claim, outcome, actual);
            if outcome != ClaimOutcome::Matched {
                all = false;
                if !O::EXHAUSTIVE {
                    break;
                }
            }
        }
        all
    }
}

/// How an identity fared in selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidacy {
    /// Every claim holds: it is a candidate.
    Matched,
    /// At least one claim does not hold.
    Unmatched,
    /// Selection had ended before this identity (a candidate with more claims had won, or a
    /// tie was found); reported only to an exhaustive observer, with whether it would match.
    NotReached {
        /// Whether every claim holds.
        matches: bool,
    },
}

/// Watches identity selection: every claim checked and every identity's candidacy. Does
/// nothing by default.
pub trait IdentityObserver {
    /// Whether to check every claim of every identity of the SSO, even after selection has
    /// its answer. The decision is the same either way; only what is reported differs.
    const EXHAUSTIVE: bool = false;

    /// One claim of identity `index` checked against the token's `actual` value.
    fn claim(
        &mut self,
        _index: usize,
        _claim: &ClaimMatcher,
        _outcome: ClaimOutcome,
        _actual: Option<&Value>,
    ) {
    }

    /// Identity `index` has been checked (after its claims were reported).
    fn candidate(&mut self, _index: usize, _identity: &Identity, _candidacy: Candidacy) {}
}

/// The unit observer sees nothing: what [`select`] and [`Identity::matches`] use.
impl IdentityObserver for () {}

/// The result of identity selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// This identity (an index into the snapshot's identities) won.
    Chosen(usize),
    /// No identity of the SSO matches.
    NoIdentity,
    /// These two identities match with equally many claims.
    Ambiguous(usize, usize),
}

/// Select among `candidates` (identity indices sorted by claim count, most first).
pub fn select(identities: &[Identity], candidates: &[usize], payload: &Value) -> Selection {
    select_observed(identities, candidates, payload, &mut ())
}

/// [`select`], reporting each identity checked (and, to an exhaustive observer, the ones
/// selection never reached) to `obs`.
pub fn select_observed<O: IdentityObserver>(
    identities: &[Identity],
    candidates: &[usize],
    payload: &Value,
    obs: &mut O,
) -> Selection {
    let mut chosen: Option<usize> = None;
    let mut result = None;
    let mut stopped_at = candidates.len();
    for (pos, &i) in candidates.iter().enumerate() {
        let identity = &identities[i];
        if let Some(c) = chosen {
            if identities[c].claims.len() > identity.claims.len() {
                stopped_at = pos;
                break;
            }
        }
        let matched = identity.matches_observed(i, payload, obs);
        let candidacy = if matched {
            Candidacy::Matched
        } else {
            Candidacy::Unmatched
        };
        obs.candidate(i, identity, candidacy);
        if matched {
            match chosen {
                None => chosen = Some(i),
                Some(c) => {
                    result = Some(Selection::Ambiguous(c, i));
                    stopped_at = pos + 1;
                    break;
                }
            }
        }
    }
    if O::EXHAUSTIVE {
        for &i in candidates.get(stopped_at..).unwrap_or_default() {
            let identity = &identities[i];
            let matches = identity.matches_observed(i, payload, obs);
            obs.candidate(i, identity, Candidacy::NotReached { matches });
        }
    }
    match (result, chosen) {
        (Some(r), _) => r,
        (None, Some(c)) => Selection::Chosen(c),
        (None, None) => Selection::NoIdentity,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ident(name: &str, claims: &[(&str, ClaimValue)]) -> Identity {
        Identity {
            name: name.into(),
            sso: 0,
            claims: claims
                .iter()
                .map(|(k, v)| ClaimMatcher::exact(k, v.clone()))
                .collect(),
        }
    }

    fn s(v: &str) -> ClaimValue {
        ClaimValue::Str(v.into())
    }

    fn sorted(ids: &[Identity]) -> Vec<usize> {
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|i| std::cmp::Reverse(ids[*i].claims.len()));
        order
    }

    #[test]
    fn most_claims_wins_and_fallback_matches_the_rest() {
        let ids = vec![
            ident("fallback", &[]),
            ident("repo", &[("repository", s("acme/api"))]),
            ident(
                "repo-prod",
                &[("repository", s("acme/api")), ("env", s("prod"))],
            ),
        ];
        let order = sorted(&ids);
        let t = json!({"repository": "acme/api", "env": "prod"});
        assert_eq!(select(&ids, &order, &t), Selection::Chosen(2));
        let t = json!({"repository": "acme/api", "env": "dev"});
        assert_eq!(select(&ids, &order, &t), Selection::Chosen(1));
        let t = json!({"repository": "acme/web"});
        assert_eq!(select(&ids, &order, &t), Selection::Chosen(0));
    }

    #[test]
    fn equal_counts_are_ambiguous() {
        let ids = vec![
            ident("a", &[("repository", s("acme/api"))]),
            ident("b", &[("env", s("prod"))]),
        ];
        let order = sorted(&ids);
        let t = json!({"repository": "acme/api", "env": "prod"});
        assert_eq!(select(&ids, &order, &t), Selection::Ambiguous(0, 1));
        let t = json!({"env": "dev"});
        assert_eq!(select(&ids, &order, &t), Selection::NoIdentity);
    }

    #[test]
    fn pointers_read_what_serde_json_reads() {
        let token = json!({
            "a/b": {"c~d": [0, {"": "empty"}]},
            "l": ["x", "y"],
            "n": {"01": "key", "1": "one", "+1": "plus"},
        });
        for p in [
            "/a~1b/c~0d/1/",
            "/a~1b/c~0d/0",
            "/l/1",
            "/l/01",
            "/l/+1",
            "/l/2",
            "/l/-",
            "/n/01",
            "/n/1",
            "/n/+1",
            "/missing/x",
            "/a~1b/c~0d/1/x",
            "/a~2b",
            "/",
        ] {
            assert_eq!(pointer(&token, p), token.pointer(p), "{p}");
        }
        assert_eq!(pointer(&token, "l"), None);
    }

    #[test]
    fn json_pointer_reads_nested_claims() {
        let ids = vec![ident("ns", &[("/kubernetes.io/namespace", s("prod"))])];
        let t = json!({"kubernetes.io": {"namespace": "prod"}});
        assert_eq!(select(&ids, &[0], &t), Selection::Chosen(0));
        let t = json!({"kubernetes.io": {"namespace": "dev"}});
        assert_eq!(ids[0].claims[0].check(&t), ClaimOutcome::Mismatched);
        assert_eq!(ids[0].claims[0].check(&json!({})), ClaimOutcome::Missing);
    }

    #[test]
    fn canonical_forms_see_through_spelling_of_paths_and_numbers() {
        let a = ident("a", &[("repository", s("x")), ("run", ClaimValue::Int(1))]);
        let b = ident(
            "b",
            &[("/repository", s("x")), ("run", ClaimValue::Float(1.0))],
        );
        assert_eq!(a.claims[0].path.pointer(), b.claims[0].path.pointer());
        let canon = |c: &ClaimMatcher| c.condition.canonical();
        assert_eq!(canon(&a.claims[1]), canon(&b.claims[1]));
        assert!(ClaimValue::Float(1.0).matches(&json!(1)));
        let c = ident("c", &[("run", s("1"))]);
        assert_ne!(canon(&a.claims[1]), canon(&c.claims[0]));
    }

    #[test]
    fn arrays_contain_and_types_never_cross() {
        let groups = ClaimValue::Str("admins".into());
        assert!(groups.matches(&json!(["dev", "admins"])));
        assert!(!groups.matches(&json!(["dev"])));
        assert!(!ClaimValue::Str("1".into()).matches(&json!(1)));
        assert!(!ClaimValue::Int(1).matches(&json!("1")));
        assert!(ClaimValue::Int(1).matches(&json!(1)));
        assert!(ClaimValue::Int(1).matches(&json!(1.0)));
        assert!(!ClaimValue::Bool(true).matches(&json!("true")));
        assert!(ClaimValue::Bool(true).matches(&json!(true)));
        assert!(ClaimValue::Float(1.5).matches(&json!([1.5])));
    }

    #[test]
    fn large_integers_compare_exactly_and_a_float_only_when_it_is_that_integer() {
        let big = ClaimValue::Int(9_007_199_254_740_993);
        assert!(big.matches(&json!(9_007_199_254_740_993_u64)));
        assert!(!big.matches(&json!(9_007_199_254_740_992.0)));
        assert!(!big.matches(&json!(9_007_199_254_740_992_u64)));
        let even = ClaimValue::Int(9_007_199_254_740_992);
        assert!(even.matches(&json!(9_007_199_254_740_992.0)));
        let max = ClaimValue::Int(u64::MAX.into());
        assert!(max.matches(&json!(u64::MAX)));
        assert!(!max.matches(&json!(u64::MAX as f64)));
        assert!(!ClaimValue::Int(i64::MAX.into()).matches(&json!(i64::MAX as u64 + 1)));
        assert_eq!(max.to_json(), json!(u64::MAX));
        // A float condition: an integer token equals it only when it is exactly that number.
        let float = ClaimValue::Float(9_007_199_254_740_992.0);
        assert!(float.matches(&json!(9_007_199_254_740_992_u64)));
        assert!(!float.matches(&json!(9_007_199_254_740_993_u64)));
        assert!(!ClaimValue::Float(1.5).matches(&json!(1)));
        assert!(!ClaimValue::Float(f64::INFINITY).matches(&json!(u64::MAX)));
    }
}
