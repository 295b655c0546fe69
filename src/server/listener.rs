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

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::server::metrics::OpenConnections;

/// One accepted connection and its deadlines.
mod conn;
/// `AsyncRead` and `AsyncWrite` for an enum of streams.
mod delegate;
/// The connection limits and timeouts, as `serve` flags.
mod options;
mod socket;

pub use conn::{Conn, Handshake, HTTP2_PREFACE_LEN};
pub(crate) use delegate::delegate_io;
pub use options::{
    parse_size, ConnectionOptions, ConnectionOptionsError, DEFAULT_MAX_MESSAGE_SIZE,
};
pub use socket::{Acceptor, ListenAddr, ListenAddrError, Socket};

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
        Conn::new(socket, Some(slot), self.idle).counted(self.open.opened())
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
