//! A real OIDC provider on 127.0.0.1 for tests: discovery, JWKS, and the ways providers fail;
//! over plain http, or over HTTPS with a certificate of the test CA in `tests/fixtures/tls`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use super::process::{hold_port, localhost, reuse_port_listener, HeldPort};

/// How the provider answers JWKS requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Status500,
    Hang,
    HugeBody,
    InvalidJson,
    EmptyKeys,
}

#[derive(Debug)]
struct Inner {
    mode: Mode,
    jwks: String,
    issuer_override: Option<String>,
    jwks_uri_override: Option<String>,
    cache_control: Option<String>,
}

/// The provider's state, shared with its handlers.
#[derive(Clone, Debug)]
pub struct Provider {
    inner: Arc<Mutex<Inner>>,
    jwks_hits: Arc<AtomicUsize>,
    discovery_hits: Arc<AtomicUsize>,
    pub addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
    /// Keeps the port this provider's URLs name while it is stopped.
    _port: Arc<HeldPort>,
}

impl Provider {
    /// A provider over plain http.
    pub async fn start(jwks: String) -> Provider {
        Self::start_on(jwks, None).await
    }

    /// A provider over HTTPS, its certificate (127.0.0.1 and localhost) issued by the test CA:
    /// claimgate trusts it only with [`test_ca`] among its provider options' extra roots.
    pub async fn start_tls(jwks: String) -> Provider {
        Self::start_on(jwks, Some(tls_config())).await
    }

    /// A provider over HTTPS with this certificate and key (PEM), e.g. issued by a CA made in
    /// the test.
    pub async fn start_tls_with(jwks: String, cert_pem: &str, key_pem: &str) -> Provider {
        let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("certificate PEM");
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key PEM");
        Self::start_on(jwks, Some(server_config(certs, key))).await
    }

    async fn start_on(jwks: String, tls: Option<Arc<rustls::ServerConfig>>) -> Provider {
        let port = hold_port();
        let addr = localhost(port.port);
        let listener = reuse_port_listener(addr).expect("listen on the held port");
        let p = Provider {
            inner: Arc::new(Mutex::new(Inner {
                mode: Mode::Normal,
                jwks,
                issuer_override: None,
                jwks_uri_override: None,
                cache_control: None,
            })),
            jwks_hits: Arc::default(),
            discovery_hits: Arc::default(),
            addr,
            tls,
            task: Arc::default(),
            _port: Arc::new(port),
        };
        p.serve(listener);
        p
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/keys", get(keys))
            .with_state(self.clone());
        let handle = match self.tls.clone() {
            None => tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            }),
            Some(config) => tokio::spawn(async move {
                let acceptor = TlsAcceptor::from(config);
                let _ = axum::serve(TlsListener { listener, acceptor }, app).await;
            }),
        };
        *self.task.lock().unwrap() = Some(handle);
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The issuer this provider speaks for (its base URL).
    pub fn issuer(&self) -> String {
        format!("{}://{}", self.scheme(), self.addr)
    }

    pub fn jwks_uri(&self) -> String {
        format!("{}://{}/keys", self.scheme(), self.addr)
    }

    /// Make discovery point `jwks_uri` somewhere else.
    pub fn point_jwks_uri_at(&self, uri: &str) {
        self.inner.lock().unwrap().jwks_uri_override = Some(uri.to_string());
    }

    pub fn set_jwks(&self, jwks: String) {
        self.inner.lock().unwrap().jwks = jwks;
    }

    pub fn set_mode(&self, mode: Mode) {
        self.inner.lock().unwrap().mode = mode;
    }

    /// Make discovery name another issuer than the one it is served for.
    pub fn lie_about_issuer(&self, issuer: &str) {
        self.inner.lock().unwrap().issuer_override = Some(issuer.to_string());
    }

    pub fn jwks_fetches(&self) -> usize {
        self.jwks_hits.load(Ordering::SeqCst)
    }

    pub fn discovery_fetches(&self) -> usize {
        self.discovery_hits.load(Ordering::SeqCst)
    }

    /// Stop listening: connections are refused until [`Provider::restart`].
    pub fn stop(&self) {
        if let Some(h) = self.task.lock().unwrap().take() {
            h.abort();
        }
    }

    /// Listen again on the same port, which was held meanwhile.
    pub async fn restart(&self) {
        let task = self.task.lock().unwrap().take();
        if let Some(h) = task {
            h.abort();
            // Resolves once the task, and the old listener with it, is dropped.
            let _ = h.await;
        }
        let listener = reuse_port_listener(self.addr).expect("listen on the held port");
        self.serve(listener);
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.stop();
        }
    }
}

async fn discovery(State(p): State<Provider>) -> Response {
    p.discovery_hits.fetch_add(1, Ordering::SeqCst);
    let (issuer, jwks_uri) = {
        let i = p.inner.lock().unwrap();
        (
            i.issuer_override.clone().unwrap_or_else(|| p.issuer()),
            i.jwks_uri_override.clone().unwrap_or_else(|| p.jwks_uri()),
        )
    };
    let doc = serde_json::json!({"issuer": issuer, "jwks_uri": jwks_uri});
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.to_string(),
    )
        .into_response()
}

async fn keys(State(p): State<Provider>) -> Response {
    p.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let (mode, jwks, cache) = {
        let i = p.inner.lock().unwrap();
        (i.mode, i.jwks.clone(), i.cache_control.clone())
    };
    match mode {
        Mode::Normal => {
            let mut resp = ([(header::CONTENT_TYPE, "application/json")], jwks).into_response();
            if let Some(c) = cache {
                resp.headers_mut()
                    .insert(header::CACHE_CONTROL, c.parse().unwrap());
            }
            resp
        }
        Mode::Status500 => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            "late".into_response()
        }
        Mode::HugeBody => {
            // Valid JSON all the way, just far too large: only the size limit stops it.
            let pad = " ".repeat(10 * 1024 * 1024);
            let body = format!("{{\"keys\": []{pad}}}");
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Mode::InvalidJson => {
            ([(header::CONTENT_TYPE, "application/json")], "{\"keys\": [").into_response()
        }
        Mode::EmptyKeys => (
            [(header::CONTENT_TYPE, "application/json")],
            "{\"keys\": []}",
        )
            .into_response(),
    }
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// The CA that issued the HTTPS provider's certificate, for `ProviderOptions::extra_roots`.
pub fn test_ca() -> CertificateDer<'static> {
    CertificateDer::from_pem_file(fixture("ca.pem")).expect("tests/fixtures/tls/ca.pem")
}

fn tls_config() -> Arc<rustls::ServerConfig> {
    let certs = CertificateDer::pem_file_iter(fixture("localhost.pem"))
        .expect("tests/fixtures/tls/localhost.pem")
        .collect::<Result<Vec<_>, _>>()
        .expect("certificate PEM");
    let key = PrivateKeyDer::from_pem_file(fixture("localhost.key"))
        .expect("tests/fixtures/tls/localhost.key");
    server_config(certs, key)
}

fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Arc<rustls::ServerConfig> {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("test certificate and key match");
    Arc::new(config)
}

/// Accepts TCP connections and completes the TLS handshake before handing them to axum; a
/// failed handshake is dropped and the next connection accepted.
struct TlsListener {
    listener: tokio::net::TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, peer)) = self.listener.accept().await else {
                continue;
            };
            let handshake = self.acceptor.accept(tcp);
            if let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(5), handshake).await {
                return (tls, peer);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// The rest of a configuration for the SSO `remote-idp`: identity `bot` (any token of it), a
/// viewer of `model:a`, which `/a` routes to.
pub const REMOTE_REST: &str = "external_identities:\n  - name: bot\n    sso_fqn: remote-idp\nresources:\n  - fqn: model:a\n    collaborators:\n      - subject: external-identity:bot\n        role: viewer\nroutes:\n  - path: /a\n    resource: model:a\n    role: viewer\n";

/// A configuration whose one SSO, `remote-idp` (issuer `ISSUER`, ES256), loads its keys from
/// `jwks_uri`, with [`REMOTE_REST`].
pub fn remote_config(jwks_uri: &str) -> super::ConfigDir {
    let dir = super::ConfigDir::new();
    dir.write(
        "sso.yaml",
        &format!(
            "sso_integrations:\n  - name: remote-idp\n    type: oidc\n    issuer: {}\n    audiences: [{}]\n    jwks_uri: {jwks_uri}\n    algorithms: [ES256]\n",
            super::ISSUER,
            super::AUDIENCE,
        ),
    );
    dir.write("rest.yaml", REMOTE_REST);
    dir
}
