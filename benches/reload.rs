//! A reload of a large configuration: 10k identities and 100k collaborator bindings, read
//! from disk, validated, compiled and swapped in. Run: `cargo bench --bench reload`.
//!
//! Also prints the resident memory the installed snapshot holds (RSS growth while it is
//! held, with every input dropped), measured once before the timing runs.

mod common;

use common::rss_bytes;
use std::fmt::Write as _;
use std::path::Path;

use claimgate::core::load::Loader;
use claimgate::server::reload::Reloader;
use criterion::{criterion_group, criterion_main, Criterion};

const IDENTITIES: usize = 10_000;
const RESOURCES: usize = 10_000;
const BINDINGS_PER_RESOURCE: usize = 10;

fn write_config(dir: &Path) {
    std::fs::write(dir.join("jwks.json"), r#"{"keys":[]}"#).unwrap();
    std::fs::write(
        dir.join("sso.yaml"),
        "sso_integrations:\n  - name: ci\n    type: oidc\n    issuer: https://idp.example.com\n    audiences: [claimgate]\n    jwks_file: jwks.json\n",
    )
    .unwrap();
    let mut ids = String::from("external_identities:\n");
    for i in 0..IDENTITIES {
        writeln!(
            ids,
            "  - name: id-{i}\n    sso_fqn: ci\n    claims:\n      repository: acme/repo-{i}\n      environment: env-{}",
            i % 7
        )
        .unwrap();
    }
    std::fs::write(dir.join("identities.yaml"), ids).unwrap();
    let mut res = String::from("resources:\n");
    for r in 0..RESOURCES {
        writeln!(res, "  - fqn: model:acme/m-{r}\n    collaborators:").unwrap();
        for b in 0..BINDINGS_PER_RESOURCE {
            let id = (r * 7 + b * 997) % IDENTITIES;
            let role = ["viewer", "editor", "manager"][b % 3];
            writeln!(
                res,
                "      - subject: external-identity:id-{id}\n        role: {role}"
            )
            .unwrap();
        }
    }
    std::fs::write(dir.join("resources.yaml"), res).unwrap();
    std::fs::write(
        dir.join("routes.yaml"),
        "routes:\n  - path: /v1/models/{org}/{name}/{*rest}\n    resource: model:{org}/{name}\n    role: viewer\n",
    )
    .unwrap();
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let yaml_bytes: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();

    let before = rss_bytes();
    let snapshot = claimgate::core::load::load(dir.path()).unwrap().snapshot;
    let (identities, bindings, routes) = snapshot.counts();
    assert_eq!(
        (identities, bindings),
        (IDENTITIES, RESOURCES * BINDINGS_PER_RESOURCE)
    );
    let after = rss_bytes();
    eprintln!(
        "reload/memory: {identities} identities, {bindings} bindings, {routes} routes, {:.1} MiB of YAML; snapshot holds {:.1} MiB RSS",
        yaml_bytes as f64 / 1048576.0,
        after.saturating_sub(before) as f64 / 1048576.0
    );

    let metrics = claimgate::server::metrics::Metrics::new();
    let store = claimgate::core::load::install_first(snapshot, &metrics);
    let loader = Loader::new(dir.path().to_path_buf());
    let reloader = Reloader::new(loader, store, metrics);
    let edits = std::sync::atomic::AtomicU64::new(0);
    let mut g = c.benchmark_group("reload");
    g.sample_size(10);
    g.bench_function(
        "load_validate_compile_swap_10k_identities_100k_bindings",
        |b| {
            b.iter(|| {
                // A new comment every iteration: every reload is a real change that is swapped in.
                let n = edits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                std::fs::write(
                    dir.path().join("extra.yaml"),
                    format!("routes: [] # edit {n}\n"),
                )
                .unwrap();
                match reloader.reload("bench") {
                    claimgate::server::reload::Outcome::Installed { .. } => {}
                    other => panic!("{other:?}"),
                }
            })
        },
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
