//! TLS and mTLS on the gRPC port: checks answered over TLS, clients without a good certificate
//! refused in the handshake, a handshake (or HTTP/2 preface after it) that never comes is not
//! waited for beyond the handshake timeout, and a certificate rotated in place served to new
//! connections while checks keep passing.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use claimgate::server::tls::TlsFiles;
use claimgate::server::{Bound, ServeError};
use common::pki::{client_config, tls_client, tls_connect, Served, TestCa};
use common::*;
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn config() -> (ConfigDir, TestKey) {
    let key = TestKey::generate(Kind::Es256, "k1");
    let dir = fixture_config(&key);
    (dir, key)
}

fn options(config: &Path, tls: TlsFiles) -> TestServerBuilder {
    TestServer::builder(config).tls(tls)
}

/// A server certificate and client CA of `ca` written to `dir`, as mTLS files.
fn mtls_files(ca: &TestCa, dir: &Path, reload_interval: Duration) -> TlsFiles {
    let (cert, key) = ca.server("claimgate").write(dir, "tls");
    TlsFiles {
        cert,
        key,
        client_ca: Some(ca.write(dir, "client-ca.crt")),
        reload_interval,
    }
}

fn allowed_check(key: &TestKey) -> envoy_types::pb::envoy::service::auth::v3::CheckRequest {
    check_bearer(
        "GET",
        "/v1/models/acme/llama/infer",
        &key.sign(&claims("run-1", json!({}))),
    )
}

#[tokio::test]
async fn a_client_with_a_certificate_of_the_client_ca_gets_its_checks_answered_over_mtls() {
    tls_provider();
    let (dir, key) = config();
    let tls_dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("mesh CA");
    let server = options(
        dir.path(),
        mtls_files(&ca, tls_dir.path(), Duration::from_secs(10)),
    )
    .start()
    .await;
    let identity = ca.client("envoy", false);
    let served = Served::default();
    let mut client = tls_client(
        server.grpc,
        client_config(&ca.pem(), Some(&identity)),
        served.clone(),
    )
    .await
    .expect("an mTLS client connects");
    let a = ask(&mut client, allowed_check(&key)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-claimgate-identity"), Some("anyone"));
    assert_eq!(served.lock().unwrap().len(), 1);
    // The plaintext client of every other test is not served on a TLS port.
    let plain = AuthorizationClient::connect(format!("http://{}", server.grpc)).await;
    if let Ok(mut plain) = plain {
        assert!(plain.check(allowed_check(&key)).await.is_err());
    }
    server.stop().await;
}

/// The handshake's outcome seen from the client: `Ok` once the server has sent its first
/// HTTP/2 bytes, or the TLS error (an alert from the server) that ended it.
async fn handshake(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> Result<(), String> {
    let mut stream = tls_connect(addr, config).await.map_err(|e| e.to_string())?;
    // In TLS 1.3 the client finishes its side before the server has judged its certificate;
    // the server's verdict is its first record: an alert, or its HTTP/2 SETTINGS.
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => Ok(()),
        Ok(Ok(_)) => Err("closed without an alert".to_owned()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer".to_owned()),
    }
}

#[tokio::test]
async fn a_tls_handshake_or_http2_preface_that_never_comes_is_closed_after_the_handshake_timeout() {
    tls_provider();
    let (dir, key) = config();
    let tls_dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("mesh CA");
    let server = options(
        dir.path(),
        mtls_files(&ca, tls_dir.path(), Duration::from_secs(10)),
    )
    .connections(claimgate::server::listener::ConnectionOptions {
        handshake_timeout: Duration::from_secs(1),
        // Longer than the bound: only the handshake timeout can close these in time.
        idle_timeout: Duration::from_secs(120),
        ..Default::default()
    })
    .start()
    .await;
    let bound = Duration::from_secs(20);
    let read_to_end = |mut s: Box<dyn tokio::io::AsyncRead + Unpin + Send>| async move {
        let mut buf = [0u8; 1024];
        tokio::time::timeout(bound, async {
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    return;
                }
            }
        })
        .await
    };
    let identity = ca.client("envoy", false);
    // A client that does both is served, also after its handshake deadline has passed: the
    // two connections below are accepted after it, so by the time the handshake timeout has
    // closed them, this client's own deadline is behind it too.
    let mut client = tls_client(
        server.grpc,
        client_config(&ca.pem(), Some(&identity)),
        Served::default(),
    )
    .await
    .expect("an mTLS client connects");
    assert_eq!(ask(&mut client, allowed_check(&key)).await.status, 200);
    // No TLS handshake at all.
    let silent = tokio::net::TcpStream::connect(server.grpc).await.unwrap();
    assert!(
        read_to_end(Box::new(silent)).await.is_ok(),
        "a connection that never starts its TLS handshake is closed"
    );
    // A finished TLS handshake, then no HTTP/2 preface.
    let quiet = tls_connect(server.grpc, client_config(&ca.pem(), Some(&identity)))
        .await
        .expect("the TLS handshake completes");
    assert!(
        read_to_end(Box::new(quiet)).await.is_ok(),
        "a TLS connection that never sends the HTTP/2 preface is closed"
    );
    assert_eq!(ask(&mut client, allowed_check(&key)).await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn clients_without_a_certificate_with_another_cas_or_an_expired_one_are_refused_in_the_handshake(
) {
    tls_provider();
    let (dir, key) = config();
    let tls_dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("mesh CA");
    let other = TestCa::new("someone else's CA");
    let server = options(
        dir.path(),
        mtls_files(&ca, tls_dir.path(), Duration::from_secs(10)),
    )
    .start()
    .await;

    let good = ca.client("envoy", false);
    assert_eq!(
        handshake(server.grpc, client_config(&ca.pem(), Some(&good))).await,
        Ok(()),
        "the control: a certificate of the client CA is accepted"
    );
    let cases = [
        ("no certificate", None),
        (
            "another CA's certificate",
            Some(other.client("envoy", false)),
        ),
        ("an expired certificate", Some(ca.client("envoy", true))),
    ];
    for (what, identity) in cases {
        let refused = handshake(server.grpc, client_config(&ca.pem(), identity.as_ref())).await;
        let why = refused.expect_err(what);
        assert!(
            why.contains("alert"),
            "{what}: refused by a TLS alert, got {why}"
        );
        let mut client = tls_client(
            server.grpc,
            client_config(&ca.pem(), identity.as_ref()),
            Served::default(),
        )
        .await;
        let answered = match &mut client {
            Ok(c) => c.check(allowed_check(&key)).await.is_ok(),
            Err(_) => false,
        };
        assert!(!answered, "{what}: no check is answered");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_server_certificate_rotated_in_place_under_load_is_served_to_new_connections_and_no_check_fails(
) {
    tls_provider();
    let (dir, key) = config();
    let tls_dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("mesh CA");
    let files = mtls_files(&ca, tls_dir.path(), Duration::from_millis(100));
    let first = std::fs::read(&files.cert).unwrap();
    let server = options(dir.path(), files.clone()).start().await;
    let identity = ca.client("envoy", false);
    let config = client_config(&ca.pem(), Some(&identity));
    let served = Served::default();
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(Mutex::new(Vec::<String>::new()));

    let mut workers = Vec::new();
    // One long-lived connection, as Envoy keeps, and three that reconnect all the time, so
    // handshakes happen before, during and after the rotation.
    for reconnect in [false, true, true, true] {
        let (stop, ok, failed, served, config) = (
            stop.clone(),
            ok.clone(),
            failed.clone(),
            served.clone(),
            config.clone(),
        );
        let req = allowed_check(&key);
        let addr = server.grpc;
        workers.push(tokio::spawn(async move {
            let mut client = None;
            // Bounded: at most this many checks per worker even if stop never came.
            for _ in 0..20_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if client.is_none() {
                    match tls_client(addr, config.clone(), served.clone()).await {
                        Ok(c) => client = Some(c),
                        Err(e) => {
                            failed.lock().unwrap().push(format!("connect: {e:?}"));
                            continue;
                        }
                    }
                }
                let Some(c) = client.as_mut() else { continue };
                match c.check(req.clone()).await.map(|r| read(r.into_inner())) {
                    Ok(a) if a.status == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(a) => failed.lock().unwrap().push(format!("denied: {a:?}")),
                    Err(e) => failed.lock().unwrap().push(format!("check: {e}")),
                }
                if reconnect {
                    client = None;
                }
            }
        }));
    }
    // Traffic on every worker's connections before anything changes.
    let warmed = eventually(Duration::from_secs(10), || {
        let ok = ok.clone();
        async move { ok.load(Ordering::Relaxed) >= 40 }
    })
    .await;
    assert!(warmed, "checks pass before the rotation");
    // cert-manager's order: the certificate first, the key a moment later, each rewritten in
    // place; in between, the files do not make a pair and the old one must keep serving.
    let second = ca.server("claimgate-rotated");
    std::fs::write(&files.cert, &second.cert).unwrap();
    // The gap is the scenario, not a wait: the reloader (every 100 ms) sees a certificate
    // without its key for a few ticks while the workers keep checking.
    tokio::time::sleep(Duration::from_millis(350)).await;
    std::fs::write(&files.key, &second.key).unwrap();
    let rotated = eventually(Duration::from_secs(10), || {
        let served = served.clone();
        let want = second.der();
        async move { served.lock().unwrap().contains(&want) }
    })
    .await;
    // Checks keep passing after the rotation, on old connections and new ones.
    let after = ok.load(Ordering::Relaxed);
    let continued = eventually(Duration::from_secs(10), || {
        let ok = ok.clone();
        async move { ok.load(Ordering::Relaxed) >= after + 40 }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let served = served.lock().unwrap().clone();
    let first_der = common::pki::Pair {
        cert: String::from_utf8(first).unwrap(),
        key: String::new(),
    }
    .der();
    let (old, new) = (
        served.iter().filter(|c| **c == first_der).count(),
        served.iter().filter(|c| **c == second.der()).count(),
    );
    let ok = ok.load(Ordering::Relaxed);
    let failed = failed.lock().unwrap().clone();
    println!(
        "rotation under load: {ok} checks passed, {} failed; {old} connections got the first certificate, {new} the rotated one",
        failed.len()
    );
    assert!(rotated, "the rotated certificate was never served");
    assert!(continued, "checks went on after the rotation");
    assert!(
        failed.is_empty(),
        "failed checks: {:?}",
        &failed[..failed.len().min(5)]
    );
    assert!(old > 0 && new > 0 && ok > 0);
    assert_eq!(
        old + new,
        served.len(),
        "only the two certificates were served"
    );
    assert_eq!(
        served.last(),
        Some(&second.der()),
        "after the rotation only the new one"
    );
    server.stop().await;
}

#[tokio::test]
async fn serve_refuses_to_start_with_tls_files_that_do_not_make_a_pair() {
    tls_provider();
    let (dir, _) = config();
    let tls_dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("mesh CA");
    let files = mtls_files(&ca, tls_dir.path(), Duration::from_secs(10));
    // The key of another certificate.
    std::fs::write(&files.key, ca.server("other").key).unwrap();
    let err = Bound::bind(&options(dir.path(), files.clone()).into_options())
        .await
        .err()
        .expect("a mismatched key is refused");
    assert!(matches!(err, ServeError::Tls(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("tls.key") && text.contains("pair"), "{text}");

    std::fs::remove_file(&files.cert).unwrap();
    let err = Bound::bind(&options(dir.path(), files).into_options())
        .await
        .err()
        .expect("a missing certificate is refused");
    assert!(err.to_string().contains("tls.crt"), "{err}");
}
