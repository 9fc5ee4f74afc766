//! The error of a connection that could not be made, shared by the transports that connect
//! (`http`, `http2`, `grpc`): a server that is not there yet (a
//! [`TransportErrorKind::Connect`] error, worth waiting for) told apart from a TLS connection
//! that failed (a [`TransportErrorKind::Protocol`] error saying what to change, since waiting
//! would not help).
//!
//! TLS failures are recognized by the text rustls, tokio-rustls and tonic give them, found
//! anywhere in the error's chain of causes ([`causes`]).

use aiperf_core::registry::CreateError;
use aiperf_core::transport::{TransportError, TransportErrorKind};

/// Why a TLS connection failed, by what it means for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsFailure {
    /// The certificate's issuer is not among the trusted roots.
    Untrusted,
    /// The certificate does not name the host connected to.
    WrongName,
    /// The certificate expired or is not valid yet.
    OutOfDate,
    /// The server presents a CA certificate as its own.
    CaAsServer,
    /// The server does not speak TLS (or, for gRPC, not HTTP/2 over TLS) on that port.
    NotTls,
    /// Another refusal of the certificate.
    OtherCertificate,
}

impl TlsFailure {
    /// The failure `cause` describes, if it is a TLS one.
    fn of(cause: &str) -> Option<Self> {
        let has = |needles: &[&str]| needles.iter().any(|needle| cause.contains(needle));
        Some(if has(&["UnknownIssuer", "BadSignature"]) {
            Self::Untrusted
        } else if has(&["NotValidForName", "not valid for name"]) {
            Self::WrongName
        } else if has(&["Expired", "expired", "NotValidYet", "not valid yet"]) {
            Self::OutOfDate
        } else if has(&["CaUsedAsEndEntity"]) {
            Self::CaAsServer
        } else if has(&[
            "InvalidContentType",
            "corrupt message",
            "tls handshake eof",
            "HTTP/2 was not negotiated",
        ]) {
            Self::NotTls
        } else if has(&["certificate"]) {
            Self::OtherCertificate
        } else {
            return None;
        })
    }

    /// What to do about it.
    fn advice(self) -> &'static str {
        match self {
            Self::Untrusted => {
                "its certificate is not trusted: if a private CA signed it, set SSL_CERT_FILE to \
                 that CA's PEM file (or SSL_CERT_DIR to a directory of them)"
            }
            Self::WrongName => {
                "its certificate does not name the host of --url: use a host name or address \
                 the certificate carries"
            }
            Self::OutOfDate => {
                "its certificate is out of date: renew it, or check this machine's clock"
            }
            Self::CaAsServer => {
                "it presents a CA certificate as its own: give the server a certificate signed \
                 by a CA, and trust that CA with SSL_CERT_FILE"
            }
            Self::NotTls => {
                "it does not speak TLS there: use an http:// or grpc:// --url, or the port the \
                 server serves TLS on"
            }
            Self::OtherCertificate => {
                "its certificate was refused: check the certificate the server presents"
            }
        }
    }
}

/// The error of a connection to `server` (for example "the server at https://host:8443") that
/// failed because of `cause` (the [`causes`] of the error).
pub(crate) fn connect_error(server: &str, cause: &str) -> TransportError {
    match TlsFailure::of(cause) {
        Some(failure) => TransportError::new(
            TransportErrorKind::Protocol,
            format!(
                "the TLS connection to {server} failed ({cause}): {}{}",
                failure.advice(),
                unread_certificates(failure)
            ),
        ),
        // EMFILE and ENFILE: the client's own limit, not the server's absence.
        None if cause.contains("Too many open files") => TransportError::new(
            TransportErrorKind::Connect,
            format!(
                "no connection to {server} could be opened: out of file descriptors \
                 ({cause}): raise the open-file limit (ulimit -n, or the system's \
                 fs.file-max) or lower --concurrency"
            ),
        ),
        None => TransportError::new(
            TransportErrorKind::Connect,
            format!(
                "{server} is not reachable ({cause}): check --url and that the server is running"
            ),
        ),
    }
}

/// For a certificate that is not trusted, what of the trusted certificates could not be read
/// (a mistyped `SSL_CERT_FILE`, say); otherwise nothing.
fn unread_certificates(failure: TlsFailure) -> String {
    #[cfg(feature = "tls")]
    {
        let errors = crate::tls_roots::store_errors();
        if failure == TlsFailure::Untrusted && !errors.is_empty() {
            return format!(
                "; not every trusted certificate could be read: {}",
                errors.join("; ")
            );
        }
    }
    #[cfg(not(feature = "tls"))]
    let _ = failure;
    String::new()
}

/// The error of a TLS URL (`url`) in a build without the `tls` feature; `plain` is the scheme
/// to use instead (`http` or `grpc`).
pub(crate) fn tls_not_built(url: &str, plain: &str) -> CreateError {
    CreateError::new(format!(
        "`{url}` needs TLS, which this build lacks: rebuild aiperf-cli with its `tls` feature \
         (on by default), or use {} {plain}:// URL",
        if plain == "http" { "an" } else { "a" }
    ))
}

/// The error's causes, innermost last; its own message when it has none. reqwest's and
/// tonic's top-level messages name only the URL or the kind of error.
pub(crate) fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    let mut source = error.source();
    while let Some(cause) = source {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if text.is_empty() {
        text = error.to_string();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tls_failure_gets_its_own_advice_and_is_not_worth_waiting_for() {
        for (cause, advice) in [
            ("invalid peer certificate: UnknownIssuer", "SSL_CERT_FILE"),
            (
                "invalid peer certificate: certificate not valid for name \"a\"; certificate is \
                 only valid for DnsName(\"b\")",
                "host of --url",
            ),
            (
                "invalid peer certificate: certificate expired: verification time 2, but \
                 certificate is not valid after 1 (1 seconds ago)",
                "renew it",
            ),
            (
                "invalid peer certificate: CaUsedAsEndEntity",
                "CA certificate",
            ),
            (
                "received corrupt message of type InvalidContentType",
                "does not speak TLS",
            ),
            ("tls handshake eof", "does not speak TLS"),
            ("HTTP/2 was not negotiated.", "does not speak TLS"),
            (
                "invalid peer certificate: UnsupportedSignatureAlgorithm",
                "was refused",
            ),
        ] {
            let error = connect_error("the server at https://h:1", cause);
            assert_eq!(error.kind, TransportErrorKind::Protocol, "{cause}");
            assert!(error.message.contains(advice), "{cause}: {error}");
            assert!(
                error
                    .message
                    .contains("TLS connection to the server at https://h:1")
            );
        }
    }

    #[test]
    fn a_server_that_is_not_there_is_a_connect_error() {
        let refused = connect_error(
            "the server at http://h:1",
            "Connection refused (os error 111)",
        );
        assert_eq!(refused.kind, TransportErrorKind::Connect);
        assert_eq!(
            refused.message,
            "the server at http://h:1 is not reachable (Connection refused (os error 111)): \
             check --url and that the server is running"
        );
        let out_of_files = connect_error(
            "the server at http://h:1",
            "Too many open files (os error 24)",
        );
        assert_eq!(out_of_files.kind, TransportErrorKind::Connect);
        assert!(
            out_of_files
                .message
                .contains("out of file descriptors (Too many open files (os error 24)): raise the open-file limit (ulimit -n"),
            "{}",
            out_of_files.message
        );
    }

    #[test]
    fn causes_are_the_chain_below_the_error_or_its_own_message() {
        let inner = std::io::Error::other("inner cause");
        let outer = std::io::Error::other(Wrapped(inner));
        assert_eq!(causes(&Wrapped(std::io::Error::other("x"))), "x");
        assert_eq!(causes(&outer), "inner cause");
        assert_eq!(causes(&std::io::Error::other("alone")), "alone");
    }

    /// An error whose message is "wrapped" and whose source is the error it holds.
    #[derive(Debug)]
    struct Wrapped(std::io::Error);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("wrapped")
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
}
