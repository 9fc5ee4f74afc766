//! `cargo xtask bench [--quick] [--json FILE] [--aiperf BINARY]`: the whole-client benchmark of
//! issue 7.
//!
//! Builds the release binary, then measures `aiperf profile` (pinned to core 1) against
//! `aiperf mock-server` (one runtime worker, pinned to core 0), each configuration with a fresh
//! server:
//!
//! - (a) accuracy: TTFT 50 ms, ITL 10 ms, 64 tokens, streaming chat at several concurrencies:
//!   the client's TTFT and ITL minus the server's own truth for the same request (paired by
//!   `X-Request-ID` through the truth log), requests in flight, rate against the ideal;
//! - (b) capacity: TTFT 0, ITL 0, 16 tokens, streamed and whole: requests/s, chunks/s, client
//!   CPU per 1000 requests; the same with `oha` as the raw-HTTP reference when it is installed;
//! - (c) memory: peak RSS of the c=512 run and of 10,000 streams held open;
//! - (d) start-up: `aiperf --version` and a 1-request profile, end to end;
//! - (e) idle cost: client CPU at concurrency 1 against TTFT 50 ms;
//! - (f) the mock server's CPU share in every run, so no figure is secretly the mock's limit.
//!
//! Every run is bounded by a request count and a time limit. `--quick` runs a subset in under a
//! minute (CI's smoke test). `--aiperf BINARY` measures a given build as the client (the mock
//! server stays the workspace's), so that two clients can be compared on the same machine. The table is printed and the figures written as JSON
//! (`<target>/bench/report.json` unless `--json` says where). Missed targets are reported, not
//! failed: the command fails only when the instrument itself fails (a run that could not start,
//! failed requests, requests missing from the truth log).

mod mock_server;
mod process;
mod records;
mod report;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::workspace;
use mock_server::{EngineFlags, MockServer, SERVER_CORE};
use process::{Measured, Pinning, find_on_path, run_measured};
use records::{Flow, read_client, read_truth, timing_error};
use report::{
    AccuracyRun, CapacityRun, ClientCost, Idle, Machine, MemoryRun, OtherLoad, Report, Startup,
    StolenTime, mib,
};

/// Arguments of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run a small subset (accuracy at c=32, streaming capacity at c=64, start-up) in under a
    /// minute.
    #[arg(long)]
    quick: bool,
    /// Write the figures as JSON to FILE (default `<target>/bench/report.json`).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Measure this aiperf binary as the client instead of the workspace's (the mock server
    /// stays the workspace's), to compare two builds side by side on the same machine.
    #[arg(long, value_name = "FILE")]
    aiperf: Option<PathBuf>,
}

/// The core the client runs on (the mock server has [`mock_server::SERVER_CORE`]).
const CLIENT_CORE: usize = 1;

/// The accuracy runs' engine: a realistic decode.
const ACCURACY_ENGINE: EngineFlags = EngineFlags {
    ttft_ms: 50.0,
    itl_ms: 10.0,
    output_tokens: 64,
};
/// The capacity runs' engine: answers at once, so only the client and the wire cost time.
const CAPACITY_ENGINE: EngineFlags = EngineFlags {
    ttft_ms: 0.0,
    itl_ms: 0.0,
    output_tokens: 16,
};
/// The open-streams run's engine: slow enough that every stream stays open together.
const OPEN_STREAMS_ENGINE: EngineFlags = EngineFlags {
    ttft_ms: 1000.0,
    itl_ms: 1000.0,
    output_tokens: 8,
};
/// Streams held open at once in the memory run.
const OPEN_STREAMS: usize = 10_000;

/// Which runs to make.
struct Plan {
    /// (concurrency, requests) of the accuracy runs.
    accuracy: Vec<(usize, usize)>,
    /// (streaming, concurrency, requests) of the capacity runs.
    capacity: Vec<(bool, usize, usize)>,
    /// Whether to hold [`OPEN_STREAMS`] streams open.
    open_streams: bool,
    /// Runs per start-up figure.
    startup_runs: usize,
}

impl Plan {
    fn full() -> Self {
        Self {
            // About 10 s, 7 s, 3.4 s, 3.4 s and 2 s at the ideal rate.
            accuracy: vec![(1, 15), (32, 320), (128, 640), (512, 2560), (2048, 6144)],
            capacity: vec![
                (true, 64, 20_000),
                (true, 256, 20_000),
                (false, 64, 30_000),
                (false, 256, 30_000),
            ],
            open_streams: true,
            startup_runs: 5,
        }
    }

    fn quick() -> Self {
        Self {
            accuracy: vec![(32, 200)],
            capacity: vec![(true, 64, 2000)],
            open_streams: false,
            startup_runs: 3,
        }
    }
}

/// What every run needs.
struct Bench {
    /// The client measured.
    binary: PathBuf,
    /// The mock server: always the workspace's build.
    mock_binary: PathBuf,
    dir: PathBuf,
    pinning: Pinning,
    oha: Option<PathBuf>,
    /// Runs whose results cannot be trusted (failed requests, unpaired records).
    problems: Vec<String>,
}

/// Runs the benchmark and prints its report; `Ok(false)` when a run went wrong.
pub fn run(args: Args) -> anyhow::Result<bool> {
    let started = Instant::now();
    let release = workspace::release_run("bench")?;
    let mut bench = Bench {
        binary: match args.aiperf {
            Some(binary) => workspace::absolute(&binary)
                .with_context(|| format!("cannot resolve {}", binary.display()))?,
            None => release.binary.clone(),
        },
        mock_binary: release.binary,
        dir: release.dir,
        pinning: Pinning::detect(),
        oha: find_on_path("oha"),
        problems: Vec::new(),
    };
    let plan = if args.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    let mut report = Report {
        aiperf: bench.binary.display().to_string(),
        machine: machine(&bench.pinning),
        quick: args.quick,
        accuracy: Vec::new(),
        capacity: Vec::new(),
        memory: Vec::new(),
        startup: None,
        idle: None,
        targets: Vec::new(),
        notes: Vec::new(),
    };
    if !bench.pinning.is_pinned() {
        report.notes.push(
            "taskset is absent (or there is one core): server and client were not pinned".into(),
        );
    }
    println!(
        "bench: measuring {}; {}",
        bench.binary.display(),
        report.machine.accounting
    );
    bench.run_plan(&plan, &mut report)?;
    if bench.oha.is_none() && !plan.capacity.is_empty() {
        report.notes.push(
            "oha is absent (cargo install oha): no raw-HTTP reference; capacity is judged by \
             the absolute targets"
                .into(),
        );
    }
    report.notes.append(&mut bench.problems.clone());
    report.judge();
    print!("\n{}", report.render());
    let json_path = args.json.unwrap_or_else(|| bench.dir.join("report.json"));
    let json = serde_json::to_string_pretty(&report).context("cannot serialize the report")?;
    std::fs::write(&json_path, json + "\n")
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    println!(
        "bench: figures written to {}; runs kept in {} ({:.0} s)",
        json_path.display(),
        bench.dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(bench.problems.is_empty())
}

impl Bench {
    fn run_plan(&mut self, plan: &Plan, report: &mut Report) -> anyhow::Result<()> {
        for &(concurrency, requests) in &plan.accuracy {
            println!("bench: accuracy, concurrency {concurrency}, {requests} requests");
            let (run, measured) = self.accuracy(concurrency, requests)?;
            if concurrency == 1 {
                let skip_start = Duration::from_millis(1500);
                let skip_end = Duration::from_millis(500);
                if let Some((share, window)) = measured.steady_cpu_share(skip_start, skip_end) {
                    report.idle = Some(Idle {
                        engine: ACCURACY_ENGINE,
                        cpu_share: share,
                        window_s: window.as_secs_f64(),
                    });
                }
            }
            if concurrency == 512 {
                report.memory.push(MemoryRun {
                    case: "accuracy run at c=512".into(),
                    concurrency,
                    in_flight_peak: run.flow.in_flight_peak,
                    failed: run.flow.failed,
                    peak_rss_mib: run.client.peak_rss_mib,
                });
            }
            report.accuracy.push(run);
        }
        for &(streaming, concurrency, requests) in &plan.capacity {
            let mode = if streaming {
                "streaming"
            } else {
                "non-streaming"
            };
            println!("bench: capacity, {mode}, concurrency {concurrency}, {requests} requests");
            report
                .capacity
                .extend(self.capacity(streaming, concurrency, requests)?);
        }
        if plan.open_streams {
            println!("bench: memory, {OPEN_STREAMS} streams held open");
            report.memory.push(self.open_streams()?);
        }
        println!("bench: start-up");
        report.startup = Some(self.startup(plan.startup_runs)?);
        Ok(())
    }

    /// A fresh directory for one run.
    fn run_dir(&self, name: &str) -> anyhow::Result<PathBuf> {
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(dir)
    }

    /// `aiperf profile` against `url`, pinned to the client core, its output in `dir`.
    fn profile(&self, url: &str, dir: &Path, load: &Load) -> Command {
        let mut command = self.pinning.command(CLIENT_CORE, &self.binary);
        command
            .arg("profile")
            .args(["--url", url, "--endpoint-type", "chat"])
            .args(["--concurrency", &load.concurrency.to_string()])
            .args(["--request-count", &load.requests.to_string()])
            // The same 100 prompts in every run, whatever its request count (which would
            // otherwise size the dataset, as in AIPerf 0.13): the runs measure the client's
            // timing, not the building of prompts.
            .args(["--num-dataset-entries", "100"])
            .args(["--osl", &load.output_tokens.to_string()])
            .args(["--request-timeout-seconds", "120", "--ui", "none"])
            .arg("--artifact-dir")
            .arg(dir.join("artifacts"))
            .stdin(Stdio::null());
        if load.streaming {
            command.arg("--streaming");
        }
        command
    }

    /// Runs a profile to its end, its output in `dir/client.{out,err}`.
    fn run_profile(&self, url: &str, dir: &Path, load: &Load) -> anyhow::Result<Measured> {
        let mut command = self.profile(url, dir, load);
        command
            .stdout(file(&dir.join("client.out"))?)
            .stderr(file(&dir.join("client.err"))?);
        let measured = run_measured(command, load.time_limit, "aiperf profile")?;
        if !measured.status.success() {
            bail!(
                "aiperf profile exited with {}: see {}",
                measured.status,
                dir.join("client.err").display()
            );
        }
        Ok(measured)
    }

    fn accuracy(
        &mut self,
        concurrency: usize,
        requests: usize,
    ) -> anyhow::Result<(AccuracyRun, Measured)> {
        let dir = self.run_dir(&format!("accuracy-c{concurrency}"))?;
        let engine = ACCURACY_ENGINE;
        let server = MockServer::start(&self.mock_binary, &self.pinning, engine, &dir, true)?;
        let load = Load::new(true, concurrency, requests, engine);
        let server_cpu = server.cpu_seconds()?;
        let retransmits = process::tcp_retransmits();
        let measured = self.run_profile(&server.url, &dir, &load)?;
        let retransmits = process::tcp_retransmits()
            .zip(retransmits)
            .map(|(after, before)| after.saturating_sub(before));
        let server_cpu = server.cpu_seconds()? - server_cpu;
        let truth_log = server
            .stop()?
            .context("the server was started with a truth log")?;
        let records = read_client(&dir.join("artifacts/profile_export.jsonl"))?;
        let truth = read_truth(&truth_log)?;
        let flow = Flow::of(&records).context("the accuracy run recorded no requests")?;
        let error = timing_error(&records, &truth);
        let what = format!("accuracy at c={concurrency}");
        self.check(&what, &flow, requests);
        if error.paired < flow.succeeded {
            self.problems.push(format!(
                "{what}: only {} of {} successful requests were found in the truth log",
                error.paired, flow.succeeded
            ));
        }
        let run = AccuracyRun {
            engine,
            concurrency,
            requests,
            ideal_requests_per_s: concurrency as f64 / engine.ideal_latency_s(),
            mock_cpu_share: share(server_cpu, flow.duration_s),
            client: self.cost(&measured, server_cpu),
            tcp_retransmits: retransmits,
            flow,
            error,
        };
        Ok((run, measured))
    }

    fn capacity(
        &mut self,
        streaming: bool,
        concurrency: usize,
        requests: usize,
    ) -> anyhow::Result<Vec<CapacityRun>> {
        let mode = if streaming { "stream" } else { "whole" };
        let dir = self.run_dir(&format!("capacity-{mode}-c{concurrency}"))?;
        let engine = CAPACITY_ENGINE;
        let server = MockServer::start(&self.mock_binary, &self.pinning, engine, &dir, false)?;
        let load = Load::new(streaming, concurrency, requests, engine);
        let server_cpu = server.cpu_seconds()?;
        let measured = self.run_profile(&server.url, &dir, &load)?;
        let server_cpu = server.cpu_seconds()? - server_cpu;
        let records = read_client(&dir.join("artifacts/profile_export.jsonl"))?;
        let flow = Flow::of(&records).context("the capacity run recorded no requests")?;
        self.check(
            &format!("capacity {mode} at c={concurrency}"),
            &flow,
            requests,
        );
        let mut runs = vec![CapacityRun {
            tool: "aiperf",
            streaming,
            concurrency,
            requests,
            requests_per_s: flow.requests_per_s,
            responses_per_s: Some(flow.responses_per_s),
            failed: flow.failed,
            cpu_s_per_1000: measured.cpu_s / flow.succeeded.max(1) as f64 * 1000.0,
            client: self.cost(&measured, server_cpu),
            mock_cpu_share: share(server_cpu, flow.duration_s),
        }];
        if let Some(oha) = &self.oha {
            runs.push(self.oha(oha, &server, &dir, &load)?);
        }
        server.stop()?;
        Ok(runs)
    }

    /// The same load as a capacity run, sent by oha with the body aiperf sent first.
    fn oha(
        &self,
        oha: &Path,
        server: &MockServer,
        dir: &Path,
        load: &Load,
    ) -> anyhow::Result<CapacityRun> {
        let inputs: Value = serde_json::from_slice(
            &std::fs::read(dir.join("artifacts/inputs.json")).context("cannot read inputs.json")?,
        )
        .context("inputs.json is not JSON")?;
        let body = &inputs["data"][0]["payloads"][0];
        let body_file = dir.join("oha-body.json");
        std::fs::write(&body_file, serde_json::to_vec(body)?)?;
        let mut command = self.pinning.command(CLIENT_CORE, oha);
        command
            .args(["--no-tui", "--output-format", "json", "-m", "POST"])
            .args(["-H", "content-type: application/json"])
            .args(["-n", &load.requests.to_string()])
            .args(["-c", &load.concurrency.to_string()])
            .arg("-D")
            .arg(&body_file)
            .arg(format!("{}/v1/chat/completions", server.url))
            .stdin(Stdio::null())
            .stdout(file(&dir.join("oha.json"))?)
            .stderr(file(&dir.join("oha.err"))?);
        let server_cpu = server.cpu_seconds()?;
        let measured = run_measured(command, load.time_limit, "oha")?;
        let server_cpu = server.cpu_seconds()? - server_cpu;
        if !measured.status.success() {
            bail!(
                "oha exited with {}: see {}",
                measured.status,
                dir.join("oha.err").display()
            );
        }
        let summary: Value = serde_json::from_slice(&std::fs::read(dir.join("oha.json"))?)
            .context("oha's output is not JSON")?;
        let rate = summary["summary"]["requestsPerSec"]
            .as_f64()
            .context("oha's output has no summary.requestsPerSec")?;
        let success = summary["summary"]["successRate"].as_f64().unwrap_or(1.0);
        let total = summary["summary"]["total"].as_f64().unwrap_or(0.0);
        Ok(CapacityRun {
            tool: "oha",
            streaming: load.streaming,
            concurrency: load.concurrency,
            requests: load.requests,
            requests_per_s: rate,
            responses_per_s: None,
            failed: ((1.0 - success) * load.requests as f64).round() as usize,
            cpu_s_per_1000: measured.cpu_s / load.requests as f64 * 1000.0,
            client: self.cost(&measured, server_cpu),
            mock_cpu_share: share(server_cpu, total),
        })
    }

    fn open_streams(&mut self) -> anyhow::Result<MemoryRun> {
        let dir = self.run_dir("memory-open-streams")?;
        let engine = OPEN_STREAMS_ENGINE;
        let server = MockServer::start(&self.mock_binary, &self.pinning, engine, &dir, false)?;
        let load = Load::new(true, OPEN_STREAMS, OPEN_STREAMS, engine);
        let measured = self.run_profile(&server.url, &dir, &load)?;
        server.stop()?;
        let records = read_client(&dir.join("artifacts/profile_export.jsonl"))?;
        let flow = Flow::of(&records).context("the open-streams run recorded no requests")?;
        self.check("open streams", &flow, OPEN_STREAMS);
        Ok(MemoryRun {
            case: format!("{OPEN_STREAMS} streams open (ITL 1 s, 8 tokens)"),
            concurrency: OPEN_STREAMS,
            in_flight_peak: flow.in_flight_peak,
            failed: flow.failed,
            peak_rss_mib: measured.peak_rss.map(mib),
        })
    }

    fn startup(&mut self, runs: usize) -> anyhow::Result<Startup> {
        let mut version = Vec::with_capacity(runs);
        for _ in 0..runs {
            let mut command = self.pinning.command(CLIENT_CORE, &self.binary);
            command.arg("--version").stdout(Stdio::null());
            let started = Instant::now();
            let status = command.status().context("cannot run aiperf --version")?;
            version.push(started.elapsed().as_secs_f64() * 1e3);
            if !status.success() {
                bail!("aiperf --version exited with {status}");
            }
        }
        let engine = CAPACITY_ENGINE;
        let dir = self.run_dir("startup")?;
        let server = MockServer::start(&self.mock_binary, &self.pinning, engine, &dir, false)?;
        let mut profile = Vec::with_capacity(runs);
        for i in 0..runs {
            let run_dir = self.run_dir(&format!("startup/run{i}"))?;
            let load = Load::new(true, 1, 1, engine);
            let measured = self.run_profile(&server.url, &run_dir, &load)?;
            profile.push(measured.wall.as_secs_f64() * 1e3);
        }
        server.stop()?;
        Ok(Startup {
            version_ms: median(version),
            one_request_profile_ms: median(profile),
            runs,
        })
    }

    /// The client's costs in a run during which the mock server used `server_cpu_s`.
    fn cost(&self, measured: &Measured, server_cpu_s: f64) -> ClientCost {
        let wall_s = measured.wall.as_secs_f64();
        let core = |core: usize| measured.cores.get(core).copied().unwrap_or_default();
        let others = self.pinning.is_pinned().then(|| OtherLoad {
            client_core: share((core(CLIENT_CORE).busy_s - measured.cpu_s).max(0.0), wall_s),
            mock_core: share((core(SERVER_CORE).busy_s - server_cpu_s).max(0.0), wall_s),
        });
        let stolen = self.pinning.is_pinned().then(|| StolenTime {
            client_core_ms: core(CLIENT_CORE).stolen_s * 1e3,
            mock_core_ms: core(SERVER_CORE).stolen_s * 1e3,
        });
        ClientCost {
            cpu_s: measured.cpu_s,
            cpu_share: share(measured.cpu_s, wall_s),
            wall_s,
            peak_rss_mib: measured.peak_rss.map(mib),
            others,
            stolen,
        }
    }

    /// Notes a run whose requests did not all succeed.
    fn check(&mut self, what: &str, flow: &Flow, requests: usize) {
        if flow.failed > 0 || flow.succeeded != requests {
            self.problems.push(format!(
                "{what}: {} of {requests} requests succeeded, {} failed (see the run's \
                 directory)",
                flow.succeeded, flow.failed
            ));
        }
    }
}

/// The load of one profile run.
struct Load {
    streaming: bool,
    concurrency: usize,
    requests: usize,
    output_tokens: u32,
    /// The run is killed after this long.
    time_limit: Duration,
}

impl Load {
    fn new(streaming: bool, concurrency: usize, requests: usize, engine: EngineFlags) -> Self {
        let rounds = requests.div_ceil(concurrency) as f64;
        // Four times the ideal duration, plus start-up and slack.
        let limit = 4.0 * rounds * engine.ideal_latency_s() + 60.0;
        Self {
            streaming,
            concurrency,
            requests,
            output_tokens: engine.output_tokens,
            time_limit: Duration::from_secs_f64(limit),
        }
    }
}

/// CPU seconds over wall seconds.
fn share(cpu_s: f64, wall_s: f64) -> f64 {
    if wall_s > 0.0 { cpu_s / wall_s } else { 0.0 }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn file(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))
}

/// The machine, from `/proc`.
fn machine(pinning: &Pinning) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or_else(|| "unknown CPU".to_owned(), |(_, m)| m.trim().to_owned());
    Machine {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu_model,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".to_owned(), |k| k.trim().to_owned()),
        pinned: pinning.is_pinned(),
        accounting: "CPU = utime+stime of /proc/<pid>/stat read at exit (before reaping); \
                     RSS = VmHWM of /proc/<pid>/status sampled every 5 ms",
    }
}
