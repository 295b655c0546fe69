//! Write the body of one ext_authz `Check` call as it travels over gRPC (a 5-byte frame header,
//! then the protobuf `CheckRequest`), for `h2load -d` in `scripts/load.sh`: the gRPC servers
//! measured alone, every call the same request.
//!
//! The request is shaped like the one Envoy's HTTP filter sends for the example configuration
//! (`envoy/envoy.yaml`): method, path, host, scheme and protocol in their own fields, and only the
//! allowed headers (`authorization`, `x-request-id`) in the header map.
//!
//! ```sh
//! cargo run --release --example check_body -- "$TOKEN" check.bin
//! ```

use std::collections::HashMap;

use anyhow::Context;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
use prost::Message;

const PATH: &str = "/v1/models/acme/llama-70b/info";

fn main() -> anyhow::Result<()> {
    let usage = "usage: check_body TOKEN OUT";
    let mut args = std::env::args().skip(1);
    let token = args.next().context(usage)?;
    let out = args.next().context(usage)?;

    let headers = HashMap::from([
        ("authorization".to_owned(), format!("Bearer {token}")),
        (
            "x-request-id".to_owned(),
            "6a1c1f0e-6a43-4a47-9f6e-2f7a1c0de001".to_owned(),
        ),
    ]);
    let request = CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    id: "1451366207375331101".into(),
                    method: "GET".into(),
                    path: PATH.into(),
                    host: "127.0.0.1".into(),
                    scheme: "http".into(),
                    protocol: "HTTP/1.1".into(),
                    headers,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    };

    // gRPC length-prefixed message: compressed flag (0), big-endian length, the message.
    let message = request.encode_to_vec();
    let len = u32::try_from(message.len()).context("the request is over 4 GiB")?;
    let mut frame = Vec::with_capacity(5 + message.len());
    frame.push(0);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&message);
    std::fs::write(&out, frame).with_context(|| format!("cannot write {out}"))?;
    Ok(())
}
