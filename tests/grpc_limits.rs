//! What one gRPC client can make claimgate hold is bounded, and the server keeps answering while
//! someone pushes at the bounds: streams that announce huge messages are refused as soon as the
//! length prefix arrives, a connection is told how many streams it may open and how much it may
//! send ahead, checks beyond the in-flight limit are refused at once instead of queueing, and a
//! message over the size limit gets a clear RESOURCE_EXHAUSTED. Raw HTTP/2 (the `h2` crate)
//! against the `claimgate serve` binary.

mod common;

use std::time::Duration;

use common::h2_raw::{connection, partial_check, whole_check};
use common::process::Claimgate;
use common::*;
use h2::client::ResponseFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// Far longer than any answer takes; a wait this long means no answer.
const BOUND: Duration = Duration::from_secs(20);

/// gRPC's RESOURCE_EXHAUSTED.
const RESOURCE_EXHAUSTED: &str = "8";

fn config() -> ConfigDir {
    let key = TestKey::generate(Kind::Es256, "k1");
    fixture_config(&key)
}

/// The grpc-status and grpc-message of an answer (trailers-only or with trailers).
async fn grpc_status(response: ResponseFuture) -> (String, String) {
    let response = tokio::time::timeout(BOUND, response)
        .await
        .expect("an answer")
        .expect("an HTTP/2 response");
    let read = |h: &http::HeaderMap| {
        h.get("grpc-status").map(|s| {
            let message = h.get("grpc-message").map(|m| percent_decoded(m.as_bytes()));
            (s.to_str().unwrap().to_owned(), message.unwrap_or_default())
        })
    };
    if let Some(status) = read(response.headers()) {
        return status;
    }
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        let _ = chunk;
    }
    let trailers = body.trailers().await.unwrap().unwrap_or_default();
    read(&trailers).expect("a grpc-status")
}

/// grpc-message is percent-encoded on the wire.
fn percent_decoded(raw: &[u8]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        let hex = raw
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (raw[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn streams_announcing_huge_messages_are_refused_at_once_and_checks_keep_being_answered() {
    let dir = config();
    let claimgate = Claimgate::start(dir.path()).await;
    // What the review did: two connections, fifty streams each, every one announcing 4 MiB
    // and never finishing it.
    let mut open = Vec::new();
    for _ in 0..2 {
        let client = connection(claimgate.grpc).await;
        for _ in 0..50 {
            open.push(partial_check(&client, 4 << 20, 16 * 1024).await);
        }
    }
    let mut bodies = Vec::new();
    for (response, body) in open {
        let (status, message) = grpc_status(response).await;
        assert_eq!(status, RESOURCE_EXHAUSTED, "{message}");
        assert!(
            message.contains("too large") && message.contains("262144"),
            "the status names the limit: {message}"
        );
        bodies.push(body);
    }
    // Meanwhile, and with those streams' senders still open, a check is answered.
    let mut client = claimgate.client().await;
    let answer = tokio::time::timeout(BOUND, ask(&mut client, check("GET", "/v1/prod/x", &[])))
        .await
        .expect("a check is answered");
    assert_eq!(answer.status, 401);
    let refused = claimgate
        .metric(r#"claimgate_grpc_refused_total{reason="message_too_large"}"#)
        .await;
    assert_eq!(refused, Some(100.0));
}

#[tokio::test]
async fn a_connection_is_told_how_many_streams_it_may_open_and_how_much_it_may_send_ahead() {
    let dir = config();
    let claimgate =
        Claimgate::start_with(dir.path(), &["--grpc-max-concurrent-streams", "16"]).await;
    let mut peer = TcpStream::connect(claimgate.grpc).await.unwrap();
    peer.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    // The server's first frame is its SETTINGS.
    let mut head = [0u8; 9];
    tokio::time::timeout(BOUND, peer.read_exact(&mut head))
        .await
        .expect("the server's SETTINGS")
        .unwrap();
    assert_eq!(head[3], 0x4, "a SETTINGS frame: {head:?}");
    let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
    let mut payload = vec![0u8; len];
    peer.read_exact(&mut payload).await.unwrap();
    let settings: Vec<(u16, u32)> = payload
        .chunks(6)
        .map(|c| {
            (
                u16::from_be_bytes([c[0], c[1]]),
                u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
            )
        })
        .collect();
    let setting = |id: u16| settings.iter().find(|(i, _)| *i == id).map(|(_, v)| *v);
    assert_eq!(
        setting(0x3),
        Some(16),
        "MAX_CONCURRENT_STREAMS: {settings:?}"
    );
    assert_eq!(
        setting(0x4),
        Some(65_536),
        "INITIAL_WINDOW_SIZE: {settings:?}"
    );
}

#[tokio::test]
async fn checks_beyond_the_in_flight_limit_are_refused_at_once_and_answered_again_when_it_frees() {
    let dir = config();
    let claimgate = Claimgate::start_with(dir.path(), &["--max-in-flight-checks", "4"]).await;
    // Four checks whose messages never finish hold the four places.
    let holder = connection(claimgate.grpc).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(partial_check(&holder, 1000, 10).await);
    }
    let mut client = claimgate.client().await;
    // Which of streams arriving together is refused is up to the runtime: the service is
    // called as each stream's task first runs, not in the order the streams arrived. A holder
    // that ran after this check was the one refused (a loaded machine runs them late): hold
    // one more, up to the stream limit.
    let held = std::sync::Mutex::new(held);
    let refused = eventually(BOUND, || {
        let mut client = client.clone();
        let (holder, held) = (&holder, &held);
        async move {
            if matches!(
                client.check(check("GET", "/v1/prod/x", &[])).await,
                Err(s) if s.code() == tonic::Code::ResourceExhausted
            ) {
                return true;
            }
            if held.lock().unwrap().len() < 16 {
                let more = partial_check(holder, 1000, 10).await;
                held.lock().unwrap().push(more);
            }
            false
        }
    })
    .await;
    assert!(refused, "a fifth check is refused with RESOURCE_EXHAUSTED");
    let held = held.into_inner().unwrap();
    // The places are the holders' now (every check above was answered at once), and their
    // own connection is no way around the limit: a whole check sent on it is refused too.
    let same_connection = whole_check(&holder).await;
    assert_eq!(
        grpc_status(same_connection).await.0,
        RESOURCE_EXHAUSTED,
        "a check on the holders' own connection is refused"
    );
    let counted = claimgate
        .metric(r#"claimgate_grpc_refused_total{reason="in_flight"}"#)
        .await;
    assert!(counted >= Some(1.0), "{counted:?}");
    // Health checks are not checks: the replica still reports itself serving.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", claimgate.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status(), ServingStatus::Serving);
    // The holders go away: checks are answered again.
    drop(held);
    drop(holder);
    let answered = eventually(BOUND, || {
        let mut client = client.clone();
        async move {
            match client.check(check("GET", "/v1/prod/x", &[])).await {
                Ok(r) => read(r.into_inner()).status == 401,
                Err(_) => false,
            }
        }
    })
    .await;
    assert!(answered, "checks are answered once the places free");
    assert_eq!(
        ask(&mut client, check("GET", "/v1/prod/x", &[]))
            .await
            .status,
        401
    );
    // The same whole check as on the holders' connection is decided now (so its refusal
    // above was the limit's).
    let fresh = connection(claimgate.grpc).await;
    assert_eq!(grpc_status(whole_check(&fresh).await).await.0, "0");
}

#[tokio::test]
async fn a_check_request_over_the_message_size_limit_is_refused_with_resource_exhausted() {
    let dir = config();
    let claimgate = Claimgate::start_with(dir.path(), &["--grpc-max-message-size", "2KiB"]).await;
    let mut client = claimgate.client().await;
    let small = check("GET", "/v1/prod/x", &[]);
    assert_eq!(ask(&mut client, small).await.status, 401);
    let padding = "x".repeat(4096);
    let large = check("GET", "/v1/prod/x", &[("x-padding", &padding)]);
    let status = client.check(large).await.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("2048"),
        "the status names the limit: {status:?}"
    );
    // The connection it came on keeps working.
    let small = check("GET", "/v1/prod/x", &[]);
    assert_eq!(ask(&mut client, small).await.status, 401);
}
