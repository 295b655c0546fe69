//! An identity's `claims:` as written in YAML, compiled into conditions: a value, a list (any
//! of), `{like}`, `{not}`, `{not_like}` or `{present}`. Patterns are compiled here, once per
//! snapshot.

use serde_yaml::Value as Yaml;

use crate::core::identity::{ClaimMatcher, ClaimValue, Condition, Pattern, PatternError};

/// Most claims one identity may name.
pub const MAX_CLAIMS: usize = 32;

/// The operators of a condition written as a mapping.
const OPERATORS: [&str; 4] = ["like", "not", "not_like", "present"];

/// Why one claim's condition was refused; `field` is where, below `claims.KEY`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("claim {key:?}: {reason}")]
pub struct ConditionError {
    /// The claim's key as written.
    pub key: String,
    /// The place below the claim (`like[1]`), empty for the claim itself.
    pub field: String,
    /// What is wrong.
    pub reason: ConditionReason,
}

/// What is wrong with a condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionReason {
    /// A mapping key that is not an operator.
    #[error("unknown operator {0:?}; use like, not, not_like or present")]
    UnknownOperator(String),
    /// A mapping with no operator.
    #[error("a condition needs an operator: like, not, not_like or present")]
    NoOperator,
    /// More than one operator in one mapping.
    #[error("{0} cannot be combined in one condition; each claim has exactly one operator (use a list for any of several values)")]
    Combined(String),
    /// An empty list, which nothing could match.
    #[error("the list is empty; it needs at least one entry")]
    EmptyList,
    /// A value that is not a string, number or boolean.
    #[error("must be a string, number or boolean")]
    NotAValue,
    /// A number that no token number could equal.
    #[error("number {0} cannot be matched")]
    BadNumber(String),
    /// A pattern that is not a string.
    #[error("a pattern must be a string")]
    NotAPattern,
    /// `present` with something other than a boolean.
    #[error("present must be true or false")]
    NotABool,
    /// A malformed pattern.
    #[error("{0}")]
    Pattern(#[from] PatternError),
}

impl ConditionError {
    fn new(key: &str, field: impl Into<String>, reason: ConditionReason) -> ConditionError {
        ConditionError {
            key: key.into(),
            field: field.into(),
            reason,
        }
    }
}

/// Compile the condition written for claim `key`.
pub fn condition(key: &str, value: &Yaml) -> Result<ClaimMatcher, ConditionError> {
    let fail = |field: String, reason| ConditionError::new(key, field, reason);
    let condition = match value {
        Yaml::Sequence(items) => Condition::Equals(values(items, "").map_err(|(f, r)| fail(f, r))?),
        Yaml::Mapping(map) => operator(map).map_err(|(f, r)| fail(f, r))?,
        v => Condition::Equals(Box::new([scalar(v).map_err(|r| fail(String::new(), r))?])),
    };
    Ok(ClaimMatcher::new(key, condition))
}

type Failure = (String, ConditionReason);

fn operator(map: &serde_yaml::Mapping) -> Result<Condition, Failure> {
    let mut found: Vec<(&str, &Yaml)> = Vec::new();
    for (k, v) in map {
        match k.as_str() {
            Some(op) if OPERATORS.contains(&op) => found.push((op, v)),
            Some(op) => return Err((op.into(), ConditionReason::UnknownOperator(op.into()))),
            None => {
                let shown = serde_yaml::to_string(k).unwrap_or_default();
                let shown = shown.trim().to_owned();
                return Err((String::new(), ConditionReason::UnknownOperator(shown)));
            }
        }
    }
    let (op, v) = match found.as_slice() {
        [] => return Err((String::new(), ConditionReason::NoOperator)),
        [one] => *one,
        [(first, _), (second, _), ..] => {
            let names = found.iter().map(|(op, _)| *op).collect::<Vec<_>>();
            // Name `not` first when it is one of them: the combination most often meant as
            // "this but not that", which needs two claims or a pattern.
            let names = if names.contains(&"not") {
                format!(
                    "not and {}",
                    names.iter().find(|n| **n != "not").unwrap_or(first)
                )
            } else {
                format!("{first} and {second}")
            };
            return Err((second.to_string(), ConditionReason::Combined(names)));
        }
    };
    let at = |field: String| {
        if field.is_empty() {
            op.to_owned()
        } else {
            format!("{op}{field}")
        }
    };
    let wrap = |(f, r): Failure| (at(f), r);
    Ok(match op {
        "like" => Condition::Like(patterns(v).map_err(wrap)?),
        "not_like" => Condition::NotLike(patterns(v).map_err(wrap)?),
        "not" => match v {
            Yaml::Sequence(items) => Condition::Not(values(items, "").map_err(wrap)?),
            v => Condition::Not(Box::new([scalar(v).map_err(|r| (op.to_owned(), r))?])),
        },
        _ => match v {
            Yaml::Bool(b) => Condition::Present(*b),
            _ => return Err((op.to_owned(), ConditionReason::NotABool)),
        },
    })
}

fn values(items: &[Yaml], prefix: &str) -> Result<Box<[ClaimValue]>, Failure> {
    if items.is_empty() {
        return Err((prefix.into(), ConditionReason::EmptyList));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, v)| scalar(v).map_err(|r| (format!("{prefix}[{i}]"), r)))
        .collect()
}

fn patterns(v: &Yaml) -> Result<Box<[Pattern]>, Failure> {
    let one = |v: &Yaml, field: String| match v {
        Yaml::String(s) => Pattern::compile(s).map_err(|e| (field, e.into())),
        _ => Err((field, ConditionReason::NotAPattern)),
    };
    match v {
        Yaml::Sequence(items) if items.is_empty() => {
            Err((String::new(), ConditionReason::EmptyList))
        }
        Yaml::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| one(v, format!("[{i}]")))
            .collect(),
        v => Ok(Box::new([one(v, String::new())?])),
    }
}

fn scalar(v: &Yaml) -> Result<ClaimValue, ConditionReason> {
    match v {
        Yaml::String(s) => Ok(ClaimValue::Str(s.as_str().into())),
        Yaml::Bool(b) => Ok(ClaimValue::Bool(*b)),
        Yaml::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Ok(ClaimValue::Int(i.into())),
            (None, Some(u), _) => Ok(ClaimValue::Int(u.into())),
            (None, None, Some(f)) if f.is_finite() => Ok(ClaimValue::Float(f)),
            _ => Err(ConditionReason::BadNumber(n.to_string())),
        },
        _ => Err(ConditionReason::NotAValue),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<ClaimMatcher, ConditionError> {
        let v: Yaml = serde_yaml::from_str(yaml).expect("yaml");
        condition("sub", &v)
    }

    fn reason(yaml: &str) -> (String, ConditionReason) {
        let e = parse(yaml).expect_err(yaml);
        (e.field, e.reason)
    }

    #[test]
    fn every_form_compiles_to_its_condition() {
        let c = |y: &str| parse(y).expect(y).condition;
        assert!(matches!(c("acme/api"), Condition::Equals(v) if v.len() == 1));
        assert!(matches!(c("[a, 1, true]"), Condition::Equals(v) if v.len() == 3));
        assert!(matches!(c("{like: 'repo:*'}"), Condition::Like(p) if p.len() == 1));
        assert!(matches!(c("{like: [a*, b*]}"), Condition::Like(p) if p.len() == 2));
        assert!(matches!(c("{not: x}"), Condition::Not(v) if v.len() == 1));
        assert!(matches!(c("{not: [x, y]}"), Condition::Not(v) if v.len() == 2));
        assert!(matches!(
            c("{not_like: '*:pull_request'}"),
            Condition::NotLike(_)
        ));
        assert_eq!(c("{present: false}"), Condition::Present(false));
    }

    #[test]
    fn malformed_conditions_say_what_and_where() {
        use ConditionReason as R;
        assert_eq!(
            reason("{matches: x}"),
            ("matches".into(), R::UnknownOperator("matches".into()))
        );
        assert_eq!(reason("[]"), (String::new(), R::EmptyList));
        assert_eq!(reason("{like: []}"), ("like".into(), R::EmptyList));
        assert_eq!(reason("{not: []}"), ("not".into(), R::EmptyList));
        assert_eq!(reason("{}"), (String::new(), R::NoOperator));
        assert_eq!(
            reason("{like: 'a*', not: b}"),
            ("not".into(), R::Combined("not and like".into()))
        );
        assert_eq!(
            reason("{like: 'a*', present: true}"),
            ("present".into(), R::Combined("like and present".into()))
        );
        assert_eq!(
            reason(r"{like: [ok, 'a\b']}"),
            (
                "like[1]".into(),
                R::Pattern(PatternError::BadEscape {
                    escape: r"\b".into()
                })
            )
        );
        let stars = format!("{{like: '{}'}}", "*".repeat(17));
        assert_eq!(
            reason(&stars),
            (
                "like".into(),
                R::Pattern(PatternError::TooManyWildcards { count: 17 })
            )
        );
        let long = format!("{{not_like: '{}'}}", "a".repeat(1025));
        assert_eq!(
            reason(&long),
            (
                "not_like".into(),
                R::Pattern(PatternError::TooLong { len: 1025 })
            )
        );
        assert_eq!(
            reason("{present: yes please}"),
            ("present".into(), R::NotABool)
        );
        assert_eq!(reason("[a, [b]]"), ("[1]".into(), R::NotAValue));
        assert_eq!(reason("{like: 3}"), ("like".into(), R::NotAPattern));
        assert_eq!(reason("~"), (String::new(), R::NotAValue));
    }
}
