//! Where the gRPC port listens: a TCP address, or a Unix domain socket (`unix:/path`) for an
//! Envoy on the same host or in the same pod, which reaches it with a `pipe` address.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// A listening address: `HOST:PORT`, or `unix:/path/to.sock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix domain socket at this path.
    Unix(PathBuf),
}

/// Why an address could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is neither HOST:PORT (like 0.0.0.0:9001) nor unix:/PATH")]
pub struct ListenAddrError {
    input: String,
}

impl FromStr for ListenAddr {
    type Err = ListenAddrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ListenAddrError {
            input: s.to_owned(),
        };
        match s.strip_prefix("unix:") {
            // Relative paths would depend on the working directory of whoever starts it.
            Some(path) if path.starts_with('/') && path.len() > 1 => {
                Ok(ListenAddr::Unix(PathBuf::from(path)))
            }
            Some(_) => Err(err()),
            None => s.parse().map(ListenAddr::Tcp).map_err(|_| err()),
        }
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(addr) => addr.fmt(f),
            ListenAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl From<SocketAddr> for ListenAddr {
    fn from(addr: SocketAddr) -> Self {
        ListenAddr::Tcp(addr)
    }
}

/// A bound listening socket of either kind.
#[derive(Debug)]
pub enum Acceptor {
    /// TCP.
    Tcp(TcpListener),
    /// A Unix domain socket, removed again when the acceptor is dropped.
    Unix(UnixListener, PathBuf),
}

impl Acceptor {
    /// Bind `addr`. A Unix socket file left behind by an earlier run is replaced; any other
    /// file at that path is an error, never deleted.
    pub async fn bind(addr: &ListenAddr) -> io::Result<Acceptor> {
        match addr {
            ListenAddr::Tcp(a) => TcpListener::bind(a).await.map(Acceptor::Tcp),
            ListenAddr::Unix(path) => {
                remove_stale_socket(path)?;
                UnixListener::bind(path).map(|l| Acceptor::Unix(l, path.clone()))
            }
        }
    }

    /// The bound address (a TCP port of 0 resolved).
    pub fn local_addr(&self) -> io::Result<ListenAddr> {
        match self {
            Acceptor::Tcp(l) => l.local_addr().map(ListenAddr::Tcp),
            Acceptor::Unix(_, path) => Ok(ListenAddr::Unix(path.clone())),
        }
    }

    /// The next connection.
    pub(super) async fn accept(&self) -> io::Result<Socket> {
        match self {
            Acceptor::Tcp(l) => l.accept().await.map(|(s, _)| Socket::Tcp(s)),
            Acceptor::Unix(l, _) => l.accept().await.map(|(s, _)| Socket::Unix(s)),
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        if let Acceptor::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn remove_stale_socket(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt as _;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "a file that is not a socket is in the way",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// An accepted connection of either kind.
#[derive(Debug)]
pub enum Socket {
    /// TCP.
    Tcp(TcpStream),
    /// A Unix domain socket.
    Unix(UnixStream),
}

impl Socket {
    /// The peer's TCP address, if it is TCP.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        match self {
            Socket::Tcp(s) => s.peer_addr().ok(),
            Socket::Unix(_) => None,
        }
    }
}

super::delegate_io!(Socket { Tcp, Unix });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_tcp_or_absolute_unix_paths() {
        assert_eq!(
            "127.0.0.1:9001".parse::<ListenAddr>(),
            Ok(ListenAddr::Tcp(([127, 0, 0, 1], 9001).into()))
        );
        assert_eq!(
            "unix:/run/claimgate/grpc.sock".parse::<ListenAddr>(),
            Ok(ListenAddr::Unix("/run/claimgate/grpc.sock".into()))
        );
        for bad in [
            "unix:",
            "unix:/",
            "unix:grpc.sock",
            "localhost",
            ":9001",
            "",
        ] {
            assert!(bad.parse::<ListenAddr>().is_err(), "{bad:?}");
        }
        assert_eq!(
            "unix:/a.sock".parse::<ListenAddr>().unwrap().to_string(),
            "unix:/a.sock"
        );
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_any_other_file_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grpc.sock");
        let addr = ListenAddr::Unix(path.clone());
        // A socket left behind by a process that was killed.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let acceptor = Acceptor::bind(&addr).await.unwrap();
        drop(acceptor);
        assert!(!path.exists(), "the socket file is removed when it closes");

        std::fs::write(&path, "not a socket").unwrap();
        let err = Acceptor::bind(&addr).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a socket");
    }
}
