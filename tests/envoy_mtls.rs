//! The shipped `envoy/envoy-mtls.yaml` with a real Envoy and the `claimgate` binary serving
//! gRPC over mTLS: checks pass over the mutual TLS connection, Envoy's gRPC health check marks
//! claimgate healthy, an Envoy whose client certificate is of another CA gets no answer from
//! claimgate (so its requests fail closed with 503), and Envoy's client certificate rotated on
//! disk as the kubelet rotates a Secret is used without a restart while no request fails.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::envoy::{shipped_envoy_file, Echo, Envoy, EnvoyConfig, Seen};
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
        ],
    )
    .await
}

fn config(key: &TestKey) -> ConfigDir {
    let dir = ConfigDir::new();
    dir.write("jwks.json", &jwks(&[key]));
    dir.write("sso.yaml", &sso_yaml("[ES256]"));
    dir.write("identities.yaml", FIXTURE_IDENTITIES);
    dir.write("resources.yml", FIXTURE_RESOURCES);
    dir.write("routes.yaml", FIXTURE_ROUTES);
    dir
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

    // Envoy's certificate, key and CA as a Secret mount: `envoy.crt -> ..data/envoy.crt`,
    // `..data -> ..v1`.
    let secret = tempfile::tempdir().unwrap();
    let mount = |version: &str, pair: &Pair| {
        common::configmap::version(
            secret.path(),
            version,
            &[
                ("ca.crt", ca.pem()),
                ("envoy.crt", pair.cert.clone()),
                ("envoy.key", pair.key.clone()),
            ],
        );
    };
    let first = ca.client("envoy", false);
    mount("v1", &first);
    common::configmap::swap(secret.path(), "v1");
    let sds = tempfile::tempdir().unwrap();
    let mut envoy_config = mtls_envoy(sds.path(), secret.path(), &claimgate, &upstream);
    // The shipped 600s, shortened so that the connections opened with the first certificate
    // end within the test.
    let options = &mut envoy_config.0["static_resources"]["clusters"][0];
    assert_eq!(options["name"].as_str(), Some("claimgate"));
    let duration = &mut options["typed_extension_protocol_options"]
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["common_http_protocol_options"]
        ["max_connection_duration"];
    assert!(
        duration.is_string(),
        "envoy-mtls.yaml sets max_connection_duration"
    );
    *duration = "1s".into();
    let envoy = Envoy::start(envoy_config).await;
    let ingress = envoy.listener("ingress");

    let token = key.sign(&claims("run-1", json!({"repository": "acme/api"})));
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for _ in 0..3 {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        let bearer = format!("Bearer {token}");
        workers.push(tokio::spawn(async move {
            // Bounded: at most this many requests per worker even if stop never came.
            for _ in 0..20_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let reply = http(
                    ingress,
                    "GET",
                    "/v1/models/acme/llama/infer",
                    &[("authorization", &bearer)],
                )
                .await;
                if reply.status == 200 {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.lock().unwrap().push(format!("{reply:?}"));
                }
            }
        }));
    }

    let second = ca.client("envoy", false);
    let (old, new) = (fingerprint(&first), fingerprint(&second));
    let used = |fp: String| {
        let claimgate = &claimgate;
        move || {
            let fp = fp.clone();
            async move { client_certs_seen(claimgate).contains(&fp) }
        }
    };
    assert!(
        eventually(Duration::from_secs(15), used(old.clone())).await,
        "claimgate sees Envoy's first certificate\n{}\n{}",
        claimgate.logs(),
        envoy.logs()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = ok.load(Ordering::Relaxed);

    // The kubelet's update: the new version's files are written, then `..data` is renamed
    // over in one step. Envoy is not restarted or told.
    mount("v2", &second);
    common::configmap::swap(secret.path(), "v2");
    let rotated = eventually(Duration::from_secs(15), used(new.clone())).await;
    // Handshakes begun before the swap are over by now: from here on, every connection
    // claimgate accepts must carry the new certificate. The load goes on for longer than the
    // connection duration, so Envoy replaces its connection at least once more.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let settled = client_certs_seen(&claimgate).len();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }

    let seen = client_certs_seen(&claimgate);
    let ok = ok.load(Ordering::Relaxed);
    let failed = failed.lock().unwrap().clone();
    let stats =
        "/stats?filter=^cluster.claimgate.(upstream_cx_total|upstream_cx_max_duration|client_ssl)";
    let stats = http(envoy.admin, "GET", stats, &[]).await.body;
    println!(
        "rotation under load: {ok} requests passed ({} after the rotation), {} failed; claimgate \
         accepted {} connections with the first certificate and {} with the rotated one\n{stats}",
        ok - before,
        failed.len(),
        seen.iter().filter(|s| **s == old).count(),
        seen.iter().filter(|s| **s == new).count(),
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
        seen.len() > settled,
        "Envoy opened connections after the rotation settled"
    );
    assert!(
        seen[settled..].iter().all(|s| *s == new),
        "after the rotation every new connection has the rotated certificate: {:?}",
        &seen[settled..]
    );
}
