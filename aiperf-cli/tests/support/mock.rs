//! A real `aiperf mock-server` child process on a random 127.0.0.1 port, killed on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running mock server.
pub struct MockServer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl MockServer {
    /// Starts `aiperf mock-server --port 0 <args>` and waits for its "listening on" line.
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_aiperf"))
            .arg("mock-server")
            .args(["--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the aiperf binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the mock server prints its address");
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .filter(|u| u.starts_with("http://"))
            .unwrap_or_else(|| panic!("unexpected first line from the mock server: {line:?}"))
            .to_owned();
        Self { child, url }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
