//! Three `claimgate` replicas behind one real Envoy cluster (gRPC health-checked, with a retry
//! policy on the ext_authz service), under a bounded load of valid and invalid tokens; one
//! replica is killed with SIGKILL mid-run and started again. Nothing reaches the upstream
//! without an allow, valid requests that fail are under 1% and none fail once Envoy's health
//! check has marked the replica down, and the restarted replica takes checks again.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::envoy::{Echo, Envoy, EnvoyConfig, Seen};
use common::load::Load;
use common::process::{localhost, Claimgate};
use common::*;
use serde_json::json;

/// The load runs this long in all; the kill comes after a third of it.
const RUN: Duration = Duration::from_secs(9);
const WORKERS: usize = 4;

fn config(key: &TestKey) -> ConfigDir {
    fixture_config(key)
}

/// The shipped envoy.yaml with the claimgate cluster spread over `replicas`, health-checked
/// over gRPC, and the ext_authz gRPC service retrying on another replica.
fn envoy_config(replicas: &[std::net::SocketAddr], upstream: &Echo) -> EnvoyConfig {
    EnvoyConfig::shipped()
        .cluster_endpoint("upstream", upstream.addr)
        .claimgate_replicas(replicas)
}

#[derive(Debug, Default)]
struct Tally {
    valid_ok: usize,
    /// When each failed valid request was sent, from the start of the run.
    valid_failed: Vec<(Duration, u16)>,
    /// Invalid tokens refused: 401, or 503 when Envoy got no answer (it fails closed).
    invalid_denied: usize,
    /// Invalid tokens that reached the upstream.
    invalid_through: usize,
    bad_headers: Vec<String>,
}

async fn checks_of(replica: &Claimgate) -> f64 {
    let body = replica.get("/metrics").await.body;
    body.lines()
        .filter(|l| l.starts_with("claimgate_checks_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_lose_one_to_sigkill_under_load_and_nothing_gets_through_unallowed() {
    let key = TestKey::generate(Kind::Es256, "k1");
    let dir = config(&key);
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let any = localhost(0);
        replicas.push(Some(Claimgate::start_at(dir.path(), any, any).await));
    }
    let addrs: Vec<_> = replicas
        .iter()
        .flatten()
        .map(|r| (r.grpc, r.http))
        .collect();
    let upstream = Echo::start().await;
    let grpc_addrs: Vec<_> = addrs.iter().map(|(g, _)| *g).collect();
    let envoy = Envoy::start(envoy_config(&grpc_addrs, &upstream)).await;
    for addr in &grpc_addrs {
        let healthy = eventually(Duration::from_secs(15), || async {
            envoy.health_of(*addr).await == "healthy"
        })
        .await;
        assert!(healthy, "replica {addr} healthy: {}", envoy.logs());
    }

    let valid = key.sign(&claims("run-1", json!({"repository": "acme/api"})));
    let invalid = TestKey::generate(Kind::Es256, "k1").sign(&claims("run-1", json!({})));
    let tally = Arc::new(Mutex::new(Tally::default()));
    // One request in four carries a token of a key no SSO trusts.
    let tokens = [invalid, valid.clone(), valid.clone(), valid];
    let load = {
        let tally = tally.clone();
        Load::start(envoy.listener("ingress"), WORKERS, &tokens, move |a| {
            let good = a.token != 0;
            let mut t = tally.lock().unwrap();
            match (good, a.reply.status) {
                (true, 200) => {
                    t.valid_ok += 1;
                    let seen = Seen::parse(&a.reply.body);
                    let headers = seen.claimgate_headers();
                    let want = [
                        ("x-claimgate-identity", "api"),
                        ("x-claimgate-sso", "test-idp"),
                        ("x-claimgate-subject", "run-1"),
                        ("x-claimgate-resource", "model:acme/llama"),
                        ("x-claimgate-role", "editor"),
                    ];
                    for (name, value) in want {
                        if headers.get(name) != Some(&vec![value]) {
                            t.bad_headers.push(format!("{name}: {headers:?}"));
                        }
                    }
                }
                (true, status) => t.valid_failed.push((a.sent, status)),
                (false, 200) => t.invalid_through += 1,
                // 401 from claimgate, or 503 when no answer came in time: closed either way.
                (false, _) => t.invalid_denied += 1,
            }
        })
    };

    // A load run of fixed length is the subject: a third of it before the kill, a third
    // while the replica is down, the rest after it is back.
    tokio::time::sleep(RUN / 3).await;
    let victim = 1;
    let killed_at = load.elapsed();
    if let Some(mut replica) = replicas[victim].take() {
        replica.stop();
    }
    let marked_down = eventually(Duration::from_secs(10), || async {
        envoy
            .health_of(grpc_addrs[victim])
            .await
            .contains("failed_active_hc")
    })
    .await;
    let down_at = load.elapsed();
    assert!(marked_down, "Envoy marks the killed replica down");
    tokio::time::sleep((RUN * 2 / 3).saturating_sub(load.elapsed())).await;
    // Envoy's static config names the killed replica's address, so it comes back on the same
    // ports: the one place a test binds a port that another process held.
    let (grpc, http_addr) = addrs[victim];
    let restarted = Claimgate::start_at(dir.path(), grpc, http_addr).await;
    let back = eventually(Duration::from_secs(10), || async {
        envoy.health_of(grpc).await == "healthy"
    })
    .await;
    let back_at = load.elapsed();
    assert!(back, "the restarted replica is healthy again");
    tokio::time::sleep(RUN.saturating_sub(load.elapsed())).await;
    let ran = load.elapsed();
    load.finish().await;
    let restarted_checks = checks_of(&restarted).await;

    let t = tally.lock().unwrap();
    let valid_total = t.valid_ok + t.valid_failed.len();
    let failed_after_down = t
        .valid_failed
        .iter()
        .filter(|(sent, _)| *sent > down_at)
        .count();
    println!(
        "replicas: {} requests in {:?}; valid {valid_total} ({} failed: {:?}), invalid {} (all denied: {}); \
         killed at {killed_at:?}, marked down at {down_at:?}, healthy again at {back_at:?}; \
         upstream saw {}; the restarted replica answered {restarted_checks} checks",
        valid_total + t.invalid_denied + t.invalid_through,
        ran,
        t.valid_failed.len(),
        t.valid_failed,
        t.invalid_denied + t.invalid_through,
        t.invalid_through == 0,
        upstream.requests(),
    );
    assert_eq!(
        t.invalid_through, 0,
        "an invalid token never gets past Envoy"
    );
    assert!(
        t.bad_headers.is_empty(),
        "{:?}",
        &t.bad_headers[..t.bad_headers.len().min(3)]
    );
    assert_eq!(
        upstream.requests(),
        t.valid_ok,
        "every request the upstream saw was an allowed one"
    );
    assert!(valid_total > 200, "the load ran");
    assert!(
        t.valid_failed.len() * 100 < valid_total,
        "under 1% of valid requests failed"
    );
    assert_eq!(
        failed_after_down, 0,
        "none failed once the replica was marked down"
    );
    assert!(
        restarted_checks > 0.0,
        "the restarted replica takes checks again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_config_change_under_load_answers_every_check_from_one_generation() {
    let key = TestKey::generate(Kind::Es256, "k1");
    // Generation 2 renames the identity and raises its role: an answer mixing the two would
    // pair one generation's identity with the other's role.
    let old = [
        ("jwks.json", jwks(&[&key])),
        ("sso.yaml", sso_yaml("[ES256]")),
        ("identities.yaml", FIXTURE_IDENTITIES.to_owned()),
        ("resources.yaml", FIXTURE_RESOURCES.to_owned()),
        ("routes.yaml", FIXTURE_ROUTES.to_owned()),
    ];
    let mut new = old.clone();
    new[2].1 = FIXTURE_IDENTITIES.replace("  - name: api\n", "  - name: api-b\n");
    new[3].1 = FIXTURE_RESOURCES.replace(
        "external-identity:api\n        role: editor",
        "external-identity:api-b\n        role: manager",
    );
    assert!(new[2].1 != old[2].1 && new[3].1 != old[3].1);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    for d in &dirs {
        configmap::version(d.path(), "v1", &old);
        configmap::version(d.path(), "v2", &new);
        configmap::swap(d.path(), "v1");
    }
    let mut replicas = Vec::new();
    for d in &dirs {
        let any = localhost(0);
        replicas.push(Claimgate::start_at(d.path(), any, any).await);
    }
    let upstream = Echo::start().await;
    let grpc_addrs: Vec<_> = replicas.iter().map(|r| r.grpc).collect();
    let envoy = Envoy::start(envoy_config(&grpc_addrs, &upstream)).await;
    for addr in &grpc_addrs {
        let healthy = eventually(Duration::from_secs(15), || async {
            envoy.health_of(*addr).await == "healthy"
        })
        .await;
        assert!(healthy, "replica {addr} healthy");
    }

    let token = key.sign(&claims("run-1", json!({"repository": "acme/api"})));
    let answers = Arc::new(Mutex::new(Vec::<(Duration, u16, String, String)>::new()));
    let load = {
        let answers = answers.clone();
        Load::start(envoy.listener("ingress"), WORKERS, &[token], move |a| {
            let (identity, role) = if a.reply.status == 200 {
                let seen = Seen::parse(&a.reply.body);
                let h = seen.claimgate_headers();
                let one = |n: &str| h.get(n).map(|v| v.join(",")).unwrap_or_default();
                (one("x-claimgate-identity"), one("x-claimgate-role"))
            } else {
                (String::new(), String::new())
            };
            answers
                .lock()
                .unwrap()
                .push((a.sent, a.reply.status, identity, role));
        })
    };
    let answered = || answers.lock().unwrap().len();
    let answered_since = |t: Duration| answers.lock().unwrap().iter().filter(|a| a.0 > t).count();
    // One replica after another, as a ConfigMap update reaches each kubelet in turn, with
    // checks answered before each.
    for (i, d) in dirs.iter().enumerate() {
        let before = answered();
        let flowing = eventually(Duration::from_secs(10), || async {
            answered() >= before + 40
        })
        .await;
        assert!(flowing, "checks are answered before replica {i} changes");
        configmap::swap(d.path(), "v2");
        let reloaded = eventually(Duration::from_secs(10), || async {
            replicas[i].metric("claimgate_config_generation").await == Some(2.0)
        })
        .await;
        assert!(reloaded, "replica {i} reloads: {}", replicas[i].logs());
    }
    let all_new_at = load.elapsed();
    let after = eventually(Duration::from_secs(10), || async {
        answered_since(all_new_at) >= 40
    })
    .await;
    assert!(after, "checks are answered after every replica reloaded");
    load.finish().await;

    let answers = answers.lock().unwrap();
    let generation = |a: &(Duration, u16, String, String)| match (a.2.as_str(), a.3.as_str()) {
        ("api", "editor") => Some(1),
        ("api-b", "manager") => Some(2),
        _ => None,
    };
    let mixed: Vec<_> = answers.iter().filter(|a| generation(a).is_none()).collect();
    let old_n = answers.iter().filter(|a| generation(a) == Some(1)).count();
    let new_n = answers.iter().filter(|a| generation(a) == Some(2)).count();
    let old_after = answers
        .iter()
        .filter(|a| a.0 > all_new_at && generation(a) == Some(1))
        .count();
    println!(
        "rolling change: {} checks, {old_n} answered by generation 1, {new_n} by generation 2, \
         {} by neither; every replica on generation 2 at {all_new_at:?}",
        answers.len(),
        mixed.len()
    );
    assert!(
        mixed.is_empty(),
        "answers matching neither generation: {:?}",
        &mixed[..mixed.len().min(5)]
    );
    assert!(old_n > 0 && new_n > 0, "the change happened under load");
    assert_eq!(
        old_after, 0,
        "once every replica reloaded, only generation 2 answers"
    );
    assert_eq!(
        upstream.requests(),
        answers.len(),
        "every check was an allow"
    );
}
