//! The floor for `scripts/load.sh`: an Envoy ext_authz gRPC server that allows every request
//! without looking at it.
//!
//! Through Envoy it costs exactly the hop (HTTP/2, gRPC framing, Envoy building the
//! `CheckRequest`, tonic decoding it) and none of the work, so no ext_authz service can be
//! faster by deciding less. It is served the plain way: tonic's defaults on a multi-threaded
//! runtime, with TCP_NODELAY as claimgate sets it. What claimgate's serving adds (connection
//! limits, idle deadlines, keepalive) is therefore part of the difference, with the decision.
//!
//! With `identity` after the address it answers every check with an allow shaped like
//! claimgate's (the same six headers and six dynamic-metadata fields, values of typical
//! length, all constant): the same hop and the same answer for Envoy to apply, still without
//! the work of deciding. Beside the plain floor it shows what Envoy spends on the answer
//! itself.
//!
//! ```sh
//! cargo run --release --example floor -- 127.0.0.1:9101
//! cargo run --release --example floor -- 127.0.0.1:9102 identity
//! ```

use std::net::SocketAddr;

use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, HeaderAppendAction,
    HeaderValue, HeaderValueOption, HttpResponse, OkHttpResponse,
};
use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

/// Answers every check with OK: with nothing else, or with a constant identity allow.
struct Floor {
    answer: CheckResponse,
}

/// What a claimgate allow carries, with constant values of typical length:
/// (header, dynamic metadata field, value).
const IDENTITY: [(&str, &str, &str); 6] = [
    (
        "x-claimgate-decision-id",
        "decision_id",
        "019ad2f4-6b1e-7c3a-9f2d-4e8b1a7c5d30",
    ),
    ("x-claimgate-identity", "identity", "api-ci"),
    ("x-claimgate-sso", "sso", "dev"),
    ("x-claimgate-subject", "subject", "load-warm"),
    ("x-claimgate-resource", "resource", "models/acme/llama-70b"),
    ("x-claimgate-role", "role", "viewer"),
];

impl Floor {
    fn new(identity: bool) -> Floor {
        let mut ok = OkHttpResponse::default();
        let mut metadata = None;
        if identity {
            ok.headers = IDENTITY
                .iter()
                .map(|(h, _, v)| HeaderValueOption {
                    header: Some(HeaderValue {
                        key: (*h).to_owned(),
                        value: (*v).to_owned(),
                        ..Default::default()
                    }),
                    append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
                    ..Default::default()
                })
                .collect();
            metadata = Some(Struct {
                fields: IDENTITY
                    .iter()
                    .map(|(_, f, v)| {
                        let value = Value {
                            kind: Some(Kind::StringValue((*v).to_owned())),
                        };
                        ((*f).to_owned(), value)
                    })
                    .collect(),
            });
        }
        Floor {
            answer: CheckResponse {
                // Envoy reads a missing status as OK too; saying it keeps the answer explicit.
                status: Some(RpcStatus {
                    code: 0,
                    ..Default::default()
                }),
                http_response: Some(HttpResponse::OkResponse(ok)),
                dynamic_metadata: metadata,
            },
        }
    }
}

#[tonic::async_trait]
impl Authorization for Floor {
    async fn check(
        &self,
        _request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        Ok(Response::new(self.answer.clone()))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let usage = "usage: floor LISTEN_ADDR [identity] (for example 127.0.0.1:9101)";
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!(usage))?
        .parse()?;
    let identity = match std::env::args().nth(2).as_deref() {
        None => false,
        Some("identity") => true,
        Some(other) => anyhow::bail!("unknown answer {other:?}; {usage}"),
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!(
        "floor: allowing every check on {}{}",
        listener.local_addr()?,
        if identity {
            " with a constant identity"
        } else {
            ""
        }
    );
    tonic::transport::Server::builder()
        .add_service(AuthorizationServer::new(Floor::new(identity)))
        .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true)))
        .await?;
    Ok(())
}
