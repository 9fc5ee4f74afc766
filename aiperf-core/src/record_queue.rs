//! The queue from the runner to the record processor: records are handed over as requests end
//! and never wait on the processor, until it falls [`RECORD_BACKLOG`] records behind. Then a
//! request that ends waits for room before its conversation goes on, so no further request
//! starts until the processor catches up: a run's memory stays bounded even where the
//! processor cannot keep up (it yields its core to the runtime, see
//! [`crate::record_processor`]), and the load is what gives way, which the run's throughput
//! then shows.
//!
//! ```
//! use aiperf_core::record_queue::record_queue;
//!
//! let (records, received) = record_queue(2);
//! drop(records);
//! assert!(received.recv().is_none(), "no senders left: the queue is over");
//! ```

use std::cell::Cell;
use std::sync::Arc;
use std::sync::mpsc::{self, TryRecvError};

use tokio::sync::Semaphore;

use crate::record::RequestRecord;

/// How many records may wait for the processor before requests stop starting. A record of a
/// 64-token stream is about 2 KB, so this holds under 10 MB, and it is twice the largest wave
/// `cargo xtask bench` ends at once (2048 streams), so a run that keeps up never waits.
pub const RECORD_BACKLOG: usize = 4096;

/// A queue holding at most `backlog` records (at least one) before its senders wait: its
/// sending half for the runner, its receiving half for the processor.
pub fn record_queue(backlog: usize) -> (RecordSender, RecordReceiver) {
    let backlog = backlog.max(1);
    let (records, received) = mpsc::channel();
    let room = Arc::new(Semaphore::new(backlog));
    let sender = RecordSender {
        records,
        room: Arc::clone(&room),
    };
    let receiver = RecordReceiver {
        received,
        room,
        taken: Cell::new(0),
        give_back_every: (backlog / 16).max(1),
    };
    (sender, receiver)
}

/// Where the runner hands each record the moment its request ends. Cloned for each task that
/// sends; the queue ends when every clone is dropped.
#[derive(Debug, Clone)]
pub struct RecordSender {
    records: mpsc::Sender<RequestRecord>,
    room: Arc<Semaphore>,
}

impl RecordSender {
    /// Queues `record`, first waiting while the queue is full. A record whose receiver is gone
    /// is dropped: the receiver lives until the run is over, so only its panic ends it early,
    /// and that panic is what gets reported.
    pub async fn send(&self, record: RequestRecord) {
        // The semaphore is never closed: `acquire` cannot fail.
        if let Ok(permit) = self.room.acquire().await {
            // The receiver gives the room back as it takes the record.
            permit.forget();
        }
        let _ = self.records.send(record);
    }
}

/// Where the record processor takes the records from, in the order they were sent.
///
/// The room of the records taken goes back to the senders a sixteenth of the queue at a time,
/// or all at once when the queue runs empty: senders waiting on a full queue are woken once
/// per batch, not once per record (each wake-up is a switch between threads, which on a
/// shared core cost a third of the throughput).
#[derive(Debug)]
pub struct RecordReceiver {
    received: mpsc::Receiver<RequestRecord>,
    room: Arc<Semaphore>,
    /// Records taken whose room has not been given back yet.
    taken: Cell<usize>,
    give_back_every: usize,
}

impl RecordReceiver {
    /// The next record, waiting for one; `None` once every sender is dropped and the queue
    /// is empty.
    pub fn recv(&self) -> Option<RequestRecord> {
        let record = match self.received.try_recv() {
            Ok(record) => record,
            Err(TryRecvError::Empty) => {
                self.give_back();
                self.received.recv().ok()?
            }
            Err(TryRecvError::Disconnected) => return None,
        };
        self.took_one();
        Some(record)
    }

    /// The records queued now, without waiting for more.
    pub fn try_iter(&self) -> impl Iterator<Item = RequestRecord> + '_ {
        std::iter::from_fn(|| match self.received.try_recv() {
            Ok(record) => {
                self.took_one();
                Some(record)
            }
            Err(_) => {
                self.give_back();
                None
            }
        })
    }

    fn took_one(&self) {
        self.taken.set(self.taken.get() + 1);
        if self.taken.get() >= self.give_back_every {
            self.give_back();
        }
    }

    fn give_back(&self) {
        self.room.add_permits(self.taken.replace(0));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::tests::record;

    #[tokio::test]
    async fn a_full_queue_holds_its_sender_until_a_record_is_taken() {
        let (records, received) = record_queue(2);
        records.send(record()).await;
        records.send(record()).await;
        let third = tokio::spawn({
            let records = records.clone();
            async move { records.send(record()).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !third.is_finished(),
            "two records wait: the third must wait for room"
        );

        assert!(received.recv().is_some());
        tokio::time::timeout(Duration::from_secs(10), third)
            .await
            .expect("taking a record makes room for the waiting one")
            .unwrap();
        assert_eq!(received.try_iter().count(), 2);
        drop(records);
        assert!(received.recv().is_none());
    }

    #[tokio::test]
    async fn room_goes_back_a_sixteenth_of_the_queue_at_a_time_or_when_it_runs_empty() {
        let (records, received) = record_queue(32);
        for _ in 0..32 {
            records.send(record()).await;
        }
        let waiting = tokio::spawn({
            let records = records.clone();
            async move { records.send(record()).await }
        });
        assert!(received.recv().is_some());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiting.is_finished(),
            "one record taken of two: no room back yet"
        );
        assert!(received.recv().is_some());
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("the second record taken gives both rooms back")
            .unwrap();

        assert_eq!(
            received.try_iter().count(),
            31,
            "30 left, and the one that waited"
        );
        for _ in 0..32 {
            tokio::time::timeout(Duration::from_secs(10), records.send(record()))
                .await
                .expect("the queue ran empty: all its room is back");
        }
    }
}
