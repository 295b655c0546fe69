//! CheckRequests exactly as Envoy sends them: a gRPC ext_authz server that keeps the raw
//! message bytes of every Check call (no decoding, no re-encoding) and answers OK, one real
//! Envoy in front of it with a listener per header encoding, and clients that send the same
//! requests to both: HTTP/1.x written byte for byte, and HTTP/2, in cleartext or over TLS.
//! tests/check_corpus.rs writes and checks the corpus of tests/fixtures/check_requests/ with it.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use prost::bytes::{Buf as _, Bytes};
use prost::Message as _;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{http, Body, BoxFuture, Context, Poll, Service, StdError};
use tonic::Status;

use super::envoy::{Envoy, EnvoyConfig};
use super::pki::{client_config, tls_connect, Pair, TestCa};

/// The header every corpus request carries: its name in the corpus.
pub const NAME_HEADER: &str = "x-corpus-name";
/// The gRPC metadata each listener's ext_authz filter adds: which encoding it uses.
pub const ENCODING_METADATA: &str = "x-corpus-encoding";
const CHECK_PATH: &str = "/envoy.service.auth.v3.Authorization/Check";

/// How the ext_authz filter puts the request headers in the CheckRequest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Encoding {
    /// The default: `attributes.request.http.headers`, a map of strings.
    Map,
    /// `encode_raw_headers: true`: `attributes.request.http.header_map`, `raw_value` bytes.
    Raw,
}

impl Encoding {
    /// Both, in file-name order.
    pub const ALL: [Encoding; 2] = [Encoding::Map, Encoding::Raw];

    /// Its name in file names, listener names and the encoding metadata.
    pub fn label(self) -> &'static str {
        match self {
            Encoding::Map => "map",
            Encoding::Raw => "raw",
        }
    }

    /// The encoding a label names.
    pub fn from_label(label: &str) -> Option<Encoding> {
        Encoding::ALL.into_iter().find(|e| e.label() == label)
    }
}

/// One Check call: the corpus name of the request, the listener's encoding, and the gRPC
/// message payload as received (after the 5-byte length prefix).
#[derive(Clone, Debug)]
pub struct Captured {
    pub name: String,
    pub encoding: Encoding,
    pub bytes: Vec<u8>,
}

impl Captured {
    /// Its file name in the corpus: `<encoding>-<name>.bin`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.bin", self.encoding.label(), self.name)
    }
}

/// What the capture server received for one Check call.
#[derive(Clone, Debug)]
struct Received {
    /// From the request's `x-corpus-name` header, read with prost; `None` if prost cannot
    /// decode the message or the header is missing.
    name: Option<String>,
    /// The `x-corpus-encoding` gRPC metadata Envoy was configured to send.
    encoding: Option<String>,
    bytes: Vec<u8>,
}

/// The message body of a request, as it travels on the wire.
#[derive(Clone, Debug)]
pub enum RequestBody {
    None,
    /// Sent with `content-length`.
    Sized(&'static [u8]),
    /// Sent with `transfer-encoding: chunked`, in one chunk (over HTTP/2: without a length).
    Chunked(&'static [u8]),
}

/// One request of the corpus, as it is sent to each listener.
#[derive(Clone, Debug)]
pub struct CorpusRequest {
    pub name: &'static str,
    pub method: &'static str,
    /// The request target exactly as on the request line.
    pub target: &'static str,
    /// `HTTP/1.1` or `HTTP/1.0`, written byte for byte; or [`HTTP2`], sent with the h2 crate
    /// (prior knowledge, names lowercased, the host as `:authority`).
    pub version: &'static str,
    /// The `Host` line's value; `None` sends no Host line.
    pub host: Option<&'static str>,
    /// Name and value bytes, in order, written as given (a value may hold CR or LF).
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: RequestBody,
    pub tls: Tls,
}

/// Whether a request is sent over TLS (SNI `localhost`), and with a client certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tls {
    Off,
    /// TLS without a client certificate.
    Anonymous,
    /// TLS with the client certificate [`CLIENT_CN`].
    Mutual,
}

/// The common name (and DNS SAN) of the client certificate of [`Tls::Mutual`] requests.
pub const CLIENT_CN: &str = "corpus-client";
/// The SNI of TLS requests, also the first DNS SAN of Envoy's certificate.
pub const TLS_SERVER_NAME: &str = "localhost";

/// The host corpus requests name unless they say otherwise.
pub const HOST: &str = "api.example.com";
/// The prefix of the route whose ext_authz per-route config sets context extensions.
pub const CONTEXT_ROUTE: &str = "/ctx/";
/// The context extensions that route sets (claimgate reads these three keys).
pub const CONTEXT_EXTENSIONS: [(&str, &str); 3] = [
    ("resource", "model:acme/llama"),
    ("role", "viewer"),
    ("enforcement", "dry_run"),
];
/// The route metadata namespace the ext_authz filter sends (set on [`CONTEXT_ROUTE`] only).
pub const ROUTE_METADATA_NAMESPACE: &str = "corpus.route";
/// The `version` of a request sent over HTTP/2, as Envoy reports the protocol.
pub const HTTP2: &str = "HTTP/2";
/// Envoy's host for an HTTP/1.0 request without a Host line.
pub const HTTP10_DEFAULT_HOST: &str = "http10.default";

impl CorpusRequest {
    /// `METHOD target HTTP/1.1` to [`HOST`], no headers, no body.
    pub fn new(name: &'static str, method: &'static str, target: &'static str) -> CorpusRequest {
        CorpusRequest {
            name,
            method,
            target,
            version: "HTTP/1.1",
            host: Some(HOST),
            headers: Vec::new(),
            body: RequestBody::None,
            tls: Tls::Off,
        }
    }

    /// `https` over TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        match self.tls {
            Tls::Off => "http",
            Tls::Anonymous | Tls::Mutual => "https",
        }
    }

    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = tls;
        self
    }

    /// Add one header line.
    pub fn header(mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.as_ref().to_vec(), value.as_ref().to_vec()));
        self
    }

    pub fn body(mut self, body: RequestBody) -> Self {
        self.body = body;
        self
    }

    pub fn host(mut self, host: Option<&'static str>) -> Self {
        self.host = host;
        self
    }

    pub fn version(mut self, version: &'static str) -> Self {
        self.version = version;
        self
    }

    /// The bytes on the wire: the request line, Host, the headers in order, the name header,
    /// `connection: close` (one request per connection), framing, and the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} {}\r\n", self.method, self.target, self.version).into_bytes();
        let mut line = |name: &[u8], value: &[u8]| {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        };
        if let Some(host) = self.host {
            line(b"Host", host.as_bytes());
        }
        for (name, value) in &self.headers {
            line(name, value);
        }
        line(NAME_HEADER.as_bytes(), self.name.as_bytes());
        line(b"Connection", b"close");
        let body = match self.body {
            RequestBody::None => Vec::new(),
            RequestBody::Sized(body) => {
                line(b"Content-Length", body.len().to_string().as_bytes());
                body.to_vec()
            }
            RequestBody::Chunked(body) => {
                line(b"Transfer-Encoding", b"chunked");
                let mut chunked = format!("{:x}\r\n", body.len()).into_bytes();
                chunked.extend_from_slice(body);
                chunked.extend_from_slice(b"\r\n0\r\n\r\n");
                chunked
            }
        };
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body);
        out
    }
}

/// A JWT-shaped bearer token (three base64url parts); nothing verifies it here.
pub const JWT_LIKE: &str = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImNvcnB1cy0xIiwidHlwIjoiSldUIn0.\
eyJpc3MiOiJodHRwczovL2lkcC50ZXN0LmxvY2FsIiwic3ViIjoicmVwbzphY21lL2FwaSIsImF1ZCI6ImNsYWltZ2F0ZSJ9.\
c2lnbmF0dXJlLW5vdC1jaGVja2Vk";

/// How much of a body the ext_authz filters send (`with_request_body.max_request_bytes`).
pub const MAX_REQUEST_BYTES: usize = 8192;
/// A body larger than that: Envoy sends only the start of it.
pub const LARGE_BODY: [u8; 10 * 1024] = [b'x'; 10 * 1024];

/// How many `x-many-NNN` headers "many-headers" adds: with the others it stays under Envoy's
/// default limit of 100 headers (`max_headers_count`).
pub const MANY_HEADERS: usize = 90;

/// The requests of the corpus. Envoy accepts each one and calls ext_authz for it (the capture
/// fails otherwise); the requests Envoy refuses itself are [`refused_requests`].
pub fn corpus_requests() -> Vec<CorpusRequest> {
    let bearer = format!("Bearer {JWT_LIKE}");
    let long_token = format!("Bearer {}", "A".repeat(8 * 1024));
    vec![
        CorpusRequest::new("get-bearer", "GET", "/v1/models/acme/llama/info")
            .header("Authorization", &bearer),
        CorpusRequest::new("post-body", "POST", "/v1/models/acme/llama/chat")
            .header("Authorization", &bearer)
            .header("Content-Type", "application/json")
            .body(RequestBody::Sized(br#"{"prompt":"hello"}"#)),
        CorpusRequest::new("post-partial-body", "POST", "/v1/models/acme/llama/chat")
            .header("Authorization", &bearer)
            .body(RequestBody::Sized(&LARGE_BODY)),
        CorpusRequest::new("post-chunked-body", "POST", "/v1/models/acme/llama/chat")
            .header("Authorization", &bearer)
            .header("Content-Type", "application/octet-stream")
            .body(RequestBody::Chunked(b"\x00\x01binary\xff\xfe")),
        CorpusRequest::new("bearer-lowercase", "GET", "/v1/models/acme/llama/info")
            .header("Authorization", format!("bearer {JWT_LIKE}")),
        CorpusRequest::new("no-authorization", "GET", "/v1/models/acme/llama/info"),
        CorpusRequest::new("empty-authorization", "GET", "/v1/models/acme/llama/info")
            .header("Authorization", ""),
        CorpusRequest::new("two-authorization", "GET", "/v1/models/acme/llama/info")
            .header("Authorization", &bearer)
            .header("Authorization", "Bearer second.token.value"),
        CorpusRequest::new("non-utf8-values", "GET", "/v1/models/acme/llama/info")
            .header("Authorization", &bearer)
            .header("X-Opaque", b"\xff\xfe")
            .header("X-Latin1", b"caf\xe9"),
        CorpusRequest::new(
            "non-utf8-authorization",
            "GET",
            "/v1/models/acme/llama/info",
        )
        .header("Authorization", b"Bearer \xff\xfe.\xe9"),
        // Envoy's parser drops the CR and unfolds the continuation line; neither is refused.
        CorpusRequest::new("bare-cr-in-value", "GET", "/v1/models/acme/llama/info")
            .header("Authorization", &bearer)
            .header("X-Bare-Cr", b"a\rb"),
        CorpusRequest::new("obs-fold-value", "GET", "/v1/models/acme/llama/info")
            .header("Authorization", &bearer)
            .header("X-Folded", b"first\r\n second"),
        CorpusRequest::new("utf8-value", "GET", "/v1/models/acme/llama/info")
            .header("Authorization", &bearer)
            .header("X-Utf8", "café ✓"),
        CorpusRequest::new("underscore-header", "GET", "/v1/models/acme/llama/info")
            .header("Authorization", &bearer)
            .header("x_claimgate_identity", "admin"),
        CorpusRequest::new("spoofed-identity", "GET", "/v1/models/acme/llama/info")
            .header("Authorization", &bearer)
            .header("X-Claimgate-Identity", "admin")
            .header("x-claimgate-role", "manager"),
        CorpusRequest::new("mixed-case-names", "GET", "/v1/models/acme/llama/info")
            .header("AuThOrIzAtIoN", &bearer)
            .header("X-MiXeD-CaSe", "Value-Keeps-Case"),
        CorpusRequest::new("padded-value", "GET", "/v1/models/acme/llama/info")
            .header("Authorization", format!("  \t{bearer} \t "))
            .header("X-Inner-Space", "a  b\tc"),
        CorpusRequest::new("long-token", "GET", "/v1/models/acme/llama/info")
            .header("Authorization", &long_token),
        (0..MANY_HEADERS).fold(
            CorpusRequest::new("many-headers", "GET", "/v1/models/acme/llama/info")
                .header("Authorization", &bearer),
            |request, i| request.header(format!("x-many-{i:03}"), format!("value-{i}")),
        ),
        CorpusRequest::new("query-and-encoded-path", "GET", "/api/a%2Fb?x=1&y=%20")
            .header("Authorization", &bearer),
        CorpusRequest::new(
            "absolute-uri",
            "GET",
            "http://absolute.example.com/v1/abs?q=1",
        )
        .header("Authorization", &bearer),
        CorpusRequest::new("client-request-id", "GET", "/v1/models/acme/llama/info")
            .header("Authorization", &bearer)
            .header("X-Request-Id", "client-chosen-request-id"),
        CorpusRequest::new("several-cookies", "GET", "/v1/models/acme/llama/info")
            .header("Authorization", &bearer)
            .header("Cookie", "a=1")
            .header("Cookie", "b=2; c=3")
            .header("Cookie", "d=4"),
        CorpusRequest::new("repeated-other-header", "GET", "/v1/models/acme/llama/info")
            .header("Authorization", &bearer)
            .header("X-Forwarded-For", "203.0.113.7")
            .header("Accept", "text/html")
            .header("Accept", "application/json"),
        CorpusRequest::new("head", "HEAD", "/v1/models/acme/llama/info")
            .header("Authorization", &bearer),
        CorpusRequest::new("options", "OPTIONS", "/v1/models/acme/llama/info")
            .header("Origin", "https://app.example.com")
            .header("Access-Control-Request-Method", "POST"),
        CorpusRequest::new("delete", "DELETE", "/v1/models/acme/llama/info")
            .header("Authorization", &bearer),
        CorpusRequest::new("custom-method", "PURGE", "/v1/models/acme/llama/info")
            .header("Authorization", &bearer),
        CorpusRequest::new("host-with-port", "GET", "/v1/models/acme/llama/info")
            .host(Some("api.example.com:8443"))
            .header("Authorization", &bearer),
        CorpusRequest::new("http10-no-host", "GET", "/v1/models/acme/llama/info")
            .version("HTTP/1.0")
            .host(None)
            .header("Authorization", &bearer),
        CorpusRequest::new(
            "context-extensions",
            "GET",
            "/ctx/v1/models/acme/llama/info",
        )
        .header("Authorization", &bearer),
        CorpusRequest::new("context-extensions-post", "POST", "/ctx/v1/upload")
            .header("Authorization", &bearer)
            .body(RequestBody::Sized(b"field=value")),
        // TLS: the peers' principals and certificate, and the TLS session, are filled in.
        CorpusRequest::new("tls-mutual", "GET", "/v1/models/acme/llama/info")
            .tls(Tls::Mutual)
            .header("Authorization", &bearer),
        CorpusRequest::new("tls-anonymous", "GET", "/v1/models/acme/llama/info")
            .tls(Tls::Anonymous)
            .header("Authorization", &bearer),
        CorpusRequest::new("tls-h2-mutual", "GET", "/ctx/v1/models/acme/llama/info")
            .version(HTTP2)
            .tls(Tls::Mutual)
            .header("authorization", &bearer),
        // HTTP/2: Envoy's other codec, where no parser joins or refuses what HTTP/1 would.
        CorpusRequest::new("h2-get-bearer", "GET", "/v1/models/acme/llama/info")
            .version(HTTP2)
            .header("authorization", &bearer),
        CorpusRequest::new("h2-lowercase-method", "get", "/v1/models/acme/llama/info")
            .version(HTTP2)
            .header("authorization", &bearer),
        CorpusRequest::new("h2-two-authorization", "GET", "/v1/models/acme/llama/info")
            .version(HTTP2)
            .header("authorization", &bearer)
            .header("authorization", "Bearer second.token.value"),
        CorpusRequest::new("h2-split-cookies", "GET", "/v1/models/acme/llama/info")
            .version(HTTP2)
            .header("authorization", &bearer)
            .header("cookie", "a=1")
            .header("cookie", "b=2"),
        CorpusRequest::new("h2-non-utf8-value", "GET", "/v1/models/acme/llama/info")
            .version(HTTP2)
            .header("authorization", &bearer)
            .header("x-opaque", b"\xff\xfe"),
        CorpusRequest::new("h2-post-body", "POST", "/ctx/v1/upload")
            .version(HTTP2)
            .header("authorization", &bearer)
            .body(RequestBody::Sized(b"{\"h2\":true}")),
        CorpusRequest::new(
            "h2-body-without-length",
            "PUT",
            "/v1/models/acme/llama/blob",
        )
        .version(HTTP2)
        .header("authorization", &bearer)
        .body(RequestBody::Chunked(b"streamed")),
    ]
}

/// Requests Envoy answers itself, before ext_authz runs: they cannot be in the corpus.
pub fn refused_requests() -> Vec<CorpusRequest> {
    let get = |name| {
        CorpusRequest::new(name, "GET", "/v1/models/acme/llama/info")
            .header("Authorization", format!("Bearer {JWT_LIKE}"))
    };
    vec![
        get("nul-in-value").header("X-Bad", b"a\0b"),
        get("space-before-colon").header("X-Bad ", "value"),
        get("bad-header-name").header("X(Bad)", "value"),
        get("content-length-and-chunked")
            .header("Content-Length", "3")
            .body(RequestBody::Chunked(b"abc")),
        get("two-content-lengths")
            .header("Content-Length", "4")
            .body(RequestBody::Sized(b"abc")),
        // 431: more than Envoy's default limit of 100 headers.
        (0..100).fold(get("too-many-headers"), |request, i| {
            request.header(format!("x-many-{i:03}"), "v")
        }),
        CorpusRequest::new("asterisk-target", "OPTIONS", "*"),
        CorpusRequest::new("lowercase-method", "get", "/v1/models/acme/llama/info"),
        CorpusRequest::new("http11-no-host", "GET", "/v1/models/acme/llama/info").host(None),
    ]
}

/// The capture server with one Envoy in front of it, a listener per encoding.
pub struct CaptureEnvoy {
    server: RunningCapture,
    envoy: Envoy,
    /// The CA of Envoy's certificate, PEM.
    ca: String,
    /// The client certificate of [`Tls::Mutual`] requests.
    client: Pair,
    _certs: tempfile::TempDir,
}

/// What one request got: Envoy's answer, and the Check calls Envoy made for it.
pub struct Exchange {
    /// The status code of Envoy's answer, if it was an HTTP answer.
    pub status: Option<u16>,
    /// The answer's start (HTTP/1) or body (HTTP/2), for failure messages.
    pub reply: String,
    /// Each Check call's message bytes, as received.
    pub checks: Vec<Vec<u8>>,
}

impl CaptureEnvoy {
    /// Start the capture server on 127.0.0.1:0, then Envoy pointed at it.
    pub async fn start() -> CaptureEnvoy {
        let server = CaptureServer::start().await;
        let certs = tempfile::tempdir().expect("certificate dir");
        let ca = TestCa::new("corpus-ca");
        let client = ca.client(CLIENT_CN, false);
        let paths = TlsPaths {
            ca: ca.write(certs.path(), "ca.crt"),
            cert_key: ca.server("envoy").write(certs.path(), "envoy"),
        };
        let envoy =
            Envoy::start(EnvoyConfig::on_port_zero(envoy_config(server.addr, &paths))).await;
        CaptureEnvoy {
            server,
            envoy,
            ca: ca.pem(),
            client,
            _certs: certs,
        }
    }

    /// The client configuration for `request`, if it goes over TLS.
    fn tls_client(&self, request: &CorpusRequest) -> Option<Arc<rustls::ClientConfig>> {
        let identity = match request.tls {
            Tls::Off => return None,
            Tls::Anonymous => None,
            Tls::Mutual => Some(&self.client),
        };
        let mut config = (*client_config(&self.ca, identity)).clone();
        let alpn: &[u8] = if request.version == HTTP2 {
            b"h2"
        } else {
            b"http/1.1"
        };
        config.alpn_protocols = vec![alpn.to_vec()];
        Some(Arc::new(config))
    }

    /// Send `request` to the listener of `encoding` and wait for the answer. Panics if a Check
    /// call came from the other listener, or carries another request's name.
    pub async fn exchange(&self, encoding: Encoding, request: &CorpusRequest) -> Exchange {
        let listener = self.envoy.listener(encoding.label());
        let (status, reply) = match (self.tls_client(request), request.version == HTTP2) {
            (None, true) => {
                let tcp = tokio::net::TcpStream::connect(listener).await;
                send_h2(request, async { tcp }).await
            }
            (Some(config), true) => send_h2(request, tls_connect(listener, config)).await,
            (None, false) => {
                let reply = send(listener, request.to_bytes()).await;
                (
                    status_of(&reply),
                    String::from_utf8_lossy(&reply).into_owned(),
                )
            }
            (Some(config), false) => {
                let reply = send_tls(listener, config, request).await;
                (
                    status_of(&reply),
                    String::from_utf8_lossy(&reply).into_owned(),
                )
            }
        };
        // Envoy answers only after the Check call was answered, and requests go one at a
        // time, so whatever arrived since the last request is this request's.
        let checks = self
            .server
            .take()
            .into_iter()
            .map(|received| {
                assert_eq!(
                    received.encoding.as_deref(),
                    Some(encoding.label()),
                    "{}: the Check call came from the other listener",
                    request.name
                );
                if let Some(name) = &received.name {
                    assert_eq!(name, request.name, "the Check call names another request");
                }
                received.bytes
            })
            .collect();
        Exchange {
            status,
            reply: reply.chars().take(300).collect(),
            checks,
        }
    }

    /// Envoy's logs, for failure messages.
    pub fn logs(&self) -> String {
        self.envoy.logs()
    }

    pub async fn stop(self) {
        drop(self.envoy);
        self.server.stop().await;
    }
}

/// Start the capture server and one Envoy with a listener per encoding, send every request to
/// both listeners (in order, one at a time), and return each Check call Envoy made, keyed by
/// the request's name. Panics if Envoy does not answer a request with 200 after exactly one
/// Check call.
pub async fn capture_envoy_checks(requests: &[CorpusRequest]) -> Vec<Captured> {
    let capture = CaptureEnvoy::start().await;
    let mut captured = Vec::new();
    for request in requests {
        for encoding in Encoding::ALL {
            let exchange = capture.exchange(encoding, request).await;
            assert_eq!(
                exchange.status,
                Some(200),
                "{} to the {} listener: Envoy answered {:?}\n{}",
                request.name,
                encoding.label(),
                exchange.reply,
                capture.logs()
            );
            let [bytes] = <[Vec<u8>; 1]>::try_from(exchange.checks).unwrap_or_else(|checks| {
                panic!(
                    "{} to the {} listener: expected one Check call, got {}",
                    request.name,
                    encoding.label(),
                    checks.len()
                )
            });
            captured.push(Captured {
                name: request.name.to_owned(),
                encoding,
                bytes,
            });
        }
    }
    capture.stop().await;
    captured
}

/// One request over a fresh connection, written as given; the whole answer, read until the
/// server closes. Blocking I/O on the blocking pool, so the capture server keeps running.
async fn send(addr: SocketAddr, request: Vec<u8>) -> Vec<u8> {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(&request)?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        Ok::<_, std::io::Error>(answer)
    })
    .await
    .expect("HTTP request task")
    .unwrap_or_else(|e| panic!("request to Envoy at {addr}: {e}"))
}

/// The status code of an HTTP/1 answer.
fn status_of(reply: &[u8]) -> Option<u16> {
    let line = reply.split(|&b| b == b'\r').next()?;
    let code = line.split(|&b| b == b' ').nth(1)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// One HTTP/1.x request over a fresh TLS connection, written as given; the whole answer.
async fn send_tls(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    request: &CorpusRequest,
) -> Vec<u8> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let exchange = async {
        let mut stream = tls_connect(addr, config).await?;
        stream.write_all(&request.to_bytes()).await?;
        let mut answer = Vec::new();
        match stream.read_to_end(&mut answer).await {
            // Envoy may close without a close_notify once it has answered.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => {}
            other => {
                other?;
            }
        }
        Ok::<_, std::io::Error>(answer)
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .unwrap_or_else(|_| panic!("{} over TLS: no answer in 10s", request.name))
        .unwrap_or_else(|e| panic!("{} over TLS: {e}", request.name))
}

/// One HTTP/2 request (prior knowledge on cleartext, ALPN on TLS) over the fresh connection
/// `connect` makes: the status and the body of the answer.
async fn send_h2<S>(
    request: &CorpusRequest,
    connect: impl std::future::Future<Output = std::io::Result<S>>,
) -> (Option<u16>, String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::time::timeout(Duration::from_secs(10), try_send_h2(request, connect))
        .await
        .unwrap_or_else(|_| panic!("{} over HTTP/2: no answer in 10s", request.name))
        .unwrap_or_else(|e| panic!("{} over HTTP/2: {e}", request.name))
}

async fn try_send_h2<S>(
    request: &CorpusRequest,
    connect: impl std::future::Future<Output = std::io::Result<S>>,
) -> Result<(Option<u16>, String), Box<dyn std::error::Error>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut client, connection) = h2::client::handshake(connect.await?).await?;
    let connection = tokio::spawn(connection);
    let host = request.host.ok_or("an HTTP/2 request needs a host")?;
    let mut head = http::Request::builder()
        .method(http::Method::from_bytes(request.method.as_bytes())?)
        .uri(format!("{}://{host}{}", request.scheme(), request.target));
    for (name, value) in &request.headers {
        head = head.header(
            http::HeaderName::from_bytes(name)?,
            http::HeaderValue::from_bytes(value)?,
        );
    }
    head = head.header(NAME_HEADER, request.name);
    let body = match request.body {
        RequestBody::None => &[][..],
        RequestBody::Sized(body) => {
            head = head.header("content-length", body.len());
            body
        }
        // HTTP/2 has no chunked coding: a body without a length.
        RequestBody::Chunked(body) => body,
    };
    let (response, mut stream) = client.send_request(head.body(())?, body.is_empty())?;
    if !body.is_empty() {
        stream.send_data(Bytes::copy_from_slice(body), true)?;
    }
    let response = response.await?;
    let status = response.status().as_u16();
    let mut answer = response.into_body();
    let mut text = Vec::new();
    while let Some(chunk) = answer.data().await {
        let chunk = chunk?;
        answer.flow_control().release_capacity(chunk.len())?;
        text.extend_from_slice(&chunk);
    }
    drop(client);
    connection.abort();
    Ok((Some(status), String::from_utf8_lossy(&text).into_owned()))
}

/// [`envoy_yaml`] with each listener also serving TLS on its port (a client certificate is
/// optional), so the peers' principals, the client certificate and the SNI reach ext_authz.
fn envoy_config(capture: SocketAddr, tls: &TlsPaths) -> serde_yaml::Value {
    let mut config: serde_yaml::Value =
        serde_yaml::from_str(&envoy_yaml(capture)).expect("corpus envoy config is YAML");
    let yaml = |text: &str| -> serde_yaml::Value {
        serde_yaml::from_str(text).expect("corpus envoy config is YAML")
    };
    let listeners = config["static_resources"]["listeners"]
        .as_sequence_mut()
        .expect("listeners");
    for listener in listeners {
        // TLS and cleartext on one port: the TLS inspector picks the chain.
        listener["listener_filters"] = yaml(
            r#"[{name: envoy.filters.listener.tls_inspector, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector}}]"#,
        );
        let chains = listener["filter_chains"]
            .as_sequence_mut()
            .expect("filter chains");
        let mut tls_chain = chains[0].clone();
        tls_chain["filter_chain_match"] = yaml("{transport_protocol: tls}");
        tls_chain["transport_socket"] = yaml(&format!(
            r#"
name: envoy.transport_sockets.tls
typed_config:
  "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
  require_client_certificate: false
  common_tls_context:
    alpn_protocols: [h2, http/1.1]
    tls_certificates:
      - certificate_chain: {{ filename: "{cert}" }}
        private_key: {{ filename: "{key}" }}
    validation_context:
      trusted_ca: {{ filename: "{ca}" }}
"#,
            cert = tls.cert_key.0.display(),
            key = tls.cert_key.1.display(),
            ca = tls.ca.display(),
        ));
        chains.insert(0, tls_chain);
    }
    config
}

/// Where Envoy's CA, certificate and key were written.
struct TlsPaths {
    ca: std::path::PathBuf,
    cert_key: (std::path::PathBuf, std::path::PathBuf),
}

/// Envoy with one listener per encoding, each with the same routes: a route on
/// [`CONTEXT_ROUTE`] that sets [`CONTEXT_EXTENSIONS`], and everything else. Both answer 200
/// themselves once ext_authz allowed, so no upstream is needed. The connection managers accept
/// what the corpus needs to reach ext_authz (underscores in names, `%2F`, HTTP/1.0), and the
/// filters send all headers and up to MAX_REQUEST_BYTES of body (as a string on the map listener, as bytes
/// on the raw one).
fn envoy_yaml(capture: SocketAddr) -> String {
    let listeners: String = Encoding::ALL.iter().map(|&e| listener_yaml(e)).collect();
    format!(
        r#"
admin:
  address:
    socket_address: {{ address: 127.0.0.1, port_value: 0 }}
static_resources:
  listeners:
{listeners}
  clusters:
    - name: capture
      type: STATIC
      connect_timeout: 1s
      typed_extension_protocol_options:
        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
          "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
          explicit_http_config:
            http2_protocol_options: {{}}
      load_assignment:
        cluster_name: capture
        endpoints:
          - lb_endpoints:
              - endpoint:
                  address:
                    socket_address: {{ address: "{ip}", port_value: {port} }}
"#,
        ip = capture.ip(),
        port = capture.port(),
    )
}

fn listener_yaml(encoding: Encoding) -> String {
    let label = encoding.label();
    let raw = encoding == Encoding::Raw;
    let context: String = CONTEXT_EXTENSIONS
        .iter()
        .map(|(k, v)| format!("                                  {k}: \"{v}\"\n"))
        .collect();
    format!(
        r#"    - name: {label}
      address:
        socket_address: {{ address: 127.0.0.1, port_value: 0 }}
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: {label}
                # Envoy's own 400s close at once instead of waiting a second for the client.
                delayed_close_timeout: 0s
                path_with_escaped_slashes_action: KEEP_UNCHANGED
                common_http_protocol_options:
                  headers_with_underscores_action: ALLOW
                http_protocol_options:
                  accept_http_10: true
                  default_host_for_http_10: {HTTP10_DEFAULT_HOST}
                route_config:
                  name: {label}
                  virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                        - name: context-extensions
                          match: {{ prefix: "{CONTEXT_ROUTE}" }}
                          # Sent as route_metadata_context: a Struct with every kind of Value.
                          metadata:
                            filter_metadata:
                              {ROUTE_METADATA_NAMESPACE}:
                                tier: gold
                                weight: 3
                                enabled: true
                                missing: null
                                tags: [a, 1, false]
                                nested: {{ inner: {{ deep: deep-value }} }}
                          direct_response: {{ status: 200, body: {{ inline_string: "allowed\n" }} }}
                          typed_per_filter_config:
                            envoy.filters.http.ext_authz:
                              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute
                              check_settings:
                                context_extensions:
{context}                        - name: default
                          match: {{ prefix: "/" }}
                          direct_response: {{ status: 200, body: {{ inline_string: "allowed\n" }} }}
                http_filters:
                  - name: envoy.filters.http.ext_authz
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
                      transport_api_version: V3
                      grpc_service:
                        envoy_grpc: {{ cluster_name: capture }}
                        timeout: 5s
                        initial_metadata:
                          - {{ key: {ENCODING_METADATA}, value: {label} }}
                      failure_mode_allow: false
                      encode_raw_headers: {raw}
                      include_peer_certificate: true
                      include_tls_session: true
                      route_metadata_context_namespaces: [{ROUTE_METADATA_NAMESPACE}]
                      with_request_body:
                        max_request_bytes: {MAX_REQUEST_BYTES}
                        allow_partial_message: true
                        pack_as_bytes: {raw}
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"#
    )
}

/// The gRPC ext_authz server that records what it receives.
#[derive(Clone)]
struct CaptureServer {
    received: Arc<Mutex<Vec<Received>>>,
}

/// A running capture server.
struct RunningCapture {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl CaptureServer {
    /// Serve on 127.0.0.1:0 (plaintext HTTP/2, as Envoy's `envoy_grpc` cluster speaks it).
    async fn start() -> RunningCapture {
        let incoming = tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse().unwrap())
            .expect("bind the capture server");
        let addr = incoming.local_addr().expect("capture server address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let service = CaptureServer {
            received: received.clone(),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = stopped.await;
                })
                .await
                .expect("capture server runs");
        });
        RunningCapture {
            addr,
            received,
            stop,
            task,
        }
    }
}

impl RunningCapture {
    /// Everything received since the last call.
    fn take(&self) -> Vec<Received> {
        std::mem::take(&mut *self.received.lock().expect("capture lock"))
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("capture server task");
    }
}

impl<B> Service<http::Request<B>> for CaptureServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != CHECK_PATH {
            return Box::pin(async {
                Ok(Status::unimplemented("only Check is served").into_http())
            });
        }
        let record = Record(self.received.clone());
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(RawCheckCodec);
            Ok(grpc.unary(record, req).await)
        })
    }
}

impl tonic::server::NamedService for CaptureServer {
    const NAME: &'static str = "envoy.service.auth.v3.Authorization";
}

/// The Check method: keep the bytes, answer OK.
struct Record(Arc<Mutex<Vec<Received>>>);

impl tonic::server::UnaryService<Bytes> for Record {
    type Response = CheckResponse;
    type Future = BoxFuture<tonic::Response<CheckResponse>, Status>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let encoding = request
            .metadata()
            .get(ENCODING_METADATA)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = request.into_inner().to_vec();
        let name = CheckRequest::decode(bytes.as_slice())
            .ok()
            .and_then(|r| corpus_name(&r));
        self.0.lock().expect("capture lock").push(Received {
            name,
            encoding,
            bytes,
        });
        Box::pin(async {
            Ok(tonic::Response::new(CheckResponse {
                status: Some(RpcStatus {
                    code: tonic::Code::Ok as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }))
        })
    }
}

/// The `x-corpus-name` a CheckRequest carries, in either encoding.
pub fn corpus_name(req: &CheckRequest) -> Option<String> {
    let http = req.attributes.as_ref()?.request.as_ref()?.http.as_ref()?;
    if let Some(name) = http.headers.get(NAME_HEADER) {
        return Some(name.clone());
    }
    http.header_map
        .as_ref()?
        .headers
        .iter()
        .find(|h| h.key == NAME_HEADER)
        .map(|h| String::from_utf8_lossy(&h.raw_value).into_owned())
}

/// Requests are the message bytes as they arrived; responses are prost's encoding.
#[derive(Clone, Copy, Default)]
struct RawCheckCodec;

impl Codec for RawCheckCodec {
    type Encode = CheckResponse;
    type Decode = Bytes;
    type Encoder = ResponseEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> ResponseEncoder {
        ResponseEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

struct RawDecoder;

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    /// `src` holds exactly one message: tonic has already read the length prefix.
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

struct ResponseEncoder;

impl Encoder for ResponseEncoder {
    type Item = CheckResponse;
    type Error = Status;

    fn encode(&mut self, item: CheckResponse, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encode CheckResponse: {e}")))
    }
}
