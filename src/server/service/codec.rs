//! The gRPC side of the check: `envoy.service.auth.v3.Authorization/Check` served with a codec
//! that reads the request in place and writes the answer directly.
//!
//! envoy-types' generated server is fixed to prost's codec, which decodes every field of the
//! request into owned values and builds the response as prost values before encoding it.
//! This is the same routing and the same `tonic::server::Grpc` underneath, with the codec
//! swapped.
//!
//! Memory: tonic reserves a message's announced length as soon as its 5-byte prefix arrives,
//! and a check holds those bytes until its answer is sent. Two bounds keep that small
//! whoever is sending: a message longer than `max_message_size` is refused with
//! RESOURCE_EXHAUSTED as soon as its length prefix arrives (nothing of it is buffered), and at most `max_in_flight` checks are received or
//! decided at once over all connections; the next one is refused with RESOURCE_EXHAUSTED at
//! once (Envoy can retry it on another replica) instead of queueing. So the request bytes held
//! are at most `max_in_flight × max_message_size`, however many connections and streams there
//! are. The counter is one atomic add and one subtract per check: no lock, no allocation.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    max_message_size: usize,
    in_flight: Arc<InFlight>,
}

impl AuthorizationService {
    /// Serve `service`'s checks with the default limits.
    pub fn new(service: CheckService) -> Self {
        let defaults = crate::server::listener::ConnectionOptions::default();
        Self::with_limits(
            service,
            defaults.grpc_max_message_size,
            defaults.max_in_flight_checks,
        )
    }

    /// Serve `service`'s checks: requests up to `max_message_size` bytes, at most
    /// `max_in_flight` at once.
    pub fn with_limits(
        service: CheckService,
        max_message_size: usize,
        max_in_flight: usize,
    ) -> Self {
        AuthorizationService {
            inner: Arc::new(service),
            max_message_size,
            in_flight: Arc::new(InFlight {
                now: AtomicUsize::new(0),
                max: max_in_flight,
            }),
        }
    }
}

/// How many checks are being received or decided now, and the most allowed.
#[derive(Debug)]
struct InFlight {
    now: AtomicUsize,
    max: usize,
}

/// One check in flight, counted until dropped.
struct Entered(Arc<InFlight>);

impl InFlight {
    fn enter(self: &Arc<Self>) -> Option<Entered> {
        let before = self.now.fetch_add(1, Ordering::AcqRel);
        let entered = Entered(Arc::clone(self));
        // Over the limit: the guard undoes the add as it drops.
        (before < self.max).then_some(entered)
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::AcqRel);
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

/// The gRPC status codes spec answers a message larger than the server accepts with
/// RESOURCE_EXHAUSTED (as grpc-go and grpc-java do); tonic 0.14's decoder says OUT_OF_RANGE.
/// A check never fails with a status of its own, so an OUT_OF_RANGE here is always the
/// decoder's, in a trailers-only answer; a check's answer keeps its status in the trailers
/// and is untouched. Whether it was such a refusal.
fn too_large_is_resource_exhausted(answer: &mut http::Response<TonicBody>) -> bool {
    let out_of_range = answer
        .headers()
        .get("grpc-status")
        .is_some_and(|s| s.as_bytes() == b"11");
    if !out_of_range {
        return false;
    }
    answer
        .headers_mut()
        .insert("grpc-status", http::HeaderValue::from_static("8"));
    true
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
        let Some(entered) = self.in_flight.enter() else {
            self.inner.metrics.refused_in_flight();
            tracing::debug!(
                limit = self.in_flight.max,
                "check refused: too many checks in flight"
            );
            return Box::pin(async move {
                Ok(Status::resource_exhausted("too many checks in flight; retry").into_http())
            });
        };
        let inner = Arc::clone(&self.inner);
        let limit = self.max_message_size;
        Box::pin(async move {
            let _entered = entered;
            let mut answer = Grpc::new(CheckCodec)
                .max_decoding_message_size(limit)
                .unary(Check(Arc::clone(&inner)), req)
                .await;
            if too_large_is_resource_exhausted(&mut answer) {
                inner.metrics.refused_too_large();
            }
            Ok(answer)
        })
    }
}
