//! Heap allocations on the request path, counted by a counting global allocator (`dhat` in
//! testing mode): a warm decision (token already in the cache) allocates nothing, whether the
//! resource comes from a literal route, a templated route or Envoy's context_extensions, and
//! neither does a whole warm check, from the request's bytes to the answer's; nor a decision
//! whose grant comes from a team on an ancestor of the resource.
//! Identity selection allocates nothing, whatever the form of its conditions.
//!
//! One test function: the counter is process-wide, so nothing else may run beside it.

mod common;

use std::sync::Arc;

use claimgate::core::decision::{Allow, Credentials, Decision, Request};
use claimgate::core::identity::{
    ClaimMatcher, ClaimValue, Condition, Identity, Index, Pattern, Selection,
};
use claimgate::core::pipeline;
use claimgate::core::token_cache::TokenCache;
use claimgate::server::metrics::Metrics;
use claimgate::server::service::CheckService;
use common::*;
use serde_json::json;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Allocations (blocks) made while `f` runs `n` times.
fn blocks<R>(n: u64, mut f: impl FnMut() -> R) -> u64 {
    let before = dhat::HeapStats::get().total_blocks;
    for _ in 0..n {
        std::hint::black_box(f());
    }
    dhat::HeapStats::get().total_blocks - before
}

/// Identities of two SSOs with every form of condition, their index, and a token payload:
/// SSO 0 is decided by exact values (a list and a JSON Pointer), SSO 1 by patterns.
fn conditions() -> (Vec<Identity>, Index, serde_json::Value) {
    let like = |p: &str| Condition::Like(Box::new([Pattern::compile(p).unwrap()]));
    let strs = |vs: &[&str]| -> Box<[ClaimValue]> {
        vs.iter().map(|v| ClaimValue::Str((*v).into())).collect()
    };
    let identity = |sso: usize, claims: Vec<ClaimMatcher>| Identity {
        name: "id".into(),
        sso,
        claims: claims.into(),
    };
    let ids = vec![
        identity(
            0,
            vec![
                ClaimMatcher::new("ref", Condition::Equals(strs(&["refs/heads/main", "x"]))),
                ClaimMatcher::new(
                    "/kubernetes.io/namespace",
                    Condition::Equals(strs(&["prod"])),
                ),
            ],
        ),
        identity(
            0,
            vec![ClaimMatcher::new(
                "repository",
                Condition::Equals(strs(&["acme/api"])),
            )],
        ),
        identity(
            1,
            vec![
                ClaimMatcher::new("sub", like("repo:acme/*:ref:*")),
                ClaimMatcher::new("actor", Condition::Not(strs(&["dependabot[bot]"]))),
                ClaimMatcher::new(
                    "event_name",
                    Condition::NotLike(Box::new([Pattern::compile("pull_request*").unwrap()])),
                ),
                ClaimMatcher::new("environment", Condition::Present(false)),
            ],
        ),
        identity(1, vec![ClaimMatcher::new("sub", like("repo:*"))]),
    ];
    let index = Index::build(&ids, 2);
    let payload = json!({
        "sub": "repo:acme/api:ref:refs/heads/main", "repository": "acme/api",
        "ref": "refs/heads/main", "actor": "octocat", "event_name": "push",
        "kubernetes.io": {"namespace": "prod"},
    });
    (ids, index, payload)
}

#[test]
fn a_warm_decision_allocates_nothing_and_a_warm_check_little() {
    let _profiler = dhat::Profiler::builder().testing().build();

    let key = TestKey::generate(Kind::Rs256, "k1");
    let dir = ConfigDir::new();
    dir.write("jwks.json", &jwks(&[&key]));
    dir.write(
        "config.yaml",
        &format!(
            "{}{FIXTURE_IDENTITIES}{FIXTURE_RESOURCES}{FIXTURE_ROUTES}",
            sso_yaml("[RS256]")
        ),
    );
    dir.write("hierarchy.yaml", FIXTURE_HIERARCHY);
    let snap = Arc::new(claimgate::core::load::load(dir.path()).unwrap().snapshot);
    let token = key.sign(&claims(
        "repo:acme/api:ref:refs/heads/main",
        json!({"repository": "acme/api", "environment": "prod"}),
    ));
    let cache = TokenCache::new(1024, Metrics::new());
    let now = now();
    let bearer = Credentials::Bearer(&token);
    let cases = [
        (
            "templated route",
            Request {
                method: "POST",
                path: "/v1/models/acme/llama/generate?stream=true",
                host: "api.example.com",
                credentials: bearer,
                ext_resource: None,
                ext_role: None,
                ext_enforcement: None,
                ext_parent: None,
            },
        ),
        (
            "literal route",
            Request {
                method: "GET",
                path: "/v1/admin/users",
                host: "api.example.com",
                credentials: bearer,
                ext_resource: None,
                ext_role: None,
                ext_enforcement: None,
                ext_parent: None,
            },
        ),
        (
            "context_extensions",
            Request {
                method: "GET",
                path: "/anything",
                host: "api.example.com",
                credentials: bearer,
                ext_resource: Some("workspace:prod"),
                ext_role: Some("viewer"),
                ext_enforcement: None,
                ext_parent: None,
            },
        ),
        (
            // api-prod holds no role on the model: its team's grant on the workspace decides.
            "team grant on an ancestor",
            Request {
                method: "POST",
                path: "/v1/models/acme/llama-70b/generate",
                host: "api.example.com",
                credentials: bearer,
                ext_resource: None,
                ext_role: None,
                ext_enforcement: None,
                ext_parent: None,
            },
        ),
    ];
    for (name, req) in &cases {
        // The first decision verifies the token and fills the cache; later ones are warm.
        let first = pipeline::decide_cached(&snap, &cache, req, now);
        assert!(
            matches!(first, Decision::Allow(Allow::Identity(_))),
            "{name}: {first:?}"
        );
        assert_eq!(first, pipeline::decide(&snap, req, now), "{name}");
        let n = blocks(1000, || pipeline::decide_cached(&snap, &cache, req, now));
        assert_eq!(n, 0, "{name}: 1000 warm decisions made {n} allocations");
    }
    // A resource that is not declared, placed by its route's parent: the allow owns the
    // resource's name, its one allocation.
    let undeclared = Request {
        path: "/v2/workspaces/prod-ml/models/new/generate",
        ..cases[0].1
    };
    let first = pipeline::decide_cached(&snap, &cache, &undeclared, now);
    assert!(
        matches!(&first, Decision::Allow(Allow::Identity(g)) if g.granted_by.inherited),
        "{first:?}"
    );
    let n = blocks(1000, || {
        pipeline::decide_cached(&snap, &cache, &undeclared, now)
    });
    assert_eq!(
        n, 1000,
        "an undeclared resource's allow: {n} allocations in 1000"
    );

    // The cold decision allocates (the payload is parsed): the counter does count.
    let cold = blocks(1, || pipeline::decide(&snap, &cases[0].1, now));
    assert!(cold > 0, "a cold decision must show allocations");

    // Identity selection itself, as a cold decision runs it after parsing: exact values,
    // lists, JSON Pointers, patterns and negations are all checked without allocating.
    let (ids, index, payload) = conditions();
    for (sso, want) in [(0, Selection::Chosen(0)), (1, Selection::Chosen(2))] {
        assert_eq!(index.select(&ids, sso, &payload), want);
        let n = blocks(1000, || index.select(&ids, sso, &payload));
        assert_eq!(n, 0, "SSO {sso}: 1000 selections made {n} allocations");
    }

    // The whole warm check, from Envoy's CheckRequest bytes to the CheckResponse bytes.
    let metrics = Metrics::new();
    let store = claimgate::core::load::install_first(
        claimgate::core::load::load(dir.path()).unwrap().snapshot,
        &metrics,
    );
    let service = CheckService::new(store, metrics, std::time::Duration::from_millis(100));
    let request = check_bearer("POST", "/v1/models/acme/llama/generate", &token);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let first = read(rt.block_on(service.check_request(&request)));
    assert_eq!(first.status, 200, "{first:?}");
    // As the gRPC codec runs it: read the request bytes in place, check, write the answer
    // into the (reused) response buffer.
    let bytes = bytes::Bytes::from(prost::Message::encode_to_vec(&request));
    let mut out = Vec::with_capacity(1024);
    let per_check = blocks(100, || {
        out.clear();
        rt.block_on(service.check_bytes(bytes.clone(), &mut out))
            .unwrap();
        out.len()
    }) / 100;
    println!("a warm check through the service: {per_check} allocations");
    assert_eq!(per_check, 0, "a warm check made {per_check} allocations");
}
