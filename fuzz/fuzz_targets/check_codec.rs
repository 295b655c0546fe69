//! claimgate's in-place `CheckRequest` reader (`claimgate::server::service::RequestView`) against prost
//! and envoy-types, on any bytes.
//!
//! - Whatever prost decodes as `envoy.service.auth.v3.CheckRequest`, the reader reads, and
//!   sees the same fields a check uses (the oracle of `tests/check_codec.rs`).
//! - A message the reader accepts, prost decodes too when it is given only the fields the
//!   reader reads (`Reduced` below, with every other field unknown to it and skipped by
//!   prost's own rules): a fault the reader lets pass lies only in what no check reads. And
//!   that decode sees the same fields.
//! - The decision on the reader's view equals the decision on prost's decode (re-encoded by
//!   prost and read again), made by the real service on the example configuration: same
//!   status, headers and body, up to the decision id and a generated request id.
#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use claimgate::server::metrics::Metrics;
use claimgate::server::service::{CheckService, RequestView};
use claimgate::Store;
use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{
    HttpRequest, Request as AttrRequest,
};
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, CheckResponse};
use libfuzzer_sys::fuzz_target;
use prost::Message;

#[allow(dead_code)]
#[path = "../../tests/common/codec.rs"]
mod codec;

/// `CheckRequest` with only the fields claimgate reads; prost skips the rest as unknown.
#[derive(Clone, PartialEq, Message)]
struct Reduced {
    #[prost(message, optional, tag = "1")]
    attributes: Option<ReducedAttributes>,
}

#[derive(Clone, PartialEq, Message)]
struct ReducedAttributes {
    #[prost(message, optional, tag = "4")]
    request: Option<ReducedRequest>,
    #[prost(map = "string, string", tag = "10")]
    context_extensions: HashMap<String, String>,
}

#[derive(Clone, PartialEq, Message)]
struct ReducedRequest {
    #[prost(message, optional, tag = "2")]
    http: Option<ReducedHttp>,
}

#[derive(Clone, PartialEq, Message)]
struct ReducedHttp {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(string, tag = "2")]
    method: String,
    #[prost(map = "string, string", tag = "3")]
    headers: HashMap<String, String>,
    #[prost(string, tag = "4")]
    path: String,
    #[prost(string, tag = "5")]
    host: String,
    #[prost(message, optional, tag = "13")]
    header_map: Option<ReducedHeaderMap>,
}

#[derive(Clone, PartialEq, Message)]
struct ReducedHeaderMap {
    #[prost(message, repeated, tag = "1")]
    headers: Vec<ReducedHeader>,
}

#[derive(Clone, PartialEq, Message)]
struct ReducedHeader {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(string, tag = "2")]
    value: String,
    #[prost(bytes = "vec", tag = "3")]
    raw_value: Vec<u8>,
}

impl Reduced {
    /// The same fields in envoy-types' message.
    fn full(self) -> CheckRequest {
        CheckRequest {
            attributes: self.attributes.map(|a| AttributeContext {
                request: a.request.map(|r| AttrRequest {
                    time: None,
                    http: r.http.map(|h| HttpRequest {
                        id: h.id,
                        method: h.method,
                        headers: h.headers,
                        path: h.path,
                        host: h.host,
                        header_map: h.header_map.map(|m| HeaderMap {
                            headers: m
                                .headers
                                .into_iter()
                                .map(|h| HeaderValue {
                                    key: h.key,
                                    value: h.value,
                                    raw_value: h.raw_value,
                                })
                                .collect(),
                        }),
                        ..HttpRequest::default()
                    }),
                }),
                context_extensions: a.context_extensions,
                ..AttributeContext::default()
            }),
        }
    }
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    service: CheckService,
}

/// The service over the example configuration, with no token cache (each check verifies, so
/// an input decides the same whatever ran before it) and no wait for remote keys.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let loaded = claimgate::core::load::load(&claimgate_fuzz::repo_root().join("config"))
            .expect("the example configuration loads");
        let store = Arc::new(Store::new(loaded.snapshot));
        let service = CheckService::new(store, Metrics::new(), Duration::ZERO).with_token_cache(0);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        Fixture { runtime, service }
    })
}

/// The service's answer to `view`, without what differs between two checks of one request:
/// the decision id, and a request id made up when the request carries none.
fn decide(view: &RequestView) -> CheckResponse {
    let f = fixture();
    let answer = f.runtime.block_on(f.service.check(view));
    let id = answer.decision_id().as_bytes().to_vec();
    let mut bytes = answer.to_bytes();
    // Same length, so the message stays well formed.
    for i in 0..bytes.len().saturating_sub(id.len() - 1) {
        if bytes[i..].starts_with(&id) {
            bytes[i..i + id.len()].fill(b'0');
        }
    }
    let mut response = CheckResponse::decode(bytes.as_slice()).expect("prost reads the answer");
    if let Some(denied) = response.http_response.as_mut().and_then(|r| match r {
        envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse::DeniedResponse(
            d,
        ) => Some(d),
        _ => None,
    }) {
        let mut body: serde_json::Value =
            serde_json::from_str(&denied.body).expect("a denial's body is JSON");
        if let Some(o) = body.as_object_mut() {
            o.remove("request_id");
        }
        denied.body = body.to_string();
    }
    response
}

fuzz_target!(|data: &[u8]| {
    let view = RequestView::parse(Bytes::copy_from_slice(data));
    let reduced = Reduced::decode(data);
    if let Ok(full) = CheckRequest::decode(data) {
        let view = view
            .as_ref()
            .unwrap_or_else(|e| panic!("prost reads it, claimgate refuses: {e}"));
        assert_eq!(codec::seen_in_place(view), codec::seen_by_prost(&full));
        assert!(reduced.is_ok(), "prost reads it whole but not reduced");
    }
    let Ok(view) = view else {
        return;
    };
    let reduced =
        reduced.unwrap_or_else(|e| panic!("claimgate reads it, prost refuses what it reads: {e}"));
    let as_prost = reduced.full();
    assert_eq!(
        codec::seen_in_place(&view),
        codec::seen_by_prost(&as_prost),
        "read differently from prost"
    );
    // prost's decode, encoded again: the canonical spelling of the same request.
    let canonical = RequestView::parse(Bytes::from(as_prost.encode_to_vec()))
        .expect("claimgate reads what prost writes");
    assert_eq!(
        decide(&view),
        decide(&canonical),
        "decided differently from prost's decode"
    );
});
