//! Accepting connections on both ports: a cap on how many are open, TCP keepalive, and an
//! idle deadline on each one.
//!
//! Why here and not in tonic or axum: tonic 0.14 limits requests per connection
//! (`concurrency_limit_per_connection`), not connections, and Envoy multiplexes many checks on
//! a few connections, so a per-connection cap would throttle the proxy while a flood of
//! connections went unchecked; axum 0.8's `serve` takes no settings at all. Both accept from
//! any stream of connections, so one [`Listener`] serves both.
//!
//! - At the cap on the gRPC port, the next connection is not accepted until one closes: it
//!   waits in the kernel's listen backlog (held, not refused), and the ones already open keep
//!   working. The HTTP port accepts it and closes the connection that has waited longest for a
//!   request instead ([`Listener::accept_evicting`]), so silent sockets cannot lock the probes out.
//! - A connection on which nothing is read or written for the idle timeout is closed. This is
//!   what ends a connection that never sends a byte (HTTP/2 keepalive starts only after the
//!   HTTP/2 preface, and a silent connection would also hold up a graceful shutdown for ever).
//!   A healthy idle gRPC connection is never cut: the server's keepalive PINGs and their
//!   answers are traffic, and the interval between them is shorter than the idle timeout.
//! - A new connection has a much shorter deadline for its first bytes ([`Handshake`]): a
//!   client that connects and then says nothing (or drips the TLS handshake or HTTP/2 preface)
//!   gives its slot back after the handshake timeout, not after the idle timeout.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::server::metrics::{OpenConnection, OpenConnections};

mod socket;

pub use socket::{Acceptor, ListenAddr, ListenAddrError, Socket};

/// Limits and timeouts of the connections on both ports, and how long a shutdown may take.
///
/// The doc line of each field is its `serve` flag's help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct ConnectionOptions {
    /// Most open connections on the gRPC port; more wait until one closes.
    #[arg(long, env = "CLAIMGATE_GRPC_MAX_CONNECTIONS", default_value_t = 4096)]
    pub grpc_max_connections: usize,
    /// Most open connections on the HTTP port; more wait until one closes.
    #[arg(long, env = "CLAIMGATE_HTTP_MAX_CONNECTIONS", default_value_t = 128)]
    pub http_max_connections: usize,
    /// Close a connection (either port) on which nothing was read or written for this long.
    #[arg(long, env = "CLAIMGATE_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// An HTTP request head must arrive in full within this (also the keep-alive wait).
    #[arg(long, env = "CLAIMGATE_HTTP_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub http_header_timeout: Duration,
    /// Send an HTTP/2 PING on a gRPC connection that has been quiet this long.
    #[arg(long, env = "CLAIMGATE_GRPC_KEEPALIVE_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub grpc_keepalive_interval: Duration,
    /// Close a gRPC connection whose PING is not answered within this.
    #[arg(long, env = "CLAIMGATE_GRPC_KEEPALIVE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub grpc_keepalive_timeout: Duration,
    /// Idle time before TCP keepalive probes start (both ports).
    #[arg(long, env = "CLAIMGATE_TCP_KEEPALIVE", default_value = "60s", value_parser = humantime::parse_duration)]
    pub tcp_keepalive: Duration,
    /// A new connection's handshake (gRPC: TLS and the HTTP/2 preface; HTTP: the first
    /// byte of a request) must arrive within this, or the connection is closed.
    #[arg(long, env = "CLAIMGATE_HANDSHAKE_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub handshake_timeout: Duration,
    /// Most concurrent checks (HTTP/2 streams) per gRPC connection.
    #[arg(
        long,
        env = "CLAIMGATE_GRPC_MAX_CONCURRENT_STREAMS",
        default_value_t = 100
    )]
    pub grpc_max_concurrent_streams: u32,
    /// Largest check request accepted (bytes, or with KiB/MiB); raise it when Envoy's
    /// ext_authz sends request bodies (with_request_body.max_request_bytes).
    #[arg(long, env = "CLAIMGATE_GRPC_MAX_MESSAGE_SIZE", default_value = "256KiB", value_parser = parse_size)]
    pub grpc_max_message_size: usize,
    /// Most checks being received or decided at once; more are refused (RESOURCE_EXHAUSTED).
    #[arg(long, env = "CLAIMGATE_MAX_IN_FLIGHT_CHECKS", default_value_t = 512)]
    pub max_in_flight_checks: usize,
    /// After SIGTERM, keep serving this long with /readyz 503 before draining.
    #[arg(long, env = "CLAIMGATE_SHUTDOWN_DELAY", default_value = "0s", value_parser = humantime::parse_duration)]
    pub shutdown_delay: Duration,
    /// Stop waiting for in-flight checks and open connections this long into the drain.
    #[arg(long, env = "CLAIMGATE_SHUTDOWN_GRACE", default_value = "20s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
}

/// A size in bytes: `262144`, `256KiB` or `1MiB`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let scale = match unit {
        "" => 1,
        "KiB" => 1024,
        "MiB" => 1024 * 1024,
        _ => {
            return Err(format!(
                "{s:?}: the unit is KiB or MiB (or none, for bytes)"
            ))
        }
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("{s:?} is not a size like 262144, 256KiB or 1MiB"))
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            grpc_max_connections: 4096,
            http_max_connections: 128,
            idle_timeout: Duration::from_secs(60),
            http_header_timeout: Duration::from_secs(10),
            grpc_keepalive_interval: Duration::from_secs(30),
            grpc_keepalive_timeout: Duration::from_secs(10),
            tcp_keepalive: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(5),
            grpc_max_concurrent_streams: 100,
            grpc_max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_in_flight_checks: 512,
            shutdown_delay: Duration::ZERO,
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// The default largest check request: Envoy's default header limit (60 KiB) fits with room to
/// spare, and so does a request body of up to about 190 KiB when the filter sends one
/// (`with_request_body`); a CheckRequest without a body is a few KiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 256 * 1024;

/// Why a set of [`ConnectionOptions`] is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionOptionsError {
    /// A limit or timeout is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// Healthy idle gRPC connections would be cut before their keepalive PING.
    #[error(
        "idle timeout ({idle:?}) must be longer than the gRPC keepalive interval ({keepalive:?}), \
         or healthy idle gRPC connections are closed before their keepalive PING"
    )]
    IdleBeforeKeepalive {
        /// The idle timeout.
        idle: Duration,
        /// The keepalive interval.
        keepalive: Duration,
    },
}

impl ConnectionOptions {
    /// Refuse settings that would close every connection at once or cut healthy ones.
    pub fn check(&self) -> Result<(), ConnectionOptionsError> {
        let limits = [
            ("grpc-max-connections", self.grpc_max_connections == 0),
            ("http-max-connections", self.http_max_connections == 0),
            ("idle-timeout", self.idle_timeout.is_zero()),
            ("http-header-timeout", self.http_header_timeout.is_zero()),
            (
                "grpc-keepalive-interval",
                self.grpc_keepalive_interval.is_zero(),
            ),
            (
                "grpc-keepalive-timeout",
                self.grpc_keepalive_timeout.is_zero(),
            ),
            ("tcp-keepalive", self.tcp_keepalive.is_zero()),
            ("handshake-timeout", self.handshake_timeout.is_zero()),
            (
                "grpc-max-concurrent-streams",
                self.grpc_max_concurrent_streams == 0,
            ),
            ("grpc-max-message-size", self.grpc_max_message_size == 0),
            ("max-in-flight-checks", self.max_in_flight_checks == 0),
        ];
        if let Some((name, _)) = limits.iter().find(|(_, zero)| *zero) {
            return Err(ConnectionOptionsError::Zero(name));
        }
        if self.idle_timeout <= self.grpc_keepalive_interval {
            return Err(ConnectionOptionsError::IdleBeforeKeepalive {
                idle: self.idle_timeout,
                keepalive: self.grpc_keepalive_interval,
            });
        }
        Ok(())
    }
}

/// A bound port that hands out at most `max` open connections at a time.
#[derive(Debug)]
pub struct Listener {
    acceptor: Acceptor,
    port: &'static str,
    slots: Arc<Semaphore>,
    max: usize,
    full: AtomicBool,
    idle: Duration,
    keepalive: socket2::TcpKeepalive,
    open: OpenConnections,
}

impl Listener {
    /// Wrap a bound listener; `port` names it in logs (`grpc` or `http`); `open` counts its
    /// open connections.
    pub fn new(
        acceptor: Acceptor,
        port: &'static str,
        max: usize,
        opts: &ConnectionOptions,
        open: OpenConnections,
    ) -> Listener {
        Listener {
            acceptor,
            port,
            slots: Arc::new(Semaphore::new(max)),
            max,
            full: AtomicBool::new(false),
            idle: opts.idle_timeout,
            keepalive: socket2::TcpKeepalive::new().with_time(opts.tcp_keepalive),
            open,
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<ListenAddr> {
        self.acceptor.local_addr()
    }

    /// The next connection, once a slot is free. Accept errors (out of file descriptors, a
    /// connection reset before it was accepted) are logged and retried, never returned: they
    /// must not stop the server.
    pub async fn accept(&self) -> Conn {
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(slot) => {
                self.full.store(false, Ordering::Relaxed);
                slot
            }
            Err(_) => {
                self.warn_full("new connections wait until one closes");
                self.wait_for_slot().await
            }
        };
        let socket = self.accept_socket().await;
        self.conn(socket, slot)
    }

    /// The next connection, accepted at once; at the limit, `evict` is asked to close an open
    /// connection to make room (it says whether it did), and the new one waits only if none
    /// could be closed.
    pub async fn accept_evicting(&self, evict: impl Fn() -> bool) -> Conn {
        let socket = self.accept_socket().await;
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(slot) => {
                self.full.store(false, Ordering::Relaxed);
                slot
            }
            Err(_) => {
                if evict() {
                    self.warn_full(
                        "the connection waiting longest for a request is closed for a new one",
                    );
                } else {
                    self.warn_full("new connections wait until one closes");
                }
                self.wait_for_slot().await
            }
        };
        self.conn(socket, slot)
    }

    fn warn_full(&self, what: &str) {
        if !self.full.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                port = self.port,
                limit = self.max,
                "connection limit reached; {what}"
            );
        }
    }

    async fn wait_for_slot(&self) -> OwnedSemaphorePermit {
        match self.slots.clone().acquire_owned().await {
            Ok(slot) => slot,
            // The semaphore is never closed; if it were, accept nothing more.
            Err(_) => std::future::pending().await,
        }
    }

    fn conn(&self, socket: Socket, slot: OwnedSemaphorePermit) -> Conn {
        let mut conn = Conn::new(socket, Some(slot), self.idle);
        conn._open = Some(self.open.opened());
        conn
    }

    async fn accept_socket(&self) -> Socket {
        loop {
            match self.acceptor.accept().await {
                Ok(socket) => {
                    if let Socket::Tcp(stream) = &socket {
                        if let Err(e) = self.configure(stream) {
                            tracing::debug!(port = self.port, error = %e, "socket options not set");
                        }
                    }
                    return socket;
                }
                Err(e) => {
                    tracing::warn!(port = self.port, error = %e, "accept failed; retrying");
                    // Out of descriptors is the usual cause: give connections time to close.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn configure(&self, stream: &TcpStream) -> io::Result<()> {
        stream.set_nodelay(true)?;
        socket2::SockRef::from(stream).set_tcp_keepalive(&self.keepalive)
    }
}

/// One accepted connection: closed with [`io::ErrorKind::TimedOut`] once nothing has moved
/// for the idle timeout; frees its slot when dropped.
#[derive(Debug)]
pub struct Conn<T = Socket> {
    io: T,
    idle: Duration,
    last_progress: Instant,
    deadline: Pin<Box<Sleep>>,
    _slot: Option<OwnedSemaphorePermit>,
    _open: Option<OpenConnection>,
}

impl<T> Conn<T> {
    /// Wrap `io`, holding `slot` until the connection is dropped.
    pub fn new(io: T, slot: Option<OwnedSemaphorePermit>, idle: Duration) -> Conn<T> {
        let now = Instant::now();
        Conn {
            io,
            idle,
            last_progress: now,
            deadline: Box::pin(tokio::time::sleep_until(now + idle)),
            _slot: slot,
            _open: None,
        }
    }

    /// The connection underneath.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    fn progressed(&mut self) {
        // Only a timestamp here: the timer is moved lazily when it fires, so busy
        // connections do not touch the timer wheel on every read.
        self.last_progress = Instant::now();
    }

    /// Called when the I/O is pending: `Ready` with the error once the connection has been
    /// idle for the whole timeout.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            ready!(self.deadline.as_mut().poll(cx));
            let due = self.last_progress + self.idle;
            if Instant::now() >= due {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connection idle for {:?}", self.idle),
                ));
            }
            self.deadline.as_mut().reset(due);
        }
    }

    /// What a write polled: bytes written count as progress; pending waits for the idle
    /// timeout.
    fn wrote(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match polled {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.progressed();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.pending_or_idle(cx),
        }
    }

    fn pending_or_idle<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        match self.poll_idle(cx) {
            Poll::Ready(e) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Conn<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.progressed();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.pending_or_idle(cx),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Conn<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.wrote(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.wrote(cx, polled)
    }

    // Deliberately not vectored: h2 then copies DATA frames of up to 1 KiB into its write
    // buffer, where the next responses join them, instead of chaining every frame over 256
    // bytes and flushing it with a write of its own. An allow (headers plus metadata, about 400
    // bytes) would otherwise cost a second `writev` per check.
    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Pending => self.pending_or_idle(cx),
            done => done,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.io).poll_shutdown(cx) {
            Poll::Pending => self.pending_or_idle(cx),
            done => done,
        }
    }
}

/// A new connection whose first `need` bytes must have been read by a deadline: the TLS
/// handshake and HTTP/2 preface on the gRPC port, the first byte of a request on the HTTP
/// port. Until then a pending read ends in [`io::ErrorKind::TimedOut`] once the deadline has
/// passed; after them it is the connection underneath, unchanged.
#[derive(Debug)]
pub struct Handshake<T> {
    io: T,
    need: usize,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<T> Handshake<T> {
    /// `io`, which must deliver `need` bytes before `deadline`.
    pub fn new(io: T, need: usize, deadline: Instant) -> Handshake<T> {
        Handshake {
            io,
            need,
            deadline: (need > 0).then(|| Box::pin(tokio::time::sleep_until(deadline))),
        }
    }

    /// The connection underneath.
    pub fn get_ref(&self) -> &T {
        &self.io
    }
}

/// The HTTP/2 connection preface a client sends first (RFC 9113, section 3.4).
pub const HTTP2_PREFACE_LEN: usize = 24;

impl<T: AsyncRead + Unpin> AsyncRead for Handshake<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len() - before;
                if self.deadline.is_some() {
                    self.need = self.need.saturating_sub(read);
                    if self.need == 0 {
                        self.deadline = None;
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let late = match self.deadline.as_mut() {
                    Some(deadline) => deadline.as_mut().poll(cx).is_ready(),
                    None => false,
                };
                if late {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "handshake not completed in time",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Handshake<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for Conn<Socket> {
    type ConnectInfo = Option<std::net::SocketAddr>;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.peer_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn defaults_pass_and_settings_that_cut_healthy_connections_do_not() {
        let ok = ConnectionOptions::default();
        assert_eq!(ok.check(), Ok(()));
        let zero = ConnectionOptions {
            http_max_connections: 0,
            ..ok
        };
        assert_eq!(
            zero.check(),
            Err(ConnectionOptionsError::Zero("http-max-connections"))
        );
        let short = ConnectionOptions {
            idle_timeout: Duration::from_secs(30),
            ..ok
        };
        assert!(matches!(
            short.check(),
            Err(ConnectionOptionsError::IdleBeforeKeepalive { .. })
        ));
    }

    #[tokio::test]
    async fn a_connection_that_moves_bytes_stays_open_and_a_silent_one_is_closed() {
        let idle = Duration::from_millis(600);
        let (near, mut far) = tokio::io::duplex(64);
        let mut conn = Conn::new(near, None, idle);
        // Traffic for several idle periods, never a gap as long as one: the connection lives.
        let talker = tokio::spawn(async move {
            for _ in 0..20 {
                far.write_all(b"x").await.unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            far
        });
        let mut got = 0;
        let mut byte = [0u8; 1];
        while got < 20 {
            conn.read_exact(&mut byte)
                .await
                .expect("an active connection is never cut");
            got += 1;
        }
        let _far = talker.await.unwrap();
        // Then silence: the next read fails once the idle timeout has passed.
        let err = conn.read(&mut byte).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_handshake_not_read_by_its_deadline_fails_and_one_read_in_time_lifts_it() {
        use futures_util::FutureExt as _;
        // The deadline has passed as the connection starts: only bytes already there count.
        let (near, _far) = tokio::io::duplex(64);
        let mut late = Handshake::new(near, HTTP2_PREFACE_LEN, Instant::now());
        let mut byte = [0u8; 1];
        let err = late.read(&mut byte).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);

        let (near, mut far) = tokio::io::duplex(64);
        far.write_all(&[b'x'; HTTP2_PREFACE_LEN]).await.unwrap();
        let mut done = Handshake::new(near, HTTP2_PREFACE_LEN, Instant::now());
        let mut preface = [0u8; HTTP2_PREFACE_LEN];
        done.read_exact(&mut preface).await.unwrap();
        // Then silence is the idle timeout's business, not the handshake's: the read waits.
        assert!(done.read(&mut byte).now_or_never().is_none());
        far.write_all(b"y").await.unwrap();
        assert_eq!(done.read(&mut byte).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_dropped_connection_frees_its_slot() {
        let slots = Arc::new(Semaphore::new(1));
        let (near, _far) = tokio::io::duplex(8);
        let conn = Conn::new(
            near,
            Some(slots.clone().try_acquire_owned().unwrap()),
            Duration::from_secs(60),
        );
        assert_eq!(slots.available_permits(), 0);
        drop(conn);
        assert_eq!(slots.available_permits(), 1);
    }
}
