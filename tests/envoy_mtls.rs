//! The shipped `envoy/envoy-mtls.yaml` with a real Envoy and the `claimgate` binary serving
//! gRPC over mTLS: checks pass over the mutual TLS connection, Envoy's gRPC health check marks
//! claimgate healthy, an Envoy whose client certificate is of another CA gets no answer from
//! claimgate (so its requests fail closed with 503). Under load, with both sides' files laid out
//! as the kubelet mounts Secrets: Envoy's client certificate rotated on disk is used without a
//! restart, and a CA replaced in steps on both sides leaves the old CA's certificates refused;
//! no request fails in either.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::envoy::{shipped_envoy_file, Echo, Envoy, EnvoyConfig, Seen};
use common::load::Load;
use common::pki::{Pair, TestCa};
use common::process::{http, Claimgate};
use common::*;
use serde_json::json;
use sha2::{Digest as _, Sha256};

/// envoy-mtls.yaml with its SDS files (envoy/sds/) written to `sds_dir` and naming the files
/// in `tls_dir`, and the test's addresses.
fn mtls_envoy(
    sds_dir: &Path,
    tls_dir: &Path,
    claimgate: &Claimgate,
    upstream: &Echo,
) -> EnvoyConfig {
    let (sds, tls) = (sds_dir.display(), tls_dir.display());
    for name in ["claimgate-client.yaml", "claimgate-ca.yaml"] {
        let file = shipped_envoy_file(
            &format!("sds/{name}"),
            &[
                ("filename: tls/", &format!("filename: {tls}/")),
                ("{ path: tls }", &format!("{{ path: {tls} }}")),
            ],
        );
        std::fs::write(sds_dir.join(name), serde_yaml::to_string(&file).unwrap()).unwrap();
    }
    let yaml = shipped_envoy_file(
        "envoy-mtls.yaml",
        &[
            ("path: envoy/sds/", &format!("path: {sds}/")),
            ("{ path: envoy/sds }", &format!("{{ path: {sds} }}")),
        ],
    );
    EnvoyConfig::on_port_zero(yaml)
        .cluster_endpoint("claimgate", claimgate.grpc)
        .cluster_endpoint("upstream", upstream.addr)
}

/// claimgate serving gRPC over TLS with `dir/claimgate.{crt,key}`, requiring a client
/// certificate of `dir/ca.crt`.
async fn mtls_claimgate(config: &Path, dir: &Path) -> Claimgate {
    let file = |name: &str| dir.join(name).display().to_string();
    let (cert, key, ca) = (file("claimgate.crt"), file("claimgate.key"), file("ca.crt"));
    Claimgate::start_with(
        config,
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-client-ca",
            &ca,
            // Quick enough for a test that rotates claimgate's files.
            "--tls-reload-interval",
            "100ms",
        ],
    )
    .await
}

fn config(key: &TestKey) -> ConfigDir {
    fixture_config(key)
}

async fn health_flags(envoy: &Envoy) -> String {
    let clusters = http(envoy.admin, "GET", "/clusters", &[]).await.body;
    clusters
        .lines()
        .filter(|l| l.starts_with("claimgate::") && l.contains("::health_flags::"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn envoy_reaches_claimgate_over_mtls_and_health_checks_it_over_grpc() {
    let key = TestKey::generate(Kind::Es256, "k1");
    let config = config(&key);
    let ca = TestCa::new("mesh CA");
    let tls = tempfile::tempdir().unwrap();
    ca.server("claimgate").write(tls.path(), "claimgate");
    ca.write(tls.path(), "ca.crt");
    ca.client("envoy", false).write(tls.path(), "envoy");
    let claimgate = mtls_claimgate(config.path(), tls.path()).await;
    let upstream = Echo::start().await;
    let sds = tempfile::tempdir().unwrap();
    let envoy = Envoy::start(mtls_envoy(sds.path(), tls.path(), &claimgate, &upstream)).await;

    let healthy = eventually(Duration::from_secs(15), || async {
        health_flags(&envoy)
            .await
            .ends_with("::health_flags::healthy")
    })
    .await;
    assert!(
        healthy,
        "Envoy's gRPC health check passes: {}\n{}\n{}",
        health_flags(&envoy).await,
        envoy.logs(),
        claimgate.logs()
    );

    let token = key.sign(&claims("run-1", json!({"repository": "acme/api"})));
    let reply = envoy
        .request(
            "GET",
            "/v1/models/acme/llama/infer",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", envoy.logs());
    let seen = Seen::parse(&reply.body);
    assert_eq!(
        seen.claimgate_headers().get("x-claimgate-identity"),
        Some(&vec!["api"])
    );
    let denied = envoy
        .request("GET", "/v1/models/acme/llama/infer", &[])
        .await;
    assert_eq!(denied.status, 401, "{denied:?}");

    // Envoy with a client certificate of another CA: claimgate refuses the handshake, so
    // Envoy gets no answer and denies with 503; the health check fails too.
    let other = TestCa::new("someone else's CA");
    let tls2 = tempfile::tempdir().unwrap();
    ca.write(tls2.path(), "ca.crt");
    other.client("envoy", false).write(tls2.path(), "envoy");
    let sds2 = tempfile::tempdir().unwrap();
    let stranger = Envoy::start(mtls_envoy(sds2.path(), tls2.path(), &claimgate, &upstream)).await;
    let reply = stranger
        .request(
            "GET",
            "/v1/models/acme/llama/infer",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(
        upstream.requests(),
        1,
        "only the first Envoy's allowed request got through"
    );
}

/// A certificate's SHA-256 fingerprint as `openssl x509 -fingerprint -sha256` prints it.
fn fingerprint(pair: &Pair) -> String {
    let digest = Sha256::digest(pair.der());
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

/// The client certificate of each TLS connection claimgate accepted, in order (its debug log).
fn client_certs_seen(claimgate: &Claimgate) -> Vec<String> {
    claimgate
        .stderr()
        .lines()
        .filter_map(|l| l.split("client_cert_sha256=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Wait (bounded) until claimgate has accepted a connection with this client certificate.
async fn wait_for_client_cert(claimgate: &Claimgate, pair: &Pair) -> bool {
    let want = fingerprint(pair);
    eventually(Duration::from_secs(15), || async {
        client_certs_seen(claimgate).contains(&want)
    })
    .await
}

/// Wait (bounded) until claimgate has reloaded its TLS files `times` times in all.
async fn wait_for_tls_reloads(claimgate: &Claimgate, times: usize) -> bool {
    eventually(Duration::from_secs(15), || async {
        claimgate
            .stderr()
            .matches("TLS certificate reloaded")
            .count()
            >= times
    })
    .await
}

/// The shipped 600s connection duration of the claimgate cluster, shortened so that
/// connections opened before a rotation end within the test.
fn with_connection_duration(mut config: EnvoyConfig, duration: &str) -> EnvoyConfig {
    let cluster = &mut config.0["static_resources"]["clusters"][0];
    assert_eq!(cluster["name"].as_str(), Some("claimgate"));
    let setting = &mut cluster["typed_extension_protocol_options"]
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["common_http_protocol_options"]
        ["max_connection_duration"];
    assert!(
        setting.is_string(),
        "envoy-mtls.yaml sets max_connection_duration"
    );
    *setting = duration.into();
    config
}

/// Lay out `dir` at `version` as the kubelet mounts a Secret (`NAME -> ..data/NAME`) with
/// `ca.crt` and the pair as `NAME.crt`/`NAME.key`, and swap `..data` to it.
fn mount(dir: &Path, version: &str, name: &str, pair: &Pair, ca: &str) {
    let (cert, key) = (format!("{name}.crt"), format!("{name}.key"));
    let files = [
        ("ca.crt", ca),
        (cert.as_str(), pair.cert.as_str()),
        (key.as_str(), pair.key.as_str()),
    ];
    common::configmap::version(dir, version, &files);
    common::configmap::swap(dir, version);
}

/// Allowed requests sent through Envoy by three clients until [`Allowed::finish`]; every
/// answer but 200 is kept as a failure.
struct Allowed {
    load: Load,
    ok: Arc<AtomicUsize>,
    failed: Arc<Mutex<Vec<String>>>,
}

impl Allowed {
    fn start(envoy: &Envoy, token: &str) -> Allowed {
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(Mutex::new(Vec::<String>::new()));
        let load = {
            let (ok, failed) = (ok.clone(), failed.clone());
            Load::start(
                envoy.listener("ingress"),
                3,
                &[token.to_owned()],
                move |a| {
                    if a.reply.status == 200 {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.lock().unwrap().push(format!("{:?}", a.reply));
                    }
                },
            )
        };
        Allowed { load, ok, failed }
    }

    fn passed(&self) -> usize {
        self.ok.load(Ordering::Relaxed)
    }

    /// Stop; the requests that passed and the failures.
    async fn finish(self) -> (usize, Vec<String>) {
        self.load.finish().await;
        let failed = self.failed.lock().unwrap().clone();
        (self.ok.load(Ordering::Relaxed), failed)
    }
}

async fn connection_stats(envoy: &Envoy) -> String {
    let stats =
        "/stats?filter=^cluster.claimgate.(upstream_cx_total|upstream_cx_max_duration|client_ssl)";
    http(envoy.admin, "GET", stats, &[]).await.body
}

#[tokio::test]
async fn envoys_client_certificate_rotated_by_a_secret_swap_is_used_without_a_restart_and_no_request_fails(
) {
    let key = TestKey::generate(Kind::Es256, "k1");
    let config = config(&key);
    let ca = TestCa::new("mesh CA");
    let server = tempfile::tempdir().unwrap();
    ca.server("claimgate").write(server.path(), "claimgate");
    ca.write(server.path(), "ca.crt");
    let claimgate = mtls_claimgate(config.path(), server.path()).await;
    let upstream = Echo::start().await;
    // Envoy's certificate, key and CA as a Secret mount.
    let secret = tempfile::tempdir().unwrap();
    let first = ca.client("envoy", false);
    mount(secret.path(), "v1", "envoy", &first, &ca.pem());
    let sds = tempfile::tempdir().unwrap();
    let envoy_config = mtls_envoy(sds.path(), secret.path(), &claimgate, &upstream);
    let envoy = Envoy::start(with_connection_duration(envoy_config, "1s")).await;
    let token = key.sign(&claims("run-1", json!({"repository": "acme/api"})));
    let load = Allowed::start(&envoy, &token);

    assert!(
        wait_for_client_cert(&claimgate, &first).await,
        "claimgate sees Envoy's first certificate\n{}\n{}",
        claimgate.logs(),
        envoy.logs()
    );
    assert!(
        eventually(Duration::from_secs(15), || async { load.passed() >= 10 }).await,
        "requests pass before the rotation\n{}",
        envoy.logs()
    );
    let before = load.passed();

    // The kubelet's update: the new version's files are written, then `..data` is renamed
    // over in one step. Envoy is not restarted or told.
    let second = ca.client("envoy", false);
    mount(secret.path(), "v2", "envoy", &second, &ca.pem());
    let rotated = wait_for_client_cert(&claimgate, &second).await;
    // Handshakes begun before the swap are over by then: from there on, every connection
    // claimgate accepts must carry the new certificate. A handshake in flight shows nowhere
    // until it is done, so this is a grace period, not a wait for an event.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let settled = client_certs_seen(&claimgate).len();
    // The load goes on until Envoy has replaced its connections (1 s duration) twice more.
    let reconnected = eventually(Duration::from_secs(15), || async {
        client_certs_seen(&claimgate).len() >= settled + 2
    })
    .await;
    let (ok, failed) = load.finish().await;

    let seen = client_certs_seen(&claimgate);
    let (old, new) = (fingerprint(&first), fingerprint(&second));
    println!(
        "rotation under load: {ok} requests passed ({} after the rotation), {} failed; claimgate \
         accepted {} connections with the first certificate and {} with the rotated one\n{}",
        ok - before,
        failed.len(),
        seen.iter().filter(|s| **s == old).count(),
        seen.iter().filter(|s| **s == new).count(),
        connection_stats(&envoy).await,
    );
    assert!(
        rotated,
        "claimgate never saw the rotated certificate\n{}\n{}",
        claimgate.logs(),
        envoy.logs()
    );
    assert!(
        failed.is_empty(),
        "failed requests: {:?}\n{}",
        &failed[..failed.len().min(5)],
        envoy.logs()
    );
    assert!(ok > before, "requests passed after the rotation");
    assert!(
        reconnected && seen.len() > settled,
        "Envoy opened connections after the rotation settled"
    );
    assert!(
        seen[settled..].iter().all(|s| *s == new),
        "after the rotation every new connection has the rotated certificate: {:?}",
        &seen[settled..]
    );
}

#[tokio::test]
async fn a_ca_replaced_in_steps_under_load_fails_no_request_and_the_old_cas_certificates_are_refused_after(
) {
    let key = TestKey::generate(Kind::Es256, "k1");
    let config = config(&key);
    let (old_ca, new_ca) = (TestCa::new("mesh CA 2026"), TestCa::new("mesh CA 2027"));
    let both = format!("{}{}", old_ca.pem(), new_ca.pem());
    let (old_server, old_client) = (old_ca.server("claimgate"), old_ca.client("envoy", false));
    let (new_server, new_client) = (new_ca.server("claimgate"), new_ca.client("envoy", false));
    // Each side's Secret mount: its own certificate and the CAs it trusts for the other side.
    let (server, secret) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let step = |version: &str, server_pair: &Pair, client_pair: &Pair, trusted: &str| {
        mount(server.path(), version, "claimgate", server_pair, trusted);
        mount(secret.path(), version, "envoy", client_pair, trusted);
    };
    step("v1", &old_server, &old_client, &old_ca.pem());
    let claimgate = mtls_claimgate(config.path(), server.path()).await;
    let upstream = Echo::start().await;
    let sds = tempfile::tempdir().unwrap();
    let envoy_config = mtls_envoy(sds.path(), secret.path(), &claimgate, &upstream);
    let envoy = Envoy::start(with_connection_duration(envoy_config, "1s")).await;
    let token = key.sign(&claims("run-1", json!({"repository": "acme/api"})));
    let load = Allowed::start(&envoy, &token);
    assert!(
        wait_for_client_cert(&claimgate, &old_client).await,
        "Envoy reaches claimgate\n{}\n{}",
        claimgate.logs(),
        envoy.logs()
    );

    // 1. Both sides trust both CAs. Envoy is proven to have read its new bundle by step 2:
    // claimgate's next certificate is of the new CA only.
    step("v2", &old_server, &old_client, &both);
    assert!(
        wait_for_tls_reloads(&claimgate, 1).await,
        "{}",
        claimgate.logs()
    );
    // 2. Both certificates are reissued by the new CA.
    step("v3", &new_server, &new_client, &both);
    assert!(
        wait_for_tls_reloads(&claimgate, 2).await,
        "{}",
        claimgate.logs()
    );
    assert!(
        wait_for_client_cert(&claimgate, &new_client).await,
        "Envoy connects with the new CA's certificate\n{}",
        claimgate.logs()
    );
    // Past the connection duration: no connection of the old certificates carries checks.
    // The end of a connection is Envoy's own timer (1 s after it opened) and shows nowhere
    // claimgate can see, so the wait is that duration with room to spare.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // 3. The old CA is trusted no more, on either side.
    step("v4", &new_server, &new_client, &new_ca.pem());
    assert!(
        wait_for_tls_reloads(&claimgate, 3).await,
        "{}",
        claimgate.logs()
    );
    let settled = client_certs_seen(&claimgate).len();
    // The load goes on until Envoy has opened connections twice more under the new CA alone.
    let reconnected = eventually(Duration::from_secs(15), || async {
        client_certs_seen(&claimgate).len() >= settled + 2
    })
    .await;
    let (ok, failed) = load.finish().await;
    let seen = client_certs_seen(&claimgate);
    println!(
        "CA rotation under load: {ok} requests passed, {} failed; {} connections accepted after \
         the old CA was dropped\n{}",
        failed.len(),
        seen.len() - settled,
        connection_stats(&envoy).await,
    );
    assert!(
        failed.is_empty(),
        "failed requests: {:?}\n{}\n{}",
        &failed[..failed.len().min(5)],
        envoy.logs(),
        claimgate.logs()
    );
    assert!(
        reconnected && seen.len() > settled,
        "Envoy opened connections after the old CA was dropped"
    );
    assert!(
        seen[settled..]
            .iter()
            .all(|s| *s == fingerprint(&new_client)),
        "only the new CA's certificate after the rotation: {:?}",
        &seen[settled..]
    );

    // An Envoy still presenting the old CA's (unexpired) certificate gets no answer now.
    let stale = tempfile::tempdir().unwrap();
    mount(stale.path(), "v1", "envoy", &old_client, &both);
    let sds2 = tempfile::tempdir().unwrap();
    let stranger = Envoy::start(mtls_envoy(sds2.path(), stale.path(), &claimgate, &upstream)).await;
    let reply = stranger
        .request(
            "GET",
            "/v1/models/acme/llama/infer",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(reply.status, 503, "{reply:?}");
}
