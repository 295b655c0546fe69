//! Teams and the resource hierarchy on the request path: a warm decision (token cached)
//! whose grant comes from a team on the target's 4th ancestor, against one whose grant is the
//! identity's own on the target; and the same warm decision in a configuration at scale
//! (10,000 resources in a 5-level tree, 100,000 identities, 1,000 teams) against the
//! 10-identity one. Also the scale configuration's load (read, validate, compile) time and the
//! memory its snapshot holds. Run: `cargo bench --bench hierarchy`.
//!
//! Prints `team on 4th ancestor / direct` (goal at most 1.1) and `scale rate / small rate`
//! (goal at least 0.9), each from medians of interleaved rounds, as BENCHMARKS.md reports them.

mod common;

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use claimgate::core::clock::unix_now;
use claimgate::core::decision::{Allow, Credentials, Decision, Request};
use claimgate::core::pipeline;
use claimgate::core::token_cache::TokenCache;
use claimgate::server::metrics::Metrics;
use claimgate::Snapshot;
use common::rss_bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const SSO: &str = "sso_integrations:\n  - name: ci\n    type: oidc\n    issuer: https://idp.example.com\n    audiences: [claimgate]\n    jwks_file: jwks.json\n";

/// Scale: identities, teams, resources and the tree's fan-out (1 + 10 + 100 + 1,000 + 8,889
/// resources: five levels).
const IDENTITIES: usize = 100_000;
const TEAMS: usize = 1_000;
const RESOURCES: usize = 10_000;
const FANOUT: usize = 10;

/// A loaded configuration, a token cache and the tokens of its identities.
struct Setup {
    snap: Arc<Snapshot>,
    cache: TokenCache,
    _dir: tempfile::TempDir,
}

fn load(yaml: &str, jwk: &serde_json::Value) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("jwks.json"),
        json!({"keys": [jwk]}).to_string(),
    )
    .unwrap();
    std::fs::write(dir.path().join("config.yaml"), yaml).unwrap();
    let snap = Arc::new(claimgate::core::load::load(dir.path()).unwrap().snapshot);
    Setup {
        snap,
        cache: TokenCache::new(1024, Metrics::new()),
        _dir: dir,
    }
}

fn token(encoding: &EncodingKey, repository: &str) -> String {
    let now = unix_now();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("k1".into());
    let claims = json!({
        "iss": "https://idp.example.com", "aud": "claimgate", "sub": "repo:acme/x:ref:refs/heads/main",
        "repository": repository, "iat": now, "exp": now + 3600,
    });
    jsonwebtoken::encode(&header, &claims, encoding).unwrap()
}

/// 10 identities; the chain cluster:c > region:r > workspace:w > project:p > model:m; `direct`
/// is an editor of the model itself, `teamed` an editor through team `t` bound on the
/// cluster, the model's 4th ancestor. Each other level holds bindings of other identities.
fn small_yaml() -> String {
    let mut y = format!("{SSO}external_identities:\n");
    for name in ["direct", "teamed"] {
        writeln!(
            y,
            "  - name: {name}\n    sso_fqn: ci\n    claims: {{repository: acme/{name}}}"
        )
        .unwrap();
    }
    for i in 0..8 {
        writeln!(
            y,
            "  - name: other-{i}\n    sso_fqn: ci\n    claims: {{repository: acme/other-{i}}}"
        )
        .unwrap();
    }
    y.push_str(
        "teams:\n  - name: t\n    members: [external-identity:teamed, external-identity:other-0]\n",
    );
    y.push_str("resources:\n");
    let chain = [
        "cluster:c",
        "region:r",
        "workspace:w",
        "project:p",
        "model:m",
    ];
    for (level, fqn) in chain.iter().enumerate() {
        writeln!(y, "  - fqn: {fqn}").unwrap();
        if level > 0 {
            writeln!(y, "    parent: {}", chain[level - 1]).unwrap();
        }
        y.push_str("    collaborators:\n");
        writeln!(
            y,
            "      - {{subject: external-identity:other-{}, role: viewer}}",
            level + 1
        )
        .unwrap();
        match *fqn {
            "cluster:c" => y.push_str("      - {subject: team:t, role: editor}\n"),
            "model:m" => y.push_str("      - {subject: external-identity:direct, role: editor}\n"),
            _ => {}
        }
    }
    y
}

/// The parent of resource `i` in the 10-ary tree (resource 0 is the root).
fn parent(i: usize) -> Option<usize> {
    (i > 0).then(|| (i - 1) / FANOUT)
}

/// The scale configuration: identity `id-N` is a member of team `team-(N mod 1000)`; team T
/// is bound on resource T mod 1111 (levels 0 to 3); every resource on the last level binds two
/// identities directly. Without `hierarchy`, the same identities, resources and direct
/// bindings with no teams and no parents: the model before teams, as the baseline of the load.
fn scale_yaml(hierarchy: bool) -> String {
    let mut y = format!("{SSO}external_identities:\n");
    for i in 0..IDENTITIES {
        writeln!(
            y,
            "  - name: id-{i}\n    sso_fqn: ci\n    claims: {{repository: acme/repo-{i}}}"
        )
        .unwrap();
    }
    if hierarchy {
        y.push_str("teams:\n");
    }
    for t in (0..TEAMS).filter(|_| hierarchy) {
        writeln!(y, "  - name: team-{t}\n    members:").unwrap();
        for i in (t..IDENTITIES).step_by(TEAMS) {
            writeln!(y, "      - external-identity:id-{i}").unwrap();
        }
    }
    let upper = 1 + FANOUT + FANOUT * FANOUT + FANOUT * FANOUT * FANOUT;
    y.push_str("resources:\n");
    for r in 0..RESOURCES {
        writeln!(y, "  - fqn: res:r{r}").unwrap();
        if let Some(p) = parent(r).filter(|_| hierarchy) {
            writeln!(y, "    parent: res:r{p}").unwrap();
        }
        let mut bindings = String::new();
        for t in (r..TEAMS).step_by(upper).filter(|_| hierarchy) {
            let role = ["viewer", "editor", "manager"][t % 3];
            writeln!(bindings, "      - {{subject: team:team-{t}, role: {role}}}").unwrap();
        }
        if r >= upper {
            for k in 0..2 {
                let id = (r * 7 + k * 997) % IDENTITIES;
                writeln!(
                    bindings,
                    "      - {{subject: external-identity:id-{id}, role: viewer}}"
                )
                .unwrap();
            }
        }
        if !bindings.is_empty() {
            y.push_str("    collaborators:\n");
            y.push_str(&bindings);
        }
    }
    y
}

/// A warm decision: `resource` at `role` through context_extensions, the token cached.
fn request<'a>(token: &'a str, resource: &'a str) -> Request<'a> {
    Request {
        method: "POST",
        path: "/v1/anything",
        host: "api.example.com",
        credentials: Credentials::Bearer(token),
        ext_resource: Some(resource),
        ext_role: Some("editor"),
        ext_enforcement: None,
        ext_parent: None,
    }
}

fn allowed(s: &Setup, req: &Request<'_>) -> Decision {
    let d = pipeline::decide_cached(&s.snap, &s.cache, req, unix_now());
    assert!(matches!(d, Decision::Allow(Allow::Identity(_))), "{d:?}");
    d
}

/// Median time of one warm decision per case, over interleaved rounds.
fn interleaved_medians(cases: &[(&Setup, Request<'_>)]) -> Vec<Duration> {
    const ROUNDS: usize = 31;
    const PER_ROUND: u32 = 20_000;
    let now = unix_now();
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(ROUNDS); cases.len()];
    for _ in 0..ROUNDS {
        for ((s, req), out) in cases.iter().zip(&mut times) {
            let start = Instant::now();
            for _ in 0..PER_ROUND {
                black_box(pipeline::decide_cached(
                    &s.snap,
                    &s.cache,
                    black_box(req),
                    now,
                ));
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

/// `load`, printing its time and the resident memory it added under `label`.
fn measured_load(yaml: &str, jwk: &serde_json::Value, label: &str) -> Setup {
    let before = rss_bytes();
    let start = Instant::now();
    let loaded = load(yaml, jwk);
    let loaded_in = start.elapsed();
    let held = rss_bytes().saturating_sub(before);
    eprintln!(
        "{label}: loaded in {loaded_in:?}; snapshot and inputs hold {:.1} MiB RSS",
        held as f64 / 1048576.0
    );
    loaded
}

fn bench(c: &mut Criterion) {
    let (encoding, jwk) = common::rsa_key();
    let small = load(&small_yaml(), &jwk);
    let direct_token = token(&encoding, "acme/direct");
    let teamed_token = token(&encoding, "acme/teamed");
    let direct = request(&direct_token, "model:m");
    let teamed = request(&teamed_token, "model:m");
    match allowed(&small, &teamed) {
        Decision::Allow(Allow::Identity(g)) => {
            assert_eq!(&*g.granted_by.resource, "cluster:c");
            assert!(g.granted_by.inherited);
        }
        d => panic!("{d:?}"),
    }
    allowed(&small, &direct);

    // The scale configuration: its load measured once, with the memory its snapshot holds.
    // `HIERARCHY_BASELINE=1` loads the same configuration without teams and parents instead
    // and stops there: a process of its own, so the allocator's kept pages don't blur either
    // memory figure.
    if std::env::var_os("HIERARCHY_BASELINE").is_some() {
        measured_load(
            &scale_yaml(false),
            &jwk,
            &format!("hierarchy/baseline: {IDENTITIES} identities, {RESOURCES} resources, no teams or parents"),
        );
        return;
    }
    let scale = measured_load(
        &scale_yaml(true),
        &jwk,
        &format!("hierarchy/scale: {IDENTITIES} identities, {TEAMS} teams, {RESOURCES} resources in 5 levels"),
    );
    assert_eq!(scale.snap.ancestors("res:r4311").count(), 4);
    // id-43 is in team-43, an editor bound on res:r43: the 2nd ancestor of res:r4311.
    let scale_token = token(&encoding, "acme/repo-43");
    let scale_req = request(&scale_token, "res:r4311");
    allowed(&scale, &scale_req);

    let mut g = c.benchmark_group("hierarchy");
    let now = unix_now();
    for (name, s, req) in [
        ("warm/direct", &small, &direct),
        ("warm/team_on_4th_ancestor", &small, &teamed),
        ("warm/scale", &scale, &scale_req),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| pipeline::decide_cached(&s.snap, &s.cache, black_box(req), now))
        });
    }
    g.finish();

    let m = interleaved_medians(&[(&small, direct), (&small, teamed), (&scale, scale_req)]);
    eprintln!(
        "hierarchy: direct {:?}, team on 4th ancestor {:?}, scale {:?}: team on 4th ancestor / direct = {:.2} (goal <= 1.1); scale rate / small rate (team grants both) = {:.2} (goal >= 0.9)",
        m[0],
        m[1],
        m[2],
        m[1].as_secs_f64() / m[0].as_secs_f64(),
        m[1].as_secs_f64() / m[2].as_secs_f64(),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
