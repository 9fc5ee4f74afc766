//! TLS end to end: the real `aiperf profile` against the real `aiperf mock-server` serving TLS
//! on 127.0.0.1 (`--tls-cert`, `--tls-key`) with a certificate from a private CA made here,
//! over `https://` (the `http` and `http2` transports) and `grpcs://` (`grpc`). The CA is
//! trusted through `SSL_CERT_FILE`, as OpenSSL, curl and Python users trust theirs; without it
//! the run fails before sending anything, and says how to trust the server.
//!
//! Needs aiperf-cli's `tls` feature (on by default).
#![cfg(feature = "tls")]

mod support;

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use support::mock::MockServer;
use support::run::Run;

/// A private CA and a server certificate it signed for 127.0.0.1, as PEM files.
struct Certificates {
    dir: tempfile::TempDir,
}

impl Certificates {
    fn make() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir can be made");
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "aiperf test CA");
        let ca = ca_params.self_signed(&ca_key).expect("a CA certificate");
        let server_key = KeyPair::generate().expect("a server key");
        let server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("server params")
            .signed_by(&server_key, &ca, &ca_key)
            .expect("a server certificate");
        let write = |name: &str, pem: String| std::fs::write(dir.path().join(name), pem).unwrap();
        write("ca.pem", ca.pem());
        write("server.pem", server.pem());
        write("server.key", server_key.serialize_pem());
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A mock server on TLS with these certificates (`with_grpc`: its gRPC port too).
    fn server(&self, with_grpc: bool) -> MockServer {
        let (cert, key) = (self.path("server.pem"), self.path("server.key"));
        let args = [
            "--ttft-ms",
            "5",
            "--itl-ms",
            "1",
            "--tls-cert",
            str(&cert),
            "--tls-key",
            str(&key),
        ];
        if with_grpc {
            MockServer::start_with_grpc(&args)
        } else {
            MockServer::start(&args)
        }
    }
}

fn str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// A short streamed profile of `url`, trusting the CA in `ca_file` (`""`: trusting only the
/// built-in and system roots).
fn profile(url: &str, ca_file: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "--url",
        url,
        "-m",
        "test",
        "--streaming",
        "--concurrency",
        "2",
        "--request-count",
        "6",
        "--osl",
        "8",
    ];
    args.extend_from_slice(extra);
    Run::profile_with_env(&args, &[("SSL_CERT_FILE", ca_file), ("SSL_CERT_DIR", "")])
}

/// Every request succeeded with a first token and 8 output tokens.
fn assert_all_streamed(run: &Run) {
    run.assert_success();
    let records = run.records();
    assert_eq!(records.len(), 6, "{}", run.stderr());
    for record in &records {
        assert!(record["error"].is_null(), "{record}");
        assert!(
            record["metrics"]["time_to_first_token"]["value"]
                .as_f64()
                .is_some_and(|ttft| ttft >= 5.0),
            "{record}"
        );
        assert_eq!(record["metrics"]["output_sequence_length"]["value"], 8);
    }
}

#[test]
fn https_and_grpcs_runs_succeed_once_the_servers_ca_is_trusted() {
    let certificates = Certificates::make();
    let server = certificates.server(true);
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let grpcs = server.grpc_url.clone().unwrap();
    assert!(grpcs.starts_with("grpcs://127.0.0.1:"), "{grpcs}");
    let ca = certificates.path("ca.pem");

    assert_all_streamed(&profile(
        &server.url,
        str(&ca),
        &["--endpoint-type", "chat"],
    ));
    // The http2 transport over TLS (the mock offers h2 by ALPN).
    assert_all_streamed(&profile(
        &server.url,
        str(&ca),
        &["--endpoint-type", "chat", "--transport", "http2"],
    ));
    assert_all_streamed(&profile(&grpcs, str(&ca), &["--endpoint-type", "kserve"]));
}

#[test]
fn an_untrusted_certificate_fails_the_run_and_says_how_to_trust_it() {
    let certificates = Certificates::make();
    let server = certificates.server(true);
    let grpcs = server.grpc_url.clone().unwrap();
    // A mistyped SSL_CERT_FILE trusts nothing more, and the advice says it was not read.
    let mistyped = certificates.path("ca-missing.pem");
    let mistyped = mistyped.to_str().unwrap();
    for (url, extra) in [
        (&server.url, ["--endpoint-type", "chat"]),
        (&grpcs, ["--endpoint-type", "kserve"]),
    ] {
        let run = profile(url, mistyped, &extra);
        assert!(!run.output.status.success(), "{url}: {}", run.stdout());
        let stderr = run.stderr();
        assert!(
            stderr.contains("is not trusted") && stderr.contains("SSL_CERT_FILE"),
            "{url}: {stderr}"
        );
        assert!(
            stderr.contains("not every trusted certificate could be read")
                && stderr.contains("ca-missing.pem"),
            "{url}: {stderr}"
        );
        // Waiting for the server would not help: the run says so at once.
        assert!(
            !stderr.contains("--wait-for-model-timeout"),
            "{url}: {stderr}"
        );
    }
}

#[test]
fn a_plain_url_for_a_tls_server_says_to_use_https() {
    let certificates = Certificates::make();
    let server = certificates.server(false);
    let http = server.url.replace("https://", "http://");
    let run = profile(&http, "", &["--endpoint-type", "chat"]);
    assert!(!run.output.status.success(), "{}", run.stdout());
    let stderr = run.stderr();
    assert!(stderr.contains("give an https:// --url"), "{stderr}");
}

#[test]
fn a_tls_url_for_a_server_without_tls_says_to_use_the_plain_scheme() {
    let plain = MockServer::start_with_grpc(&[]);
    let https = plain.url.replace("http://", "https://");
    let grpcs = plain
        .grpc_url
        .clone()
        .unwrap()
        .replace("grpc://", "grpcs://");
    for (url, extra) in [
        (https, ["--endpoint-type", "chat"]),
        (grpcs, ["--endpoint-type", "kserve"]),
    ] {
        let run = profile(&url, "", &extra);
        assert!(!run.output.status.success(), "{url}: {}", run.stdout());
        let stderr = run.stderr();
        assert!(
            stderr.contains("does not speak TLS there: use an http:// or grpc:// --url"),
            "{url}: {stderr}"
        );
    }
}

#[test]
fn the_mock_server_refuses_a_certificate_file_that_holds_none() {
    let certificates = Certificates::make();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_aiperf"))
        .args(["mock-server", "--port", "0", "--tls-cert"])
        .arg(certificates.path("server.key"))
        .arg("--tls-key")
        .arg(certificates.path("server.key"))
        .output()
        .expect("the aiperf binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("holds no certificate"), "{stderr}");
}
