//! `AsyncRead` and `AsyncWrite` for an enum of streams, written once: each variant holds one
//! stream, and every call goes to the stream of the variant at hand.

/// Implement `AsyncRead` and `AsyncWrite` for `$ty`, whose variants each hold one `Unpin`
/// stream. `is_write_vectored` is the stream's own answer, or the one given after `vectored:`.
macro_rules! delegate_io {
    ($ty:ident { $($variant:ident),+ $(,)? }) => {
        $crate::server::listener::delegate_io!(@impl $ty { $($variant),+ }
            fn is_write_vectored(&self) -> bool {
                match self {
                    $($ty::$variant(s) => AsyncWrite::is_write_vectored(s),)+
                }
            }
        );
    };
    ($ty:ident { $($variant:ident),+ $(,)? }, vectored: $vectored:literal) => {
        $crate::server::listener::delegate_io!(@impl $ty { $($variant),+ }
            fn is_write_vectored(&self) -> bool {
                $vectored
            }
        );
    };
    (@impl $ty:ident { $($variant:ident),+ } $($is_write_vectored:tt)+) => {
        // A block of its own, so the names used here are imported without touching the
        // caller's module.
        const _: () = {
            use ::std::io;
            use ::std::pin::Pin;
            use ::std::task::{Context, Poll};
            use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

            impl AsyncRead for $ty {
                fn poll_read(
                    self: Pin<&mut Self>,
                    cx: &mut Context<'_>,
                    buf: &mut ReadBuf<'_>,
                ) -> Poll<io::Result<()>> {
                    match self.get_mut() {
                        $($ty::$variant(s) => AsyncRead::poll_read(Pin::new(s), cx, buf),)+
                    }
                }
            }

            impl AsyncWrite for $ty {
                fn poll_write(
                    self: Pin<&mut Self>,
                    cx: &mut Context<'_>,
                    buf: &[u8],
                ) -> Poll<io::Result<usize>> {
                    match self.get_mut() {
                        $($ty::$variant(s) => AsyncWrite::poll_write(Pin::new(s), cx, buf),)+
                    }
                }

                fn poll_write_vectored(
                    self: Pin<&mut Self>,
                    cx: &mut Context<'_>,
                    bufs: &[io::IoSlice<'_>],
                ) -> Poll<io::Result<usize>> {
                    match self.get_mut() {
                        $($ty::$variant(s) => {
                            AsyncWrite::poll_write_vectored(Pin::new(s), cx, bufs)
                        })+
                    }
                }

                $($is_write_vectored)+

                fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                    match self.get_mut() {
                        $($ty::$variant(s) => AsyncWrite::poll_flush(Pin::new(s), cx),)+
                    }
                }

                fn poll_shutdown(
                    self: Pin<&mut Self>,
                    cx: &mut Context<'_>,
                ) -> Poll<io::Result<()>> {
                    match self.get_mut() {
                        $($ty::$variant(s) => AsyncWrite::poll_shutdown(Pin::new(s), cx),)+
                    }
                }
            }
        };
    };
}

pub(crate) use delegate_io;
