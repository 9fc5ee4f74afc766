//! The benchmark's results: one [`Report`] holding every measured figure (written as JSON) and
//! rendered as text tables, each section followed by the targets of issue 7 it is judged by.

use std::fmt::Write as _;

use serde::Serialize;

use super::mock_server::EngineFlags;
use super::records::{Flow, LATE_TTFT_MS, Percentiles, TimingError};

/// Everything one `cargo xtask bench` measured.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The aiperf binary measured.
    pub aiperf: String,
    /// The machine and how processes were placed.
    pub machine: Machine,
    /// Whether this was the `--quick` subset.
    pub quick: bool,
    /// (a) Timing error against the server's truth.
    pub accuracy: Vec<AccuracyRun>,
    /// (b) Throughput and CPU cost at zero server latency.
    pub capacity: Vec<CapacityRun>,
    /// (c) Peak memory.
    pub memory: Vec<MemoryRun>,
    /// (d) Start-up.
    pub startup: Option<Startup>,
    /// (e) Client CPU while waiting on a slow server.
    pub idle: Option<Idle>,
    /// The targets and whether they were met.
    pub targets: Vec<Target>,
    /// Things the reader should know (a missing tool, a run that failed requests).
    pub notes: Vec<String>,
}

/// The machine the figures come from.
#[derive(Debug, Serialize)]
pub struct Machine {
    /// CPUs the benchmark may use.
    pub cpus: usize,
    /// `/proc/cpuinfo`'s model name.
    pub cpu_model: String,
    /// The kernel release.
    pub kernel: String,
    /// Whether server and client were pinned to separate cores with taskset.
    pub pinned: bool,
    /// How CPU time and memory were read.
    pub accounting: &'static str,
}

/// The client's own process costs in one run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ClientCost {
    /// CPU seconds, user + system, whole process.
    pub cpu_s: f64,
    /// `cpu_s` over `wall_s`: the share of a core the client used, start-up and exports
    /// included (pinned to one core, at most 100%).
    pub cpu_share: f64,
    /// Spawn to exit, seconds.
    pub wall_s: f64,
    /// Peak resident memory, MiB.
    pub peak_rss_mib: Option<f64>,
    /// What else ran on the client's and the mock server's cores meanwhile (other processes
    /// of a shared machine), as shares of the run's wall time; `None` when not pinned.
    pub others: Option<OtherLoad>,
    /// How long the hypervisor held each of the two cores back meanwhile; `None` when not
    /// pinned.
    pub stolen: Option<StolenTime>,
}

/// Time the hypervisor took from the two benchmark cores during a run (their steal time in
/// `/proc/stat`, counted in ticks of 10 ms on most kernels), ms. While a core is held back
/// nothing on it runs: neither the process pinned there nor the kernel's delivery of that
/// process's packets, so the timestamps taken just after are late by the gap.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StolenTime {
    /// From the client's core.
    pub client_core_ms: f64,
    /// From the mock server's core.
    pub mock_core_ms: f64,
}

/// CPU used by other processes on the two benchmark cores during a run, as a share of its wall
/// time: the noise in a figure measured on a shared machine.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct OtherLoad {
    /// On the client's core.
    pub client_core: f64,
    /// On the mock server's core.
    pub mock_core: f64,
}

/// One accuracy run: TTFT 50 ms, ITL 10 ms, 64 tokens, streaming chat.
#[derive(Debug, Serialize)]
pub struct AccuracyRun {
    /// The engine's settings.
    pub engine: EngineFlags,
    /// Concurrency asked for.
    pub concurrency: usize,
    /// Requests asked for.
    pub requests: usize,
    /// How the run flowed.
    pub flow: Flow,
    /// The server-limited ideal rate: concurrency / ideal latency.
    pub ideal_requests_per_s: f64,
    /// Client minus server timings.
    pub error: TimingError,
    /// The client's costs.
    pub client: ClientCost,
    /// The mock server's CPU share of its core during the benchmark span.
    pub mock_cpu_share: f64,
    /// TCP segments the host retransmitted during the run ([`super::process::tcp_retransmits`]):
    /// loss probes after late ACKs, when the pair fell behind. `None` without `/proc/net/snmp`.
    pub tcp_retransmits: Option<u64>,
}

/// One capacity run: TTFT 0, ITL 0, 16 tokens.
#[derive(Debug, Serialize)]
pub struct CapacityRun {
    /// `aiperf` or `oha`.
    pub tool: &'static str,
    /// Streamed (SSE) or whole-body responses.
    pub streaming: bool,
    /// Concurrency asked for.
    pub concurrency: usize,
    /// Requests asked for.
    pub requests: usize,
    /// Requests per second.
    pub requests_per_s: f64,
    /// Responses (content chunks; one per whole body) per second; `None` for oha.
    pub responses_per_s: Option<f64>,
    /// Requests that failed.
    pub failed: usize,
    /// Client CPU seconds per 1000 requests (whole process).
    pub cpu_s_per_1000: f64,
    /// The client's costs.
    pub client: ClientCost,
    /// The mock server's CPU share of its core during the run.
    pub mock_cpu_share: f64,
}

/// One memory figure.
#[derive(Debug, Serialize)]
pub struct MemoryRun {
    /// What was held.
    pub case: String,
    /// Concurrency asked for.
    pub concurrency: usize,
    /// The most requests in flight at once.
    pub in_flight_peak: usize,
    /// Requests that failed.
    pub failed: usize,
    /// Peak resident memory, MiB.
    pub peak_rss_mib: Option<f64>,
}

/// Start-up times (median of a few runs).
#[derive(Debug, Serialize)]
pub struct Startup {
    /// `aiperf --version`, ms.
    pub version_ms: f64,
    /// A 1-request streaming profile against a TTFT-0 mock server, end to end, ms.
    pub one_request_profile_ms: f64,
    /// Runs each median is taken over.
    pub runs: usize,
}

/// Client CPU at concurrency 1 against a slow server.
#[derive(Debug, Serialize)]
pub struct Idle {
    /// The engine's settings.
    pub engine: EngineFlags,
    /// CPU seconds per wall second in the steady part of the run.
    pub cpu_share: f64,
    /// How long the steady part was, seconds.
    pub window_s: f64,
}

/// One target of issue 7 and the figure it is judged on.
#[derive(Debug, Serialize)]
pub struct Target {
    /// What is measured.
    pub what: String,
    /// The measured figure, in `unit`.
    pub measured: f64,
    /// The target, in `unit`.
    pub target: f64,
    /// Whether lower is better (else higher is).
    pub lower_is_better: bool,
    /// The unit.
    pub unit: &'static str,
    /// Whether it was met.
    pub met: bool,
}

impl Target {
    fn new(
        what: String,
        measured: f64,
        target: f64,
        lower_is_better: bool,
        unit: &'static str,
    ) -> Self {
        let met = if lower_is_better {
            measured <= target
        } else {
            measured >= target
        };
        Self {
            what,
            measured,
            target,
            lower_is_better,
            unit,
            met,
        }
    }
}

/// MiB from bytes.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl Report {
    /// Judges the measured figures against issue 7's targets.
    pub fn judge(&mut self) {
        let mut targets = Vec::new();
        for run in &self.accuracy {
            let c = run.concurrency;
            let ttft_limit = match c {
                512 => Some(1.0),
                2048 => Some(3.0),
                _ => None,
            };
            if let (Some(limit), Some(ttft)) = (ttft_limit, run.error.ttft_ms) {
                let what = format!("TTFT error p99 at c={c}");
                targets.push(Target::new(what, ttft.p99, limit, true, "ms"));
            }
            if let Some(itl) = run.error.itl_ms {
                let what = format!("ITL error p99 at c={c}");
                targets.push(Target::new(what, itl.p99, 0.2, true, "ms"));
            }
            let what = format!("requests in flight (mean) at c={c}");
            // "= concurrency": within half a request of it, on average.
            targets.push(Target::new(
                what,
                run.flow.in_flight_mean,
                c as f64 - 0.5,
                false,
                "requests",
            ));
        }
        for streaming in [true, false] {
            let runs = || {
                self.capacity
                    .iter()
                    .filter(move |r| r.streaming == streaming)
            };
            let Some(best) = runs()
                .filter(|r| r.tool == "aiperf")
                .max_by(|a, b| a.requests_per_s.total_cmp(&b.requests_per_s))
            else {
                continue;
            };
            let mode = if streaming {
                "streaming"
            } else {
                "non-streaming"
            };
            let oha = runs()
                .filter(|r| r.tool == "oha" && r.concurrency == best.concurrency)
                .map(|r| r.requests_per_s)
                .next();
            let (limit, unit, measured) = match oha {
                Some(oha) => (0.5, "x oha", best.requests_per_s / oha),
                None => (
                    if streaming { 15_000.0 } else { 25_000.0 },
                    "requests/s",
                    best.requests_per_s,
                ),
            };
            let what = format!("{mode} capacity, 16 tokens (best, c={})", best.concurrency);
            targets.push(Target::new(what, measured, limit, false, unit));
            if streaming {
                let worst = runs()
                    .filter(|r| r.tool == "aiperf")
                    .map(|r| r.cpu_s_per_1000)
                    .fold(0.0, f64::max);
                let what = "client CPU per 1000 streaming requests (worst)".to_owned();
                targets.push(Target::new(what, worst, 0.1, true, "CPU-s"));
            }
        }
        // Issue 7's third item: the mock must be fast enough to measure us. oha is the
        // fastest client here, so its best non-streaming rate is the mock's floor.
        let mock_floor = self
            .capacity
            .iter()
            .filter(|r| r.tool == "oha" && !r.streaming)
            .map(|r| r.requests_per_s)
            .reduce(f64::max);
        if let Some(rate) = mock_floor {
            let what = "mock server, non-streaming under oha (best)".to_owned();
            targets.push(Target::new(what, rate, 50_000.0, false, "requests/s"));
        }
        for run in &self.memory {
            let limit = if run.concurrency >= 10_000 {
                200.0
            } else {
                64.0
            };
            if let Some(rss) = run.peak_rss_mib {
                let what = format!("peak RSS, {}", run.case);
                targets.push(Target::new(what, rss, limit, true, "MiB"));
            }
        }
        if let Some(startup) = &self.startup {
            targets.push(Target::new(
                "1-request profile, end to end".to_owned(),
                startup.one_request_profile_ms,
                200.0,
                true,
                "ms",
            ));
        }
        if let Some(idle) = &self.idle {
            targets.push(Target::new(
                "client CPU at c=1 against TTFT 50 ms".to_owned(),
                idle.cpu_share * 100.0,
                2.0,
                true,
                "% of a core",
            ));
        }
        self.targets = targets;
    }

    /// The report as text tables.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "machine: {} CPUs ({}), kernel {}; {}; {}",
            m.cpus,
            m.cpu_model,
            m.kernel,
            if m.pinned {
                "mock server pinned to core 0, client to core 1 (taskset)"
            } else {
                "NOT pinned (taskset absent or one core): figures include scheduler contention"
            },
            m.accounting
        );
        if !self.accuracy.is_empty() {
            let e = self.accuracy[0].engine;
            let _ = writeln!(
                out,
                "\n(a) accuracy: TTFT {} ms, ITL {} ms, {} tokens, streaming chat; error = client - server truth (ms); p50 = median, p99 = of the error's size (either sign); late = requests with a TTFT error over {} ms; after fill = in flight from when the peak was first reached; turn ms = mean time from a response's last bytes to the next request's write",
                e.ttft_ms, e.itl_ms, e.output_tokens, LATE_TTFT_MS
            );
            let mut table = Table::new(&[
                "conc",
                "reqs",
                "ok",
                "TTFT err p50",
                "p99",
                "late",
                "ITL err p50",
                "p99",
                "in flight",
                "after fill",
                "peak",
                "fill ms",
                "turn ms",
                "req/s",
                "ideal",
                "client CPU-s",
                "client CPU%",
                "RSS MiB",
                "mock CPU",
                "others",
                "stolen ms",
                "retrans",
            ]);
            for run in &self.accuracy {
                let ttft = run.error.ttft_ms;
                let itl = run.error.itl_ms;
                table.row(vec![
                    run.concurrency.to_string(),
                    run.requests.to_string(),
                    run.flow.succeeded.to_string(),
                    opt(ttft.map(|p| p.p50), 3),
                    opt(ttft.map(|p| p.p99), 3),
                    run.error.ttft_late.to_string(),
                    opt(itl.map(|p| p.p50), 3),
                    opt(itl.map(|p| p.p99), 3),
                    format!("{:.1}", run.flow.in_flight_mean),
                    format!("{:.1}", run.flow.in_flight_after_fill),
                    run.flow.in_flight_peak.to_string(),
                    format!("{:.1}", run.flow.fill_ms),
                    opt(run.flow.turnaround_ms.map(|t| t.mean), 3),
                    format!("{:.1}", run.flow.requests_per_s),
                    format!("{:.1}", run.ideal_requests_per_s),
                    format!("{:.2}", run.client.cpu_s),
                    percent(run.client.cpu_share),
                    opt(run.client.peak_rss_mib, 1),
                    percent(run.mock_cpu_share),
                    others(run.client.others),
                    stolen(run.client.stolen),
                    run.tcp_retransmits
                        .map_or("-".into(), |count| count.to_string()),
                ]);
            }
            out.push_str(&table.render());
            for run in &self.accuracy {
                let own_ttft = run
                    .error
                    .server_ttft_ms
                    .map(|ttft| (ttft, run.engine.ttft_ms));
                if let Some(note) =
                    saturated_mock_note(run.concurrency, run.mock_cpu_share, own_ttft)
                {
                    let _ = writeln!(out, "{note}");
                }
            }
        }
        if !self.capacity.is_empty() {
            let _ = writeln!(
                out,
                "\n(b) capacity: TTFT 0, ITL 0, 16 tokens; CPU-s/1000 = client CPU per 1000 requests"
            );
            let mut table = Table::new(&[
                "tool",
                "mode",
                "conc",
                "reqs",
                "failed",
                "req/s",
                "chunks/s",
                "CPU-s/1000",
                "RSS MiB",
                "mock CPU",
                "others",
                "stolen ms",
            ]);
            for run in &self.capacity {
                table.row(vec![
                    run.tool.to_owned(),
                    if run.streaming { "stream" } else { "whole" }.to_owned(),
                    run.concurrency.to_string(),
                    run.requests.to_string(),
                    run.failed.to_string(),
                    format!("{:.0}", run.requests_per_s),
                    opt(run.responses_per_s, 0),
                    format!("{:.3}", run.cpu_s_per_1000),
                    opt(run.client.peak_rss_mib, 1),
                    percent(run.mock_cpu_share),
                    others(run.client.others),
                    stolen(run.client.stolen),
                ]);
            }
            out.push_str(&table.render());
        }
        if !self.memory.is_empty() {
            let _ = writeln!(out, "\n(c) memory: client peak RSS");
            let mut table = Table::new(&["case", "conc", "peak in flight", "failed", "RSS MiB"]);
            for run in &self.memory {
                table.row(vec![
                    run.case.clone(),
                    run.concurrency.to_string(),
                    run.in_flight_peak.to_string(),
                    run.failed.to_string(),
                    opt(run.peak_rss_mib, 1),
                ]);
            }
            out.push_str(&table.render());
        }
        if let Some(startup) = &self.startup {
            let _ = writeln!(
                out,
                "\n(d) start-up (median of {}): aiperf --version {:.1} ms; 1-request profile end to end {:.1} ms",
                startup.runs, startup.version_ms, startup.one_request_profile_ms
            );
        }
        if let Some(idle) = &self.idle {
            let _ = writeln!(
                out,
                "\n(e) idle cost: client CPU at c=1 against TTFT {} ms: {:.2}% of a core over {:.1} s",
                idle.engine.ttft_ms,
                idle.cpu_share * 100.0,
                idle.window_s
            );
        }
        if !self.targets.is_empty() {
            let _ = writeln!(out, "\ntargets (issue 7)");
            let mut table = Table::new(&["", "figure", "measured", "target", "unit"]);
            for target in &self.targets {
                table.row(vec![
                    if target.met { "MET" } else { "MISS" }.to_owned(),
                    target.what.clone(),
                    format!("{:.3}", target.measured),
                    format!(
                        "{} {}",
                        if target.lower_is_better { "<=" } else { ">=" },
                        target.target
                    ),
                    target.unit.to_owned(),
                ]);
            }
            out.push_str(&table.render());
        }
        if self.machine.pinned {
            let _ = writeln!(
                out,
                "\nclient CPU%: the client's CPU over its wall time, start-up and exports included; \
                 mock CPU: the mock server's share of its core over the run's span; others: \
                 CPU of other processes on the client's / mock's core while the client ran; \
                 stolen ms: time the hypervisor held the client's / mock's core back meanwhile"
            );
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }
}

fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.decimals$}"))
}

fn others(load: Option<OtherLoad>) -> String {
    load.map_or_else(
        || "-".to_owned(),
        |l| format!("{}/{}", percent(l.client_core), percent(l.mock_core)),
    )
}

fn stolen(time: Option<StolenTime>) -> String {
    time.map_or_else(
        || "-".to_owned(),
        |t| format!("{:.0}/{:.0}", t.client_core_ms, t.mock_core_ms),
    )
}

fn percent(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

/// A plain text table: right-aligned columns, the first left-aligned.
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(String::len).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
                if i == 0 {
                    let _ = write!(line, "{cell:<width$}");
                } else {
                    let _ = write!(line, "  {cell:>width$}");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// The mock server's share of its core from which an accuracy run is at the mock's limit too.
const MOCK_SATURATED: f64 = 0.95;

/// What to say under the accuracy table when the mock used `mock_cpu_share` of its core at
/// concurrency `c`, with `own_ttft` (the mock's own TTFT from its truth log, and the TTFT it
/// was set to): its truth still stamps every token as written, but it wrote them late, so the
/// row is the limit of the pair, not of the client alone.
fn saturated_mock_note(
    c: usize,
    mock_cpu_share: f64,
    own_ttft: Option<(Percentiles, f64)>,
) -> Option<String> {
    (mock_cpu_share >= MOCK_SATURATED).then(|| {
        let own_ttft = own_ttft.map_or(String::new(), |(ttft, set)| {
            format!(
                "; its own TTFT p50 {:.1} ms, p99 {:.1} ms, against {set} ms set",
                ttft.p50, ttft.p99
            )
        });
        format!(
            "note: at c={c} the mock server used {} of its core{own_ttft}: its tokens went out \
             late, so that row (req/s against the ideal included) is the limit of the pair, not \
             of the client alone",
            percent(mock_cpu_share)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saturated_mock_is_named_under_the_accuracy_table() {
        let own_ttft = Some((
            Percentiles {
                p50: 54.0,
                p99: 131.8,
            },
            50.0,
        ));
        assert_eq!(saturated_mock_note(512, 0.46, own_ttft), None);
        assert_eq!(
            saturated_mock_note(2048, 1.01, own_ttft).unwrap(),
            "note: at c=2048 the mock server used 101% of its core; its own TTFT p50 54.0 ms, \
             p99 131.8 ms, against 50 ms set: its tokens went out late, so that row (req/s \
             against the ideal included) is the limit of the pair, not of the client alone"
        );
    }

    #[test]
    fn tables_align_columns() {
        let mut table = Table::new(&["a", "bb"]);
        table.row(vec!["long".into(), "1".into()]);
        assert_eq!(table.render(), "a     bb\nlong   1\n");
    }

    #[test]
    fn targets_compare_in_the_right_direction() {
        assert!(Target::new("x".into(), 0.5, 1.0, true, "ms").met);
        assert!(!Target::new("x".into(), 1.5, 1.0, true, "ms").met);
        assert!(Target::new("x".into(), 20_000.0, 15_000.0, false, "r/s").met);
    }
}
