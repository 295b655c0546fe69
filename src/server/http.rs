//! The HTTP side: `/metrics` for Prometheus, `/healthz` (the process runs) and `/readyz`
//! (a valid, non-empty configuration is loaded and every SSO's first key load has finished).
//!
//! The probes must answer whoever else holds connections: a liveness probe that times out
//! restarts the replica, and a restarting claimgate denies everything. So at the connection
//! limit a new connection is not queued behind the open ones: the open connection that has
//! waited longest for a request (one that never sent a request first, then one idle between
//! requests) is closed to make room, and a connection in the middle of a request is never
//! picked. A connection must also send its first byte within the handshake timeout. Silent or
//! slow sockets can then delay a probe by one accept, never lock it out, and a scrape of
//! `/metrics` in progress is not cut for them.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use crate::core::snapshot::Snapshot;
use crate::core::snapshot::NO_CONFIGURATION;
use crate::core::store::Store;
use crate::server::listener::{ConnectionOptions, Handshake, Listener};
use crate::server::metrics::Metrics;
use crate::server::provider::RemoteKeys;

#[cfg(test)]
mod tests;

/// What the HTTP handlers read.
#[derive(Debug, Clone)]
pub struct HttpState {
    /// The current snapshot.
    pub store: Arc<Store>,
    /// The metrics.
    pub metrics: Metrics,
    /// True once the shutdown began: `/readyz` answers 503 "shutting down".
    pub draining: watch::Receiver<bool>,
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
/// `axum::serve`, which takes no settings) so that a request head must arrive within the
/// header timeout, and so that each connection can be told to close for a newer one.
pub async fn serve(
    listener: Listener,
    app: Router,
    limits: ConnectionOptions,
    shutdown: impl Future<Output = ()>,
) {
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.http_header_timeout)
        .keep_alive(true);
    let handshake = limits.handshake_timeout;
    let open = Arc::new(Open::default());
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let conn = tokio::select! {
            conn = listener.accept_evicting(|| open.evict_one()) => conn,
            () = &mut shutdown => break,
        };
        while connections.try_join_next().is_some() {}
        let tracked = open.add();
        let conn = Handshake::new(conn, 1, tokio::time::Instant::now() + handshake);
        let service = Tracked {
            inner: TowerToHyperService::new(app.clone()),
            conn: tracked.clone(),
        };
        let served = http1.serve_connection(TokioIo::new(conn), service);
        let mut stopped = stopped.clone();
        let open = open.clone();
        connections.spawn(async move {
            let mut served = pin!(served);
            let drain = tokio::select! {
                result = served.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "HTTP connection ended");
                    }
                    false
                }
                () = tracked.evict.notified() => {
                    tracing::debug!("HTTP connection closed for a new one at the connection limit");
                    false
                }
                _ = stopped.wait_for(|stop| *stop) => true,
            };
            if drain {
                served.as_mut().graceful_shutdown();
                let _ = served.await;
            }
            open.remove(&tracked);
        });
    }
    // Stop listening before the drain, so new clients are refused rather than left waiting.
    drop(listener);
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
}

/// The HTTP port's open connections, oldest first.
#[derive(Debug, Default)]
struct Open {
    conns: Mutex<Vec<Arc<OpenConn>>>,
    next: AtomicU64,
}

/// What eviction needs to know of one connection.
#[derive(Debug)]
struct OpenConn {
    id: u64,
    /// Since when it has waited for its next request (its accept, or its last answer).
    waiting_since: Mutex<Option<Instant>>,
    /// Whether it ever sent a request.
    served: AtomicBool,
    /// Already told to close (so it is not picked twice).
    evicted: AtomicBool,
    evict: Notify,
}

impl Open {
    fn add(&self) -> Arc<OpenConn> {
        let conn = Arc::new(OpenConn {
            id: self.next.fetch_add(1, Ordering::Relaxed),
            waiting_since: Mutex::new(Some(Instant::now())),
            served: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            evict: Notify::new(),
        });
        self.lock().push(conn.clone());
        conn
    }

    fn remove(&self, conn: &OpenConn) {
        self.lock().retain(|c| c.id != conn.id);
    }

    /// Tell the connection that matters least to close: one that never sent a request before
    /// one that did, then the one waiting longest. A connection in the middle of a request is
    /// never picked. Whether one was found.
    fn evict_one(&self) -> bool {
        let conns = self.lock();
        let victim = conns
            .iter()
            .filter(|c| !c.evicted.load(Ordering::Relaxed))
            .filter_map(|c| {
                let since = (*c.waiting_since.lock().unwrap_or_else(|p| p.into_inner()))?;
                Some((c.served.load(Ordering::Relaxed), since, c))
            })
            .min_by_key(|(served, since, _)| (*served, *since))
            .map(|(_, _, c)| c.clone());
        drop(conns);
        match victim {
            Some(conn) => {
                conn.evicted.store(true, Ordering::Relaxed);
                // A permit is stored if the task is not waiting yet: it closes when it does.
                conn.evict.notify_one();
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<OpenConn>>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl OpenConn {
    fn set_waiting(&self, waiting: bool) {
        *self.waiting_since.lock().unwrap_or_else(|p| p.into_inner()) = waiting.then(Instant::now);
    }
}

/// The router for one connection, marking the connection busy while a request is handled.
#[derive(Debug, Clone)]
struct Tracked<S> {
    inner: S,
    conn: Arc<OpenConn>,
}

/// Marks the connection as waiting again when the request's handling ends (or is dropped).
struct Busy(Arc<OpenConn>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.set_waiting(true);
    }
}

impl<S> hyper::service::Service<axum::http::Request<Incoming>> for Tracked<S>
where
    S: hyper::service::Service<axum::http::Request<Incoming>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn call(&self, req: axum::http::Request<Incoming>) -> Self::Future {
        self.conn.served.store(true, Ordering::Relaxed);
        self.conn.set_waiting(false);
        let busy = Busy(self.conn.clone());
        let answer = self.inner.call(req);
        Box::pin(async move {
            let answer = answer.await;
            drop(busy);
            answer
        })
    }
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
    if *state.draining.borrow() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: shutting down\n".to_owned(),
        );
    }
    let (ready, body) = readiness(&state.store.load());
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body)
}

/// Whether `/readyz` answers 200 for this snapshot ([`Snapshot::is_ready`]), and its body.
fn readiness(snap: &Snapshot) -> (bool, String) {
    if snap.is_empty() {
        return (false, format!("not ready: {NO_CONFIGURATION}\n"));
    }
    if !snap.is_ready() {
        let loading: Vec<&str> = snap.awaiting_keys().map(|s| &*s.name).collect();
        let body = format!(
            "not ready: waiting for the first key load of {}\n",
            loading.join(", ")
        );
        return (false, body);
    }
    let mut notes = String::new();
    for sso in snap.ssos.iter().filter(|s| !s.login_enabled) {
        if let Some(key) = sso.keys.load().keys().iter().find(|k| k.is_dev_key()) {
            notes.push_str(&format!(
                "sso {}: trusts the development key committed in claimgate's repository ({}, --dev): anyone can sign its tokens; not for production\n",
                sso.name,
                key.label()
            ));
        }
        if sso.keys.load().is_empty() {
            let why = sso
                .remote
                .as_deref()
                .and_then(RemoteKeys::of)
                .and_then(|r| r.last_error())
                .unwrap_or_else(|| "no usable keys".to_owned());
            notes.push_str(&format!(
                "sso {}: keys not loaded ({why}); its tokens get 401 unknown_key\n",
                sso.name
            ));
        }
    }
    let body = format!(
        "ready: configuration generation {} ({})\n{notes}",
        snap.generation, snap.hash
    );
    (true, body)
}
