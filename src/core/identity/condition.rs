//! What one claim of an identity must be: a value (or any of several), a pattern, a
//! negation, or presence. Each form counts as one claim for "most matching claims".
//!
//! Negations hold only for a claim that is present: unlike AWS's negated operators, a token
//! without `actor` is not "not dependabot" (write `present: false` for that).

use serde_json::{Map, Value};

use super::{ClaimOutcome, ClaimValue, Pattern};

/// The condition on one claim.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The claim equals one of the values, or is an array that contains one.
    Equals(Box<[ClaimValue]>),
    /// The claim is a string matching one of the patterns, or an array with such a string.
    Like(Box<[Pattern]>),
    /// The claim is present and equals none of the values (an array contains none).
    Not(Box<[ClaimValue]>),
    /// The claim is a present string (or array of strings) matching none of the patterns.
    NotLike(Box<[Pattern]>),
    /// The claim exists (any value, even null), or with `false`, does not.
    Present(bool),
}

impl Condition {
    /// How the condition fares for the token's value of its claim (`None`: missing).
    pub fn judge(&self, actual: Option<&Value>) -> ClaimOutcome {
        match (self, actual) {
            (Condition::Present(false), None) => ClaimOutcome::Matched,
            (_, None) => ClaimOutcome::Missing,
            (c, Some(v)) if c.holds(v) => ClaimOutcome::Matched,
            (_, Some(_)) => ClaimOutcome::Mismatched,
        }
    }

    /// Whether the condition holds for a present value.
    pub fn holds(&self, v: &Value) -> bool {
        match self {
            Condition::Equals(values) => values.iter().any(|e| e.matches(v)),
            Condition::Like(patterns) => match v {
                Value::String(s) => patterns.iter().any(|p| p.matches(s)),
                Value::Array(items) => items.iter().any(|item| {
                    item.as_str()
                        .is_some_and(|s| patterns.iter().any(|p| p.matches(s)))
                }),
                _ => false,
            },
            Condition::Not(values) => !values.iter().any(|e| e.matches(v)),
            Condition::NotLike(patterns) => {
                let none = |s: &str| !patterns.iter().any(|p| p.matches(s));
                match v {
                    Value::String(s) => none(s),
                    Value::Array(items) => items.iter().all(|i| i.as_str().is_some_and(none)),
                    _ => false,
                }
            }
            Condition::Present(present) => *present,
        }
    }

    /// The one value an exact condition names, if it names exactly one.
    pub fn exact(&self) -> Option<&ClaimValue> {
        match self {
            Condition::Equals(values) if values.len() == 1 => values.first(),
            _ => None,
        }
    }

    /// The condition as configured, in JSON: a value, a list, or `{operator: …}`.
    pub fn to_json(&self) -> Value {
        let values = |vs: &[ClaimValue]| match vs {
            [one] => one.to_json(),
            many => Value::Array(many.iter().map(ClaimValue::to_json).collect()),
        };
        let patterns = |ps: &[Pattern]| match ps {
            [one] => Value::from(one.source()),
            many => Value::Array(many.iter().map(|p| Value::from(p.source())).collect()),
        };
        let op = |name: &str, v: Value| Value::Object(Map::from_iter([(name.to_owned(), v)]));
        match self {
            Condition::Equals(vs) => values(vs),
            Condition::Like(ps) => op("like", patterns(ps)),
            Condition::Not(vs) => op("not", values(vs)),
            Condition::NotLike(ps) => op("not_like", patterns(ps)),
            Condition::Present(b) => op("present", Value::from(*b)),
        }
    }

    /// The condition in words after its claim's name: `= "acme/api"`, `like "repo:acme/*"`,
    /// `not ["a", "b"]`, `present`, `absent`.
    pub fn phrase(&self) -> String {
        let list = |items: Vec<Value>| match items.as_slice() {
            [one] => one.to_string(),
            many => {
                let shown: Vec<String> = many.iter().map(Value::to_string).collect();
                format!("[{}]", shown.join(", "))
            }
        };
        let values = |vs: &[ClaimValue]| list(vs.iter().map(ClaimValue::to_json).collect());
        let patterns = |ps: &[Pattern]| list(ps.iter().map(|p| Value::from(p.source())).collect());
        match self {
            Condition::Equals(vs) if vs.len() == 1 => format!("= {}", values(vs)),
            Condition::Equals(vs) => format!("in {}", values(vs)),
            Condition::Like(ps) => format!("like {}", patterns(ps)),
            Condition::Not(vs) => format!("not {}", values(vs)),
            Condition::NotLike(ps) => format!("not_like {}", patterns(ps)),
            Condition::Present(true) => "present".into(),
            Condition::Present(false) => "absent".into(),
        }
    }

    /// One claim's outcome in words, as `explain` prints it:
    /// `sub like "repo:acme/*" matched "repo:acme/api"`, `actor not "x" failed: it is "x"`.
    pub fn explain(&self, key: &str, outcome: ClaimOutcome, actual: Option<&Value>) -> String {
        let phrase = self.phrase();
        match (outcome, actual) {
            (ClaimOutcome::Matched, Some(a)) => format!("{key} {phrase} matched {a}"),
            (ClaimOutcome::Matched, None) => format!("{key} {phrase} held: the token has none"),
            (ClaimOutcome::Missing, _) | (_, None) => {
                format!("{key} {phrase} failed: the token has no {key}")
            }
            (ClaimOutcome::Mismatched, Some(a)) => match self {
                Condition::Present(false) => format!("{key} {phrase} failed: it is {a}"),
                Condition::Like(_) | Condition::NotLike(_) if !is_strings(a) => {
                    format!("{key} {phrase} failed: it is {a}, not a string")
                }
                _ => format!("{key} {phrase} failed: it is {a}"),
            },
        }
    }

    /// A key that is equal for two conditions only when they hold for the same tokens
    /// (different keys may still be equivalent).
    pub fn canonical(&self) -> String {
        let values = |tag: &str, vs: &[ClaimValue]| {
            let mut keys: Vec<String> = vs.iter().map(ClaimValue::canonical).collect();
            keys.sort_unstable();
            keys.dedup();
            format!("{tag}{}", keys.join("\u{0}"))
        };
        let patterns = |tag: &str, ps: &[Pattern]| {
            let mut keys: Vec<&str> = ps.iter().map(Pattern::source).collect();
            keys.sort_unstable();
            keys.dedup();
            format!("{tag}{}", keys.join("\u{0}"))
        };
        match self {
            Condition::Equals(vs) => values("=", vs),
            Condition::Like(ps) => patterns("~", ps),
            Condition::Not(vs) => values("!", vs),
            Condition::NotLike(ps) => patterns("!~", ps),
            Condition::Present(b) => format!("?{b}"),
        }
    }
}

fn is_strings(v: &Value) -> bool {
    match v {
        Value::String(_) => true,
        Value::Array(items) => items.iter().all(Value::is_string),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn like(ps: &[&str]) -> Condition {
        Condition::Like(
            ps.iter()
                .map(|p| Pattern::compile(p).expect("valid"))
                .collect(),
        )
    }

    fn not_like(ps: &[&str]) -> Condition {
        Condition::NotLike(
            ps.iter()
                .map(|p| Pattern::compile(p).expect("valid"))
                .collect(),
        )
    }

    fn strs(vs: &[&str]) -> Box<[ClaimValue]> {
        vs.iter().map(|v| ClaimValue::Str((*v).into())).collect()
    }

    #[test]
    fn a_list_holds_when_any_value_does() {
        let refs = Condition::Equals(strs(&["refs/heads/main", "refs/heads/release"]));
        assert!(refs.holds(&json!("refs/heads/release")));
        assert!(refs.holds(&json!(["x", "refs/heads/main"])));
        assert!(!refs.holds(&json!("refs/heads/dev")));
        assert_eq!(refs.judge(None), ClaimOutcome::Missing);
    }

    #[test]
    fn like_holds_for_a_matching_string_or_array_element_only() {
        let c = like(&["repo:acme/*", "repo:beta/*"]);
        assert!(c.holds(&json!("repo:beta/x")));
        assert!(c.holds(&json!([1, "repo:acme/x"])));
        assert!(!c.holds(&json!(1)));
        assert!(!c.holds(&json!(["repo:other/x"])));
        assert_eq!(c.judge(None), ClaimOutcome::Missing);
    }

    #[test]
    fn negations_never_hold_for_a_missing_claim() {
        let not = Condition::Not(strs(&["dependabot[bot]", "renovate[bot]"]));
        assert_eq!(not.judge(None), ClaimOutcome::Missing);
        assert_eq!(not.judge(Some(&json!("alice"))), ClaimOutcome::Matched);
        assert_eq!(not.judge(Some(&json!(null))), ClaimOutcome::Matched);
        assert_eq!(
            not.judge(Some(&json!("renovate[bot]"))),
            ClaimOutcome::Mismatched
        );
        assert!(!not.holds(&json!(["alice", "dependabot[bot]"])));
        let nl = not_like(&["*:pull_request"]);
        assert_eq!(nl.judge(None), ClaimOutcome::Missing);
        assert!(nl.holds(&json!("repo:a/b:ref:refs/heads/main")));
        assert!(!nl.holds(&json!("repo:a/b:pull_request")));
        assert!(!nl.holds(&json!(7)), "a number is not a string");
        assert!(!nl.holds(&json!(["ok", 7])));
        assert!(nl.holds(&json!(["ok", "fine"])));
    }

    #[test]
    fn presence_is_about_the_key_whatever_its_value() {
        let p = Condition::Present(true);
        assert_eq!(p.judge(Some(&json!(null))), ClaimOutcome::Matched);
        assert_eq!(p.judge(None), ClaimOutcome::Missing);
        let a = Condition::Present(false);
        assert_eq!(a.judge(None), ClaimOutcome::Matched);
        assert_eq!(a.judge(Some(&json!(false))), ClaimOutcome::Mismatched);
    }

    #[test]
    fn explain_says_each_outcome_in_the_conditions_own_words() {
        let sub = like(&["repo:acme/*"]);
        let token = json!("repo:acme/api:ref:refs/heads/main");
        assert_eq!(
            sub.explain("sub", ClaimOutcome::Matched, Some(&token)),
            r#"sub like "repo:acme/*" matched "repo:acme/api:ref:refs/heads/main""#
        );
        let actor = Condition::Not(strs(&["dependabot[bot]"]));
        let bot = json!("dependabot[bot]");
        assert_eq!(
            actor.explain("actor", ClaimOutcome::Mismatched, Some(&bot)),
            r#"actor not "dependabot[bot]" failed: it is "dependabot[bot]""#
        );
        assert_eq!(
            actor.explain("actor", ClaimOutcome::Missing, None),
            r#"actor not "dependabot[bot]" failed: the token has no actor"#
        );
        assert_eq!(
            Condition::Present(false).explain("environment", ClaimOutcome::Matched, None),
            "environment absent held: the token has none"
        );
    }
}
