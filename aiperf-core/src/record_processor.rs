//! Records processed beside the run (DESIGN.md §4), so that none has to be kept: a thread
//! receives each record from the runner's [`RecordSender`](crate::runner::RecordSender) as its
//! request ends, counts its output with the client tokenizer, adds it to the run's
//! [`Analysis`], writes its `profile_export.jsonl` line, and drops it. What stays is what the
//! statistics need, in bounded memory; the JSONL file holds every request measured so far,
//! whatever happens to the process later.
//!
//! The thread works off the runtime's threads and off the per-chunk path, in batches (it
//! rests 10 ms each time it empties the channel): its cost is a few microseconds per request
//! (tokenizing the answer is most of it).
//!
//! ```
//! use std::sync::mpsc;
//! use aiperf_core::export::ArtifactDir;
//! use aiperf_core::metrics::{Analysis, MetricOptions, RunFacts};
//! use aiperf_core::record_processor::RecordProcessor;
//!
//! # let tmp = tempfile::tempdir().unwrap();
//! let dir = ArtifactDir::prepare(tmp.path())?;
//! let (records, received) = mpsc::channel();
//! let analysis = Analysis::new(&MetricOptions::default());
//! let processor = RecordProcessor::start(received, analysis, None, dir.records_jsonl())?;
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
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::export::{ExportError, RecordsJsonl};
use crate::metrics::Analysis;
use crate::record::{Phase, RequestRecord};
use crate::tokenizer::Tokenizer;

/// How long the thread rests after emptying the channel. Records then arrive in batches: a
/// busy run wakes the thread about `1 s / BATCH_PAUSE` times a second instead of once per
/// request (each wake-up is a context switch on a core the run needs), and a record waits at
/// most this long, so only a pause's worth of records is ever held.
const BATCH_PAUSE: Duration = Duration::from_millis(10);

/// The thread processing a run's records. Dropped without [`RecordProcessor::finish`] (a run
/// that could not start), it leaves no file unless some record arrived.
#[derive(Debug)]
pub struct RecordProcessor {
    thread: JoinHandle<(Analysis, RecordsJsonl, Option<ExportError>)>,
}

/// What processing a run's records left.
#[derive(Debug)]
pub struct Processed {
    /// Every record added; finish it for the report.
    pub analysis: Analysis,
    /// The JSONL file, or the first error writing it (lines after an error are not written;
    /// the metrics still take every record).
    pub jsonl: Result<PathBuf, ExportError>,
}

impl RecordProcessor {
    /// Starts processing the records `received`, until every sender is dropped. `tokenizer`
    /// counts the output and reasoning tokens of profiling records (the client-side counts);
    /// `None` leaves them uncounted (endpoints that produce no tokens).
    pub fn start(
        received: Receiver<RequestRecord>,
        mut analysis: Analysis,
        tokenizer: Option<Tokenizer>,
        mut jsonl: RecordsJsonl,
    ) -> io::Result<Self> {
        let thread = std::thread::Builder::new()
            .name("record-processor".into())
            .spawn(move || {
                let mut write_error = None;
                let mut process = |mut record: RequestRecord| {
                    if let Some(tokenizer) = &tokenizer
                        && record.phase == Phase::Profiling
                    {
                        count_client_tokens(&mut record, tokenizer);
                    }
                    let Some(row) = analysis.add(&record) else {
                        return;
                    };
                    if write_error.is_none()
                        && let Err(error) = jsonl.write(&record, row)
                    {
                        write_error = Some(error);
                    }
                };
                while let Ok(first) = received.recv() {
                    process(first);
                    received.try_iter().for_each(&mut process);
                    std::thread::sleep(BATCH_PAUSE);
                }
                (analysis, jsonl, write_error)
            })?;
        Ok(Self { thread })
    }

    /// Waits until every record has been processed (the run must have dropped its senders),
    /// then flushes the JSONL file to disk.
    pub fn finish(self) -> Processed {
        let (analysis, jsonl, write_error) = match self.thread.join() {
            Ok(processed) => processed,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let jsonl = match write_error {
            Some(error) => Err(error),
            None => jsonl.finish(),
        };
        Processed { analysis, jsonl }
    }
}

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

    #[test]
    fn every_profiling_record_is_counted_analyzed_and_written_in_arrival_order() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ArtifactDir::prepare(tmp.path()).unwrap();
        let (records, received) = mpsc::channel();
        let processor = RecordProcessor::start(
            received,
            Analysis::new(&MetricOptions::default()),
            Some(Tokenizer::builtin()),
            dir.records_jsonl(),
        )
        .unwrap();
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
        let text = std::fs::read_to_string(processed.jsonl.unwrap()).unwrap();
        let ids: Vec<String> = text
            .lines()
            .map(|line| {
                let line: serde_json::Value = serde_json::from_str(line).unwrap();
                line["metadata"]["x_request_id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(ids, ["req-err", "answered"], "no warm-up line");
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

    #[test]
    fn a_jsonl_error_is_kept_and_the_metrics_still_take_every_record() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ArtifactDir::prepare(tmp.path()).unwrap();
        std::fs::create_dir(tmp.path().join("profile_export.jsonl")).unwrap();
        let (records, received) = mpsc::channel();
        let processor = RecordProcessor::start(
            received,
            Analysis::new(&MetricOptions::default()),
            None,
            dir.records_jsonl(),
        )
        .unwrap();
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
