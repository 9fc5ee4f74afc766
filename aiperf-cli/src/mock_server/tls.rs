//! `--tls-cert FILE --tls-key FILE`: the mock server speaks TLS on its ports (`https://`, and
//! `grpcs://` with `--grpc-port`), so that the client's TLS transports are tested against a
//! real server on loopback. rustls with ring; ALPN offers `h2` and `http/1.1` on the HTTP
//! port, `h2` on the gRPC one. Needs the `tls` feature.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The mock server's TLS flags.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TlsArgs {
    /// Serve TLS with this certificate chain (PEM, the server's certificate first): https://,
    /// and grpcs:// with --grpc-port.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

/// What accepts a port's connections: as they are, or through a TLS handshake.
#[derive(Clone)]
pub(crate) enum Acceptor {
    /// Plain TCP.
    Plain,
    /// TLS first.
    #[cfg(feature = "tls")]
    Tls(tokio_rustls::TlsAcceptor),
}

/// The acceptors of the mock server's two ports.
pub(crate) struct Acceptors {
    /// The HTTP port's (ALPN `h2`, `http/1.1`).
    pub(crate) http: Acceptor,
    /// The gRPC port's (ALPN `h2`).
    #[cfg_attr(not(feature = "grpc"), allow(dead_code))]
    pub(crate) grpc: Acceptor,
}

/// How long a client has to finish its TLS handshake: a connection that never does is closed
/// rather than held.
#[cfg(feature = "tls")]
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl TlsArgs {
    /// The acceptors of both ports: plain without `--tls-cert`.
    pub(crate) fn acceptors(&self) -> anyhow::Result<Acceptors> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(Acceptors {
                http: Acceptor::Plain,
                grpc: Acceptor::Plain,
            });
        };
        #[cfg(feature = "tls")]
        {
            let mut http = server_config(cert, key)?;
            let mut grpc = http.clone();
            http.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            grpc.alpn_protocols = vec![b"h2".to_vec()];
            Ok(Acceptors {
                http: Acceptor::Tls(std::sync::Arc::new(http).into()),
                grpc: Acceptor::Tls(std::sync::Arc::new(grpc).into()),
            })
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = (cert, key);
            anyhow::bail!(
                "this aiperf was built without the `tls` feature, so it cannot serve TLS: \
                 rebuild aiperf-cli with --features tls"
            )
        }
    }
}

impl Acceptor {
    /// `http` or `https` (`grpc` or `grpcs` with `grpc`), for the "listening on" line.
    pub(crate) fn scheme(&self, plain: &'static str) -> String {
        match self {
            Self::Plain => plain.to_owned(),
            #[cfg(feature = "tls")]
            Self::Tls(_) => format!("{plain}s"),
        }
    }

    /// Accepts `stream`: at once, or once its TLS handshake is done. A failed handshake is
    /// `None`, and the first one is reported on stderr (a client that sends plain HTTP to a
    /// TLS port sees only a closed connection).
    pub(crate) async fn accept<T>(&self, stream: T) -> Option<MaybeTls<T>>
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        match self {
            Self::Plain => Some(MaybeTls::Plain(stream)),
            #[cfg(feature = "tls")]
            Self::Tls(acceptor) => {
                let failure =
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => return Some(MaybeTls::Tls(Box::new(stream))),
                        Ok(Err(error)) => error.to_string(),
                        Err(_elapsed) => {
                            format!("no handshake within {} s", HANDSHAKE_TIMEOUT.as_secs())
                        }
                    };
                static REPORTED: std::sync::atomic::AtomicBool =
                    std::sync::atomic::AtomicBool::new(false);
                if !REPORTED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    eprintln!(
                        "aiperf mock-server: a TLS handshake failed ({failure}); is the client \
                         using http:// or grpc:// instead of https:// or grpcs://? (reported \
                         once)"
                    );
                }
                None
            }
        }
    }
}

/// A server configuration with the chain of `cert` and the key of `key`.
#[cfg(feature = "tls")]
fn server_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<tokio_rustls::rustls::ServerConfig> {
    use anyhow::Context;
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| {
            format!(
                "cannot read the certificate chain {}: pass --tls-cert a PEM file",
                cert.display()
            )
        })?;
    if chain.is_empty() {
        anyhow::bail!(
            "{} holds no certificate: pass --tls-cert a PEM file with `BEGIN CERTIFICATE`",
            cert.display()
        );
    }
    let private_key = PrivateKeyDer::from_pem_file(key).with_context(|| {
        format!(
            "cannot read the private key {}: pass --tls-key the PEM key of --tls-cert",
            key.display()
        )
    })?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("cannot set up TLS")?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .with_context(|| {
            format!(
                "{} and {} do not make a usable certificate: pass --tls-key the key of \
                 --tls-cert",
                cert.display(),
                key.display()
            )
        })
}

/// A connection as accepted: plain, or TLS over it.
pub(crate) enum MaybeTls<T> {
    /// As accepted.
    Plain(T),
    /// After the TLS handshake.
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::server::TlsStream<T>>),
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTls<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Self::Tls(stream) => Pin::new(stream).poll_read(cx, buf),
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTls<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Self::Tls(stream) => Pin::new(stream).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            #[cfg(feature = "tls")]
            Self::Tls(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(stream) => stream.is_write_vectored(),
            #[cfg(feature = "tls")]
            Self::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_flush(cx),
            #[cfg(feature = "tls")]
            Self::Tls(stream) => Pin::new(stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            Self::Tls(stream) => Pin::new(stream).poll_shutdown(cx),
        }
    }
}
