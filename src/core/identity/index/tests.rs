use serde_json::json;

use super::*;
use crate::core::identity::{select, ClaimOutcome, Pattern};

fn ident(sso: usize, claims: &[(&str, ClaimValue)]) -> Identity {
    Identity {
        name: "id".into(),
        sso,
        claims: claims
            .iter()
            .map(|(k, v)| ClaimMatcher::exact(k, v.clone()))
            .collect(),
    }
}

fn s(v: &str) -> ClaimValue {
    ClaimValue::Str(v.into())
}

/// Records which identities selection checked.
#[derive(Default)]
struct Checked(Vec<usize>);

impl IdentityObserver for Checked {
    fn candidate(&mut self, index: usize, _identity: &Identity, _candidacy: Candidacy) {
        self.0.push(index);
    }
}

/// Records everything an exhaustive observer is told.
#[derive(Debug, Default, PartialEq)]
struct Record(Vec<String>);

impl IdentityObserver for Record {
    const EXHAUSTIVE: bool = true;

    fn claim(
        &mut self,
        index: usize,
        claim: &ClaimMatcher,
        outcome: ClaimOutcome,
        actual: Option<&Value>,
    ) {
        self.0.push(format!(
            "claim {index} {} {outcome:?} {actual:?}",
            claim.key
        ));
    }

    fn candidate(&mut self, index: usize, _identity: &Identity, candidacy: Candidacy) {
        self.0.push(format!("candidate {index} {candidacy:?}"));
    }
}

/// A thousand specific identities and a fallback, in one SSO.
fn many() -> Vec<Identity> {
    let mut ids: Vec<Identity> = (0..1000)
        .map(|i| {
            ident(
                0,
                &[
                    ("repository", s(&format!("acme/r{i}"))),
                    ("environment", s("prod")),
                ],
            )
        })
        .collect();
    ids.push(ident(0, &[]));
    ids
}

#[test]
fn a_token_that_matches_only_the_fallback_checks_only_the_fallback() {
    let ids = many();
    let index = Index::build(&ids, 1);
    let token = json!({"repository": "acme/other", "environment": "prod"});
    let mut checked = Checked::default();
    let chosen = index.select_observed(&ids, 0, &token, &mut checked);
    assert_eq!(chosen, Selection::Chosen(1000));
    assert_eq!(checked.0, [1000]);
}

#[test]
fn a_match_with_more_claims_ends_selection_before_the_fallback() {
    let ids = many();
    let index = Index::build(&ids, 1);
    let token = json!({"repository": "acme/r7", "environment": "prod"});
    let mut checked = Checked::default();
    let chosen = index.select_observed(&ids, 0, &token, &mut checked);
    assert_eq!(chosen, Selection::Chosen(7));
    assert_eq!(checked.0, [7]);
}

#[test]
fn each_identity_is_anchored_at_its_rarest_condition() {
    // `environment: prod` is shared by all; the repository is what sets them apart.
    let ids = many();
    let index = Index::build(&ids, 1);
    let token = json!({"repository": "acme/other", "environment": "prod"});
    assert_eq!(index.ssos[0].places.len(), 1);
    assert!(index.ssos[0].places[0].find(&token["repository"]).is_none());
    assert!(index.ssos[0].places[0].find(&json!("acme/r3")).is_some());
}

#[test]
fn a_value_repeated_in_a_token_array_checks_its_identities_once() {
    // Twenty groups, each the rarest condition of one identity that also needs prod.
    let mut ids: Vec<Identity> = (0..20)
        .map(|i| ident(0, &[("groups", s(&format!("g{i}"))), ("env", s("prod"))]))
        .collect();
    ids.extend((0..30).map(|_| ident(0, &[("env", s("prod"))])));
    let index = Index::build(&ids, 1);
    let groups: Vec<String> = (0..3)
        .flat_map(|_| (0..20).map(|i| format!("g{i}")))
        .collect();
    let token = json!({"groups": groups, "env": "dev"});
    let mut checked = Checked::default();
    let chosen = index.select_observed(&ids, 0, &token, &mut checked);
    assert_eq!(chosen, Selection::NoIdentity);
    checked.0.sort_unstable();
    assert_eq!(checked.0, (0..20).collect::<Vec<_>>());
}

#[test]
fn numbers_are_one_key_however_they_are_spelled() {
    let ids = vec![
        ident(0, &[("run", ClaimValue::Int(1))]),
        ident(1, &[("run", ClaimValue::Float(1.0))]),
        ident(2, &[("run", ClaimValue::Int(0))]),
        ident(3, &[("run", s("1"))]),
        ident(4, &[("run", ClaimValue::Bool(true))]),
    ];
    let index = Index::build(&ids, 5);
    let pick = |sso, token: Value| index.select(&ids, sso, &token);
    assert_eq!(pick(0, json!({"run": 1.0})), Selection::Chosen(0));
    assert_eq!(pick(1, json!({"run": [2, 1]})), Selection::Chosen(1));
    assert_eq!(pick(2, json!({"run": -0.0})), Selection::Chosen(2));
    assert_eq!(pick(3, json!({"run": 1})), Selection::NoIdentity);
    assert_eq!(pick(3, json!({"run": "1"})), Selection::Chosen(3));
    assert_eq!(pick(4, json!({"run": "true"})), Selection::NoIdentity);
    assert_eq!(pick(4, json!({"run": [true]})), Selection::Chosen(4));
}

#[test]
fn integers_that_round_to_one_float_share_a_key_but_select_exactly() {
    let ids = vec![
        ident(0, &[("n", ClaimValue::Int(9_007_199_254_740_993))]),
        ident(0, &[("n", ClaimValue::Int(9_007_199_254_740_992))]),
        ident(1, &[("n", ClaimValue::Int(u64::MAX.into()))]),
    ];
    let index = Index::build(&ids, 2);
    let pick = |sso, token: Value| index.select(&ids, sso, &token);
    let walk = |sso, token: Value| {
        let of_sso: Vec<usize> = (0..ids.len()).filter(|&i| ids[i].sso == sso).collect();
        select(&ids, &of_sso, &token)
    };
    for (sso, token, expected) in [
        (
            0,
            json!({"n": 9_007_199_254_740_993_u64}),
            Selection::Chosen(0),
        ),
        (
            0,
            json!({"n": 9_007_199_254_740_992.0}),
            Selection::Chosen(1),
        ),
        (
            0,
            json!({"n": 9_007_199_254_740_992_u64}),
            Selection::Chosen(1),
        ),
        (1, json!({"n": u64::MAX}), Selection::Chosen(2)),
        (1, json!({"n": u64::MAX as f64}), Selection::NoIdentity),
    ] {
        assert_eq!(pick(sso, token.clone()), expected, "{token}");
        assert_eq!(walk(sso, token.clone()), expected, "{token}");
    }
}

#[test]
fn pointers_reach_escaped_names_and_array_elements_as_the_walk_does() {
    let ids = vec![
        ident(0, &[("/a~1b/0", s("x"))]),
        ident(1, &[("/l/01", s("x"))]),
        ident(2, &[("a/b", s("y"))]),
    ];
    let index = Index::build(&ids, 3);
    let pick = |sso, token: Value| index.select(&ids, sso, &token);
    assert_eq!(pick(0, json!({"a/b": ["x"]})), Selection::Chosen(0));
    assert_eq!(pick(0, json!({"a/b": {"0": "x"}})), Selection::Chosen(0));
    assert_eq!(pick(0, json!({"a": {"b": ["x"]}})), Selection::NoIdentity);
    // "01" is not an array index, only an object key.
    assert_eq!(pick(1, json!({"l": ["y", "x"]})), Selection::NoIdentity);
    assert_eq!(pick(1, json!({"l": {"01": "x"}})), Selection::Chosen(1));
    assert_eq!(pick(2, json!({"a/b": "y"})), Selection::Chosen(2));
}

#[test]
fn ties_name_the_same_two_identities_as_the_walk() {
    let ids = vec![
        ident(0, &[]),
        ident(0, &[("b", s("2"))]),
        ident(0, &[("a", s("1"))]),
        ident(0, &[("c", s("3"))]),
    ];
    let index = Index::build(&ids, 1);
    let token = json!({"a": "1", "b": "2", "c": "3"});
    assert_eq!(index.select(&ids, 0, &token), Selection::Ambiguous(1, 2));
    assert_eq!(
        select(&ids, index.order(0), &token),
        Selection::Ambiguous(1, 2)
    );
}

#[test]
fn walk_order_is_most_claims_first_then_configuration_order() {
    let ids = vec![
        ident(0, &[]),
        ident(1, &[("a", s("1"))]),
        ident(0, &[("a", s("1"))]),
        ident(0, &[("a", s("1")), ("b", s("2"))]),
        ident(0, &[("b", s("2"))]),
        ident(7, &[]),
    ];
    let index = Index::build(&ids, 2);
    assert_eq!(index.order(0), [3, 2, 4, 0]);
    assert_eq!(index.order(1), [1]);
    assert!(index.order(2).is_empty());
    assert_eq!(
        index.select(&ids, 2, &json!({})),
        Selection::NoIdentity,
        "an SSO without identities selects none"
    );
}

#[test]
fn an_exhaustive_observer_is_told_the_whole_walk() {
    let ids = many();
    let index = Index::build(&ids, 1);
    let token = json!({"repository": "acme/r7", "environment": "prod"});
    let mut indexed = Record::default();
    let mut walked = Record::default();
    let a = index.select_observed(&ids, 0, &token, &mut indexed);
    let b = crate::core::identity::select_observed(&ids, index.order(0), &token, &mut walked);
    assert_eq!(a, b);
    assert_eq!(indexed, walked);
    let candidates = indexed.0.iter().filter(|l| l.starts_with("candidate"));
    assert_eq!(candidates.count(), 1001);
}

mod property {
    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;

    use super::*;

    /// Claim places from a small alphabet, so that identities share them and tokens hit
    /// them: top-level names, pointers to the same names, nested places, escapes, array
    /// elements and a segment that is only an object key ("01"). A few are common, so that
    /// identities share anchors.
    fn claim_key() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            3 => prop::sample::select(vec!["a", "/a", "b"]),
            2 => prop::sample::select(vec![
                "a", "b", "x/y", "0", "/a", "/b", "/x~1y", "/n/a", "/n/l/0", "/l/0", "/l/1",
                "/l/01", "/0",
            ]),
        ]
    }

    /// Values where spelling matters: `1` vs `1.0` vs `"1"`, `0` vs `-0.0`, integers that
    /// `f64` cannot tell apart, and the largest integers.
    fn claim_value() -> impl Strategy<Value = ClaimValue> {
        let common = prop::sample::select(vec![
            ClaimValue::Str("a".into()),
            ClaimValue::Int(1),
            ClaimValue::Float(1.0),
            ClaimValue::Bool(true),
        ]);
        let any = prop::sample::select(vec![
            ClaimValue::Str("a".into()),
            ClaimValue::Str("b".into()),
            ClaimValue::Str("1".into()),
            ClaimValue::Int(0),
            ClaimValue::Int(1),
            ClaimValue::Int(-1),
            ClaimValue::Int(9_007_199_254_740_993),
            ClaimValue::Int(i64::MAX.into()),
            ClaimValue::Int(u64::MAX.into()),
            ClaimValue::Float(1.0),
            ClaimValue::Float(1.5),
            ClaimValue::Float(0.0),
            ClaimValue::Float(-0.0),
            ClaimValue::Float(9_007_199_254_740_992.0),
            ClaimValue::Float(18_446_744_073_709_551_615.0),
            ClaimValue::Bool(true),
            ClaimValue::Bool(false),
        ]);
        prop_oneof![3 => common, 2 => any]
    }

    /// Mostly exact values (the indexed forms), and every other form.
    fn condition() -> impl Strategy<Value = Condition> {
        let pattern = prop::sample::select(vec!["a", "*", "?", "a*", "1*", "*b"])
            .prop_map(|p| Pattern::compile(p).expect("valid"));
        prop_oneof![
            6 => claim_value().prop_map(|v| Condition::Equals(Box::new([v]))),
            2 => vec(claim_value(), 1..4).prop_map(|vs| Condition::Equals(vs.into())),
            1 => vec(pattern.clone(), 1..3).prop_map(|ps| Condition::Like(ps.into())),
            1 => vec(claim_value(), 1..3).prop_map(|vs| Condition::Not(vs.into())),
            1 => vec(pattern, 1..3).prop_map(|ps| Condition::NotLike(ps.into())),
            1 => any::<bool>().prop_map(Condition::Present),
        ]
    }

    /// A value the condition holds for, when there is an obvious one.
    fn satisfying(condition: &Condition, pick: usize) -> Option<Value> {
        match condition {
            Condition::Equals(vs) => vs.get(pick % vs.len()).map(ClaimValue::to_json),
            Condition::Like(ps) => ps.get(pick % ps.len()).map(|p| json!(p.sample(pick))),
            _ => None,
        }
    }

    fn identities() -> impl Strategy<Value = Vec<Identity>> {
        let one = (0..3usize, vec((claim_key(), condition()), 0..4));
        vec(one, 0..40).prop_map(|list| {
            list.into_iter()
                .enumerate()
                .map(|(n, (sso, claims))| {
                    let mut id = ident(sso, &[]);
                    id.name = format!("id-{n}").into();
                    id.claims = claims
                        .into_iter()
                        .map(|(k, c)| ClaimMatcher::new(k, c))
                        .collect();
                    id
                })
                .collect()
        })
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop::sample::select(vec![
            json!("a"),
            json!("b"),
            json!("1"),
            json!(0),
            json!(1),
            json!(-1),
            json!(1.0),
            json!(1.5),
            json!(0.0),
            json!(-0.0),
            json!(9_007_199_254_740_993_i64),
            json!(9_007_199_254_740_992.0),
            json!(i64::MAX),
            json!(u64::MAX),
            json!(true),
            json!(false),
            Value::Null,
        ])
    }

    fn member() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["a", "b", "x/y", "n", "l", "0", "01"]).prop_map(String::from)
    }

    fn payload() -> impl Strategy<Value = Value> {
        let value = scalar().prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..5).prop_map(Value::Array),
                btree_map(member(), inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        });
        btree_map(member(), value, 0..6).prop_map(|m| Value::Object(m.into_iter().collect()))
    }

    /// Write `value` at `segments`, making objects on the way where needed.
    fn put(target: &mut Value, segments: &[String], value: Value) {
        let Some((first, rest)) = segments.split_first() else {
            *target = value;
            return;
        };
        match target {
            Value::Object(map) => {
                let slot = map.entry(first.clone()).or_insert(Value::Null);
                put(slot, rest, value);
            }
            Value::Array(list) => {
                if let Some(slot) = first.parse().ok().and_then(|i: usize| list.get_mut(i)) {
                    put(slot, rest, value);
                }
            }
            other => {
                *other = Value::Object(Default::default());
                put(other, segments, value);
            }
        }
    }

    /// Identities, and a token that carries the claims of some of them (as the value, or
    /// inside an array) over random noise: so that matches, wins and ties are common.
    fn identities_and_token() -> impl Strategy<Value = (Vec<Identity>, Value)> {
        (identities(), payload(), vec((0..3u8, scalar()), 40)).prop_map(|(ids, mut token, how)| {
            for (id, (how, extra)) in ids.iter().zip(how) {
                for claim in id.claims.iter() {
                    let segments: Vec<String> = claim
                        .path
                        .pointer()
                        .split('/')
                        .skip(1)
                        .map(|s| s.replace("~1", "/").replace("~0", "~"))
                        .collect();
                    let Some(wanted) = satisfying(&claim.condition, how as usize) else {
                        if how == 2 {
                            put(&mut token, &segments, extra.clone());
                        }
                        continue;
                    };
                    let value = match how {
                        0 => continue,
                        1 => wanted,
                        _ => json!([extra, wanted]),
                    };
                    put(&mut token, &segments, value);
                }
            }
            (ids, token)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn indexed_selection_is_the_walks_selection((ids, token) in identities_and_token()) {
            let index = Index::build(&ids, 4);
            for sso in 0..4 {
                let mut order: Vec<usize> = (0..ids.len()).filter(|&i| ids[i].sso == sso).collect();
                order.sort_by_key(|&i| std::cmp::Reverse(ids[i].claims.len()));
                prop_assert_eq!(index.order(sso), &order[..]);
                let walked = select(&ids, &order, &token);
                prop_assert_eq!(index.select(&ids, sso, &token), walked);
                let mut checked = Checked::default();
                prop_assert_eq!(index.select_observed(&ids, sso, &token, &mut checked), walked);
                let mut indexed = Record::default();
                let mut walk = Record::default();
                index.select_observed(&ids, sso, &token, &mut indexed);
                crate::core::identity::select_observed(&ids, &order, &token, &mut walk);
                prop_assert_eq!(indexed, walk);
            }
        }
    }
}

#[test]
fn a_list_anchors_its_identity_at_each_value_and_a_pattern_is_always_checked() {
    let mut ids: Vec<Identity> = (0..100)
        .map(|i| ident(0, &[("repository", s(&format!("acme/r{i}")))]))
        .collect();
    let mut list = ident(0, &[]);
    list.claims = Box::new([ClaimMatcher::new(
        "ref",
        Condition::Equals(Box::new([s("main"), s("release")])),
    )]);
    ids.push(list);
    let mut like = ident(0, &[]);
    let pattern = Pattern::compile("repo:*").expect("valid");
    like.claims = Box::new([ClaimMatcher::new(
        "sub",
        Condition::Like(Box::new([pattern])),
    )]);
    ids.push(like);
    let index = Index::build(&ids, 1);
    let pick = |token: Value| {
        let mut checked = Checked::default();
        let chosen = index.select_observed(&ids, 0, &token, &mut checked);
        (chosen, checked.0)
    };
    let token = json!({"repository": "acme/none", "ref": "release", "sub": "x"});
    assert_eq!(pick(token), (Selection::Chosen(100), vec![100, 101]));
    let token = json!({"repository": "acme/r5", "ref": ["dev", "main"], "sub": "x"});
    assert_eq!(pick(token), (Selection::Ambiguous(5, 100), vec![5, 100]));
    let token = json!({"repository": "acme/none", "ref": "dev", "sub": "repo:a"});
    assert_eq!(pick(token), (Selection::Chosen(101), vec![101]));
}
