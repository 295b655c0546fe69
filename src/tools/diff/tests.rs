//! Unit tests of the diff's parts: comparing conditions, and the requests a route stands for.

use super::claims::{same_claims, Exclusions};
use super::routes;
use crate::core::identity::{ClaimMatcher, ClaimValue, Condition, Identity, Pattern};
use crate::core::role::Role;
use crate::core::routing::{Route, RouteSource, Router};

fn ident(name: &str, claims: &[(&str, &str)]) -> Identity {
    Identity {
        name: name.into(),
        sso: 0,
        claims: claims
            .iter()
            .map(|(k, v)| ClaimMatcher::exact(k, ClaimValue::Str((*v).into())))
            .collect(),
    }
}

#[test]
fn identities_could_both_match_unless_a_shared_claim_tells_them_apart() {
    let a = ident("a", &[("repository", "acme/api"), ("environment", "prod")]);
    let b = ident("b", &[("repository", "acme/web"), ("environment", "prod")]);
    let c = ident("c", &[("/environment", "prod"), ("ref", "main")]);
    let d = ident("d", &[("actor", "octocat")]);
    let mut ex = Exclusions::default();
    let [ca, cb, cc, cd] = [&a, &b, &c, &d].map(|i| ex.conditions(i));
    assert!(!ex.could_both_match(&ca, &cb));
    assert!(ex.could_both_match(&ca, &cc), "/environment is environment");
    assert!(ex.could_both_match(&cb, &cd));
    // Asked again, from the cache.
    assert!(!ex.could_both_match(&cb, &ca));
    assert_eq!(ca.len(), 2);
}

#[test]
fn claims_written_in_another_order_or_spelling_are_the_same_claims() {
    let a = ident("a", &[("repository", "acme/api"), ("environment", "prod")]);
    let b = ident("a", &[("environment", "prod"), ("/repository", "acme/api")]);
    let c = ident("a", &[("environment", "prod"), ("repository", "acme/web")]);
    assert!(same_claims(&a, &b));
    assert!(!same_claims(&a, &c));
}

fn with(name: &str, claims: Vec<ClaimMatcher>) -> Identity {
    Identity {
        name: name.into(),
        sso: 0,
        claims: claims.into(),
    }
}

fn s(v: &str) -> ClaimValue {
    ClaimValue::Str(v.into())
}

#[test]
fn every_form_of_condition_is_compared_and_shown_through_the_same_functions() {
    let like = |p: &str| Condition::Like(Box::new([Pattern::compile(p).unwrap()]));
    let acme = with("acme", vec![ClaimMatcher::new("sub", like("repo:acme/*"))]);
    let other = with("other", vec![ClaimMatcher::exact("sub", s("repo:other/x"))]);
    let not_api = with(
        "not-api",
        vec![ClaimMatcher::new(
            "sub",
            Condition::Not(Box::new([s("repo:acme/api")])),
        )],
    );
    let mut ex = Exclusions::default();
    let [a, o, n] = [&acme, &other, &not_api].map(|i| ex.conditions(i));
    assert!(
        !ex.could_both_match(&a, &o),
        "the pattern cannot match repo:other/x"
    );
    assert!(ex.could_both_match(&a, &n), "repo:acme/web meets both");
    // A list in another order is the same condition; its JSON is the list as written.
    let ab = with(
        "x",
        vec![ClaimMatcher::new(
            "ref",
            Condition::Equals(Box::new([s("a"), s("b")])),
        )],
    );
    let ba = with(
        "x",
        vec![ClaimMatcher::new(
            "ref",
            Condition::Equals(Box::new([s("b"), s("a")])),
        )],
    );
    assert!(same_claims(&ab, &ba));
    assert_eq!(
        super::claims::condition(&acme.claims[0]),
        serde_json::json!({"like": "repo:acme/*"})
    );
}

fn route(path: &str, methods: Option<&[String]>, role: Role) -> Route {
    Route::compile(&RouteSource {
        path: Some(path),
        methods,
        resource: Some("thing:{name}"),
        role: Some(role),
        ..RouteSource::default()
    })
    .unwrap()
}

#[test]
fn a_route_shadowed_by_a_new_earlier_route_changes_only_for_the_requests_it_loses() {
    let get = ["GET".to_owned()];
    let base = Router::new(vec![route("/things/{name}", None, Role::Viewer)]);
    let new = Router::new(vec![
        route("/things/{name}", Some(&get), Role::Manager),
        route("/things/{name}", None, Role::Viewer),
    ]);
    let mut out = Vec::new();
    routes::routes(&base, &new, &mut out);
    assert_eq!(out.len(), 1, "{out:?}");
    let json = serde_json::to_value(&out[0]).unwrap();
    assert_eq!(json["methods"], serde_json::json!(["GET"]));
    assert_eq!(json["was"]["role"], "viewer");
    assert_eq!(json["now"]["role"], "manager");
    assert_eq!(json["now"]["resource"], "thing:{name}");
    let mut none = Vec::new();
    routes::routes(&new, &new, &mut none);
    assert!(none.is_empty());
}
