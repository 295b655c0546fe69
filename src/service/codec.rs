//! The gRPC side of the check: `envoy.service.auth.v3.Authorization/Check` served with a codec
//! that reads the request in place and writes the answer directly.
//!
//! envoy-types' generated server is fixed to prost's codec, which decodes every field of the
//! request into owned values and builds the response as prost values before encoding it.
//! This is the same routing and the same `tonic::server::Grpc` underneath, with the codec
//! swapped.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Buf as _;
use tonic::body::Body as TonicBody;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{http, Body, BoxFuture, Service, StdError};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::Status;

use super::{Answer, CheckService, RequestView};

/// The gRPC path of the one method.
const CHECK_PATH: &str = "/envoy.service.auth.v3.Authorization/Check";

/// `envoy.service.auth.v3.Authorization` over a `CheckService`.
#[derive(Debug, Clone)]
pub struct AuthorizationService {
    inner: Arc<CheckService>,
}

impl AuthorizationService {
    /// Serve `service`'s checks.
    pub fn new(service: CheckService) -> Self {
        AuthorizationService {
            inner: Arc::new(service),
        }
    }
}

impl NamedService for AuthorizationService {
    const NAME: &'static str = "envoy.service.auth.v3.Authorization";
}

/// Reads a `CheckRequest` in place and writes an `Answer`.
#[derive(Debug, Clone, Copy, Default)]
struct CheckCodec;

impl Codec for CheckCodec {
    type Encode = Answer;
    type Decode = RequestView;
    type Encoder = CheckCodec;
    type Decoder = CheckCodec;

    fn encoder(&mut self) -> Self::Encoder {
        CheckCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        CheckCodec
    }
}

impl Decoder for CheckCodec {
    type Item = RequestView;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<RequestView>, Status> {
        // Split off, not copied: the view keeps the received bytes for the check's duration.
        let bytes = src.copy_to_bytes(src.remaining());
        // prost's codec answers a message it cannot read with INTERNAL too.
        RequestView::parse(bytes)
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

impl Encoder for CheckCodec {
    type Item = Answer;
    type Error = Status;

    fn encode(&mut self, answer: Answer, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        // tonic's buffer already holds far more than an answer, and grows if it must.
        answer.encode(dst);
        Ok(())
    }
}

struct Check(Arc<CheckService>);

impl UnaryService<RequestView> for Check {
    type Response = Answer;
    type Future = BoxFuture<tonic::Response<Answer>, Status>;

    fn call(&mut self, request: tonic::Request<RequestView>) -> Self::Future {
        let inner = Arc::clone(&self.0);
        Box::pin(async move { Ok(tonic::Response::new(inner.check(request.get_ref()).await)) })
    }
}

impl<B> Service<http::Request<B>> for AuthorizationService
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<TonicBody>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != CHECK_PATH {
            return Box::pin(async move { Ok(Status::unimplemented("").into_http()) });
        }
        let inner = Arc::clone(&self.inner);
        Box::pin(async move { Ok(Grpc::new(CheckCodec).unary(Check(inner), req).await) })
    }
}
