//! A real `aiperf mock-server` child process on a random 127.0.0.1 port, killed on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

/// A running mock server.
pub struct MockServer {
    child: Child,
    /// `http://127.0.0.1:PORT` (`https://` when started with `--tls-cert`).
    pub url: String,
    /// `grpc://127.0.0.1:PORT` (`grpcs://` with TLS), when started with
    /// [`MockServer::start_with_grpc`].
    pub grpc_url: Option<String>,
}

impl MockServer {
    /// Starts `aiperf mock-server --port 0 <args>` and waits for its "listening on" line.
    pub fn start(args: &[&str]) -> Self {
        let (child, mut lines) = spawn(args);
        let url = address(&mut lines, "http");
        Self {
            child,
            url,
            grpc_url: None,
        }
    }

    /// Starts `aiperf mock-server --port 0 --grpc-port 0 <args>` and waits for both its
    /// "listening on" lines (HTTP, then gRPC).
    pub fn start_with_grpc(args: &[&str]) -> Self {
        let args = [&["--grpc-port", "0"], args].concat();
        let (child, mut lines) = spawn(&args);
        let url = address(&mut lines, "http");
        let grpc_url = Some(address(&mut lines, "grpc"));
        Self {
            child,
            url,
            grpc_url,
        }
    }
}

fn spawn(args: &[&str]) -> (Child, BufReader<ChildStdout>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aiperf"))
        .arg("mock-server")
        .args(["--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the aiperf binary starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    (child, BufReader::new(stdout))
}

/// The address at the end of the next line, which must start with `scheme` (`http` for
/// `http://` or `https://`, `grpc` for `grpc://` or `grpcs://`).
fn address(lines: &mut BufReader<ChildStdout>, scheme: &str) -> String {
    let mut line = String::new();
    lines
        .read_line(&mut line)
        .expect("the mock server prints its address");
    line.trim()
        .rsplit(' ')
        .next()
        .filter(|u| u.starts_with(scheme))
        .unwrap_or_else(|| panic!("expected a {scheme} address from the mock server: {line:?}"))
        .to_owned()
}

impl Drop for MockServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
