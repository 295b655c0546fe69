//! SIGTERM drains within bounds: for `--shutdown-delay` claimgate keeps answering checks while
//! `/readyz` says 503 "shutting down" (so Kubernetes and Envoy's health checks take the
//! endpoint out first), then idle gRPC connections get a GOAWAY at once, in-flight checks
//! finish, and whatever is still open when `--shutdown-grace` runs out is closed: the process
//! exits within delay + grace. Through a real Envoy under load, with a second replica, no
//! request fails that Envoy did not retry.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::envoy::{Echo, Envoy, EnvoyConfig};
use common::load::Load;
use common::process::Claimgate;
use common::*;
use serde_json::json;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// Room on top of delay + grace for a loaded machine to start, schedule and reap a process.
const SLACK: Duration = Duration::from_secs(5);

fn config(key: &TestKey) -> ConfigDir {
    fixture_config(key)
}

#[tokio::test]
async fn sigterm_keeps_answering_through_the_delay_then_sends_goaway_and_exits_within_the_grace() {
    let key = TestKey::generate(Kind::Es256, "k1");
    let dir = config(&key);
    let (delay, grace) = (Duration::from_secs(2), Duration::from_secs(8));
    let mut claimgate = Claimgate::start_with(
        dir.path(),
        &["--shutdown-delay", "2s", "--shutdown-grace", "8s"],
    )
    .await;
    // An idle HTTP/2 connection: its end is the GOAWAY.
    let tcp = tokio::net::TcpStream::connect(claimgate.grpc)
        .await
        .unwrap();
    let (_idle, idle_connection): (h2::client::SendRequest<Bytes>, _) =
        h2::client::handshake(tcp).await.unwrap();
    let idle_ended = tokio::spawn(idle_connection);
    // A check that never finishes its message: without a grace it holds the drain for ever
    // (the client answers every keepalive PING).
    let stuck = common::h2_raw::connection(claimgate.grpc).await;
    let (_stuck_answer, _stuck_body) = common::h2_raw::partial_check(&stuck, 100, 3).await;
    let mut client = claimgate.client().await;
    let mut health = HealthClient::new(
        tonic::transport::Endpoint::from_shared(format!("http://{}", claimgate.grpc))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let serving = || HealthCheckRequest {
        service: "envoy.service.auth.v3.Authorization".to_owned(),
    };
    let status = health.check(serving()).await.unwrap().into_inner().status();
    assert_eq!(status, ServingStatus::Serving);

    claimgate.signal("-TERM");
    let signalled = Instant::now();
    let not_ready = eventually(delay, || async {
        let reply = claimgate.get("/readyz").await;
        reply.status == 503 && reply.body.contains("shutting down")
    })
    .await;
    assert!(not_ready, "/readyz says 503 shutting down during the delay");
    // gRPC health says the same, for Envoy's health checks.
    let status = health.check(serving()).await.unwrap().into_inner().status();
    assert_eq!(status, ServingStatus::NotServing);
    // Still serving: liveness, and checks on the open connection.
    assert_eq!(claimgate.get("/healthz").await.status, 200);
    let valid = key.sign(&claims("run-1", json!({"repository": "acme/api"})));
    let answer = ask(
        &mut client,
        check_bearer("GET", "/v1/models/acme/llama/infer", &valid),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(
        signalled.elapsed() < delay,
        "the checks above were answered within the delay; make it longer if this machine is slower"
    );

    // Then the idle connection is told to go away as the drain begins, long before the
    // grace could have cut it...
    let goaway = tokio::time::timeout(
        (delay + grace / 2).saturating_sub(signalled.elapsed()),
        idle_ended,
    )
    .await;
    assert!(
        goaway.is_ok(),
        "the idle HTTP/2 connection was closed with a GOAWAY when the drain began"
    );
    // ...and the process exits within the grace although one check never finished.
    let status = claimgate
        .exited_within((delay + grace + SLACK).saturating_sub(signalled.elapsed()))
        .await;
    let status = status
        .unwrap_or_else(|| panic!("claimgate exits within delay + grace\n{}", claimgate.logs()));
    assert!(status.success(), "{status:?}\n{}", claimgate.logs());
    assert!(
        claimgate.stderr().contains("shutdown grace"),
        "the cut-short drain is logged\n{}",
        claimgate.logs()
    );
}

#[derive(Debug, Default)]
struct Tally {
    ok: usize,
    /// When each failed request was sent, from the start of the run, and its status.
    failed: Vec<(Duration, u16)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_through_envoy_fails_no_request_and_the_replica_exits_within_the_grace()
{
    let key = TestKey::generate(Kind::Es256, "k1");
    let dir = config(&key);
    let flags = ["--shutdown-delay", "1s", "--shutdown-grace", "5s"];
    let mut leaving = Claimgate::start_with(dir.path(), &flags).await;
    let staying = Claimgate::start_with(dir.path(), &flags).await;
    let upstream = Echo::start().await;
    let replicas = [leaving.grpc, staying.grpc];
    let envoy = Envoy::start(
        EnvoyConfig::shipped()
            .cluster_endpoint("upstream", upstream.addr)
            .claimgate_replicas(&replicas),
    )
    .await;
    for addr in replicas {
        let healthy = eventually(Duration::from_secs(15), || async {
            envoy.health_of(addr).await == "healthy"
        })
        .await;
        assert!(healthy, "replica {addr} healthy: {}", envoy.logs());
    }

    let valid = key.sign(&claims("run-1", json!({"repository": "acme/api"})));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let load = {
        let tally = tally.clone();
        Load::start(envoy.listener("ingress"), 4, &[valid], move |a| {
            let mut t = tally.lock().unwrap();
            match a.reply.status {
                200 => t.ok += 1,
                status => t.failed.push((a.sent, status)),
            }
        })
    };
    let served = || tally.lock().unwrap().ok;

    assert!(
        eventually(Duration::from_secs(15), || async { served() > 20 }).await,
        "the load runs before the SIGTERM\n{}",
        envoy.logs()
    );
    let served_before = served();
    leaving.signal("-TERM");
    let signalled = load.elapsed();
    let status = leaving
        .exited_within(Duration::from_secs(1 + 5) + SLACK)
        .await;
    let exited = load.elapsed();
    // The load goes on a little longer, on the remaining replica.
    let served_at_exit = served();
    let went_on = eventually(Duration::from_secs(15), || async {
        served() > served_at_exit + 20
    })
    .await;
    let ran = load.elapsed();
    load.finish().await;
    let t = tally.lock().unwrap();
    println!(
        "shutdown: {} requests in {:?}, {} failed: {:?}; SIGTERM at {signalled:?}, exited at {exited:?}; \
         the upstream saw {}",
        t.ok + t.failed.len(),
        ran,
        t.failed.len(),
        t.failed,
        upstream.requests(),
    );
    let status = status
        .unwrap_or_else(|| panic!("the replica exits within delay + grace\n{}", leaving.logs()));
    assert!(status.success(), "{status:?}\n{}", leaving.logs());
    assert!(served_before > 20, "the load ran before the SIGTERM");
    assert!(
        went_on && t.ok > served_before,
        "the load went on through the shutdown"
    );
    assert!(
        t.failed.is_empty(),
        "no request failed: {:?}\n{}",
        t.failed,
        leaving.logs()
    );
}
