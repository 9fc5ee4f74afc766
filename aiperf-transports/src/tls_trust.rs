//! Which servers' certificates the TLS transports trust (`https://` for `http` and `http2`,
//! `grpcs://` for `grpc`; the `tls` feature), and the error of a connection that failed, which
//! tells a refused certificate apart from a server that is not there.
//!
//! Trusted: Mozilla's root certificates, built in (webpki-roots), and the system's store
//! (rustls-native-certs). When `SSL_CERT_FILE` (a PEM file) or `SSL_CERT_DIR` (directories of
//! them) is set, the certificates there take the system store's place, as they do for OpenSSL,
//! curl and Python: that is how a server signed by a private CA is trusted.

/// The error of a connection to `server` (for example "the server at https://host") that
/// failed because of `cause`. A refused TLS certificate is a
/// [`TransportErrorKind::Protocol`] error saying how to trust the server: waiting for the
/// server would not help. Anything else is a [`TransportErrorKind::Connect`] error: the server
/// may not be up yet.
pub(crate) fn connect_error(server: &str, cause: &str) -> TransportError {
    if cause.contains("certificate") {
        TransportError::new(
            TransportErrorKind::Protocol,
            format!(
                "the TLS certificate of {server} is not trusted ({cause}): if a private CA \
                 signed it, set SSL_CERT_FILE to that CA's PEM file (or SSL_CERT_DIR to a \
                 directory of them)"
            ),
        )
    } else {
        TransportError::new(
            TransportErrorKind::Connect,
            format!(
                "{server} is not reachable ({cause}): check --url and that the server is running"
            ),
        )
    }
}

use aiperf_core::transport::{TransportError, TransportErrorKind};

/// The TLS settings of a `grpcs://` connection to `host`: the roots above, and `host` as the
/// name the server's certificate must carry.
#[cfg(all(feature = "tls", feature = "grpc"))]
pub(crate) fn grpc_client_config(host: &str) -> tonic::transport::ClientTlsConfig {
    tonic::transport::ClientTlsConfig::new()
        .with_enabled_roots()
        .domain_name(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_untrusted_certificate_is_told_apart_from_an_absent_server() {
        let untrusted = connect_error(
            "the server at https://h",
            "invalid peer certificate: UnknownIssuer",
        );
        assert_eq!(untrusted.kind, TransportErrorKind::Protocol);
        assert!(untrusted.message.contains("SSL_CERT_FILE"), "{untrusted}");
        let refused = connect_error(
            "the server at http://h",
            "Connection refused (os error 111)",
        );
        assert_eq!(refused.kind, TransportErrorKind::Connect);
        assert_eq!(
            refused.message,
            "the server at http://h is not reachable (Connection refused (os error 111)): check \
             --url and that the server is running"
        );
    }
}
