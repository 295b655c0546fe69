//! The oracle for the in-place reader of `CheckRequest`: what a check reads, taken from
//! prost's decode the way claimgate read it before the reader existed, and the same taken
//! from the reader.

use bytes::Bytes;
use claimgate::server::service::RequestView;
use envoy_types::pb::envoy::config::core::v3::HeaderValue;
use envoy_types::pb::envoy::service::auth::v3::CheckRequest;
use prost::Message;

pub const READ: [&str; 3] = ["authorization", ":authority", "x-request-id"];
pub const EXTENSIONS: [&str; 3] = ["resource", "role", "enforcement"];

/// Everything a check reads from a request.
#[derive(Debug, PartialEq, Eq)]
pub struct Seen {
    http: bool,
    id: String,
    method: String,
    path: String,
    host: String,
    /// Per header of `READ`: its single value, or `Err` when it came more than once.
    single: Vec<Result<Option<String>, ()>>,
    /// Names that look like claimgate's own headers, sorted, once each.
    ours: Vec<String>,
    ext: Vec<Option<String>>,
}

fn is_ours(name: &str) -> bool {
    const PREFIX: &str = "x-claimgate-";
    name.len() >= PREFIX.len()
        && name
            .bytes()
            .zip(PREFIX.bytes())
            .all(|(n, p)| (if n == b'_' { b'-' } else { n }).eq_ignore_ascii_case(&p))
}

/// The oracle: prost's decode, read the way claimgate read it before.
pub fn seen_by_prost(req: &CheckRequest) -> Seen {
    let http = req
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref());
    let ext = req.attributes.as_ref().map(|a| &a.context_extensions);
    let ext = EXTENSIONS
        .iter()
        .map(|e| ext.and_then(|m| m.get(*e)).cloned())
        .collect();
    let Some(http) = http else {
        return Seen {
            http: false,
            id: String::new(),
            method: String::new(),
            path: String::new(),
            host: String::new(),
            single: vec![Ok(None); 3],
            ours: vec![],
            ext,
        };
    };
    let list = http
        .header_map
        .as_ref()
        .filter(|m| !m.headers.is_empty())
        .map(|m| &m.headers);
    let single = READ
        .iter()
        .map(|name| match list {
            None => Ok(http.headers.get(*name).cloned()),
            Some(list) => {
                let found: Vec<&HeaderValue> = list
                    .iter()
                    .filter(|h| h.key.eq_ignore_ascii_case(name))
                    .collect();
                match found.as_slice() {
                    [] => Ok(None),
                    [h] if h.raw_value.is_empty() => Ok(Some(h.value.clone())),
                    [h] => Ok(Some(
                        String::from_utf8(h.raw_value.clone())
                            .unwrap_or_else(|_| "\u{fffd}".to_owned()),
                    )),
                    _ => Err(()),
                }
            }
        })
        .collect();
    let mut ours: Vec<String> = match list {
        None => http.headers.keys().cloned().collect(),
        Some(list) => list.iter().map(|h| h.key.clone()).collect(),
    };
    ours.retain(|n| is_ours(n));
    ours.sort();
    ours.dedup();
    Seen {
        http: true,
        id: http.id.clone(),
        method: http.method.clone(),
        path: http.path.clone(),
        host: http.host.clone(),
        single,
        ours,
        ext,
    }
}

/// The same read in place.
pub fn seen_in_place(view: &RequestView) -> Seen {
    let headers = view.headers();
    let mut ours: Vec<String> = headers
        .iter()
        .flat_map(|h| h.ours())
        .map(str::to_owned)
        .collect();
    ours.sort();
    ours.dedup();
    Seen {
        http: view.has_http(),
        id: view.id().to_owned(),
        method: view.method().to_owned(),
        path: view.path().to_owned(),
        host: view.host().to_owned(),
        single: READ
            .iter()
            .map(|name| match &headers {
                None => Ok(None),
                Some(h) => h.single(name).map(|v| v.map(str::to_owned)).map_err(|_| ()),
            })
            .collect(),
        ours,
        ext: EXTENSIONS
            .iter()
            .map(|e| view.extension(e).map(str::to_owned))
            .collect(),
    }
}

/// Both read `bytes` alike (prost must accept them).
pub fn assert_reads_as_prost(label: &str, bytes: &[u8]) {
    let req = CheckRequest::decode(bytes).unwrap_or_else(|e| panic!("{label}: prost: {e}"));
    let view = RequestView::parse(Bytes::copy_from_slice(bytes))
        .unwrap_or_else(|e| panic!("{label}: the in-place reader: {e}"));
    assert_eq!(seen_in_place(&view), seen_by_prost(&req), "{label}");
}
