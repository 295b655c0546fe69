//! A real OIDC provider on 127.0.0.1 for tests: discovery, JWKS, and the ways providers fail.
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
    cache_control: Option<String>,
}

/// The provider's state, shared with its handlers.
#[derive(Clone, Debug)]
pub struct Provider {
    inner: Arc<Mutex<Inner>>,
    jwks_hits: Arc<AtomicUsize>,
    discovery_hits: Arc<AtomicUsize>,
    pub addr: SocketAddr,
    task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Provider {
    pub async fn start(jwks: String) -> Provider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let p = Provider {
            inner: Arc::new(Mutex::new(Inner {
                mode: Mode::Normal,
                jwks,
                issuer_override: None,
                cache_control: None,
            })),
            jwks_hits: Arc::default(),
            discovery_hits: Arc::default(),
            addr,
            task: Arc::default(),
        };
        p.serve(listener);
        p
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/keys", get(keys))
            .with_state(self.clone());
        let handle = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        *self.task.lock().unwrap() = Some(handle);
    }

    /// The issuer this provider speaks for (its base URL).
    pub fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn jwks_uri(&self) -> String {
        format!("http://{}/keys", self.addr)
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

    pub async fn restart(&self) {
        self.stop();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
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
    let issuer = p
        .inner
        .lock()
        .unwrap()
        .issuer_override
        .clone()
        .unwrap_or_else(|| p.issuer());
    let doc = serde_json::json!({"issuer": issuer, "jwks_uri": p.jwks_uri()});
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
