//! The corpus of tests/fixtures/check_requests/: CheckRequests exactly as Envoy 1.40 sent them
//! to a real gRPC ext_authz server, each request once with the default header encoding (`map-`)
//! and once with `encode_raw_headers: true` (`raw-`). A decoder of CheckRequest is proven on
//! these bytes against prost's.
//!
//! Regenerate the files (then run this file's tests again without the variable):
//!
//!     CLAIMGATE_WRITE_CORPUS=1 cargo test --test check_corpus envoy_sends
//!
//! Envoy comes from `CLAIMGATE_TEST_ENVOY` or PATH, as in tests/envoy_e2e.rs; if it cannot be
//! started the live tests fail, they never skip. Envoy puts volatile data in every request
//! (ids, times, ports), so live and committed requests are compared by name and shape, never
//! by bytes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::capture::*;
use envoy_types::pb::envoy::config::core::v3::address::Address as AddressKind;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest;
use envoy_types::pb::envoy::service::auth::v3::CheckRequest;
use envoy_types::pb::google::protobuf::value::Kind;
use envoy_types::pb::google::protobuf::Value;
use prost::Message as _;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/check_requests")
}

/// Every `<encoding>-<name>.bin` of the committed corpus, by (name, encoding).
fn committed() -> BTreeMap<(String, Encoding), Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(corpus_dir()).expect("the corpus directory") {
        let path = entry.expect("a corpus entry").path();
        let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".bin"))
        else {
            continue;
        };
        let (label, name) = stem
            .split_once('-')
            .unwrap_or_else(|| panic!("{stem}.bin is not <encoding>-<name>.bin"));
        let encoding = Encoding::from_label(label)
            .unwrap_or_else(|| panic!("{stem}.bin: no encoding is called {label:?}"));
        let bytes = std::fs::read(&path).expect("read a corpus file");
        files.insert((name.to_owned(), encoding), bytes);
    }
    files
}

/// The names the corpus must hold: every corpus request, in both encodings.
fn expected_names() -> BTreeSet<(String, Encoding)> {
    corpus_requests()
        .iter()
        .flat_map(|r| Encoding::ALL.map(|e| (r.name.to_owned(), e)))
        .collect()
}

#[tokio::test]
async fn envoy_sends_today_the_check_requests_the_corpus_holds() {
    let live = capture_envoy_checks(&corpus_requests()).await;
    if std::env::var_os("CLAIMGATE_WRITE_CORPUS").is_some_and(|v| v == "1") {
        write_corpus(&live);
    }
    let live_names: BTreeSet<_> = live.iter().map(|c| (c.name.clone(), c.encoding)).collect();
    assert_eq!(live.len(), live_names.len(), "one Check call per request");
    let committed_names: BTreeSet<_> = committed().into_keys().collect();
    let missing: Vec<_> = live_names.difference(&committed_names).collect();
    let stale: Vec<_> = committed_names.difference(&live_names).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "the committed corpus is not what Envoy sends today (not committed: {missing:?}; \
         committed but not sent: {stale:?}); regenerate it, see the top of tests/check_corpus.rs"
    );
    for c in &live {
        let label = format!("live {}", c.file_name());
        assert_shape(&label, &c.name, c.encoding, &c.bytes);
        // claimgate's in-place reader reads what prost reads, on what Envoy sends today.
        common::codec::assert_reads_as_prost(&label, &c.bytes);
    }
}

#[test]
fn every_committed_check_request_decodes_with_prost_into_the_shape_its_name_promises() {
    let files = committed();
    let names: BTreeSet<_> = files.keys().cloned().collect();
    let expected = expected_names();
    let missing: Vec<_> = expected.difference(&names).collect();
    let extra: Vec<_> = names.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "the committed corpus files: missing {missing:?}, not a corpus request {extra:?}"
    );
    for ((name, encoding), bytes) in &files {
        let file = format!("{}-{name}.bin", encoding.label());
        assert_shape(&file, name, *encoding, bytes);
    }
}

#[tokio::test]
async fn requests_envoy_refuses_itself_never_reach_ext_authz() {
    let capture = CaptureEnvoy::start().await;
    for request in refused_requests() {
        for encoding in Encoding::ALL {
            let exchange = capture.exchange(encoding, &request).await;
            let status = exchange.status;
            assert!(
                matches!(status, Some(400 | 404 | 431)),
                "{} on the {} listener: expected Envoy's own 400, 404 or 431, got {status:?}",
                request.name,
                encoding.label()
            );
            assert!(
                exchange.checks.is_empty(),
                "{} on the {} listener reached ext_authz",
                request.name,
                encoding.label()
            );
        }
    }
    capture.stop().await;
}

/// Replace the committed corpus with `live`: stale files go, each file is written whole.
fn write_corpus(live: &[Captured]) {
    let dir = corpus_dir();
    std::fs::create_dir_all(&dir).expect("create the corpus directory");
    for entry in std::fs::read_dir(&dir).expect("the corpus directory") {
        let path = entry.expect("a corpus entry").path();
        if path.extension().is_some_and(|e| e == "bin") {
            std::fs::remove_file(&path).expect("remove a stale corpus file");
        }
    }
    for c in live {
        let tmp = dir.join(format!(".{}.tmp", c.file_name()));
        std::fs::write(&tmp, &c.bytes).expect("write a corpus file");
        std::fs::rename(&tmp, dir.join(c.file_name())).expect("install a corpus file");
    }
}

/// The values of header `name` as the CheckRequest carries them: the one map value, or every
/// `header_map` entry's raw bytes in order; each escaped (`\xff`), so a failure reads well.
fn values(http: &HttpRequest, encoding: Encoding, name: &str) -> Vec<String> {
    match encoding {
        Encoding::Map => http
            .headers
            .get(name)
            .map(|v| vec![v.as_bytes().escape_ascii().to_string()])
            .unwrap_or_default(),
        Encoding::Raw => http
            .header_map
            .iter()
            .flat_map(|m| &m.headers)
            .filter(|h| h.key == name)
            .map(|h| h.raw_value.escape_ascii().to_string())
            .collect(),
    }
}

/// Expected header values, escaped as [`values`] escapes them.
fn one(values: &[&[u8]]) -> Vec<String> {
    values
        .iter()
        .map(|v| v.escape_ascii().to_string())
        .collect()
}

/// Decode `bytes` with prost and check what every CheckRequest of the corpus has, then what
/// request `name` promises.
fn assert_shape(file: &str, name: &str, encoding: Encoding, bytes: &[u8]) {
    let req = CheckRequest::decode(bytes).unwrap_or_else(|e| panic!("{file}: prost: {e}"));
    let request = corpus_requests()
        .into_iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("{file}: no corpus request is called {name:?}"));
    let attrs = req
        .attributes
        .as_ref()
        .unwrap_or_else(|| panic!("{file}: no attributes"));
    let http = attrs
        .request
        .as_ref()
        .and_then(|r| r.http.as_ref())
        .unwrap_or_else(|| panic!("{file}: no attributes.request.http"));
    let v = |header: &str| values(http, encoding, header);

    // Both peers are 127.0.0.1 sockets; over TLS Envoy names them by their certificates, and
    // sends the client's (URL-encoded PEM) when there is one.
    let tls = request.tls != Tls::Off;
    let mutual = request.tls == Tls::Mutual;
    let principals = [
        ("source", &attrs.source, if mutual { CLIENT_CN } else { "" }),
        (
            "destination",
            &attrs.destination,
            if tls { TLS_SERVER_NAME } else { "" },
        ),
    ];
    for (side, peer, principal) in principals {
        let peer = peer.as_ref().unwrap_or_else(|| panic!("{file}: no {side}"));
        let address = peer.address.as_ref().and_then(|a| a.address.as_ref());
        let Some(AddressKind::SocketAddress(socket)) = address else {
            panic!("{file}: {side} is not a socket address: {address:?}");
        };
        assert_eq!(socket.address, "127.0.0.1", "{file}: {side}");
        assert_eq!(peer.principal, principal, "{file}: {side} principal");
    }
    let certificate = attrs.source.as_ref().map_or("", |p| &p.certificate);
    assert_eq!(
        certificate.starts_with("-----BEGIN%20CERTIFICATE-----%0A"),
        mutual,
        "{file}: source certificate {certificate:?}"
    );
    // Always there (include_tls_session), empty without TLS.
    let sni = attrs.tls_session.as_ref().map(|t| t.sni.as_str());
    assert_eq!(
        sni,
        Some(if tls { TLS_SERVER_NAME } else { "" }),
        "{file}: tls_session"
    );

    // The encoding: one of the two header fields, never both.
    match encoding {
        Encoding::Map => {
            assert!(!http.headers.is_empty(), "{file}: the headers map is empty");
            let raw = http.header_map.as_ref().map_or(0, |m| m.headers.len());
            assert_eq!(raw, 0, "{file}: the map encoding has header_map entries");
        }
        Encoding::Raw => {
            assert!(
                http.headers.is_empty(),
                "{file}: the raw encoding has a headers map"
            );
            let entries = http.header_map.as_ref().map_or(&[][..], |m| &m.headers);
            assert!(!entries.is_empty(), "{file}: header_map is empty");
            for h in entries {
                assert!(h.value.is_empty(), "{file}: {} has a string value", h.key);
            }
        }
    }
    let keys = http.headers.keys().map(String::as_str);
    let raw_keys = http.header_map.iter().flat_map(|m| &m.headers);
    for key in keys.chain(raw_keys.map(|h| h.key.as_str())) {
        assert_eq!(
            key,
            key.to_ascii_lowercase(),
            "{file}: header names are lowercase"
        );
    }
    assert_eq!(
        v(NAME_HEADER),
        one(&[name.as_bytes()]),
        "{file}: the name header"
    );

    // Request line and Host, as Envoy reports them. An absolute-form target names the host.
    assert_eq!(http.method, request.method, "{file}: method");
    assert_eq!(
        v(":method"),
        one(&[request.method.as_bytes()]),
        "{file}: :method"
    );
    let (path, host) = match name {
        "absolute-uri" => ("/v1/abs?q=1", "absolute.example.com"),
        _ => (request.target, request.host.unwrap_or(HTTP10_DEFAULT_HOST)),
    };
    assert_eq!(http.path, path, "{file}: path");
    assert_eq!(v(":path"), one(&[path.as_bytes()]), "{file}: :path");
    assert_eq!(http.host, host, "{file}: host");
    assert_eq!(
        v(":authority"),
        one(&[host.as_bytes()]),
        "{file}: :authority"
    );
    // Envoy leaves `query` empty: the query string stays in `path`.
    assert_eq!(http.query, "", "{file}: query");
    assert_eq!(http.scheme, request.scheme(), "{file}: scheme");
    assert_eq!(
        v("x-forwarded-proto"),
        one(&[request.scheme().as_bytes()]),
        "{file}: x-forwarded-proto"
    );
    assert_eq!(http.protocol, request.version, "{file}: protocol");
    // The hop-by-hop header is gone.
    assert!(v("connection").is_empty(), "{file}: connection");

    // Per-route context extensions, only on their route.
    let on_context_route = request.target.starts_with(CONTEXT_ROUTE);
    let expected: BTreeMap<String, String> = if on_context_route {
        CONTEXT_EXTENSIONS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    } else {
        BTreeMap::new()
    };
    let actual: BTreeMap<String, String> = attrs
        .context_extensions
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(actual, expected, "{file}: context_extensions");

    // Route metadata in the filter's namespace, only from the route that has it: a Struct
    // with every kind of Value.
    let namespace = attrs
        .route_metadata_context
        .as_ref()
        .and_then(|m| m.filter_metadata.get(ROUTE_METADATA_NAMESPACE));
    if on_context_route {
        let fields = &namespace
            .unwrap_or_else(|| panic!("{file}: no route metadata"))
            .fields;
        let kind = |key: &str| fields.get(key).and_then(|v| v.kind.clone());
        assert_eq!(
            kind("tier"),
            Some(Kind::StringValue("gold".into())),
            "{file}"
        );
        assert_eq!(kind("weight"), Some(Kind::NumberValue(3.0)), "{file}");
        assert_eq!(kind("enabled"), Some(Kind::BoolValue(true)), "{file}");
        assert_eq!(kind("missing"), Some(Kind::NullValue(0)), "{file}");
        let tags: Vec<_> = match kind("tags") {
            Some(Kind::ListValue(list)) => list.values.into_iter().map(|v| v.kind).collect(),
            other => panic!("{file}: tags {other:?}"),
        };
        assert_eq!(
            tags,
            [
                Some(Kind::StringValue("a".into())),
                Some(Kind::NumberValue(1.0)),
                Some(Kind::BoolValue(false))
            ],
            "{file}: tags"
        );
        let deep = match kind("nested") {
            Some(Kind::StructValue(nested)) => match nested.fields.get("inner") {
                Some(Value {
                    kind: Some(Kind::StructValue(inner)),
                }) => inner.fields.get("deep").and_then(|v| v.kind.clone()),
                other => panic!("{file}: nested.inner {other:?}"),
            },
            other => panic!("{file}: nested {other:?}"),
        };
        assert_eq!(deep, Some(Kind::StringValue("deep-value".into())), "{file}");
    } else {
        assert!(namespace.is_none(), "{file}: route metadata off its route");
    }

    // The body: a string on the map listener (with invalid UTF-8 replaced), bytes on the raw;
    // only its first MAX_REQUEST_BYTES, and then Envoy says the body is partial.
    let sent = match request.body {
        RequestBody::None => &[][..],
        RequestBody::Sized(b) | RequestBody::Chunked(b) => b,
    };
    let carried = &sent[..sent.len().min(MAX_REQUEST_BYTES)];
    // `size` is the whole body's length, also when only its start is carried.
    assert_eq!(http.size, sent.len() as i64, "{file}: size");
    match encoding {
        Encoding::Map => {
            assert_eq!(http.body.as_bytes(), sanitized(carried), "{file}: body");
            assert!(http.raw_body.is_empty(), "{file}: raw_body");
        }
        Encoding::Raw => {
            assert_eq!(http.raw_body, carried, "{file}: raw_body");
            assert!(http.body.is_empty(), "{file}: body");
        }
    }
    let partial: &[u8] = if carried.len() < sent.len() {
        b"true"
    } else {
        b"false"
    };
    if sent.is_empty() {
        assert!(v("x-envoy-auth-partial-body").is_empty(), "{file}: no body");
    } else {
        assert_eq!(v("x-envoy-auth-partial-body"), one(&[partial]), "{file}");
    }

    // A client's x-request-id is kept; otherwise Envoy makes a UUID.
    let request_id = v("x-request-id");
    if name == "client-request-id" {
        assert_eq!(request_id, one(&[b"client-chosen-request-id"]), "{file}");
    } else {
        assert!(
            matches!(request_id.as_slice(), [id] if id.len() == 36),
            "{file}: x-request-id {request_id:?}"
        );
    }

    let bearer = format!("Bearer {JWT_LIKE}");
    let authorization: Vec<String> = match name {
        "no-authorization" | "options" => vec![],
        "empty-authorization" => one(&[b""]),
        "bearer-lowercase" => one(&[format!("bearer {JWT_LIKE}").as_bytes()]),
        // Both codecs join the two before ext_authz sees them, in both encodings.
        "two-authorization" | "h2-two-authorization" => {
            one(&[format!("{bearer},Bearer second.token.value").as_bytes()])
        }
        "non-utf8-authorization" => match encoding {
            Encoding::Raw => one(&[b"Bearer \xff\xfe.\xe9"]),
            // The map holds strings: Envoy replaces each invalid byte with '!'.
            Encoding::Map => one(&[b"Bearer !!.!"]),
        },
        "long-token" => one(&[format!("Bearer {}", "A".repeat(8 * 1024)).as_bytes()]),
        // Surrounding whitespace is trimmed ("padded-value"), names are lowercased
        // ("mixed-case-names").
        _ => one(&[bearer.as_bytes()]),
    };
    assert_eq!(v("authorization"), authorization, "{file}: authorization");

    let extra: &[(&str, Vec<String>)] = &match name {
        "post-body" => vec![
            ("content-length", one(&[b"18"])),
            ("content-type", one(&[b"application/json"])),
        ],
        // De-chunked: neither transfer-encoding nor a content-length.
        "post-chunked-body" => vec![("transfer-encoding", vec![]), ("content-length", vec![])],
        "h2-body-without-length" => vec![("content-length", vec![])],
        "h2-post-body" => vec![("content-length", one(&[b"11"]))],
        "non-utf8-values" => match encoding {
            Encoding::Raw => vec![
                ("x-opaque", one(&[b"\xff\xfe"])),
                ("x-latin1", one(&[b"caf\xe9"])),
            ],
            Encoding::Map => vec![("x-opaque", one(&[b"!!"])), ("x-latin1", one(&[b"caf!"]))],
        },
        "h2-non-utf8-value" => match encoding {
            Encoding::Raw => vec![("x-opaque", one(&[b"\xff\xfe"]))],
            Encoding::Map => vec![("x-opaque", one(&[b"!!"]))],
        },
        "bare-cr-in-value" => vec![("x-bare-cr", one(&[b"ab"]))],
        "obs-fold-value" => vec![("x-folded", one(&[b"first second"]))],
        "utf8-value" => vec![("x-utf8", one(&["café ✓".as_bytes()]))],
        "underscore-header" => vec![("x_claimgate_identity", one(&[b"admin"]))],
        "spoofed-identity" => vec![
            ("x-claimgate-identity", one(&[b"admin"])),
            ("x-claimgate-role", one(&[b"manager"])),
        ],
        "mixed-case-names" => vec![("x-mixed-case", one(&[b"Value-Keeps-Case"]))],
        "padded-value" => vec![("x-inner-space", one(&[b"a  b\tc"]))],
        // Cookie lines stay apart in header_map but are joined with ',' (not "; ") in the map.
        "several-cookies" => match encoding {
            Encoding::Raw => vec![("cookie", one(&[b"a=1", b"b=2; c=3", b"d=4"]))],
            Encoding::Map => vec![("cookie", one(&[b"a=1,b=2; c=3,d=4"]))],
        },
        // HTTP/2 cookie crumbs are joined with "; ", in both encodings.
        "h2-split-cookies" => vec![("cookie", one(&[b"a=1; b=2"]))],
        // Other repeated headers are joined by the codec, in both encodings.
        "repeated-other-header" => vec![
            ("accept", one(&[b"text/html,application/json"])),
            ("x-forwarded-for", one(&[b"203.0.113.7"])),
        ],
        "options" => vec![
            ("origin", one(&[b"https://app.example.com"])),
            ("access-control-request-method", one(&[b"POST"])),
        ],
        _ => vec![],
    };
    if name == "many-headers" {
        for i in 0..MANY_HEADERS {
            let value = format!("value-{i}");
            let header = format!("x-many-{i:03}");
            assert_eq!(v(&header), one(&[value.as_bytes()]), "{file}: {header}");
        }
    }
    for (header, expected) in extra {
        assert_eq!(&v(header), expected, "{file}: {header}");
    }
}

/// What Envoy makes of bytes it puts in a protobuf string: each byte that is not part of valid
/// UTF-8 becomes '!'.
fn sanitized(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in bytes.utf8_chunks() {
        out.extend_from_slice(chunk.valid().as_bytes());
        out.extend(std::iter::repeat_n(b'!', chunk.invalid().len()));
    }
    out
}
