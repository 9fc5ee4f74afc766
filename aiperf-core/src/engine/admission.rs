//! Admission to the engine's batch: at most `max_batch` requests generate at once; the others
//! wait, and are admitted in the order they asked (FIFO), as a continuous-batching server
//! admits from its waiting queue. A request keeps its slot from admission to its last token.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The engine's batch slots.
#[derive(Debug)]
pub(crate) struct Admission {
    slots: Arc<Semaphore>,
}

/// A request's slot in the batch; dropping it frees the slot for the next waiting request.
pub(crate) type Slot = OwnedSemaphorePermit;

impl Admission {
    /// A batch of `max_batch` slots (capped at what the semaphore can count).
    pub(crate) fn new(max_batch: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max_batch.min(Semaphore::MAX_PERMITS))),
        }
    }

    /// Waits for a free slot, behind every request that asked before.
    pub(crate) async fn admit(&self) -> Slot {
        // tokio's semaphore queues waiters in FIFO order; it is never closed.
        self.slots
            .clone()
            .acquire_owned()
            .await
            .expect("the engine never closes its admission semaphore")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn beyond_max_batch_requests_wait_in_order() {
        let admission = Arc::new(Admission::new(2));
        let first = admission.admit().await;
        let _second = admission.admit().await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..3 {
            let admission = admission.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let slot = admission.admit().await;
                tx.send(i).unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
                drop(slot);
            });
            // Let each waiter queue before the next one.
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(rx.try_recv().is_err(), "no slot free yet");
        drop(first);
        let order: Vec<i32> = [rx.recv().await, rx.recv().await, rx.recv().await]
            .into_iter()
            .map(Option::unwrap)
            .collect();
        assert_eq!(order, [0, 1, 2]);
    }
}
