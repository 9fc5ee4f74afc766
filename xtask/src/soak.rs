//! `cargo xtask soak [--requests N] [--concurrency C]`: the soak benchmark of issue 6. Does a
//! long run keep every request and a bounded memory?
//!
//! Builds the release binary, starts `aiperf mock-server` at zero latency (TTFT 0, ITL 0, 16
//! tokens), and runs `aiperf profile` against it: streaming chat, short prompts (16 tokens),
//! `--osl 16`, 1,000,000 requests at concurrency 64 by default. While the client runs its
//! resident memory (`VmRSS` of `/proc/<pid>/status`) is sampled every 100 ms, with the time of
//! each sample.
//!
//! Afterwards `profile_export.jsonl` is read: it must hold exactly one record per request, and
//! the client's reconciliation line (`N sent = S succeeded + E errored + C cancelled`) must add
//! up with S = N. The records' end times say when 10% and 100% of the requests had ended, so
//! the memory figures are tied to progress, not to the clock: peak RSS by 10% of the requests,
//! by 100%, and over the whole process (metrics and exports included). The growth between the
//! 10% and 100% marks, per request, is what the client keeps per record.
//!
//! This is a benchmark, not a test: it reports figures and fails only when a request is
//! missing or the counts do not reconcile.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

use crate::workspace;

/// Arguments of `cargo xtask soak`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Requests to send.
    #[arg(long, default_value_t = 1_000_000)]
    requests: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
}

/// How often the client's memory is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// Output tokens per request (the server's default and the client's `--osl`).
const OUTPUT_TOKENS: &str = "16";
/// How long the mock server may take to print its address.
const START_LIMIT: Duration = Duration::from_secs(30);

/// One reading of the client's resident memory.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// When it was taken, Unix nanoseconds (comparable with the records' timestamps).
    unix_ns: u64,
    /// `VmRSS`, bytes.
    rss: u64,
}

/// What the records say.
#[derive(Debug, Default)]
struct Records {
    count: usize,
    errored: usize,
    cancelled: usize,
    /// `request_end_ns` of every record, sorted.
    ends: Vec<u64>,
}

/// Runs the soak and prints its figures; `Ok(false)` when a request is missing or the counts
/// do not reconcile.
pub fn run(args: Args) -> anyhow::Result<bool> {
    if args.requests < 10 || args.concurrency == 0 {
        bail!("give at least 10 --requests and a --concurrency of 1 or more");
    }
    let workspace::ReleaseRun { binary, dir } = workspace::release_run("soak")?;

    let server = Server::start(&binary, &dir)?;
    let artifacts = dir.join("artifacts");
    let requests = args.requests.to_string();
    let concurrency = args.concurrency.to_string();
    let mut command = Command::new(&binary);
    command
        .args(["profile", "--url", &server.url, "-m", "soak", "--streaming"])
        .args(["--request-count", &requests, "--concurrency", &concurrency])
        .args(["--isl", "16", "--osl", OUTPUT_TOKENS, "--ui-type", "none"])
        // 100 prompts whatever the request count: memory must stay flat with the requests.
        .args(["--num-dataset-entries", "100"])
        .arg("--artifact-dir")
        .arg(&artifacts)
        .stdin(Stdio::null())
        .stdout(create(&dir.join("profile.stdout"))?)
        .stderr(create(&dir.join("profile.stderr"))?);
    println!(
        "soak: {} requests at concurrency {} against {} (output in {})",
        args.requests,
        args.concurrency,
        server.url,
        dir.display()
    );
    let started = Instant::now();
    let mut client = command
        .spawn()
        .with_context(|| format!("cannot start {command:?}"))?;
    let (samples, peak_hwm) = sample_until_exit(&mut client)?;
    let wall = started.elapsed();
    let status = client.wait().context("cannot wait for the client")?;
    drop(server);

    let stdout = std::fs::read_to_string(dir.join("profile.stdout")).unwrap_or_default();
    let records = read_records(&artifacts.join("profile_export.jsonl"))?;
    let report = Report::new(&args, &records, &samples, peak_hwm);
    println!("{}", report.render(wall, status.code()));
    let reconciliation = stdout
        .lines()
        .find(|line| line.starts_with("requests: "))
        .unwrap_or("(no reconciliation line)");
    println!("soak: client says {reconciliation}");

    let mut ok = true;
    if records.count != args.requests {
        println!(
            "soak: FAILED: {} records for {} requests",
            records.count, args.requests
        );
        ok = false;
    }
    let expected = format!(
        "requests: {0} sent = {0} succeeded + 0 errored + 0 cancelled",
        args.requests
    );
    if reconciliation != expected || records.errored + records.cancelled > 0 {
        println!(
            "soak: FAILED: expected `{expected}`; the records hold {} errors and {} \
             cancellations",
            records.errored, records.cancelled
        );
        ok = false;
    }
    if !status.success() {
        println!(
            "soak: FAILED: the client exited with {status}: see {}",
            dir.display()
        );
        ok = false;
    }
    Ok(ok)
}

fn create(path: &Path) -> anyhow::Result<File> {
    File::create(path).with_context(|| format!("cannot create {}", path.display()))
}

/// Samples the client's `VmRSS` every [`SAMPLE_EVERY`] until it exits; also returns the last
/// `VmHWM` read (its peak, as far as it was seen).
fn sample_until_exit(client: &mut Child) -> anyhow::Result<(Vec<Sample>, u64)> {
    let status_path = format!("/proc/{}/status", client.id());
    let mut samples = Vec::new();
    let mut peak = 0;
    loop {
        // Read before checking for the exit, so a zombie's empty status ends the loop.
        let status = std::fs::read_to_string(&status_path).unwrap_or_default();
        if let Some(rss) = status_kib(&status, "VmRSS:") {
            samples.push(Sample {
                unix_ns: unix_now_ns(),
                rss: rss * 1024,
            });
        }
        if let Some(hwm) = status_kib(&status, "VmHWM:") {
            peak = peak.max(hwm * 1024);
        }
        if client
            .try_wait()
            .context("cannot poll the client")?
            .is_some()
        {
            return Ok((samples, peak));
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
}

/// A `Name: N kB` line of `/proc/<pid>/status`, in KiB.
fn status_kib(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with(name))?;
    line[name.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Counts the records of `profile_export.jsonl` and collects their end times. A line is read
/// by its few fields, not parsed whole: the file is about 1.5 GB for a million requests.
fn read_records(path: &Path) -> anyhow::Result<Records> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut records = Records::default();
    for (number, line) in BufReader::with_capacity(1 << 20, file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        let end = number_after(&line, "\"request_end_ns\":").with_context(|| {
            format!("{} line {}: no request_end_ns", path.display(), number + 1)
        })?;
        records.count += 1;
        records.ends.push(end);
        // A failed request's line has an `error` object; a success's has no `error` at all
        // (fields without a value are left out).
        if line.contains("\"error\":{") {
            records.errored += 1;
        }
        if line.contains("\"was_cancelled\":true") {
            records.cancelled += 1;
        }
    }
    records.ends.sort_unstable();
    Ok(records)
}

/// The unsigned integer right after `key` in `line`.
fn number_after(line: &str, key: &str) -> Option<u64> {
    let start = line.find(key)? + key.len();
    let digits = &line[start..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// The soak's figures.
#[derive(Debug)]
struct Report {
    requests: usize,
    concurrency: usize,
    records: usize,
    /// Peak `VmRSS` sampled up to the end of the first 10% of the requests.
    peak_at_10: u64,
    /// Peak `VmRSS` sampled up to the end of the last request.
    peak_at_100: u64,
    /// `VmRSS` at the sample nearest before the 10% and 100% marks.
    rss_at_10: u64,
    rss_at_100: u64,
    /// Peak over the whole process (`VmHWM`): metrics and exports included.
    peak_overall: u64,
    /// Seconds from the first to the last request's end.
    run_s: f64,
}

impl Report {
    fn new(args: &Args, records: &Records, samples: &[Sample], peak_hwm: u64) -> Self {
        let mark = |fraction: f64| -> u64 {
            if records.ends.is_empty() {
                return 0;
            }
            let index = ((records.ends.len() as f64 * fraction).ceil() as usize)
                .clamp(1, records.ends.len());
            records.ends[index - 1]
        };
        let (at_10, at_100) = (mark(0.1), mark(1.0));
        let peak_by = |until: u64| -> u64 {
            samples
                .iter()
                .filter(|s| s.unix_ns <= until)
                .map(|s| s.rss)
                .max()
                .unwrap_or(0)
        };
        let rss_at = |until: u64| -> u64 {
            samples
                .iter()
                .rev()
                .find(|s| s.unix_ns <= until)
                .map_or(0, |s| s.rss)
        };
        let sampled_peak = samples.iter().map(|s| s.rss).max().unwrap_or(0);
        Self {
            requests: args.requests,
            concurrency: args.concurrency,
            records: records.count,
            peak_at_10: peak_by(at_10),
            peak_at_100: peak_by(at_100),
            rss_at_10: rss_at(at_10),
            rss_at_100: rss_at(at_100),
            peak_overall: peak_hwm.max(sampled_peak),
            run_s: records
                .ends
                .first()
                .map_or(0.0, |first| (at_100 - first) as f64 / 1e9),
        }
    }

    fn render(&self, wall: Duration, exit: Option<i32>) -> String {
        let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
        let grown = self.rss_at_100.saturating_sub(self.rss_at_10);
        let between = (self.requests - self.requests / 10).max(1);
        format!(
            "soak: {} requests at concurrency {}: {} records, client exit {:?}, {:.1} s wall, \
             {:.0} requests/s\n\
             soak: peak RSS by 10% of the requests:  {:8.1} MiB\n\
             soak: peak RSS by 100% of the requests: {:8.1} MiB\n\
             soak: peak RSS overall (with metrics and exports): {:8.1} MiB\n\
             soak: RSS grew {:.1} MiB from the 10% to the 100% mark: {:.0} bytes per request",
            self.requests,
            self.concurrency,
            self.records,
            exit,
            wall.as_secs_f64(),
            self.requests as f64 / self.run_s.max(1e-9),
            mib(self.peak_at_10),
            mib(self.peak_at_100),
            mib(self.peak_overall),
            mib(grown),
            grown as f64 / between as f64,
        )
    }
}

/// `aiperf mock-server` at zero latency, killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(binary: &PathBuf, dir: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new(binary)
            .args(["mock-server", "--port", "0", "--workers", "1"])
            .args([
                "--ttft-ms",
                "0",
                "--itl-ms",
                "0",
                "--output-tokens",
                OUTPUT_TOKENS,
            ])
            // Every request generates at once: the client limits concurrency, not the batch.
            .args(["--max-batch", "1000000"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(create(&dir.join("mock-server.log"))?)
            .spawn()
            .context("cannot start the mock server")?;
        let stdout = child
            .stdout
            .take()
            .context("the mock server has no stdout")?;
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = lines.recv_timeout(START_LIMIT).unwrap_or_default();
        let Some(url) = line.trim().strip_prefix("aiperf mock-server listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the mock server did not announce its address: see {}",
                dir.join("mock-server.log").display()
            );
        };
        Ok(Self {
            url: url.to_owned(),
            child,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_lines_and_numbers_in_json_lines() {
        let status = "Name:\taiperf\nVmHWM:\t  20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(10240));
        assert_eq!(status_kib(status, "VmHWM:"), Some(20480));
        assert_eq!(status_kib(status, "VmSwap:"), None);
        let line = r#"{"metadata":{"request_end_ns":1795755208702908006,"x":1},"error":null}"#;
        assert_eq!(
            number_after(line, "\"request_end_ns\":"),
            Some(1_795_755_208_702_908_006)
        );
        assert_eq!(number_after(line, "\"missing\":"), None);
    }

    #[test]
    fn records_are_counted_by_their_error_object_and_cancelled_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile_export.jsonl");
        let lines = [
            // As aiperf writes them: a success has no `error` at all.
            r#"{"metadata":{"request_end_ns":30,"was_cancelled":false},"metrics":{}}"#,
            r#"{"metadata":{"request_end_ns":10,"was_cancelled":false},"metrics":{},"error":{"code":503,"type":"Service Unavailable","message":"x"}}"#,
            r#"{"metadata":{"request_end_ns":20,"was_cancelled":true},"metrics":{},"error":{"code":null,"type":"RequestCancellationError","message":"y"}}"#,
        ];
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let records = read_records(&path).unwrap();
        assert_eq!(records.count, 3);
        assert_eq!(records.errored, 2, "{records:?}");
        assert_eq!(records.cancelled, 1, "{records:?}");
        assert_eq!(records.ends, [10, 20, 30]);
    }

    #[test]
    fn memory_is_tied_to_the_progress_marks() {
        let args = Args {
            requests: 10,
            concurrency: 1,
        };
        let records = Records {
            count: 10,
            ends: (1..=10).map(|i| i * 100).collect(),
            ..Records::default()
        };
        let samples: Vec<Sample> = [(50, 5), (100, 7), (150, 6), (900, 9), (1000, 8), (1100, 30)]
            .into_iter()
            .map(|(unix_ns, rss)| Sample { unix_ns, rss })
            .collect();
        let report = Report::new(&args, &records, &samples, 31);
        // The first request ended at 100: 10% of 10 requests.
        assert_eq!((report.peak_at_10, report.rss_at_10), (7, 7));
        assert_eq!((report.peak_at_100, report.rss_at_100), (9, 8));
        assert_eq!(report.peak_overall, 31);
    }
}
