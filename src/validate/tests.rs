//! The review as a whole, on small configurations written for each kind of finding.

use super::*;
use crate::config::parse_texts;
use crate::snapshot;

const SSO: &str = "sso_integrations:\n  - name: ci\n    type: oidc\n    issuer: https://idp\n    audiences: [cg]\n    jwks_file: keys.json\n";

fn review_text(text: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keys.json"), r#"{"keys":[]}"#).unwrap();
    let mut d = Vec::new();
    let cfg = parse_texts(dir.path(), &[("c.yaml".into(), text.into())], &mut d);
    assert!(d.is_empty(), "{d:?}");
    let snap = snapshot::compile(&cfg).unwrap();
    review(&cfg, &snap, None)
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
