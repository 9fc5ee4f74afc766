//! The processes a benchmark measures: pinned to a core with `taskset` when it is installed,
//! bounded in time, and watched through `/proc/<pid>` while they run, so that their CPU time and
//! peak memory are known without instrumenting them.
//!
//! CPU time is `utime + stime` of `/proc/<pid>/stat` (every thread, exited ones included), read
//! once the process has exited but before it is reaped: a zombie keeps its final accounting, the
//! figure `wait4` would return. Peak memory is `VmHWM` of `/proc/<pid>/status`, sampled every
//! few milliseconds while the process lives (a zombie has no memory left to report), so a peak
//! reached in its last few milliseconds could be missed.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How often a running process is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// Where processes run: `taskset -c CORE` when taskset is installed and there are two cores,
/// else wherever the scheduler puts them.
#[derive(Debug, Clone)]
pub struct Pinning {
    taskset: Option<PathBuf>,
}

impl Pinning {
    /// Pins with the `taskset` on `PATH`, if there is one and the machine has two cores or more.
    pub fn detect() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            taskset: find_on_path("taskset").filter(|_| cores >= 2),
        }
    }

    /// Whether processes are pinned.
    pub fn is_pinned(&self) -> bool {
        self.taskset.is_some()
    }

    /// A command running `program` on `core` (unpinned without taskset).
    pub fn command(&self, core: usize, program: &Path) -> Command {
        match &self.taskset {
            Some(taskset) => {
                let mut command = Command::new(taskset);
                command.arg("-c").arg(core.to_string()).arg(program);
                command
            }
            None => Command::new(program),
        }
    }
}

/// The first `name` on `PATH` that is a file.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Clock ticks per second of the times in `/proc/<pid>/stat` (`getconf CLK_TCK`, else 100).
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse::<f64>().ok())
            .filter(|ticks| *ticks > 0.0)
            .unwrap_or(100.0)
    })
}

/// What `/proc/<pid>/stat` says about a process.
#[derive(Debug, Clone, Copy)]
pub struct ProcStat {
    /// Its state letter (`R`, `S`, ... `Z` for a zombie).
    pub state: char,
    /// User plus system CPU time so far, in seconds.
    pub cpu_s: f64,
}

/// Reads `/proc/<pid>/stat`.
pub fn read_stat(pid: u32) -> anyhow::Result<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces: split after it.
    let rest = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("/proc/{pid}/stat has no command name: {text}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 3 (state), 14 (utime) and 15 (stime), counted from 1 over the whole line.
    let field = |n: usize| -> anyhow::Result<&str> {
        fields
            .get(n - 3)
            .copied()
            .with_context(|| format!("/proc/{pid}/stat has no field {n}: {text}"))
    };
    let state = field(3)?.chars().next().unwrap_or('?');
    let ticks: u64 = field(14)?.parse::<u64>()? + field(15)?.parse::<u64>()?;
    Ok(ProcStat {
        state,
        cpu_s: ticks as f64 / clock_ticks(),
    })
}

/// `VmHWM` (peak resident memory) of `/proc/<pid>/status`, in bytes; `None` once the process
/// has released its memory.
pub fn read_peak_rss(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Where a core's time went, by `/proc/stat` (ticks of `1 / clock_ticks()` s).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CoreTime {
    /// Running something: user, nice, system, irq and softirq time.
    pub busy_s: f64,
    /// Stolen: the hypervisor ran other work while this virtual core had work of its own
    /// (steal time). A process on that core did not run meanwhile, nor did the kernel's
    /// delivery of its packets, so a timestamp taken just after such a gap is late by it.
    pub stolen_s: f64,
}

impl std::ops::Sub for CoreTime {
    type Output = Self;

    fn sub(self, earlier: Self) -> Self {
        Self {
            busy_s: self.busy_s - earlier.busy_s,
            stolen_s: self.stolen_s - earlier.stolen_s,
        }
    }
}

/// Each core's [`CoreTime`] since boot: with a process's own CPU time, how much else ran on
/// its core, and how long the hypervisor held it back. Empty without `/proc/stat`.
pub fn cores_time() -> Vec<CoreTime> {
    parse_cores_time(&std::fs::read_to_string("/proc/stat").unwrap_or_default())
}

/// [`cores_time`] from the text of `/proc/stat`.
fn parse_cores_time(text: &str) -> Vec<CoreTime> {
    let mut cores = Vec::new();
    for line in text.lines() {
        // `cpuN` and its ticks; the all-cores line is `cpu` alone, with no number to parse.
        let Some((core, ticks)) = line
            .strip_prefix("cpu")
            .and_then(|rest| rest.split_once(' '))
        else {
            continue;
        };
        let Ok(core) = core.parse::<usize>() else {
            continue;
        };
        let ticks: Vec<u64> = ticks
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal ...
        let seconds = |columns: &[usize]| {
            let sum: u64 = columns.iter().filter_map(|&i| ticks.get(i)).sum();
            sum as f64 / clock_ticks()
        };
        if cores.len() <= core {
            cores.resize(core + 1, CoreTime::default());
        }
        cores[core] = CoreTime {
            busy_s: seconds(&[0, 1, 2, 5, 6]),
            stolen_s: seconds(&[7]),
        };
    }
    cores
}

/// TCP segments retransmitted by the whole host since boot (`RetransSegs` of `/proc/net/snmp`).
/// On loopback nothing is lost: a retransmission is a loss probe fired because an ACK came late,
/// the sign that the pair (most often the mock's core, which also runs the kernel's delivery of
/// its writes) fell behind.
pub fn tcp_retransmits() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut tcp = text.lines().filter(|line| line.starts_with("Tcp:"));
    let (names, values) = (tcp.next()?, tcp.next()?);
    let column = names
        .split_whitespace()
        .position(|name| name == "RetransSegs")?;
    values.split_whitespace().nth(column)?.parse().ok()
}

/// CPU time of a running process at one moment.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    /// How long after the start.
    pub at: Duration,
    /// CPU seconds used by then.
    pub cpu_s: f64,
}

/// A process run to its end and what it used.
#[derive(Debug)]
pub struct Measured {
    /// How it exited.
    pub status: ExitStatus,
    /// From spawn to exit.
    pub wall: Duration,
    /// CPU seconds it used in all.
    pub cpu_s: f64,
    /// Its peak resident memory in bytes, when it could be read.
    pub peak_rss: Option<u64>,
    /// Its CPU time sampled while it ran.
    pub samples: Vec<CpuSample>,
    /// Each core's time while it ran (its own CPU time and everything else's).
    pub cores: Vec<CoreTime>,
}

impl Measured {
    /// CPU seconds per wall second over the part of the run from `skip_start` after its start
    /// to `skip_end` before its end (start-up and shut-down left out), and that window's
    /// length; `None` when the window is shorter than a second.
    pub fn steady_cpu_share(
        &self,
        skip_start: Duration,
        skip_end: Duration,
    ) -> Option<(f64, Duration)> {
        let end = self.wall.checked_sub(skip_end)?;
        let first = self.samples.iter().find(|s| s.at >= skip_start)?;
        let last = self.samples.iter().rev().find(|s| s.at <= end)?;
        let window = last.at.checked_sub(first.at)?;
        if window < Duration::from_secs(1) {
            return None;
        }
        Some(((last.cpu_s - first.cpu_s) / window.as_secs_f64(), window))
    }
}

/// Runs `command` to its end (killing it after `limit`), sampling its CPU time and memory.
/// Output goes where the command says (set `stdout`/`stderr` before).
pub fn run_measured(mut command: Command, limit: Duration, what: &str) -> anyhow::Result<Measured> {
    let cores_before = cores_time();
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {what}: {command:?}"))?;
    let pid = child.id();
    let mut samples = Vec::new();
    let mut peak_rss = None;
    let cpu_s = loop {
        let at = started.elapsed();
        match read_stat(pid) {
            Ok(stat) if stat.state == 'Z' => break stat.cpu_s,
            Ok(stat) => {
                samples.push(CpuSample {
                    at,
                    cpu_s: stat.cpu_s,
                });
                peak_rss = read_peak_rss(pid).or(peak_rss);
            }
            // Not reaped by anyone but us, so this is unexpected: fall back to the last sample.
            Err(_) if child.try_wait()?.is_some() => {
                break samples.last().map_or(0.0, |s| s.cpu_s);
            }
            Err(error) => return Err(error),
        }
        if at > limit {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{what} did not finish within {} s and was killed: {command:?}",
                limit.as_secs()
            );
        }
        std::thread::sleep(SAMPLE_EVERY);
    };
    let wall = started.elapsed();
    let cores = cores_time()
        .into_iter()
        .zip(
            cores_before
                .into_iter()
                .chain(std::iter::repeat(CoreTime::default())),
        )
        .map(|(after, before)| after - before)
        .collect();
    let status = child
        .wait()
        .with_context(|| format!("cannot wait for {what}"))?;
    Ok(Measured {
        status,
        wall,
        cpu_s,
        peak_rss,
        samples,
        cores,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_child_is_charged_its_cpu_time() {
        let mut command = Command::new("sh");
        command.args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"]);
        let measured = run_measured(command, Duration::from_secs(60), "a busy loop").unwrap();
        assert!(measured.status.success());
        assert!(measured.cpu_s > 0.0, "{measured:?}");
        assert!(
            measured.cpu_s <= measured.wall.as_secs_f64() + 0.05,
            "{measured:?}"
        );
        assert!(measured.peak_rss.is_some_and(|rss| rss > 0), "{measured:?}");
        let busy: f64 = measured.cores.iter().map(|core| core.busy_s).sum();
        assert!(busy >= measured.cpu_s - 0.05, "{measured:?}");
    }

    #[test]
    fn an_overdue_child_is_killed() {
        let mut command = Command::new("sleep");
        command.arg("30");
        let error = run_measured(command, Duration::from_millis(100), "sleep").unwrap_err();
        assert!(error.to_string().contains("did not finish"), "{error}");
    }

    #[test]
    fn a_cores_busy_and_stolen_time_are_read_apart() {
        let stat = "cpu  30 0 0 900 0 0 0 7 0 0\n\
                    cpu0 10 2 3 400 9 4 5 6 0 0\n\
                    cpu1 20 0 0 500 0 0 0 1 0 0\n\
                    intr 12345\n";
        let tick = 1.0 / clock_ticks();
        let cores = parse_cores_time(stat);
        assert_eq!(cores.len(), 2, "{cores:?}");
        assert!((cores[0].busy_s - 24.0 * tick).abs() < 1e-9, "{cores:?}");
        assert!((cores[0].stolen_s - 6.0 * tick).abs() < 1e-9, "{cores:?}");
        assert!((cores[1].busy_s - 20.0 * tick).abs() < 1e-9, "{cores:?}");
        assert!((cores[1].stolen_s - tick).abs() < 1e-9, "{cores:?}");
    }

    #[test]
    fn tcp_retransmits_are_read_from_the_hosts_counters() {
        if std::path::Path::new("/proc/net/snmp").exists() {
            assert!(tcp_retransmits().is_some());
        }
    }

    #[test]
    fn stat_of_this_process_parses() {
        let stat = read_stat(std::process::id()).unwrap();
        assert!(matches!(stat.state, 'R' | 'S'), "{stat:?}");
        assert!(read_peak_rss(std::process::id()).is_some());
    }
}
