//! Running `aiperf profile` and reading what it wrote.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The outcome of one `aiperf` invocation and where its exports are.
pub struct Run {
    /// Exit status, stdout, stderr.
    pub output: Output,
    /// The artifact directory passed.
    pub dir: PathBuf,
    _temp: tempfile::TempDir,
}

impl Run {
    /// Runs `aiperf profile --artifact-dir <temp> --ui-type none <args>`.
    pub fn profile(args: &[&str]) -> Self {
        Self::profile_with_env(args, &[])
    }

    /// [`Run::profile`] with these environment variables set (an empty value removes one).
    pub fn profile_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let temp = tempfile::tempdir().expect("a temp dir can be made");
        let dir = temp.path().join("artifacts");
        let mut command = Command::new(env!("CARGO_BIN_EXE_aiperf"));
        for &(name, value) in env {
            if value.is_empty() {
                command.env_remove(name);
            } else {
                command.env(name, value);
            }
        }
        let output = command
            .arg("profile")
            .arg("--artifact-dir")
            .arg(&dir)
            .args(["--ui-type", "none"])
            .args(args)
            .output()
            .expect("the aiperf binary runs");
        Self {
            output,
            dir,
            _temp: temp,
        }
    }

    /// Panics with the output unless the run exited 0.
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.output.status.success(),
            "aiperf failed ({:?})\nstdout:\n{}\nstderr:\n{}",
            self.output.status,
            self.stdout(),
            self.stderr()
        );
        self
    }

    /// Standard output.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    /// Standard error.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// `profile_export_aiperf.json`, parsed.
    pub fn summary(&self) -> serde_json::Value {
        read_json(&self.dir.join("profile_export_aiperf.json"))
    }

    /// `profile_export.jsonl`, one value per line.
    pub fn records(&self) -> Vec<serde_json::Value> {
        let path = self.dir.join("profile_export.jsonl");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        text.lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("bad JSONL line {line:?}: {e}"))
            })
            .collect()
    }

    /// The records of one phase (`"warmup"` or `"profiling"`), in file order.
    pub fn records_of(&self, phase: &str) -> Vec<serde_json::Value> {
        self.records()
            .into_iter()
            .filter(|r| r["metadata"]["benchmark_phase"] == phase)
            .collect()
    }

    /// Panics with stderr unless stderr holds `text` (what the run said).
    pub fn assert_said(&self, text: &str) -> &Self {
        let stderr = self.stderr();
        assert!(
            stderr.contains(text),
            "expected {text:?} on stderr:\n{stderr}"
        );
        self
    }

    /// Every request's `request_start_ns`, in seconds, earliest first.
    pub fn start_times_s(&self) -> Vec<f64> {
        let mut starts: Vec<f64> = self
            .records()
            .iter()
            .map(|r| r["metadata"]["request_start_ns"].as_f64().unwrap() / 1e9)
            .collect();
        starts.sort_by(f64::total_cmp);
        starts
    }

    /// A metric's statistic from the summary, e.g. `stat("time_to_first_token", "p50")`.
    pub fn stat(&self, metric: &str, stat: &str) -> f64 {
        let summary = self.summary();
        summary[metric][stat].as_f64().unwrap_or_else(|| {
            panic!(
                "{metric}.{stat} missing from the summary: {}",
                summary[metric]
            )
        })
    }
}

/// Reads and parses a JSON file, naming it on failure.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
