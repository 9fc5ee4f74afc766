//! What `https://` and `grpcs://` connections trust: Mozilla's root certificates (built in)
//! and the system's store, or the certificates of `SSL_CERT_FILE` / `SSL_CERT_DIR` in its
//! place. The store is read and parsed once per process: reading it took milliseconds, and the
//! `http2` transport builds a client per hundred requests in flight.

use std::sync::{Arc, OnceLock};

use rustls::RootCertStore;
use rustls::pki_types::TrustAnchor;

/// The system's certificates (or `SSL_CERT_FILE` / `SSL_CERT_DIR`'s), as trust anchors. Ones
/// that do not parse are left out, as OpenSSL leaves them; an empty or missing store leaves
/// Mozilla's roots alone.
pub(crate) fn system_anchors() -> &'static [TrustAnchor<'static>] {
    static ANCHORS: OnceLock<Vec<TrustAnchor<'static>>> = OnceLock::new();
    ANCHORS.get_or_init(|| {
        rustls_native_certs::load_native_certs()
            .certs
            .iter()
            .filter_map(|certificate| {
                webpki::anchor_from_trusted_cert(certificate)
                    .ok()
                    .map(|anchor| anchor.to_owned())
            })
            .collect()
    })
}

/// Mozilla's roots and [`system_anchors`], built once.
fn roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    Arc::clone(ROOTS.get_or_init(|| {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        roots.roots.extend(system_anchors().iter().cloned());
        Arc::new(roots)
    }))
}

/// A client configuration trusting [`roots`] and offering `alpn` (`http/1.1` or `h2`), the
/// only protocol its connections may speak.
pub(crate) fn client_config(alpn: &[u8]) -> rustls::ClientConfig {
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots())
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_roots_are_mozilla_s_and_the_system_s_read_once() {
        let first = roots();
        assert_eq!(
            first.roots.len(),
            webpki_roots::TLS_SERVER_ROOTS.len() + system_anchors().len()
        );
        assert!(Arc::ptr_eq(&first, &roots()), "built once");
        assert_eq!(client_config(b"h2").alpn_protocols, [b"h2".to_vec()]);
    }
}
