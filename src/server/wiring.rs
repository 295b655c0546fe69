//! Wiring: load the configuration, bind both listeners, serve until shutdown, drain.
//!
//! The configuration is loaded and validated before any port is bound, so a bad
//! configuration never leaves a half-started process behind.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;

use crate::core::config::ConfigError;
use crate::core::decision::Enforcement;
use crate::core::load::{self, Loader};
use crate::core::store::Store;
use crate::server::decision_log::{self, DecisionLog, WriterHandle};
use crate::server::health;
use crate::server::http::{self, HttpState};
use crate::server::listener::{
    Acceptor, ConnectionOptions, ConnectionOptionsError, ListenAddr, Listener,
};
use crate::server::metrics::Metrics;
use crate::server::provider::{self, ProviderOptions};
use crate::server::reload::{self, ReloadOptions, Reloader};
use crate::server::service::{AuthorizationService, CheckService};
use crate::server::tls::{self, Tls, TlsError, TlsFiles};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The connection limits or timeouts are invalid.
    #[error("invalid connection settings: {0}")]
    Connections(#[from] ConnectionOptionsError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: ListenAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TLS certificate, key or client CA cannot be used.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
    /// A server's task (gRPC or HTTP) panicked or was cancelled.
    #[error("{server} server failed: {source}")]
    Task {
        /// Which server: `gRPC` or `HTTP`.
        server: &'static str,
        /// Why the task ended.
        source: tokio::task::JoinError,
    },
    /// The decision log's writer thread could not be started.
    #[error("cannot start the decision log: {0}")]
    DecisionLog(std::io::Error),
}

/// How to run the server.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The configuration directory.
    pub config_dir: PathBuf,
    /// Where to serve gRPC ext_authz: TCP, or a Unix socket.
    pub grpc_addr: ListenAddr,
    /// Where to serve `/metrics`, `/healthz`, `/readyz`.
    pub http_addr: SocketAddr,
    /// How configuration changes are picked up.
    pub reload: ReloadOptions,
    /// How remote keys are fetched and refreshed.
    pub provider: ProviderOptions,
    /// How many verified tokens to remember (0: verify every check).
    pub token_cache_entries: usize,
    /// Connection limits and timeouts of both ports, and the shutdown's delay and grace.
    pub connections: ConnectionOptions,
    /// TLS (and mTLS with a client CA) on the gRPC port; `None`: plaintext.
    pub tls: Option<TlsFiles>,
    /// Where and how decisions are logged (none: no decision log).
    pub decision_log: Option<decision_log::Options>,
    /// `dry_run`: every denial of a routed request is let through and only reported.
    pub enforcement: Enforcement,
    /// What an allow puts in Envoy's dynamic metadata.
    pub allow_metadata: crate::server::service::AllowMetadata,
    /// Trust the development key committed in claimgate's repository (`--dev`), with warnings.
    pub dev: bool,
}

/// The `serve` command line; each module owns the flags of its options.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Configuration directory.
    #[arg(long, env = "CLAIMGATE_CONFIG")]
    pub config: PathBuf,
    /// gRPC listen address: HOST:PORT, or unix:/PATH for a Unix socket.
    #[arg(long, env = "CLAIMGATE_GRPC_ADDR", default_value = "0.0.0.0:9001")]
    pub grpc_addr: ListenAddr,
    /// HTTP listen address for /metrics, /healthz, /readyz.
    #[arg(long, env = "CLAIMGATE_HTTP_ADDR", default_value = "0.0.0.0:9090")]
    pub http_addr: SocketAddr,
    /// How configuration changes are picked up.
    #[command(flatten)]
    pub reload: ReloadOptions,
    /// How remote keys are fetched and refreshed.
    #[command(flatten)]
    pub provider: ProviderOptions,
    /// How many verified tokens to remember; 0 verifies every check.
    #[arg(long, env = "CLAIMGATE_TOKEN_CACHE_ENTRIES", default_value_t = crate::core::token_cache::DEFAULT_ENTRIES)]
    pub token_cache_entries: usize,
    /// Connection limits and timeouts of both ports, and the shutdown's delay and grace.
    #[command(flatten)]
    pub connections: ConnectionOptions,
    /// Where and how decisions are logged.
    #[command(flatten)]
    pub decision_log: decision_log::DecisionLogArgs,
    /// `dry_run`: let every denial of a routed request through, with x-claimgate-dry-run.
    #[arg(long, env = "CLAIMGATE_ENFORCEMENT", default_value = "enforce")]
    pub enforcement: Enforcement,
    /// What an allow puts in Envoy's dynamic metadata: full (the identity fields, for
    /// the access log) or decision-id (only the id: less work for Envoy per request).
    #[arg(long, env = "CLAIMGATE_ALLOW_METADATA", default_value = "full")]
    pub allow_metadata: crate::server::service::AllowMetadata,
    /// TLS (and mTLS) on the gRPC port.
    #[command(flatten)]
    pub tls: tls::TlsArgs,
    /// Trust the development key committed in claimgate's repository (the README's demo),
    /// with a warning at start and every reload; without it such a configuration is refused.
    #[arg(long, env = "CLAIMGATE_DEV")]
    pub dev: bool,
}

impl ServeArgs {
    /// The options the command line asks for.
    pub fn options(self) -> ServeOptions {
        ServeOptions {
            config_dir: self.config,
            grpc_addr: self.grpc_addr,
            http_addr: self.http_addr,
            reload: self.reload,
            provider: self.provider,
            token_cache_entries: self.token_cache_entries,
            connections: self.connections,
            tls: self.tls.files(),
            decision_log: self.decision_log.options(),
            enforcement: self.enforcement,
            allow_metadata: self.allow_metadata,
            dev: self.dev,
        }
    }
}

/// A server with its listeners bound, ready to run.
pub struct Bound {
    loader: Loader,
    key_wait: std::time::Duration,
    reload: ReloadOptions,
    token_cache_entries: usize,
    connections: ConnectionOptions,
    grpc: Listener,
    http: Listener,
    tls: Option<Arc<Tls>>,
    store: Arc<Store>,
    metrics: Metrics,
    decision_log: Option<(DecisionLog, WriterHandle)>,
    enforcement: Enforcement,
    allow_metadata: crate::server::service::AllowMetadata,
}

/// How long shutdown waits for the decision log to write what is queued (at most; the
/// shutdown grace bounds it too).
const DECISION_LOG_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// The HTTP/2 stream window of a gRPC connection: the RFC's default. A check request is a few
/// KiB; a larger one takes a few window updates, which cost nothing on the paths Envoy uses.
const STREAM_WINDOW: u32 = 64 * 1024;

/// The HTTP/2 connection window: what all of a connection's streams together may send
/// ahead of being read.
const CONNECTION_WINDOW: u32 = 1024 * 1024;

/// A health check request is a service name.
const HEALTH_MAX_MESSAGE_SIZE: usize = 4 * 1024;

impl Bound {
    /// Load the configuration, then bind both listeners.
    pub async fn bind(opts: &ServeOptions) -> Result<Bound, ServeError> {
        opts.connections.check()?;
        let provider = ProviderOptions {
            trust_dev_key: opts.dev,
            ..opts.provider.clone()
        };
        let key_wait = provider.refetch_wait;
        let loader = Loader::new(opts.config_dir.clone())
            .with_key_feeds(provider)
            .refusing_dev_key(!opts.dev);
        let tls = opts.tls.clone().map(Tls::load).transpose()?.map(Arc::new);
        let loaded = loader.load()?;
        let metrics = Metrics::new();
        let store = load::install_first(loaded.snapshot, &metrics);
        provider::start(&store.load(), &metrics);
        let decision_log = match &opts.decision_log {
            Some(o) => {
                Some(DecisionLog::start(o, metrics.clone()).map_err(ServeError::DecisionLog)?)
            }
            None => None,
        };
        let grpc = Acceptor::bind(&opts.grpc_addr)
            .await
            .map_err(|source| ServeError::Bind {
                addr: opts.grpc_addr.clone(),
                source,
            })?;
        let http_addr = ListenAddr::Tcp(opts.http_addr);
        let http = Acceptor::bind(&http_addr)
            .await
            .map_err(|source| ServeError::Bind {
                addr: http_addr,
                source,
            })?;
        let limits = &opts.connections;
        Ok(Bound {
            loader,
            key_wait,
            reload: opts.reload,
            token_cache_entries: opts.token_cache_entries,
            connections: opts.connections,
            grpc: Listener::new(
                grpc,
                "grpc",
                limits.grpc_max_connections,
                limits,
                metrics.open_connections("grpc"),
            ),
            http: Listener::new(
                http,
                "http",
                limits.http_max_connections,
                limits,
                metrics.open_connections("http"),
            ),
            tls,
            store,
            metrics,
            decision_log,
            enforcement: opts.enforcement,
            allow_metadata: opts.allow_metadata,
        })
    }

    /// The bound gRPC address (a Unix socket's path, or TCP with the port resolved).
    pub fn grpc_listen_addr(&self) -> ListenAddr {
        self.grpc
            .local_addr()
            .unwrap_or(ListenAddr::Tcp(SocketAddr::from(([0, 0, 0, 0], 0))))
    }

    /// The bound gRPC TCP address (`0.0.0.0:0` when it listens on a Unix socket).
    pub fn grpc_addr(&self) -> SocketAddr {
        tcp(self.grpc.local_addr())
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        tcp(self.http.local_addr())
    }

    /// The store (to swap snapshots in).
    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    /// The metrics.
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// Serve until `shutdown` resolves, then stop accepting and finish in-flight checks.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let (tx, rx) = watch::channel(false);
        let grpc_addr = self.grpc_listen_addr();
        let http_addr = self.http_addr();
        tracing::info!(%grpc_addr, %http_addr, tls = self.tls.is_some(), "serving");
        let service = CheckService::new(self.store.clone(), self.metrics.clone(), self.key_wait)
            .with_token_cache(self.token_cache_entries)
            .with_enforcement(self.enforcement)
            .with_allow_metadata(self.allow_metadata);
        if self.enforcement == Enforcement::DryRun {
            tracing::warn!("--enforcement dry_run: every denial of a routed request is let through and only reported");
        }
        let (service, writer, reopen) = match self.decision_log {
            Some((log, writer)) => {
                let reopen = tokio::spawn(reopen_on_sigusr1(log.clone()));
                (service.with_decision_log(log), Some(writer), Some(reopen))
            }
            None => (service, None, None),
        };
        let mut grpc_rx = rx.clone();
        let limits = self.connections;
        // SIGTERM first only drains readiness (`/readyz` 503, gRPC health NOT_SERVING) so the
        // endpoint is removed while checks are still answered; `tx` then stops the servers.
        let (draining_tx, draining) = watch::channel(false);
        // tonic takes any stream of connections: this one waits for a free slot before it
        // accepts, and never yields an error (the listener retries those itself).
        let incoming = tls::incoming(
            self.grpc,
            self.tls.clone(),
            limits.handshake_timeout,
            rx.clone(),
        );
        let tls_watch = self
            .tls
            .clone()
            .map(|t| tokio::spawn(t.watch(tx.subscribe())));
        let (health_reporter, health_service) = health::service(&self.store, tx.subscribe()).await;
        let health = tokio::spawn(health::follow(
            health_reporter,
            self.store.clone(),
            self.metrics.clone(),
            draining.clone(),
        ));
        let grpc = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(limits.grpc_keepalive_interval))
            .http2_keepalive_timeout(Some(limits.grpc_keepalive_timeout))
            // Each open stream may hold one message (bounded by the message size) and the
            // unread DATA its window lets in; SETTINGS_MAX_CONCURRENT_STREAMS bounds how many
            // a connection opens (Envoy opens another connection when it needs more).
            .max_concurrent_streams(limits.grpc_max_concurrent_streams)
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .add_service(health_service.max_decoding_message_size(HEALTH_MAX_MESSAGE_SIZE))
            .add_service(AuthorizationService::with_limits(
                service,
                limits.grpc_max_message_size,
                limits.max_in_flight_checks,
            ))
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = grpc_rx.wait_for(|stop| *stop).await;
            });
        let mut http_rx = rx;
        let app = http::router(HttpState {
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            draining,
        });
        let http = http::serve(self.http, app, limits, async move {
            let _ = http_rx.wait_for(|stop| *stop).await;
        });
        let reloader = Arc::new(Reloader::new(
            self.loader,
            self.store.clone(),
            self.metrics.clone(),
        ));
        let reloads = tokio::spawn(reload::run(reloader, self.reload, tx.subscribe()));
        let mut grpc = tokio::spawn(grpc);
        let mut http = tokio::spawn(http);
        shutdown.await;
        let _ = draining_tx.send(true);
        if !limits.shutdown_delay.is_zero() {
            tracing::info!(
                delay = ?limits.shutdown_delay,
                "shutting down: not ready, still serving until the delay ends"
            );
            tokio::time::sleep(limits.shutdown_delay).await;
        }
        tracing::info!(grace = ?limits.shutdown_grace, "shutting down: draining in-flight checks");
        let deadline = tokio::time::Instant::now() + limits.shutdown_grace;
        let _ = tx.send(true);
        let drained = tokio::time::timeout_at(deadline, async {
            let _ = reloads.await;
            let _ = health.await;
            if let Some(watch) = tls_watch {
                let _ = watch.await;
            }
            let grpc_result = (&mut grpc).await;
            let http_result = (&mut http).await;
            (grpc_result, http_result)
        })
        .await;
        let (grpc_result, http_result) = match drained {
            Ok(results) => results,
            Err(_) => {
                // The connections still open (a client in the middle of a message, a peer
                // that never acknowledges the GOAWAY) are closed with the process.
                tracing::warn!(grace = ?limits.shutdown_grace, "the drain did not finish within the shutdown grace; closing what is left");
                grpc.abort();
                http.abort();
                (Ok(Ok(())), Ok(()))
            }
        };
        if let Some(reopen) = reopen {
            reopen.abort();
            let _ = reopen.await;
        }
        // The service (and its queue's sender) is gone with the gRPC server: the writer
        // writes what is queued, unless its sink is stuck. It gets what is left of the grace.
        if let Some(writer) = writer {
            let left = deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .min(DECISION_LOG_DRAIN);
            let finish = tokio::task::spawn_blocking(move || writer.finish(left));
            if !matches!(finish.await, Ok(true)) {
                tracing::warn!("decision log: its sink did not take the last decisions in time");
            }
        }
        match grpc_result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(ServeError::Grpc(e)),
            Err(source) => {
                return Err(ServeError::Task {
                    server: "gRPC",
                    source,
                })
            }
        }
        http_result.map_err(|source| ServeError::Task {
            server: "HTTP",
            source,
        })
    }
}

/// Reopen the decision log on every SIGUSR1 (after logrotate moved the file).
async fn reopen_on_sigusr1(log: DecisionLog) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::user_defined1()) {
            Ok(mut s) => {
                while s.recv().await.is_some() {
                    tracing::info!("decision log: reopening on SIGUSR1");
                    log.reopen();
                }
            }
            Err(e) => tracing::warn!(error = %e, "decision log: cannot listen for SIGUSR1"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = log;
        std::future::pending::<()>().await;
    }
}

fn tcp(addr: std::io::Result<ListenAddr>) -> SocketAddr {
    match addr {
        Ok(ListenAddr::Tcp(a)) => a,
        _ => SocketAddr::from(([0, 0, 0, 0], 0)),
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
