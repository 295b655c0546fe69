//! Unit tests of the diff's parts: comparing conditions, and the requests a route stands for.

use super::claims::{same_claims, Exclusions};
use super::routes;
use crate::identity::{ClaimMatcher, ClaimPath, ClaimValue, Identity};
use crate::role::Role;
use crate::routing::{Route, RouteSource, Router};

fn ident(name: &str, claims: &[(&str, &str)]) -> Identity {
    Identity {
        name: name.into(),
        sso: 0,
        claims: claims
            .iter()
            .map(|(k, v)| ClaimMatcher {
                key: (*k).into(),
                path: if k.starts_with('/') {
                    ClaimPath::Pointer((*k).into())
                } else {
                    ClaimPath::Top((*k).into())
                },
                value: ClaimValue::Str((*v).into()),
            })
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
