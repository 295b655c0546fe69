//! The in-place reader of Envoy's `CheckRequest` reads what prost reads.
//!
//! The oracle is how claimgate read requests before: decode with prost, then take the headers
//! from `header_map` when it holds any and from the `headers` map otherwise, a single-value
//! header from the map by exact key or from the list by name in any case (twice is an error),
//! `raw_value` before `value` (not UTF-8: U+FFFD), and the context extensions from the map.
//! Every message prost accepts must read the same; the reader must never panic on any bytes.
//! Requests come from a generator (merged repeats, unknown fields and groups everywhere), from
//! mutations of those, and from real requests captured from Envoy 1.40 (`tests/fixtures/`).

mod common;

use std::collections::HashMap;

use bytes::Bytes;
use claimgate::server::service::RequestView;
use common::codec::{seen_by_prost, seen_in_place, READ};
use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{
    HttpRequest, Peer, Request as AttrRequest, TlsSession,
};
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
use proptest::prelude::*;
use prost::Message;

/// Both readers on `bytes`: when prost accepts them, the reader must too, and see the same.
/// Returns whether prost accepted them.
fn agree(bytes: &[u8]) -> Result<bool, TestCaseError> {
    let in_place = RequestView::parse(Bytes::copy_from_slice(bytes));
    match CheckRequest::decode(bytes) {
        Ok(req) => {
            let view = in_place.map_err(|e| {
                TestCaseError::fail(format!("prost reads it, the reader refused: {e}"))
            })?;
            prop_assert_eq!(seen_in_place(&view), seen_by_prost(&req));
            Ok(true)
        }
        // A fault prost finds may lie in a part the reader skips: then it may read the rest.
        Err(_) => Ok(false),
    }
}

// ---- generated requests ---------------------------------------------------------------------

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("authorization".to_owned()),
        Just("Authorization".to_owned()),
        Just("AUTHORIZATION".to_owned()),
        Just(":authority".to_owned()),
        Just("x-request-id".to_owned()),
        Just("X-Request-Id".to_owned()),
        Just("x-claimgate-identity".to_owned()),
        Just("X-Claimgate-Role".to_owned()),
        Just("x_claimgate_identity".to_owned()),
        Just("x-claimgate-".to_owned()),
        Just("x-claimgate".to_owned()),
        Just("cookie".to_owned()),
        Just("".to_owned()),
        "[a-z_:-]{1,12}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("Bearer abc.def.ghi".to_owned()),
        "[ -~]{0,24}",
        "\\PC{0,8}",
    ]
}

fn raw_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(vec![]),
        Just(vec![0xff, 0xfe]),
        Just(b"caf\xe9".to_vec()),
        Just("Bearer \u{e9}t\u{e9}".as_bytes().to_vec()),
        proptest::collection::vec(any::<u8>(), 0..12),
    ]
}

fn header_value() -> impl Strategy<Value = HeaderValue> {
    (name(), text(), raw_value()).prop_map(|(key, value, raw_value)| HeaderValue {
        key,
        value,
        raw_value,
    })
}

fn http_request() -> impl Strategy<Value = HttpRequest> {
    (
        (text(), text(), text(), text()),
        proptest::collection::hash_map(name(), text(), 0..6),
        proptest::option::of(proptest::collection::vec(header_value(), 0..6)),
        (
            text(),
            any::<i64>(),
            proptest::collection::vec(any::<u8>(), 0..8),
        ),
    )
        .prop_map(
            |((id, method, path, host), headers, list, (query, size, raw_body))| HttpRequest {
                id,
                method,
                path,
                host,
                headers,
                header_map: list.map(|headers| HeaderMap { headers }),
                query,
                size,
                raw_body,
                scheme: "https".to_owned(),
                protocol: "HTTP/2".to_owned(),
                ..Default::default()
            },
        )
}

fn check_request() -> impl Strategy<Value = CheckRequest> {
    let ext = proptest::collection::hash_map(
        prop_oneof![
            Just("resource".to_owned()),
            Just("role".to_owned()),
            Just("enforcement".to_owned()),
            Just("Resource".to_owned()),
            "[a-z]{0,6}",
        ],
        text(),
        0..4,
    );
    let attributes = (
        proptest::option::of(proptest::option::of(http_request())),
        ext,
        proptest::option::of("[a-z]{0,8}"),
    )
        .prop_map(
            |(request, context_extensions, principal)| AttributeContext {
                request: request.map(|http| AttrRequest { http, time: None }),
                context_extensions,
                source: principal.map(|principal| Peer {
                    principal,
                    ..Default::default()
                }),
                tls_session: Some(TlsSession {
                    sni: "api.example.com".to_owned(),
                }),
                ..Default::default()
            },
        );
    proptest::option::of(attributes).prop_map(|attributes| CheckRequest { attributes })
}

/// An unknown field of any wire type, groups nested, tags past the known ones.
fn unknown_field() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        (20u32..200, any::<u64>()).prop_map(|(tag, v)| {
            let mut out = vec![];
            prost::encoding::encode_key(tag, prost::encoding::WireType::Varint, &mut out);
            prost::encoding::encode_varint(v, &mut out);
            out
        }),
        (20u32..200, any::<u32>()).prop_map(|(tag, v)| {
            let mut out = vec![];
            prost::encoding::encode_key(tag, prost::encoding::WireType::ThirtyTwoBit, &mut out);
            out.extend_from_slice(&v.to_le_bytes());
            out
        }),
        (20u32..200, any::<u64>()).prop_map(|(tag, v)| {
            let mut out = vec![];
            prost::encoding::encode_key(tag, prost::encoding::WireType::SixtyFourBit, &mut out);
            out.extend_from_slice(&v.to_le_bytes());
            out
        }),
        (20u32..200, proptest::collection::vec(any::<u8>(), 0..10)).prop_map(|(tag, v)| {
            let mut out = vec![];
            prost::encoding::bytes::encode(tag, &v, &mut out);
            out
        }),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        (20u32..200, proptest::collection::vec(inner, 0..4)).prop_map(|(tag, fields)| {
            let mut out = vec![];
            prost::encoding::encode_key(tag, prost::encoding::WireType::StartGroup, &mut out);
            out.extend(fields.concat());
            prost::encoding::encode_key(tag, prost::encoding::WireType::EndGroup, &mut out);
            out
        })
    })
}

/// A length-delimited field `tag` holding `body`.
fn wrap(tag: u32, body: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    prost::encoding::bytes::encode(tag, &body.to_vec(), &mut out);
    out
}

/// Unknown fields at every level a check reads: the message, the attributes, the request, the
/// HTTP request, its header list and a header, and a map entry. Each is a repeat of that
/// message, so it merges into what came before without changing it.
fn noise() -> impl Strategy<Value = Vec<u8>> {
    (0usize..7, unknown_field()).prop_map(|(level, field)| match level {
        0 => field,
        1 => wrap(1, &field),
        2 => wrap(1, &wrap(4, &field)),
        3 => wrap(1, &wrap(4, &wrap(2, &field))),
        4 => wrap(1, &wrap(4, &wrap(2, &wrap(13, &field)))),
        5 => wrap(1, &wrap(4, &wrap(2, &wrap(13, &wrap(1, &field))))),
        _ => {
            // A map entry with an unknown field beside its key and value.
            let mut entry = wrap(1, b"x-claimgate-extra");
            entry.extend(field);
            entry.extend(wrap(2, b"v"));
            wrap(1, &wrap(4, &wrap(2, &wrap(3, &entry))))
        }
    })
}

/// A repeat of one field a check reads, wrapped to its place: a header map entry, a header of
/// the list, a context extension, or one of the HTTP request's strings. Merged after what came
/// before, it must win or add up exactly as it does for prost.
fn repeat() -> impl Strategy<Value = Vec<u8>> {
    let http = |field: Vec<u8>| wrap(1, &wrap(4, &wrap(2, &field)));
    // Mostly the names a check reads, so that repeats of them meet.
    let read = prop_oneof![
        3 => prop::sample::select(READ.to_vec()).prop_map(str::to_owned),
        1 => name(),
    ];
    prop_oneof![
        (read, text()).prop_map(move |(k, v)| {
            http(wrap(
                3,
                &[wrap(1, k.as_bytes()), wrap(2, v.as_bytes())].concat(),
            ))
        }),
        header_value().prop_map(move |h| http(wrap(13, &wrap(1, &h.encode_to_vec())))),
        (
            prop_oneof![Just("resource"), Just("role"), Just("enforcement")],
            text()
        )
            .prop_map(|(k, v)| wrap(
                1,
                &wrap(10, &[wrap(1, k.as_bytes()), wrap(2, v.as_bytes())].concat())
            )),
        (prop_oneof![Just(1u32), Just(2), Just(4), Just(5)], text())
            .prop_map(move |(tag, v)| http(wrap(tag, v.as_bytes()))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn a_generated_request_reads_as_prost_reads_it(req in check_request()) {
        prop_assert!(agree(&req.encode_to_vec())?);
    }

    #[test]
    fn repeated_messages_merge_as_prost_merges_them(
        parts in proptest::collection::vec(check_request(), 2..4),
        noise in proptest::collection::vec(prop_oneof![noise(), repeat()], 0..8),
    ) {
        // Concatenated messages are one message: repeats of a field merge.
        let mut bytes: Vec<u8> = vec![];
        for part in &parts {
            bytes.extend(part.encode_to_vec());
        }
        // Spread through the message, between and after the parts.
        for n in noise {
            bytes.extend(n);
        }
        prop_assert!(agree(&bytes)?);
    }

    #[test]
    fn damaged_bytes_never_panic_and_read_as_prost_reads_them_when_it_can(
        req in check_request(),
        noise in noise(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let mut bytes = req.encode_to_vec();
        bytes.extend(noise);
        for (at, byte, how) in edits {
            let i = at.index(bytes.len() + 1);
            match how {
                0 if i < bytes.len() => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ if i < bytes.len() => { bytes.remove(i); }
                _ => bytes.push(byte),
            }
        }
        agree(&bytes)?;
    }
}

#[test]
fn a_message_prost_refuses_in_a_read_field_is_refused() {
    // Not UTF-8 in the method: prost refuses the message, and so does the reader.
    let http = [wrap(2, b"G\xffT")].concat();
    let bytes = wrap(1, &wrap(4, &wrap(2, &http)));
    assert!(CheckRequest::decode(bytes.as_slice()).is_err());
    assert!(RequestView::parse(Bytes::from(bytes)).is_err());
    // A length past the end.
    let bytes = vec![0x0a, 0x05, 0x22, 0x01];
    assert!(CheckRequest::decode(bytes.as_slice()).is_err());
    assert!(RequestView::parse(Bytes::from(bytes)).is_err());
    // A field read as a string sent as a varint.
    let bytes = wrap(1, &wrap(4, &wrap(2, &[0x10, 0x01])));
    assert!(CheckRequest::decode(bytes.as_slice()).is_err());
    assert!(RequestView::parse(Bytes::from(bytes)).is_err());
}

#[test]
fn the_common_requests_read_as_prost_reads_them() {
    use common::{check, check_bearer, check_raw, with_context};
    let cases = [
        check_bearer("GET", "/v1/models/acme/llama", "a.b.c"),
        check(
            "GET",
            "/",
            &[
                ("authorization", "Bearer x"),
                ("x-claimgate-role", "manager"),
            ],
        ),
        check_raw(
            "POST",
            "/v1/x",
            &[("Authorization", "Bearer x"), ("authorization", "Bearer y")],
        ),
        with_context(
            check_raw("GET", "/a", &[("x_claimgate_identity", "me")]),
            &[
                ("resource", "r"),
                ("role", "viewer"),
                ("enforcement", "dry_run"),
            ],
        ),
        CheckRequest::default(),
    ];
    for req in cases {
        let bytes = req.encode_to_vec();
        let view = RequestView::parse(Bytes::from(bytes)).unwrap();
        assert_eq!(seen_in_place(&view), seen_by_prost(&req), "{req:?}");
    }
}

/// The requests Envoy 1.40 sent, as captured (`tests/fixtures/check_requests/README.md`); the
/// live capture in `tests/check_corpus.rs` checks the same on what Envoy sends today.
#[test]
fn requests_captured_from_envoy_read_as_prost_reads_them() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/check_requests");
    let mut by_encoding: HashMap<bool, usize> = HashMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("bin") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        common::codec::assert_reads_as_prost(&path.display().to_string(), &bytes);
        let raw = CheckRequest::decode(bytes.as_slice())
            .ok()
            .and_then(|r| r.attributes)
            .and_then(|a| a.request)
            .and_then(|r| r.http)
            .and_then(|h| h.header_map)
            .is_some_and(|m| !m.headers.is_empty());
        *by_encoding.entry(raw).or_default() += 1;
    }
    assert!(
        by_encoding.values().all(|n| *n >= 20) && by_encoding.len() == 2,
        "the captured requests must cover both header encodings, 20 or more each: {by_encoding:?}"
    );
}
