//! TLS on the gRPC port: the certificate, key and client CA read from files and read again
//! when they change, and handshakes done beside the accept loop.
//!
//! Why polling and not file events: cert-manager and the kubelet rotate a mounted Secret by
//! swapping a `..data` symlink, some tools rewrite a file in place, and the certificate and key
//! never change in one atomic step. Reading three small files every few seconds sees every one
//! of these, and a pair read half-way through a rotation (new certificate, old key) fails to
//! build and is simply tried again on the next tick while the previous pair keeps serving.
//!
//! Each connection takes the configuration current when its handshake starts, so a rotation
//! never touches an established connection, and the next one gets the new certificate.

use std::convert::Infallible;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use futures_util::Stream;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use sha2::{Digest as _, Sha256};
use tokio::sync::{mpsc, watch};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tonic::transport::server::Connected as _;

use crate::server::listener::{delegate_io, Conn, Handshake, Listener, HTTP2_PREFACE_LEN};

/// Where the gRPC port's certificate, key and (for mTLS) client CA are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// The server's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates (PEM) that clients must chain to; `None`: no client certificate asked.
    pub client_ca: Option<PathBuf>,
    /// How often the files are read again for changes.
    pub reload_interval: Duration,
}

/// The `serve` flags that turn TLS on: a certificate and key, and a client CA for mTLS.
#[derive(Debug, Clone, clap::Args)]
pub struct TlsArgs {
    /// Serve gRPC over TLS with this certificate chain (PEM); re-read when it changes.
    #[arg(long, env = "CLAIMGATE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "CLAIMGATE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates chained to these CAs (PEM): mTLS.
    #[arg(long, env = "CLAIMGATE_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Read the TLS files again this often to pick up a rotated certificate.
    #[arg(long, env = "CLAIMGATE_TLS_RELOAD_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub tls_reload_interval: Duration,
}

impl TlsArgs {
    /// The files to serve TLS with; `None` (plaintext) without a certificate and key.
    pub fn files(self) -> Option<TlsFiles> {
        let (cert, key) = self.tls_cert.zip(self.tls_key)?;
        Some(TlsFiles {
            cert,
            key,
            client_ca: self.tls_client_ca,
            reload_interval: self.tls_reload_interval,
        })
    }
}

/// Why the TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A file holds no usable PEM item of the kind expected.
    #[error("{}: {reason}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The reload interval is zero.
    #[error("tls-reload-interval must be greater than zero")]
    ZeroInterval,
    /// The files parse but do not make a TLS configuration (key not matching the certificate,
    /// an unusable CA).
    #[error("{}: {reason}", path.display())]
    Config {
        /// The file most likely at fault.
        path: PathBuf,
        /// rustls' reason.
        reason: String,
    },
}

/// The gRPC port's TLS configuration, replaced when its files change.
#[derive(Debug)]
pub struct Tls {
    files: TlsFiles,
    current: ArcSwap<rustls::ServerConfig>,
    // The bytes the current configuration was built from, so an unchanged tick builds nothing.
    read: Mutex<Vec<Vec<u8>>>,
}

impl Tls {
    /// Read the files and build the first configuration; any problem is an error.
    pub fn load(files: TlsFiles) -> Result<Tls, TlsError> {
        if files.reload_interval.is_zero() {
            return Err(TlsError::ZeroInterval);
        }
        let bytes = read_all(&files)?;
        let config = build(&files, &bytes)?;
        Ok(Tls {
            files,
            current: ArcSwap::from(config),
            read: Mutex::new(bytes),
        })
    }

    /// The acceptor for the next handshake.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.load_full())
    }

    /// Read the files again; when they changed and make a valid configuration, use it for the
    /// next handshakes. `Ok(true)` when a new configuration was swapped in; on error the
    /// previous one stays.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let bytes = read_all(&self.files)?;
        let mut read = self.read.lock().unwrap_or_else(|p| p.into_inner());
        if *read == bytes {
            return Ok(false);
        }
        let config = build(&self.files, &bytes)?;
        self.current.store(config);
        *read = bytes;
        Ok(true)
    }

    /// Reload every `reload_interval` until `stop` turns true; failures are logged once per
    /// distinct failure and the previous certificate keeps serving.
    pub async fn watch(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut last_error = String::new();
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.files.reload_interval) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            match self.reload() {
                Ok(true) => {
                    last_error.clear();
                    tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                }
                Ok(false) => last_error.clear(),
                Err(e) => {
                    let text = e.to_string();
                    if text != last_error {
                        tracing::warn!(error = %text, "TLS files changed but cannot be used yet; the previous certificate stays");
                        last_error = text;
                    }
                }
            }
        }
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn read_all(files: &TlsFiles) -> Result<Vec<Vec<u8>>, TlsError> {
    let mut out = vec![read_file(&files.cert)?, read_file(&files.key)?];
    if let Some(ca) = &files.client_ca {
        out.push(read_file(ca)?);
    }
    Ok(out)
}

fn certs(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            reason: format!("not a PEM certificate: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            reason: "no CERTIFICATE block".to_owned(),
        });
    }
    Ok(certs)
}

fn build(files: &TlsFiles, bytes: &[Vec<u8>]) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = certs(&files.cert, &bytes[0])?;
    let key = PrivateKeyDer::from_pem_slice(&bytes[1]).map_err(|e| TlsError::Pem {
        path: files.key.clone(),
        reason: format!("no usable private key: {e}"),
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = match (&files.client_ca, bytes.get(2)) {
        (Some(ca_path), Some(ca_pem)) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in certs(ca_path, ca_pem)? {
                roots.add(ca).map_err(|e| TlsError::Config {
                    path: ca_path.clone(),
                    reason: format!("unusable CA certificate: {e}"),
                })?;
            }
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| TlsError::Config {
                    path: ca_path.clone(),
                    reason: format!("unusable client CA: {e}"),
                })?
        }
        _ => WebPkiClientVerifier::no_client_auth(),
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config {
            path: files.cert.clone(),
            reason: e.to_string(),
        })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config {
            path: files.key.clone(),
            reason: format!("certificate and key do not make a pair: {e}"),
        })?;
    // gRPC is HTTP/2 only.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// A connection on the gRPC port: plaintext, or after a completed TLS handshake. Either way
/// it is a [`Conn`], so the connection limit and idle deadline hold for both, and its HTTP/2
/// preface must arrive by the handshake deadline.
#[derive(Debug)]
pub enum GrpcConn {
    /// Plaintext.
    Plain(Handshake<Conn>),
    /// TLS over the limited connection.
    Tls(Box<Handshake<TlsStream<Conn>>>),
}

/// The gRPC port's connections for tonic: without TLS, accepted one by one; with TLS, each
/// handshake runs in its own task (bounded by `handshake` and by the connection limit, since
/// the slot is held from accept), so a slow or failing client never holds up the next one. A
/// refused handshake is logged at debug and never reaches tonic. Either way the TLS handshake
/// and the HTTP/2 preface after it must both be done within `handshake` of the accept.
pub fn incoming(
    listener: Listener,
    tls: Option<Arc<Tls>>,
    handshake: Duration,
    mut stop: watch::Receiver<bool>,
) -> impl Stream<Item = Result<GrpcConn, Infallible>> + Send + 'static {
    let (tx, rx) = mpsc::channel::<GrpcConn>(64);
    tokio::spawn(async move {
        loop {
            let conn = tokio::select! {
                conn = listener.accept() => conn,
                _ = stop.wait_for(|s| *s) => return,
                () = tx.closed() => return,
            };
            let deadline = tokio::time::Instant::now() + handshake;
            match &tls {
                None => {
                    let conn = Handshake::new(conn, HTTP2_PREFACE_LEN, deadline);
                    if tx.send(GrpcConn::Plain(conn)).await.is_err() {
                        return;
                    }
                }
                Some(tls) => {
                    let acceptor = tls.acceptor();
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let peer = conn.connect_info();
                        match tokio::time::timeout_at(deadline, acceptor.accept(conn)).await {
                            Ok(Ok(stream)) => {
                                if let Some(cert) = stream
                                    .get_ref()
                                    .1
                                    .peer_certificates()
                                    .and_then(|c| c.first())
                                {
                                    // Which client certificate is in use, e.g. after a rotation
                                    // on Envoy's side; `openssl x509 -fingerprint -sha256` prints
                                    // the same text for a certificate file.
                                    tracing::debug!(
                                        ?peer,
                                        client_cert_sha256 = %Fingerprint(cert),
                                        "TLS client certificate accepted"
                                    );
                                }
                                let stream = Handshake::new(stream, HTTP2_PREFACE_LEN, deadline);
                                let _ = tx.send(GrpcConn::Tls(Box::new(stream))).await;
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(?peer, error = %e, "TLS handshake refused")
                            }
                            Err(_) => tracing::debug!(?peer, "TLS handshake timed out"),
                        }
                    });
                }
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        let conn = rx.recv().await?;
        Some((Ok(conn), rx))
    })
}

/// A certificate's SHA-256 fingerprint as OpenSSL prints it (`AB:CD:…`), computed only when
/// the log line that shows it is written.
struct Fingerprint<'a>(&'a CertificateDer<'a>);

impl std::fmt::Display for Fingerprint<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, byte) in Sha256::digest(self.0).iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

// Not vectored on either kind, for the reason `listener::Conn` gives: h2 then coalesces
// answers in its buffer (and over TLS, into fewer records) instead of flushing each one.
delegate_io!(GrpcConn { Plain, Tls }, vectored: false);

impl tonic::transport::server::Connected for GrpcConn {
    type ConnectInfo = Option<std::net::SocketAddr>;

    fn connect_info(&self) -> Self::ConnectInfo {
        match self {
            GrpcConn::Plain(c) => c.get_ref().connect_info(),
            GrpcConn::Tls(c) => c.get_ref().get_ref().0.connect_info(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> TlsFiles {
        TlsFiles {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
            client_ca: None,
            reload_interval: Duration::from_secs(1),
        }
    }

    #[test]
    fn missing_and_malformed_files_are_errors_that_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path());
        let err = Tls::load(f.clone()).unwrap_err();
        assert!(matches!(err, TlsError::Read { ref path, .. } if path.ends_with("tls.crt")));
        std::fs::write(&f.cert, "not pem").unwrap();
        std::fs::write(&f.key, "not pem").unwrap();
        let err = Tls::load(f).unwrap_err().to_string();
        assert!(
            err.contains("tls.crt") && err.contains("no CERTIFICATE"),
            "{err}"
        );
    }

    #[test]
    fn a_fingerprint_is_the_sha256_in_openssls_spelling() {
        // FIPS 180-2's SHA-256 example: the digest of "abc".
        let der = CertificateDer::from(b"abc".to_vec());
        assert_eq!(
            Fingerprint(&der).to_string(),
            "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:\
             B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
    }
}
