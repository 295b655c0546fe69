//! The HTTP side: `/metrics` for Prometheus, `/healthz` (the process runs) and `/readyz`
//! (a valid, non-empty configuration is loaded and every SSO's first key load has finished).

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::listener::Listener;
use crate::metrics::Metrics;
use crate::snapshot::NO_CONFIGURATION;
use crate::store::Store;
use crate::Snapshot;

/// What the HTTP handlers read.
#[derive(Debug, Clone)]
pub struct HttpState {
    /// The current snapshot.
    pub store: Arc<Store>,
    /// The metrics.
    pub metrics: Metrics,
}

/// The router for the HTTP side.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// Serve `app` over HTTP/1 until `shutdown` resolves, then stop accepting and let the open
/// connections finish their request. hyper serves each connection directly (not
/// `axum::serve`, which takes no settings) so that a request head must arrive within
/// `header_timeout`.
pub async fn serve(
    listener: Listener,
    app: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let conn = tokio::select! {
            conn = listener.accept() => conn,
            () = &mut shutdown => break,
        };
        while connections.try_join_next().is_some() {}
        let served =
            http1.serve_connection(TokioIo::new(conn), TowerToHyperService::new(app.clone()));
        let mut stopped = stopped.clone();
        connections.spawn(async move {
            let mut served = pin!(served);
            tokio::select! {
                result = served.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "HTTP connection ended");
                    }
                    return;
                }
                _ = stopped.wait_for(|stop| *stop) => served.as_mut().graceful_shutdown(),
            }
            let _ = served.await;
        });
    }
    // Stop listening before the drain, so new clients are refused rather than left waiting.
    drop(listener);
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    let (ready, body) = readiness(&state.store.load());
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body)
}

/// Whether `/readyz` answers 200 for this snapshot, and its body. The gRPC health service
/// follows the same answer.
pub fn readiness(snap: &Snapshot) -> (bool, String) {
    if snap.is_empty() {
        return (false, format!("not ready: {NO_CONFIGURATION}\n"));
    }
    let mut loading = Vec::new();
    let mut notes = String::new();
    for sso in snap.ssos.iter().filter(|s| !s.login_enabled) {
        if !sso.keys_loaded() {
            loading.push(&*sso.name);
            continue;
        }
        if sso.keys.load().is_empty() {
            let why = sso
                .remote
                .as_ref()
                .and_then(|r| r.last_error())
                .unwrap_or_else(|| "no usable keys".to_owned());
            notes.push_str(&format!(
                "sso {}: keys not loaded ({why}); its tokens get 401 unknown_key\n",
                sso.name
            ));
        }
    }
    if !loading.is_empty() {
        let body = format!(
            "not ready: waiting for the first key load of {}\n",
            loading.join(", ")
        );
        return (false, body);
    }
    let body = format!(
        "ready: configuration generation {} ({})\n{notes}",
        snap.generation, snap.hash
    );
    (true, body)
}
