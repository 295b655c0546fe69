//! The review as a whole, on small configurations written for each kind of finding.

use super::*;
use crate::core::load;

const SSO: &str = "sso_integrations:\n  - name: ci\n    type: oidc\n    issuer: https://idp\n    audiences: [cg]\n    jwks_file: keys.json\n";

fn review_text(text: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keys.json"), r#"{"keys":[]}"#).unwrap();
    std::fs::write(dir.path().join("c.yaml"), text).unwrap();
    let loaded = load::load(dir.path()).unwrap();
    review(&loaded.config, &loaded.snapshot, None)
        .iter()
        .map(|d| d.to_string())
        .collect()
}

fn ids(list: &[(&str, &str)]) -> String {
    let mut s = format!("{SSO}external_identities:\n");
    for (name, claims) in list {
        s.push_str(&format!(
            "  - name: {name}\n    sso_fqn: ci\n    claims: {{{claims}}}\n"
        ));
    }
    s.push_str("resources:\n  - fqn: m:a\n    collaborators:\n");
    for (name, _) in list {
        s.push_str(&format!(
            "      - subject: external-identity:{name}\n        role: viewer\n"
        ));
    }
    s.push_str("routes:\n  - path: /a\n    resource: m:a\n    role: viewer\n");
    s
}

fn ties(w: &[String]) -> Vec<&String> {
    w.iter()
        .filter(|w| w.contains("ambiguous_identity"))
        .collect()
}

#[test]
fn identities_that_one_token_could_both_match_are_a_possible_tie() {
    let w = review_text(&ids(&[("a", "repo: x"), ("b", "env: prod")]));
    let t = ties(&w);
    assert_eq!(t.len(), 1, "{w:?}");
    assert!(
        t[0].contains("\"a\" (at c.yaml:8:11) and \"b\""),
        "{}",
        t[0]
    );
    assert!(t[0].contains("repo=\"x\", env=\"prod\""), "{}", t[0]);
}

#[test]
fn the_same_claim_with_different_values_is_exclusive() {
    let w = review_text(&ids(&[
        ("a", "repo: x"),
        ("b", "repo: y"),
        ("c", "/repo: z"),
        ("d", "n: 1"),
        ("e", "n: 2"),
    ]));
    // a, b, c name the same claim; d and e too; but a and d could tie.
    let t = ties(&w);
    assert_eq!(t.len(), 6, "{t:#?}");
    assert!(!t
        .iter()
        .any(|t| t.contains("\"a\" (at c.yaml:8:11) and \"b\"")));
}

#[test]
fn different_values_of_an_array_claim_can_tie() {
    // `groups: [a, b]` meets both; so does `roles: [x, y]` nested as Keycloak sends it.
    let w = review_text(&ids(&[
        ("a", "groups: a"),
        ("b", "groups: b"),
        ("c", "/realm_access/roles: x, env: prod"),
        ("d", "/realm_access/roles: {like: \"y*\"}, env: prod"),
        ("e", "/realm_access/roles: z, env: dev"),
    ]));
    let t = ties(&w);
    assert_eq!(t.len(), 2, "{t:#?}");
    assert!(
        t.iter()
            .any(|t| t.contains("\"a\" (at c.yaml:8:11) and \"b\"")
                && t.contains("groups=[\"a\",\"b\"]")),
        "{t:#?}"
    );
    assert!(
        t.iter().any(|t| t.contains("\"c\"") && t.contains("\"d\"")),
        "{t:#?}"
    );
    // A value and its negation stay exclusive, as do two values of a claim sent as one.
    let w = review_text(&ids(&[("a", "groups: a"), ("b", "groups: {not: a}")]));
    assert!(ties(&w).is_empty(), "{w:?}");
    let w = review_text(&ids(&[("a", "repository: a"), ("b", "repository: b")]));
    assert!(ties(&w).is_empty(), "{w:?}");
}

#[test]
fn a_more_specific_identity_that_covers_both_removes_the_tie() {
    let w = review_text(&ids(&[
        ("a", "repo: x"),
        ("b", "env: prod"),
        ("both", "repo: x, env: prod"),
    ]));
    assert!(ties(&w).is_empty(), "{w:?}");
}

#[test]
fn two_fallbacks_always_tie() {
    let w = review_text(&ids(&[("a", ""), ("b", "")]));
    let t = ties(&w);
    assert_eq!(t.len(), 1, "{w:?}");
    assert!(t[0].contains("both have no claims"), "{}", t[0]);
}

#[test]
fn a_route_covered_by_an_earlier_one_is_reported() {
    let text = format!(
        "{SSO}resources:\n  - fqn: m:a\nroutes:\n  - path: /v1/{{*rest}}\n    resource: m:a\n    role: viewer\n  - path: /v1/x\n    methods: [GET]\n    resource: m:a\n    role: editor\n"
    );
    let w = review_text(&text);
    assert!(
        w.iter().any(|w| w.starts_with(
            "c.yaml:13:11: warning: routes[1] is never used: routes[0] (at c.yaml:10:5)"
        )),
        "{w:#?}"
    );
}

#[test]
fn github_annotations_escape_what_would_break_them() {
    assert_eq!(gh_data("a%b\nc"), "a%25b%0Ac");
    assert_eq!(gh_property("a:b,c"), "a%3Ab%2Cc");
}

#[test]
fn a_claim_that_must_be_a_value_excludes_a_member_inside_it() {
    let w = review_text(&ids(&[("a", "/a: x"), ("b", "/a/b: y")]));
    assert!(ties(&w).is_empty(), "{w:?}");
    let w = review_text(&ids(&[("a", "/a: {like: 'x*'}"), ("b", "/a/b/c: y")]));
    assert!(ties(&w).is_empty(), "{w:?}");
    // An index may read an array that also contains the value; a negation holds for an
    // object; a missing inner claim needs nothing of the outer one.
    for (a, b) in [
        ("/a: x", "/a/0: y"),
        ("/a: {not: x}", "/a/b: y"),
        ("/a: x", "/a/b: {present: false}"),
    ] {
        let w = review_text(&ids(&[("a", a), ("b", b)]));
        assert_eq!(ties(&w).len(), 1, "{a} / {b}: {w:?}");
    }
}

#[test]
fn conditions_beyond_equality_tie_exactly_when_one_value_meets_both() {
    let exclusive = [
        ("sub: {like: 'repo:acme/*'}", "sub: {like: 'repo:other/*'}"),
        ("ref: [main, release]", "ref: dev"),
        (
            "actor: {not: 'dependabot[bot]'}",
            "actor: 'dependabot[bot]'",
        ),
        ("env: {present: false}", "env: {present: true}"),
        (
            "sub: {like: 'repo:acme/*'}",
            "sub: {not_like: 'repo:acme/*'}",
        ),
        ("sub: {like: 'a*'}", "sub: x"),
    ];
    for (a, b) in exclusive {
        let w = review_text(&ids(&[("a", a), ("b", b)]));
        assert!(ties(&w).is_empty(), "{a} / {b}: {w:?}");
    }
    let tie = [
        (
            "sub: {like: 'repo:acme/*'}",
            "sub: {like: '*:environment:prod'}",
            "sub=\"repo:acme/:environment:prod\"",
        ),
        ("ref: [main, release]", "ref: release", "ref=\"release\""),
        (
            "actor: {not: 'dependabot[bot]'}",
            "actor: alice",
            "actor=\"alice\"",
        ),
        ("env: {present: false}", "other: x", "no env, other=\"x\""),
        (
            "sub: {like: 'repo:a?'}",
            "sub: {not_like: 'repo:ab'}",
            "sub=\"repo:aa\"",
        ),
    ];
    for (a, b, example) in tie {
        let w = review_text(&ids(&[("a", a), ("b", b)]));
        let t = ties(&w);
        assert_eq!(t.len(), 1, "{a} / {b}: {w:?}");
        assert!(t[0].contains(example), "{a} / {b}: {}", t[0]);
    }
}

#[test]
fn a_thousand_exclusive_patterns_are_no_tie_and_none_is_left_unchecked() {
    let list: Vec<(String, String)> = (0..1000)
        .map(|i| (format!("p{i}"), format!("sub: {{like: 'repo:org{i}/*'}}")))
        .collect();
    let refs: Vec<(&str, &str)> = list.iter().map(|(a, b)| (&**a, &**b)).collect();
    let w = review_text(&ids(&refs));
    assert!(!w.iter().any(|w| w.contains("tie")), "{:?}", w.first());
}

#[test]
fn a_configuration_without_ssos_and_routes_is_no_configuration() {
    let warnings = review_text("resources:\n  - fqn: m:a\n");
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("c.yaml:1:1: warning: no configuration supplied")),
        "{warnings:?}"
    );
    for text in [
        SSO.to_owned(),
        "routes:\n  - path_prefix: /healthz\n    public: true\n".to_owned(),
    ] {
        let warnings = review_text(&text);
        assert!(
            !warnings.iter().any(|w| w.contains("no configuration")),
            "{text}: {warnings:?}"
        );
    }
}
