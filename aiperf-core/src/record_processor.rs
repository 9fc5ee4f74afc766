//! Records processed beside the run (DESIGN.md §4), so that none has to be kept: a thread
//! receives each record from the runner's [`RecordSender`](crate::runner::RecordSender) as its
//! request ends, counts its output with the client tokenizer, adds it to the run's
//! [`Analysis`], writes its `profile_export.jsonl` line (and its `outputs.json` entry), and
//! drops it. What stays is what the
//! statistics need, in bounded memory; the JSONL file holds every request measured so far,
//! whatever happens to the process later.
//!
//! The processing works off the runtime's threads and off the per-chunk path, in batches (its
//! thread rests 10 ms each time it empties the channel): its cost is a few microseconds per
//! request (tokenizing the answer is most of it).
//!
//! It runs at the least priority (on Linux, the `SCHED_IDLE` policy, else nice 19): where it
//! shares a core with the runtime, the runtime's reads go first and the records wait for the
//! core's idle moments. At equal priority, a batch of records after a wave of requests ended
//! (milliseconds of work at thousands of streams) took turns with the runtime, which then read
//! some streams only after their next chunk had come too; the kernel merges a socket's unread
//! chunks and stamps them with the later arrival, so those first tokens were stamped an
//! inter-token latency late. Nice 19 alone left rarer stalls of the same kind: a nice-19 thread
//! that has the core keeps it for the rest of its time slice (milliseconds) after the runtime
//! wakes, where a `SCHED_IDLE` thread gives it up at once.
//!
//! When the core has no idle moments (a saturated client), the records would pile up. An
//! unprivileged thread cannot raise its priority back, so a second thread, at the priority of
//! the thread that started the processor, takes the work over once a record taken ended more
//! than a second ago, and hands it back once one ended within the last 100 ms or none is
//! waiting. The backlog stays within about a second of records, and a saturated run takes
//! turns with its records as it did before.
//!
//! ```
//! use std::sync::mpsc;
//! use aiperf_core::export::ArtifactDir;
//! use aiperf_core::metrics::{Analysis, MetricOptions, RunFacts};
//! use aiperf_core::record_processor::{RecordFiles, RecordProcessor};
//!
//! # let tmp = tempfile::tempdir().unwrap();
//! let dir = ArtifactDir::prepare(tmp.path())?;
//! let (records, received) = mpsc::channel();
//! let analysis = Analysis::new(&MetricOptions::default());
//! let files = RecordFiles {
//!     jsonl: Some(dir.records_jsonl()?),
//!     ..RecordFiles::default()
//! };
//! let processor = RecordProcessor::start(received, analysis, None, files)?;
//! // ... the run sends its records to `records` ...
//! drop(records);
//! let processed = processor.finish();
//! processed.jsonl?;
//! let report = processed.analysis.finish(&RunFacts::default());
//! assert_eq!(report.counts.sent, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::clock::now_ns;
use crate::export::{ExportError, OutputsJson, RecordsJsonl};
use crate::metrics::Analysis;
use crate::record::RequestRecord;
use crate::tokenizer::Tokenizer;

/// How long the thread rests after emptying the channel (or getting the work back from the
/// catch-up thread). Records then arrive in batches: a
/// busy run wakes the thread about `1 s / BATCH_PAUSE` times a second instead of once per
/// request (each wake-up is a context switch on a core the run needs), and a record waits at
/// most this long, so only a pause's worth of records is ever held.
const BATCH_PAUSE: Duration = Duration::from_millis(10);

/// When the processing changes hands, by how long ago the record just processed ended.
#[derive(Debug, Clone, Copy)]
struct Pace {
    /// The idle-priority thread hands over once a record it processed ended longer ago.
    falling_behind: Duration,
    /// The catch-up thread hands back once a record it processed ended more recently (or the
    /// channel is empty).
    caught_up: Duration,
}

impl Pace {
    /// A second behind to take over, a tenth of one to hand back. A record holds its text and
    /// its chunks' stamps (about a kilobyte for 64 tokens): at tens of thousands of requests a
    /// second, a second of them is some tens of megabytes.
    const DEFAULT: Self = Self {
        falling_behind: Duration::from_secs(1),
        caught_up: Duration::from_millis(100),
    };
}

/// The threads processing a run's records. Dropped without [`RecordProcessor::finish`] (a run
/// that failed), its threads end once the senders are gone, and the JSONL file goes with them
/// unless some record arrived ([`RecordsJsonl`]).
#[derive(Debug)]
pub struct RecordProcessor {
    /// The thread at the least priority, which holds the work whenever it is not behind
    /// (`None`: the catch-up thread panicked with it).
    idle: JoinHandle<Option<Work>>,
    /// The thread at normal priority, which holds it while the idle one has fallen behind.
    catch_up: JoinHandle<()>,
}

/// The per-request files a [`RecordProcessor`] writes as records come; none by default.
#[derive(Debug, Default)]
pub struct RecordFiles {
    /// `profile_export.jsonl`, a line per request (`None`: `--export-level summary`).
    pub jsonl: Option<RecordsJsonl>,
    /// `outputs.json`, an entry per profiling request (`--export-outputs-json`).
    pub outputs: Option<OutputsJson>,
}

/// What processing a run's records left.
#[derive(Debug)]
pub struct Processed {
    /// Every record added; finish it for the report.
    pub analysis: Analysis,
    /// The JSONL file (`None` when none was asked for), or the first error writing it (lines
    /// after an error are not written; the metrics still take every record).
    pub jsonl: Result<Option<PathBuf>, ExportError>,
    /// `outputs.json` (`None` when none was asked for), or the first error writing it.
    pub outputs: Result<Option<PathBuf>, ExportError>,
    /// Records processed by the catch-up thread (at normal priority) because the processing
    /// thread (at the least priority, on Linux) had fallen a second behind: a sign that the
    /// client's core had no idle moments for about a second. Elsewhere both threads run at
    /// the process's priority, and the hand-over only shares the work between them.
    pub caught_up: usize,
}

/// Everything the processing needs, owned by one thread at a time.
#[derive(Debug)]
struct Work {
    received: Receiver<RequestRecord>,
    analysis: Analysis,
    tokenizer: Option<Tokenizer>,
    jsonl: Option<RecordsJsonl>,
    write_error: Option<ExportError>,
    outputs: Option<OutputsJson>,
    outputs_error: Option<ExportError>,
    caught_up: usize,
}

impl Work {
    /// Counts, analyzes and writes one record; returns how long ago its request ended (the
    /// runner sends each record as its request ends, so this is about how long it waited).
    fn process(&mut self, mut record: RequestRecord) -> Duration {
        if let Some(tokenizer) = &self.tokenizer {
            count_client_tokens(&mut record, tokenizer);
        }
        let row = self.analysis.add(&record);
        if self.write_error.is_none()
            && let Some(jsonl) = self.jsonl.as_mut()
            && let Err(error) = jsonl.write(&record, row)
        {
            self.write_error = Some(error);
        }
        if self.outputs_error.is_none()
            && let Some(outputs) = self.outputs.as_mut()
            && let Err(error) = outputs.write(&record, row)
        {
            self.outputs_error = Some(error);
        }
        Duration::from_nanos(now_ns().saturating_sub(record.end_ns))
    }
}

impl RecordProcessor {
    /// Starts processing the records `received`, until every sender is dropped. `tokenizer`
    /// counts the output and reasoning tokens of each record (the client-side counts);
    /// `None` leaves them uncounted (endpoints that produce no tokens). Each record gets its
    /// line and entry in the `files` asked for.
    pub fn start(
        received: Receiver<RequestRecord>,
        analysis: Analysis,
        tokenizer: Option<Tokenizer>,
        files: RecordFiles,
    ) -> io::Result<Self> {
        Self::start_paced(received, analysis, tokenizer, files, Pace::DEFAULT)
    }

    /// [`RecordProcessor::start`], handing over at `pace`.
    fn start_paced(
        received: Receiver<RequestRecord>,
        analysis: Analysis,
        tokenizer: Option<Tokenizer>,
        RecordFiles { jsonl, outputs }: RecordFiles,
        pace: Pace,
    ) -> io::Result<Self> {
        let work = Work {
            received,
            analysis,
            tokenizer,
            jsonl,
            write_error: None,
            outputs,
            outputs_error: None,
            caught_up: 0,
        };
        let (to_catch_up, at_catch_up) = mpsc::channel();
        let (to_idle, at_idle) = mpsc::channel();
        let catch_up = std::thread::Builder::new()
            .name("record-catch-up".into())
            .spawn(move || catch_up(&at_catch_up, &to_idle, pace))?;
        let idle = std::thread::Builder::new()
            .name("record-process".into())
            .spawn(move || {
                lower_own_priority();
                process_when_idle(work, &to_catch_up, &at_idle, pace)
            })?;
        Ok(Self { idle, catch_up })
    }

    /// Waits until every record has been processed (the run must have dropped its senders),
    /// then flushes the JSONL file to disk and assembles `outputs.json`.
    pub fn finish(self) -> Processed {
        let idle = self.idle.join();
        // The catch-up thread ends with the idle one; if it panicked, the work went with it.
        if let Err(panic) = self.catch_up.join() {
            std::panic::resume_unwind(panic);
        }
        let work = match idle {
            Ok(work) => work.expect("the work is lost only with a catch-up thread's panic"),
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let jsonl = match work.write_error {
            Some(error) => Err(error),
            None => work.jsonl.map(RecordsJsonl::finish).transpose(),
        };
        let outputs = match work.outputs_error {
            Some(error) => Err(error),
            None => work.outputs.map(OutputsJson::finish).transpose(),
        };
        Processed {
            analysis: work.analysis,
            jsonl,
            outputs,
            caught_up: work.caught_up,
        }
    }
}

/// The idle-priority thread: processes the records in batches, and hands the work to the
/// catch-up thread whenever it falls behind, until every sender is gone. `None` if the
/// catch-up thread panicked with the work.
fn process_when_idle(
    mut work: Work,
    to_catch_up: &Sender<Work>,
    at_idle: &Receiver<Work>,
    pace: Pace,
) -> Option<Work> {
    while let Ok(first) = work.received.recv() {
        let mut behind = work.process(first);
        loop {
            if behind > pace.falling_behind {
                // The catch-up thread lives until this one ends, unless it panicked.
                to_catch_up.send(work).ok()?;
                work = at_idle.recv().ok()?;
                break;
            }
            match work.received.try_recv() {
                Ok(record) => behind = work.process(record),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Some(work),
            }
        }
        std::thread::sleep(BATCH_PAUSE);
    }
    Some(work)
}

/// The catch-up thread: each time it is handed the work, processes records until one ended
/// recently (or none is waiting), then hands the work back.
fn catch_up(at_catch_up: &Receiver<Work>, to_idle: &Sender<Work>, pace: Pace) {
    while let Ok(mut work) = at_catch_up.recv() {
        while let Ok(record) = work.received.try_recv() {
            work.caught_up += 1;
            if work.process(record) <= pace.caught_up {
                break;
            }
        }
        if to_idle.send(work).is_err() {
            return;
        }
    }
}

/// Gives the calling thread the least scheduling priority: the `SCHED_IDLE` policy, which any
/// thread may take for itself, and nice 19, which is what counts where that policy is refused
/// (a kernel without it). On Linux a thread has its own policy and nice value; elsewhere this
/// does nothing (there it would lower the whole process). Best effort: a refusal leaves the
/// thread as it was.
#[cfg(target_os = "linux")]
fn lower_own_priority() {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let _ = set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Min,
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
    );
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19);
}

/// Elsewhere the thread keeps the process's priority.
#[cfg(not(target_os = "linux"))]
fn lower_own_priority() {}

/// Fills a record's client-side output and reasoning token counts.
fn count_client_tokens(record: &mut RequestRecord, tokenizer: &Tokenizer) {
    record.client_tokens.output = Some(tokenizer.count(&record.text.content));
    record.client_tokens.reasoning = Some(tokenizer.count(&record.text.reasoning));
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::export::ArtifactDir;
    use crate::metrics::tests::{error, record};
    use crate::metrics::{MetricId, MetricOptions, RunFacts};
    use crate::record::Phase;

    #[test]
    fn every_record_is_counted_analyzed_and_written_in_arrival_order() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ArtifactDir::prepare(tmp.path()).unwrap();
        let (records, received) = mpsc::channel();
        let processor = processor(received, Some(Tokenizer::builtin()), &dir, NEVER_BEHIND);
        let mut warmup = record();
        warmup.phase = Phase::Warmup;
        let mut answered = record();
        answered.request_id = "answered".into();
        answered.text.content = "hello world".into();
        answered.client_tokens.output = None;
        for record in [warmup, error(500, "boom"), answered] {
            records.send(record).unwrap();
        }
        drop(records);
        let processed = processor.finish();
        assert_eq!(
            jsonl_ids(&processed),
            ["req-1", "req-err", "answered"],
            "the warm-up line first, as AIPerf writes it"
        );
        let report = processed.analysis.finish(&RunFacts::default());
        assert_eq!(
            (
                report.counts.warmup,
                report.counts.errored,
                report.counts.succeeded
            ),
            (1, 1, 1)
        );
        let output = report.stats(MetricId::OutputTokenCount).unwrap();
        assert_eq!(output.max, 2.0, "\"hello world\" is two o200k tokens");
    }

    /// Never hands the work over: the tests of what processing does, whatever the age of
    /// their records on the process's clock.
    const NEVER_BEHIND: Pace = Pace {
        falling_behind: Duration::MAX,
        caught_up: Duration::MAX,
    };

    /// A processor of `received` for the default metrics, writing its JSONL file into `dir`.
    fn processor(
        received: Receiver<RequestRecord>,
        tokenizer: Option<Tokenizer>,
        dir: &ArtifactDir,
        pace: Pace,
    ) -> RecordProcessor {
        let analysis = Analysis::new(&MetricOptions::default());
        RecordProcessor::start_paced(
            received,
            analysis,
            tokenizer,
            RecordFiles {
                jsonl: Some(dir.records_jsonl().unwrap()),
                outputs: None,
            },
            pace,
        )
        .unwrap()
    }

    /// The request ids of the JSONL lines, in file order.
    fn jsonl_ids(processed: &Processed) -> Vec<String> {
        let path = processed.jsonl.as_ref().unwrap().as_ref().unwrap();
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|line| {
                let line: serde_json::Value = serde_json::from_str(line).unwrap();
                line["metadata"]["x_request_id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    /// Processes `count` records that ended long ago (`end_ns` 0), all queued before the
    /// processor starts, at `pace`; checks that every one was analyzed and written, in
    /// order, and returns how many the catch-up thread took.
    fn process_behind(count: usize, pace: Pace) -> usize {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ArtifactDir::prepare(tmp.path()).unwrap();
        let (records, received) = mpsc::channel();
        let sent: Vec<String> = (0..count).map(|i| format!("req-{i}")).collect();
        for id in &sent {
            let mut behind = record();
            behind.request_id = id.clone();
            behind.end_ns = 0;
            records.send(behind).unwrap();
        }
        drop(records);
        let processor = processor(received, None, &dir, pace);
        let processed = processor.finish();
        // The file is read while `tmp` lives.
        assert_eq!(jsonl_ids(&processed), sent, "one file, in arrival order");
        let report = processed.analysis.finish(&RunFacts::default());
        assert_eq!(report.counts.succeeded, count as u64);
        processed.caught_up
    }

    #[test]
    fn the_catch_up_thread_takes_every_record_until_one_ended_recently() {
        // Every record is behind and none ended recently: the idle thread processes the
        // first and hands over; the catch-up thread takes the rest.
        let eager = Pace {
            falling_behind: Duration::ZERO,
            caught_up: Duration::ZERO,
        };
        assert_eq!(process_behind(200, eager), 199);
    }

    #[test]
    fn work_handed_back_and_forth_keeps_the_records_in_arrival_order() {
        // Every record counts as behind for the idle thread and as recent for the catch-up
        // thread: they take turns, one record each.
        let alternating = Pace {
            falling_behind: Duration::ZERO,
            caught_up: Duration::MAX,
        };
        assert_eq!(process_behind(20, alternating), 10);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn processing_runs_at_the_idle_policy_and_catching_up_at_the_process_priority() {
        use rustix::process::{Pid, getpriority_process};

        let tmp = tempfile::tempdir().unwrap();
        let dir = ArtifactDir::prepare(tmp.path()).unwrap();
        let (records, received) = mpsc::channel();
        let processor = processor(received, None, &dir, Pace::DEFAULT);
        // The (scheduling policy, nice value) of the threads so named (other tests' processors
        // included; Linux keeps 15 bytes of a thread's name). The policy is the 41st field of
        // a task's stat, counted after its parenthesised name (field 2).
        let priorities = |name: &str| -> Vec<(u32, i32)> {
            std::fs::read_dir("/proc/self/task")
                .unwrap()
                .map(|task| task.unwrap().path())
                .filter(|task| {
                    std::fs::read_to_string(task.join("comm")).is_ok_and(|comm| comm.trim() == name)
                })
                .filter_map(|task| {
                    let stat = std::fs::read_to_string(task.join("stat")).ok()?;
                    let after_name = &stat[stat.rfind(')')? + 2..];
                    let policy = after_name.split(' ').nth(41 - 3)?.parse().ok()?;
                    let tid = task.file_name()?.to_str()?.parse().ok()?;
                    Some((policy, getpriority_process(Pid::from_raw(tid)).ok()?))
                })
                .collect()
        };
        /// Each thread's (scheduling policy, nice value).
        type Priorities = [(u32, i32)];
        const SCHED_OTHER: u32 = 0;
        const SCHED_IDLE: u32 = 5;
        let own = getpriority_process(None).unwrap();
        let all_lowest = |found: &Priorities| {
            !found.is_empty() && found.iter().all(|&found| found == (SCHED_IDLE, 19))
        };
        let all_own = |found: &Priorities| {
            !found.is_empty() && found.iter().all(|&found| found == (SCHED_OTHER, own))
        };
        // Each processor thread lowers its own priority as it starts, and a thread takes its
        // name only once it runs: both are waited for.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let settled = |name: &str, expected: &dyn Fn(&Priorities) -> bool| {
            let mut found = priorities(name);
            while !expected(&found) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
                found = priorities(name);
            }
            found
        };
        let processing = settled("record-process", &all_lowest);
        assert!(all_lowest(&processing), "{processing:?}");
        let catching_up = settled("record-catch-up", &all_own);
        assert!(
            all_own(&catching_up),
            "{catching_up:?} vs the process's {own}"
        );
        drop(records);
        processor.finish();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_jsonl_error_is_kept_and_the_metrics_still_take_every_record() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ArtifactDir::prepare(tmp.path()).unwrap();
        // A disk that fills up during the run: every write to /dev/full fails.
        std::os::unix::fs::symlink("/dev/full", tmp.path().join("profile_export.jsonl")).unwrap();
        let (records, received) = mpsc::channel();
        let processor = processor(received, None, &dir, NEVER_BEHIND);
        records.send(record()).unwrap();
        records.send(record()).unwrap();
        drop(records);
        let processed = processor.finish();
        let error = processed.jsonl.unwrap_err();
        assert!(
            error.to_string().contains("profile_export.jsonl"),
            "{error}"
        );
        let report = processed.analysis.finish(&RunFacts::default());
        assert_eq!(report.counts.succeeded, 2);
    }
}
