//! The shipped `envoy/envoy-mtls.yaml` with a real Envoy and the `claimgate` binary serving
//! gRPC over mTLS: checks pass over the mutual TLS connection, Envoy's gRPC health check marks
//! claimgate healthy, and an Envoy whose client certificate is of another CA gets no answer
//! from claimgate (so its requests fail closed with 503).

mod common;

use std::path::Path;
use std::time::Duration;

use common::envoy::{shipped_envoy_file, Echo, Envoy, EnvoyConfig, Seen};
use common::pki::TestCa;
use common::process::{http, Claimgate};
use common::*;
use serde_json::json;

/// envoy-mtls.yaml with its `tls/` files taken from `dir`, and the test's addresses.
fn mtls_envoy(tls_dir: &Path, claimgate: &Claimgate, upstream: &Echo) -> EnvoyConfig {
    let dir = format!("filename: {}/", tls_dir.display());
    let yaml = shipped_envoy_file("envoy-mtls.yaml", &[("filename: tls/", &dir)]);
    EnvoyConfig::on_port_zero(yaml)
        .cluster_endpoint("claimgate", claimgate.grpc)
        .cluster_endpoint("upstream", upstream.addr)
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
    let (cert, tls_key) = ca.server("claimgate").write(tls.path(), "claimgate");
    ca.write(tls.path(), "ca.crt");
    ca.client("envoy", false).write(tls.path(), "envoy");
    let claimgate = Claimgate::start_with(
        config.path(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            tls_key.to_str().unwrap(),
            "--tls-client-ca",
            tls.path().join("ca.crt").to_str().unwrap(),
        ],
    )
    .await;
    let upstream = Echo::start().await;
    let envoy = Envoy::start(mtls_envoy(tls.path(), &claimgate, &upstream)).await;

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
    let stranger = Envoy::start(mtls_envoy(tls2.path(), &claimgate, &upstream)).await;
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
