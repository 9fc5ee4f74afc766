//! The server side of a benchmark run: `aiperf mock-server` with one runtime worker, pinned to
//! its own core, started afresh for each configuration so no run inherits another's
//! connections, and stopped with SIGTERM so its truth log is complete.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::process::{Pinning, read_stat};

/// The core the mock server runs on; the client gets [`super::CLIENT_CORE`].
pub const SERVER_CORE: usize = 0;
/// How long the server may take to print its address (it builds the tokenizer first).
const START_LIMIT: Duration = Duration::from_secs(30);
/// How long it may take to stop after SIGTERM.
const STOP_LIMIT: Duration = Duration::from_secs(15);

/// How the simulated engine behaves in one configuration.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct EngineFlags {
    /// `--ttft-ms`.
    pub ttft_ms: f64,
    /// `--itl-ms`.
    pub itl_ms: f64,
    /// `--output-tokens` (the client asks for the same with `--osl`).
    pub output_tokens: u32,
}

impl EngineFlags {
    /// The latency of one request on an idle server: first token, then one token per ITL.
    pub fn ideal_latency_s(&self) -> f64 {
        (self.ttft_ms + f64::from(self.output_tokens.saturating_sub(1)) * self.itl_ms) / 1e3
    }
}

/// A running mock server.
#[derive(Debug)]
pub struct MockServer {
    child: Child,
    /// Its base URL, as it announced it.
    pub url: String,
    truth_log: Option<PathBuf>,
}

impl MockServer {
    /// Starts `aiperf mock-server` on a free port, its stderr in `dir/mock-server.log` and,
    /// with `truth`, its truth log in `dir/truth.jsonl`; returns once it listens.
    pub fn start(
        binary: &Path,
        pinning: &Pinning,
        flags: EngineFlags,
        dir: &Path,
        truth: bool,
    ) -> anyhow::Result<Self> {
        let log = std::fs::File::create(dir.join("mock-server.log"))
            .with_context(|| format!("cannot create a log file in {}", dir.display()))?;
        let truth_log = truth.then(|| dir.join("truth.jsonl"));
        let mut command = pinning.command(SERVER_CORE, binary);
        command
            .arg("mock-server")
            .args(["--port", "0", "--workers", "1"])
            .args(["--ttft-ms", &flags.ttft_ms.to_string()])
            .args(["--itl-ms", &flags.itl_ms.to_string()])
            .args(["--output-tokens", &flags.output_tokens.to_string()])
            // Every request generates at once: the client, not the batch, limits concurrency.
            .args(["--max-batch", "1000000"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        if let Some(path) = &truth_log {
            command.arg("--truth-log").arg(path);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start the mock server: {command:?}"))?;
        let stdout = child
            .stdout
            .take()
            .context("the mock server has no stdout")?;
        let (lines, announced) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let started = Instant::now();
        let url = loop {
            let left = START_LIMIT.saturating_sub(started.elapsed());
            match announced.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("aiperf mock-server listening on ") {
                        break url.trim().to_owned();
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!(
                        "the mock server did not announce its address within {} s: see {}",
                        START_LIMIT.as_secs(),
                        dir.join("mock-server.log").display()
                    );
                }
            }
        };
        Ok(Self {
            child,
            url,
            truth_log,
        })
    }

    /// CPU seconds the server has used so far.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        Ok(read_stat(self.child.id())?.cpu_s)
    }

    /// Stops the server with SIGTERM (it flushes its truth log) and returns the log's path.
    pub fn stop(mut self) -> anyhow::Result<Option<PathBuf>> {
        let pid = self.child.id().to_string();
        // std can only SIGKILL; the shell's `kill` sends SIGTERM.
        let _ = Command::new("sh")
            .args(["-c", "kill -TERM \"$1\"", "kill", &pid])
            .status();
        let started = Instant::now();
        while self.child.try_wait()?.is_none() {
            if started.elapsed() > STOP_LIMIT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!(
                    "the mock server did not stop within {} s of SIGTERM and was killed",
                    STOP_LIMIT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(self.truth_log.take())
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        // Stopped already, or an error path: never leave a server behind.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
