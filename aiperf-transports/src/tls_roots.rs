//! What `https://` and `grpcs://` connections trust: Mozilla's root certificates (built in)
//! and the system's store, or the certificates of `SSL_CERT_FILE` / `SSL_CERT_DIR` in its
//! place. The store is read and parsed once per process: reading it took milliseconds, and the
//! `http2` transport builds a client per hundred requests in flight.

use std::sync::{Arc, OnceLock};

use rustls::RootCertStore;

/// What every TLS connection trusts, built once, and what of the system's store could not be
/// read.
struct Trust {
    roots: Arc<RootCertStore>,
    errors: Vec<String>,
}

fn trust() -> &'static Trust {
    static TRUST: OnceLock<Trust> = OnceLock::new();
    TRUST.get_or_init(|| {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let system = rustls_native_certs::load_native_certs();
        // Certificates that do not parse are left out, as OpenSSL leaves them; an empty or
        // missing store leaves Mozilla's roots alone.
        roots.add_parsable_certificates(system.certs);
        Trust {
            roots: Arc::new(roots),
            errors: system.errors.iter().map(ToString::to_string).collect(),
        }
    })
}

/// Mozilla's roots and the system's certificates (or `SSL_CERT_FILE` / `SSL_CERT_DIR`'s).
pub(crate) fn roots() -> Arc<RootCertStore> {
    Arc::clone(&trust().roots)
}

/// What could not be read of the system's store or of `SSL_CERT_FILE` / `SSL_CERT_DIR` (a
/// mistyped path, say), one message each: said with the advice when a certificate is not
/// trusted.
pub(crate) fn store_errors() -> &'static [String] {
    &trust().errors
}

/// A client configuration trusting [`roots`] and offering `alpn` (`http/1.1` or `h2`), the
/// only protocol its connections may speak. The crypto is ring's, named rather than taken
/// from rustls's features, which would be ambiguous (a panic) if another crate ever turned
/// on its other provider.
pub(crate) fn client_config(alpn: &[u8]) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots())
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_roots_are_read_once_and_each_config_offers_its_one_protocol() {
        assert!(Arc::ptr_eq(&roots(), &roots()), "read and built once");
        assert!(
            roots().roots.len() >= webpki_roots::TLS_SERVER_ROOTS.len(),
            "Mozilla's and more"
        );
        assert_eq!(client_config(b"h2").alpn_protocols, [b"h2".to_vec()]);
        assert_eq!(
            client_config(b"http/1.1").alpn_protocols,
            [b"http/1.1".to_vec()]
        );
    }
}
