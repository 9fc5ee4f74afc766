//! `--truth-log FILE`: the engine's true timings of every request, one JSON line each
//! (`aiperf_core::engine::TruthRecord`), written by a thread of its own so that request
//! handling never waits on the file.
//!
//! Request tasks push records into an unbounded channel (a lock-free push, no wake-up); the
//! writer drains it every few milliseconds into a buffered file and flushes after each drain, so
//! the file trails the server by at most one interval. Closing drains what is queued, flushes
//! and joins the thread.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::Duration;

use aiperf_core::engine::TruthRecord;
use anyhow::Context;

/// How often the writer drains the channel. Polling (rather than blocking on the channel)
/// spares every request a futex wake-up of the writer.
const DRAIN_INTERVAL: Duration = Duration::from_millis(10);

enum Message {
    Record(TruthRecord),
    Close,
}

/// The truth log's writer thread and the channel feeding it.
pub(crate) struct TruthLog {
    path: PathBuf,
    sender: Sender<Message>,
    writer: JoinHandle<io::Result<u64>>,
}

impl TruthLog {
    /// Creates (or truncates) `path` and starts the writer thread.
    pub(crate) fn create(path: &Path) -> anyhow::Result<Self> {
        let file = File::create(path)
            .with_context(|| format!("cannot create the truth log {}", path.display()))?;
        let (sender, receiver) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("truth-log".into())
            .spawn(move || write_records(receiver, BufWriter::with_capacity(1 << 16, file)))
            .context("cannot start the truth log's writer thread")?;
        Ok(Self {
            path: path.to_owned(),
            sender,
            writer,
        })
    }

    /// The file written.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// A truth sink for the engine: queues each record for the writer, never blocking.
    pub(crate) fn sink(&self) -> impl Fn(TruthRecord) + Send + Sync + 'static {
        let sender = self.sender.clone();
        move |record| {
            // After close, late records (none are expected) are dropped.
            let _ = sender.send(Message::Record(record));
        }
    }

    /// Writes every record queued so far, flushes the file and stops the writer; returns how
    /// many records the file holds.
    pub(crate) fn close(self) -> io::Result<u64> {
        // The writer only stops on Close or on an error, which join reports.
        let _ = self.sender.send(Message::Close);
        self.writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the truth log's writer thread panicked")))
    }
}

fn write_records(receiver: Receiver<Message>, mut out: BufWriter<File>) -> io::Result<u64> {
    let mut written = 0;
    loop {
        let mut drained = 0;
        loop {
            match receiver.try_recv() {
                Ok(Message::Record(record)) => {
                    serde_json::to_writer(&mut out, &record)?;
                    out.write_all(b"\n")?;
                    drained += 1;
                }
                Ok(Message::Close) | Err(TryRecvError::Disconnected) => {
                    out.flush()?;
                    return Ok(written + drained);
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        if drained > 0 {
            out.flush()?;
            written += drained;
        }
        std::thread::sleep(DRAIN_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_one_line_per_record_and_flushes_on_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("truth.jsonl");
        let log = TruthLog::create(&path).unwrap();
        let sink = log.sink();
        for i in 0..1000 {
            sink(TruthRecord {
                request_id: format!("r{i}"),
                status: 200,
                ..TruthRecord::default()
            });
        }
        assert_eq!(log.close().unwrap(), 1000);
        sink(TruthRecord::default());
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 1000);
        assert_eq!(lines[999]["request_id"], "r999");
    }

    #[test]
    fn an_unwritable_path_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let error = TruthLog::create(&dir.path().join("missing/truth.jsonl"))
            .err()
            .unwrap();
        assert!(error.to_string().contains("cannot create the truth log"));
    }
}
