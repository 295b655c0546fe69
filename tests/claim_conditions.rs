//! Identity selection with conditions beyond equality (lists, `like`, `not`, `not_like`,
//! `present`), through the real gRPC server.

mod common;

use common::selection::Selector;
use serde_json::json;

const IDENTITIES: &str = r#"
- name: releases
  sso_fqn: SSO
  claims:
    repository: acme/api
    ref: [refs/heads/main, refs/heads/release]
- name: acme
  sso_fqn: SSO
  claims:
    sub: {like: "repo:acme/*"}
- name: acme-people
  sso_fqn: SSO
  claims:
    sub: {like: "repo:acme/*"}
    actor: {not: ["dependabot[bot]", "renovate[bot]"]}
    event_name: {not_like: "pull_request*"}
- name: deploy
  sso_fqn: SSO
  claims:
    sub: {like: "repo:acme/*:environment:*"}
    environment: {present: true}
- name: beta-no-env
  sso_fqn: SSO
  claims:
    sub: {like: ["repo:beta/?", "repo:beta/\\*"]}
    environment: {present: false}
- name: runs
  sso_fqn: SSO
  claims:
    run_attempt: [1, 2]
    repository: acme/runs
"#;

async fn selector() -> Selector {
    Selector::start("ci", "https://ci.test.local", "claimgate", IDENTITIES).await
}

#[tokio::test]
async fn a_list_selects_its_identity_for_any_listed_value_and_no_other() {
    let s = selector().await;
    let token = |r: &str| json!({"sub": "x", "repository": "acme/api", "ref": r});
    assert_eq!(s.select(&token("refs/heads/main")).await, "releases");
    assert_eq!(s.select(&token("refs/heads/release")).await, "releases");
    assert_eq!(s.select(&token("refs/heads/dev")).await, "deny:no_identity");
    // Numbers in a list match numbers only, however they are spelled.
    let run =
        |n: serde_json::Value| json!({"sub": "x", "repository": "acme/runs", "run_attempt": n});
    assert_eq!(s.select(&run(json!(2))).await, "runs");
    assert_eq!(s.select(&run(json!(1.0))).await, "runs");
    assert_eq!(s.select(&run(json!("2"))).await, "deny:no_identity");
    s.server.stop().await;
}

#[tokio::test]
async fn like_matches_anchored_case_sensitive_patterns() {
    let s = selector().await;
    let sub = |v: &str| json!({"sub": v});
    assert_eq!(
        s.select(&sub("repo:acme/api:ref:refs/heads/dev")).await,
        "acme"
    );
    assert_eq!(
        s.select(&sub("repo:ACME/api:ref:refs/heads/dev")).await,
        "deny:no_identity"
    );
    assert_eq!(s.select(&sub("xrepo:acme/api")).await, "deny:no_identity");
    assert_eq!(
        s.select(&sub("repo:acme-evil/api")).await,
        "deny:no_identity"
    );
    // `?` is one character; `\*` a literal star.
    assert_eq!(s.select(&sub("repo:beta/x")).await, "beta-no-env");
    assert_eq!(s.select(&sub("repo:beta/*")).await, "beta-no-env");
    assert_eq!(s.select(&sub("repo:beta/xy")).await, "deny:no_identity");
    s.server.stop().await;
}

#[tokio::test]
async fn negations_exclude_values_and_never_hold_for_a_missing_claim() {
    let s = selector().await;
    let token = |actor: Option<&str>, event: &str| {
        let mut t = json!({"sub": "repo:acme/api:ref:refs/heads/dev", "event_name": event});
        if let Some(a) = actor {
            t["actor"] = json!(a);
        }
        t
    };
    assert_eq!(s.select(&token(Some("alice"), "push")).await, "acme-people");
    assert_eq!(
        s.select(&token(Some("dependabot[bot]"), "push")).await,
        "acme"
    );
    assert_eq!(
        s.select(&token(Some("renovate[bot]"), "push")).await,
        "acme"
    );
    assert_eq!(s.select(&token(None, "push")).await, "acme");
    assert_eq!(
        s.select(&token(Some("alice"), "pull_request_target")).await,
        "acme"
    );
    let mut no_event = token(Some("alice"), "push");
    no_event.as_object_mut().map(|m| m.remove("event_name"));
    assert_eq!(s.select(&no_event).await, "acme");
    s.server.stop().await;
}

#[tokio::test]
async fn presence_is_about_the_key_and_each_condition_counts_once() {
    let s = selector().await;
    let env = json!({"sub": "repo:acme/api:environment:prod", "environment": "prod"});
    assert_eq!(s.select(&env).await, "deploy");
    // Present even when null.
    let null = json!({"sub": "repo:acme/api:environment:prod", "environment": null});
    assert_eq!(s.select(&null).await, "deploy");
    let beta = json!({"sub": "repo:beta/x", "environment": null});
    assert_eq!(s.select(&beta).await, "deny:no_identity");
    // releases and deploy both have two claims, whatever their forms: a tie.
    let both = json!({
        "sub": "repo:acme/api:environment:prod", "environment": "prod",
        "repository": "acme/api", "ref": "refs/heads/main", "actor": "dependabot[bot]",
    });
    assert_eq!(s.select(&both).await, "deny:ambiguous_identity");
    // Three conditions beat two.
    let people = json!({
        "sub": "repo:acme/api:environment:prod", "environment": "prod",
        "actor": "alice", "event_name": "push",
    });
    assert_eq!(s.select(&people).await, "acme-people");
    s.server.stop().await;
}

/// 9007199254740993 and 9007199254740992.0 are one `f64`, but not one number: an identity that
/// wants the integer is never selected by the float, through the index or the walk.
#[tokio::test]
async fn a_large_integer_claim_is_compared_exactly_never_through_a_float() {
    const BIG: &str = r#"
- name: odd
  sso_fqn: SSO
  claims:
    n: 9007199254740993
- name: even
  sso_fqn: SSO
  claims:
    n: 9007199254740992
- name: max
  sso_fqn: SSO
  claims:
    m: 18446744073709551615
"#;
    let s = Selector::start("ci", "https://ci.test.local", "claimgate", BIG).await;
    let n = |n: serde_json::Value| json!({"sub": "x", "n": n});
    assert_eq!(s.select(&n(json!(9_007_199_254_740_993_u64))).await, "odd");
    assert_eq!(s.select(&n(json!(9_007_199_254_740_992.0))).await, "even");
    assert_eq!(s.select(&n(json!(9_007_199_254_740_992_u64))).await, "even");
    let m = |m: serde_json::Value| json!({"sub": "x", "m": m});
    assert_eq!(s.select(&m(json!(u64::MAX))).await, "max");
    assert_eq!(
        s.select(&m(json!(u64::MAX as f64))).await,
        "deny:no_identity"
    );
    s.server.stop().await;
}
