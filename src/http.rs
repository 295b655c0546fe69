//! The HTTP side: `/metrics` for Prometheus, `/healthz` (the process runs) and `/readyz`
//! (a valid configuration is loaded and every SSO's first key load has finished).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;
use crate::store::Store;

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
    let snap = state.store.load();
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
        return (StatusCode::SERVICE_UNAVAILABLE, body);
    }
    let body = format!(
        "ready: configuration generation {} ({})\n{notes}",
        snap.generation, snap.hash
    );
    (StatusCode::OK, body)
}
