//! `grpc.health.v1.Health` on the gRPC port, for Envoy's gRPC health checks and Kubernetes'
//! gRPC probes: `SERVING` exactly when `/readyz` answers 200, for the whole server (`""`) and
//! for `envoy.service.auth.v3.Authorization`.
//!
//! A `Watch` stream never ends by itself, and a graceful shutdown waits for every open stream;
//! so watches end when the drain begins, or one watcher would hold the process until it is
//! killed.
//!
//! Readiness changes when a snapshot is installed or an SSO's first key load finishes; neither
//! announces itself to this module, so the answer is recomputed on a short tick (one atomic
//! load and a pass over the SSOs) and the health service is told only when it changes.

use std::sync::Arc;
use std::time::Duration;

use std::pin::Pin;

use futures_util::{Stream, StreamExt as _};
use tokio::sync::watch;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};
use tonic_health::{pb, ServingStatus};

use crate::core::store::Store;
use crate::server::metrics::Metrics;

/// How often readiness is recomputed.
pub const TICK: Duration = Duration::from_millis(200);

/// The service names whose status follows readiness.
pub const SERVICES: [&str; 2] = ["", "envoy.service.auth.v3.Authorization"];

fn status(store: &Store) -> ServingStatus {
    if store.load().is_ready() {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

async fn report(reporter: &HealthReporter, status: ServingStatus) {
    for name in SERVICES {
        reporter.set_service_status(name, status).await;
    }
}

/// The `grpc.health.v1.Health` service: tonic-health's, with watches that end at `stop`.
pub struct Health {
    inner: HealthService,
    stop: watch::Receiver<bool>,
}

/// A health service whose statuses already hold the current readiness (so the first check
/// never answers `SERVING` by default), and the reporter to keep them current with [`follow`].
pub async fn service(
    store: &Store,
    stop: watch::Receiver<bool>,
) -> (HealthReporter, HealthServer<Health>) {
    let reporter = HealthReporter::new();
    report(&reporter, status(store)).await;
    let inner = HealthService::from_health_reporter(reporter.clone());
    (reporter, HealthServer::new(Health { inner, stop }))
}

#[tonic::async_trait]
impl pb::health_server::Health for Health {
    async fn check(
        &self,
        request: Request<pb::HealthCheckRequest>,
    ) -> Result<Response<pb::HealthCheckResponse>, Status> {
        self.inner.check(request).await
    }

    type WatchStream =
        Pin<Box<dyn Stream<Item = Result<pb::HealthCheckResponse, Status>> + Send + 'static>>;

    async fn watch(
        &self,
        request: Request<pb::HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let statuses = self.inner.watch(request).await?.into_inner();
        let mut stop = self.stop.clone();
        let drain = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        Ok(Response::new(Box::pin(statuses.take_until(drain))))
    }
}

/// Keep the statuses (and the `claimgate_ready` gauge) equal to readiness until `stop` turns
/// true (the shutdown began), then report `NOT_SERVING` for the rest of it.
pub async fn follow(
    reporter: HealthReporter,
    store: Arc<Store>,
    metrics: Metrics,
    mut stop: watch::Receiver<bool>,
) {
    let mut last = status(&store);
    metrics.set_ready(last == ServingStatus::Serving);
    report(&reporter, last).await;
    loop {
        tokio::select! {
            () = tokio::time::sleep(TICK) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        let now = status(&store);
        if now != last {
            tracing::info!(status = ?now, "gRPC health changed");
            metrics.set_ready(now == ServingStatus::Serving);
            report(&reporter, now).await;
            last = now;
        }
    }
    metrics.set_ready(false);
    report(&reporter, ServingStatus::NotServing).await;
}
