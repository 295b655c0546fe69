//! The floor for `scripts/load.sh`: an Envoy ext_authz gRPC server that allows every request
//! without looking at it.
//!
//! Through Envoy it costs exactly the hop (HTTP/2, gRPC framing, Envoy building the
//! `CheckRequest`, tonic decoding it) and none of the work, so no ext_authz service can be
//! faster by deciding less. It is served the plain way: tonic's defaults on a multi-threaded
//! runtime, with TCP_NODELAY as claimgate sets it. What claimgate's serving adds (connection
//! limits, idle deadlines, keepalive) is therefore part of the difference, with the decision.
//!
//! ```sh
//! cargo run --release --example floor -- 127.0.0.1:9101
//! ```

use std::net::SocketAddr;

use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, HttpResponse, OkHttpResponse,
};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

/// Answers every check with OK and nothing else.
struct Floor;

#[tonic::async_trait]
impl Authorization for Floor {
    async fn check(
        &self,
        _request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        Ok(Response::new(CheckResponse {
            // Envoy reads a missing status as OK too; saying it keeps the answer explicit.
            status: Some(RpcStatus {
                code: 0,
                ..Default::default()
            }),
            http_response: Some(HttpResponse::OkResponse(OkHttpResponse::default())),
            ..Default::default()
        }))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: floor LISTEN_ADDR (for example 127.0.0.1:9101)"))?
        .parse()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("floor: allowing every check on {}", listener.local_addr()?);
    tonic::transport::Server::builder()
        .add_service(AuthorizationServer::new(Floor))
        .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true)))
        .await?;
    Ok(())
}
