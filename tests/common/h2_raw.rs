//! Raw HTTP/2 against the gRPC port (the `h2` crate), for Check streams a test shapes frame by
//! frame: a message announced and never finished, a whole one on a chosen connection.

use std::net::SocketAddr;

use bytes::Bytes;
use h2::client::{ResponseFuture, SendRequest};
use h2::SendStream;
use tokio::net::TcpStream;

/// An HTTP/2 connection to `addr`, driven in its own task.
pub async fn connection(addr: SocketAddr) -> SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// The headers of a Check stream.
pub fn check_request() -> http::Request<()> {
    http::Request::builder()
        .method("POST")
        .uri("http://claimgate.test/envoy.service.auth.v3.Authorization/Check")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap()
}

/// Open a Check stream whose message announces `announced` bytes, send `sent` of them and
/// leave the stream open.
pub async fn partial_check(
    client: &SendRequest<Bytes>,
    announced: u32,
    sent: usize,
) -> (ResponseFuture, SendStream<Bytes>) {
    let mut client = client.clone().ready().await.unwrap();
    let (response, mut body) = client.send_request(check_request(), false).unwrap();
    let mut data = vec![0u8; 5 + sent];
    data[1..5].copy_from_slice(&announced.to_be_bytes());
    body.send_data(Bytes::from(data), false).unwrap();
    (response, body)
}

/// Send a whole Check (an empty CheckRequest, which is answered with a denial) and end the
/// stream: answered at once whether it is decided or refused.
pub async fn whole_check(client: &SendRequest<Bytes>) -> ResponseFuture {
    let mut client = client.clone().ready().await.unwrap();
    let (response, mut body) = client.send_request(check_request(), false).unwrap();
    body.send_data(Bytes::from_static(&[0u8; 5]), true).unwrap();
    response
}
