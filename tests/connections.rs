//! Connections on both ports are bounded: a half-sent or silent connection is closed, a
//! handshake that never completes is closed long before the idle timeout, an HTTP/2 peer that
//! stops answering PINGs is dropped, gRPC connections beyond the limit wait without disturbing
//! the open ones, silent sockets at the HTTP limit never keep the probes from answering, and
//! `/metrics` counts the open connections per listener. The `claimgate serve` binary runs with
//! short timeouts given as flags; every wait is bounded, and nothing asserts how fast anything
//! happens beyond answering long before a timeout that would otherwise apply.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::process::Claimgate;
use common::*;
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Far longer than any timeout the tests set: a connection still open after this is kept.
const BOUND: Duration = Duration::from_secs(20);

fn config() -> ConfigDir {
    let key = TestKey::generate(Kind::Es256, "k1");
    fixture_config(&key)
}

/// Read until claimgate closes the connection (end of stream or reset); everything it sent
/// before, or `None` if the connection is still open after `bound`.
async fn closed_within(stream: &mut TcpStream, bound: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let read_all = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(bound, read_all).await.ok()?;
    Some(got)
}

/// Send a GET on an open connection and read exactly one answer (by its content-length).
async fn get_on(stream: &mut TcpStream, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nhost: claimgate.test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let answer = async {
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the answer: {got:?}");
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().to_owned())
                    })
                    .and_then(|v| v.parse::<usize>().ok())
                    .expect("content-length");
                if body.len() >= length {
                    return text.into_owned();
                }
            }
        }
    };
    tokio::time::timeout(BOUND, answer)
        .await
        .expect("an answer on the open connection")
}

/// The frame types of an HTTP/2 byte stream, as far as it is complete.
fn frame_types(mut data: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while data.len() >= 9 {
        let len = usize::from(data[0]) << 16 | usize::from(data[1]) << 8 | usize::from(data[2]);
        types.push(data[3]);
        data = data.get(9 + len..).unwrap_or_default();
    }
    types
}

async fn grpc_answers(addr: SocketAddr) -> u16 {
    let mut client = AuthorizationClient::connect(format!("http://{addr}"))
        .await
        .expect("connect to claimgate");
    ask(&mut client, check("GET", "/v1/prod/x", &[]))
        .await
        .status
}

#[tokio::test]
async fn a_half_sent_http_request_is_closed_after_the_header_timeout() {
    let dir = config();
    let claimgate = Claimgate::start_with(dir.path(), &["--http-header-timeout", "1s"]).await;
    let mut half = TcpStream::connect(claimgate.http).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nhost: claimgate.test\r\n")
        .await
        .unwrap();
    let answer = closed_within(&mut half, BOUND)
        .await
        .expect("a request head that never ends is not waited for");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    // Whole requests are still answered.
    assert_eq!(claimgate.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_on_both_ports() {
    let dir = config();
    let claimgate = Claimgate::start_with(
        dir.path(),
        &[
            "--idle-timeout",
            "2s",
            "--grpc-keepalive-interval",
            "1s",
            // Longer than the bound: on the HTTP port too, the idle timeout is what acts.
            "--http-header-timeout",
            "60s",
            "--handshake-timeout",
            "60s",
        ],
    )
    .await;
    for (port, addr) in [("gRPC", claimgate.grpc), ("HTTP", claimgate.http)] {
        let mut silent = TcpStream::connect(addr).await.unwrap();
        assert!(
            closed_within(&mut silent, BOUND).await.is_some(),
            "a silent connection to the {port} port is closed"
        );
    }
    // Connections that talk are served as before.
    assert_eq!(grpc_answers(claimgate.grpc).await, 401);
    assert_eq!(claimgate.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn an_http2_connection_that_stops_answering_pings_is_closed() {
    let dir = config();
    let claimgate = Claimgate::start_with(
        dir.path(),
        &[
            "--grpc-keepalive-interval",
            "1s",
            "--grpc-keepalive-timeout",
            "1s",
            // Longer than the bound: only the keepalive can close this connection in time.
            "--idle-timeout",
            "60s",
        ],
    )
    .await;
    let mut peer = TcpStream::connect(claimgate.grpc).await.unwrap();
    // A client preface and an empty SETTINGS frame, then nothing: no SETTINGS ack, no PING ack.
    peer.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let received = closed_within(&mut peer, BOUND)
        .await
        .expect("a peer that does not answer PINGs is dropped");
    let types = frame_types(&received);
    assert!(
        types.contains(&0x6),
        "claimgate sent a PING first: {types:?}"
    );
}

/// Flags under which nothing but the connection limit can free a silent HTTP connection
/// within [`BOUND`].
const ONLY_THE_LIMIT: [&str; 6] = [
    "--http-header-timeout",
    "60s",
    "--idle-timeout",
    "120s",
    "--handshake-timeout",
    "60s",
];

#[tokio::test]
async fn at_the_http_limit_a_new_connection_closes_a_silent_one_and_the_open_ones_keep_working() {
    let dir = config();
    let mut flags = vec!["--http-max-connections", "2"];
    flags.extend(ONLY_THE_LIMIT);
    let claimgate = Claimgate::start_with(dir.path(), &flags).await;
    let mut open = TcpStream::connect(claimgate.http).await.unwrap();
    assert!(get_on(&mut open, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));
    let mut silent = TcpStream::connect(claimgate.http).await.unwrap();
    // The third connection is served at once: the silent one, which never sent a request,
    // makes room, and not the one that did.
    let mut third = TcpStream::connect(claimgate.http).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: claimgate.test\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = closed_within(&mut third, BOUND)
        .await
        .expect("the new connection is served");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        closed_within(&mut silent, BOUND).await.is_some(),
        "the silent connection was closed for it"
    );
    assert!(get_on(&mut open, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn probes_answer_promptly_while_silent_sockets_hold_every_http_connection() {
    let dir = config();
    // The default limit, 128.
    let claimgate = Claimgate::start_with(dir.path(), &ONLY_THE_LIMIT).await;
    let mut silent = Vec::new();
    for _ in 0..128 {
        silent.push(TcpStream::connect(claimgate.http).await.unwrap());
    }
    // Each probe on a new connection, as the kubelet makes them; several rounds, so that each
    // one finds the port full again. Without eviction each would wait for the 60s timeouts.
    for round in 0..3 {
        for path in ["/healthz", "/readyz", "/metrics"] {
            let reply = tokio::time::timeout(Duration::from_secs(5), claimgate.get(path))
                .await
                .unwrap_or_else(|_| panic!("round {round}: {path} answered promptly"));
            assert_eq!(reply.status, 200, "round {round}: {path}: {}", reply.body);
        }
        silent.push(TcpStream::connect(claimgate.http).await.unwrap());
    }
}

#[tokio::test]
async fn a_connection_that_never_completes_its_handshake_is_closed_long_before_the_idle_timeout() {
    let dir = config();
    let claimgate = Claimgate::start_with(
        dir.path(),
        &[
            "--handshake-timeout",
            "1s",
            // Longer than the bound: only the handshake timeout can close these in time.
            "--idle-timeout",
            "120s",
            "--http-header-timeout",
            "60s",
        ],
    )
    .await;
    // A client that connected before the others: its connection is older than the handshake
    // timeout when it asks again, and still served.
    let mut established = claimgate.client().await;
    let request = || check("GET", "/v1/prod/x", &[]);
    assert_eq!(ask(&mut established, request()).await.status, 401);
    let cases: [(&str, SocketAddr, &[u8]); 3] = [
        ("a silent gRPC connection", claimgate.grpc, b""),
        (
            "a gRPC connection with half the HTTP/2 preface",
            claimgate.grpc,
            b"PRI * HTTP/2.0\r\n",
        ),
        ("a silent HTTP connection", claimgate.http, b""),
    ];
    for (what, addr, sent) in cases {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(sent).await.unwrap();
        assert!(
            closed_within(&mut stream, BOUND).await.is_some(),
            "{what} is closed"
        );
    }
    assert_eq!(ask(&mut established, request()).await.status, 401);
    assert_eq!(claimgate.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn metrics_count_the_open_connections_of_each_listener() {
    let dir = config();
    let claimgate = Claimgate::start_with(dir.path(), &["--handshake-timeout", "60s"]).await;
    let grpc = r#"claimgate_open_connections{listener="grpc"}"#;
    let http = r#"claimgate_open_connections{listener="http"}"#;
    assert_eq!(claimgate.metric(grpc).await, Some(0.0));
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(claimgate.grpc).await.unwrap());
    }
    for _ in 0..2 {
        held.push(TcpStream::connect(claimgate.http).await.unwrap());
    }
    // The scrape's own connection is the third HTTP one.
    let counted = eventually(BOUND, || async {
        claimgate.metric(grpc).await == Some(3.0) && claimgate.metric(http).await == Some(3.0)
    })
    .await;
    assert!(counted, "{}", claimgate.get("/metrics").await.body);
    drop(held);
    let closed = eventually(BOUND, || async {
        claimgate.metric(grpc).await == Some(0.0) && claimgate.metric(http).await == Some(1.0)
    })
    .await;
    assert!(closed, "{}", claimgate.get("/metrics").await.body);
}

#[tokio::test]
async fn grpc_connections_beyond_the_limit_wait_and_the_open_ones_keep_working() {
    let dir = config();
    let claimgate = Claimgate::start_with(dir.path(), &["--grpc-max-connections", "1"]).await;
    let mut open = claimgate.client().await;
    let request = || check("GET", "/v1/prod/x", &[]);
    assert_eq!(ask(&mut open, request()).await.status, 401);
    let waiting = tokio::spawn(grpc_answers(claimgate.grpc));
    // The open connection keeps being served while the second waits for a slot. Spaced out
    // so the second would have been answered by now if the limit let it in: that it is still
    // waiting is an absence, which only waiting can show.
    for _ in 0..3 {
        assert_eq!(ask(&mut open, request()).await.status, 401);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!waiting.is_finished(), "the second connection waits");
    drop(open);
    let status = tokio::time::timeout(BOUND, waiting)
        .await
        .expect("the waiting connection is served once a slot frees")
        .unwrap();
    assert_eq!(status, 401);
}

#[tokio::test]
async fn settings_that_would_cut_healthy_connections_are_refused_at_start() {
    let dir = config();
    let out = std::process::Command::new(bin())
        .args(["serve", "--config"])
        .arg(dir.path())
        .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .args(["--idle-timeout", "10s", "--grpc-keepalive-interval", "30s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("keepalive interval"), "{stderr}");
}
