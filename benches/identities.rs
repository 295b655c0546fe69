//! Identity selection for a token that matches only the fallback identity (the worst case:
//! every specific identity is a near miss) among 10 and 100,000 identities of one SSO, through
//! the index and, for reference, through the walk over every identity. Also 1,000 identities
//! of one SSO written with `like` patterns on `sub` (which no index can narrow: every one is
//! checked), and the cost of building the index for the reload bench's 10,000 identities.
//! Run: `cargo bench --bench identities`.
//!
//! Prints `index 100000/10`, the ratio of the two indexed selections measured in interleaved
//! rounds (the figure BENCHMARKS.md reports; the target is at most 1.5).

use std::hint::black_box;
use std::time::{Duration, Instant};

use claimgate::core::identity::{
    self, ClaimMatcher, ClaimValue, Condition, Identity, Index, Pattern, Selection,
};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};

fn claim(key: &str, value: String) -> ClaimMatcher {
    ClaimMatcher::exact(key, ClaimValue::Str(value.into()))
}

/// `n` identities of one SSO: `n - 1` specific ones (repository and environment, as CI
/// identities are written) and the fallback, last, with no claims.
fn identities(n: usize) -> Vec<Identity> {
    let mut ids: Vec<Identity> = (0..n - 1)
        .map(|i| Identity {
            name: format!("id-{i}").into(),
            sso: 0,
            claims: Box::new([
                claim("repository", format!("acme/repo-{i}")),
                claim("environment", format!("env-{}", i % 7)),
            ]),
        })
        .collect();
    ids.push(Identity {
        name: "any".into(),
        sso: 0,
        claims: Box::new([]),
    });
    ids
}

/// `n` identities of one SSO: `n - 1` owner-wide ones by pattern, one per repository
/// (`sub: {like: "repo:acme/repo-I:*"}`, as AWS and Vault users write them), and the fallback.
fn like_identities(n: usize) -> Vec<Identity> {
    let mut ids: Vec<Identity> = (0..n - 1)
        .map(|i| {
            let pattern = Pattern::compile(&format!("repo:acme/repo-{i}:*")).expect("valid");
            Identity {
                name: format!("like-{i}").into(),
                sso: 0,
                claims: Box::new([ClaimMatcher::new(
                    "sub",
                    Condition::Like(Box::new([pattern])),
                )]),
            }
        })
        .collect();
    ids.push(Identity {
        name: "any".into(),
        sso: 0,
        claims: Box::new([]),
    });
    ids
}

/// A GitHub Actions token's claims for a repository no identity names: only the fallback
/// matches, and every specific identity shares its environment.
fn fallback_only_token() -> Value {
    json!({
        "iss": "https://token.actions.githubusercontent.com",
        "aud": "claimgate",
        "sub": "repo:acme/unlisted:environment:env-1",
        "repository": "acme/unlisted",
        "repository_owner": "acme",
        "environment": "env-1",
        "ref": "refs/heads/main",
        "sha": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        "actor": "octocat",
        "workflow": "deploy",
        "run_id": "9876543210",
        "run_attempt": "1",
        "event_name": "push",
        "iat": 1_764_000_000u64,
        "exp": 1_764_003_600u64,
    })
}

struct Case {
    ids: Vec<Identity>,
    index: Index,
}

impl Case {
    fn new(n: usize) -> Case {
        Case::of(identities(n))
    }

    fn of(ids: Vec<Identity>) -> Case {
        let index = Index::build(&ids, 1);
        Case { ids, index }
    }

    fn indexed(&self, token: &Value) -> Selection {
        self.index.select(&self.ids, 0, token)
    }

    fn walked(&self, token: &Value) -> Selection {
        identity::select(&self.ids, self.index.order(0), token)
    }
}

/// Median time of one indexed selection per case, over interleaved rounds.
fn interleaved_medians(cases: &[&Case], token: &Value) -> Vec<Duration> {
    const ROUNDS: usize = 31;
    const PER_ROUND: u32 = 20_000;
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(ROUNDS); cases.len()];
    for _ in 0..ROUNDS {
        for (case, out) in cases.iter().zip(&mut times) {
            let start = Instant::now();
            for _ in 0..PER_ROUND {
                black_box(case.indexed(black_box(token)));
            }
            out.push(start.elapsed() / PER_ROUND);
        }
    }
    times
        .into_iter()
        .map(|mut t| {
            t.sort();
            t[t.len() / 2]
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let token = fallback_only_token();
    let small = Case::new(10);
    let large = Case::new(100_000);
    let like = Case::of(like_identities(1_000));
    for case in [&small, &large, &like] {
        let fallback = case.ids.len() - 1;
        assert_eq!(case.indexed(&token), Selection::Chosen(fallback));
        assert_eq!(case.walked(&token), Selection::Chosen(fallback));
    }

    let mut g = c.benchmark_group("identities");
    g.bench_function("index/10", |b| b.iter(|| small.indexed(black_box(&token))));
    g.bench_function("index/100000", |b| {
        b.iter(|| large.indexed(black_box(&token)))
    });
    g.bench_function("like/1000", |b| b.iter(|| like.indexed(black_box(&token))));
    // A token of one of those repositories: the matching pattern and every other one checked.
    let mut like_hit = token.clone();
    like_hit["sub"] = json!("repo:acme/repo-500:environment:env-1");
    assert_eq!(like.indexed(&like_hit), Selection::Chosen(500));
    g.bench_function("like/1000_hit", |b| {
        b.iter(|| like.indexed(black_box(&like_hit)))
    });
    g.bench_function("walk/10", |b| b.iter(|| small.walked(black_box(&token))));
    g.bench_function("walk/100000", |b| {
        b.iter(|| large.walked(black_box(&token)))
    });
    g.finish();

    // The reload bench's identities: what compiling the index adds to a reload.
    let reload_shaped = identities(10_001);
    let mut g = c.benchmark_group("index_build");
    g.sample_size(10);
    g.bench_function("10000_identities_2_claims", |b| {
        b.iter(|| Index::build(black_box(&reload_shaped), 1))
    });
    g.finish();

    let medians = interleaved_medians(&[&small, &large], &token);
    eprintln!(
        "identities: index/10 {:?}, index/100000 {:?}: index 100000/10 = {:.2} (target <= 1.5)",
        medians[0],
        medians[1],
        medians[1].as_secs_f64() / medians[0].as_secs_f64()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
