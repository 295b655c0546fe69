//! One accepted connection with its deadlines: the idle timeout for its whole life, and the
//! handshake deadline for its first bytes.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

use super::Socket;
use crate::server::metrics::OpenConnection;

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

    /// This connection, counted in `open` until it is dropped.
    pub(super) fn counted(mut self, open: OpenConnection) -> Conn<T> {
        self._open = Some(open);
        self
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
    use std::sync::Arc;

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::Semaphore;

    // The clock is paused and moves only when every task waits: the idle deadline is tested
    // on tokio's timers without waiting for it.
    #[tokio::test(start_paused = true)]
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
