//! The ticks of a request rate shared between new conversations and the later turns of
//! conversations already started, as AIPerf shares them: at a rate every request waits for a
//! tick, not only a conversation's first, and a later turn ready to go takes the next tick
//! before a new conversation does (its conversation holds a session, which only its last turn
//! frees).
//!
//! The open loop ([`super::dispatch`]) offers each tick with [`TurnTicks::give`]; a later turn,
//! once its delay has passed, waits in [`TurnTicks::wait`].

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

/// Ticks handed from the open loop to waiting later turns.
#[derive(Debug)]
pub(super) struct TurnTicks {
    /// One permit per tick given and not yet taken.
    given: Semaphore,
    /// Turns waiting that no tick was given to yet.
    waiting: AtomicUsize,
}

impl Default for TurnTicks {
    fn default() -> Self {
        Self {
            given: Semaphore::new(0),
            waiting: AtomicUsize::new(0),
        }
    }
}

impl TurnTicks {
    /// Waits for a tick: `true` once given one, `false` once the phase stopped ticking
    /// ([`TurnTicks::stop`]).
    pub(super) async fn wait(&self) -> bool {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        match self.given.acquire().await {
            Ok(permit) => {
                permit.forget();
                true
            }
            Err(_closed) => false,
        }
    }

    /// Gives a tick to a waiting turn; `false` when none waits (the tick may start a new
    /// conversation).
    pub(super) fn give(&self) -> bool {
        let served = self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if served {
            self.given.add_permits(1);
        }
        served
    }

    /// No more ticks: the turns waiting, and any that come to wait, get `false`.
    pub(super) fn stop(&self) {
        self.given.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    /// Until a turn waits (bounded: 10 s).
    async fn until_waiting(ticks: &TurnTicks) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while ticks.waiting.load(Ordering::Acquire) == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("a turn waits");
    }

    #[tokio::test]
    async fn a_tick_goes_to_a_waiting_turn_and_only_then() {
        let ticks = Arc::new(TurnTicks::default());
        assert!(!ticks.give(), "no turn waits: the tick is the open loop's");
        let waiter = tokio::spawn({
            let ticks = Arc::clone(&ticks);
            async move { ticks.wait().await }
        });
        until_waiting(&ticks).await;
        assert!(ticks.give());
        assert!(!ticks.give(), "one tick per waiting turn");
        assert!(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn turns_still_waiting_when_the_ticks_stop_give_up() {
        let ticks = Arc::new(TurnTicks::default());
        let waiter = tokio::spawn({
            let ticks = Arc::clone(&ticks);
            async move { ticks.wait().await }
        });
        until_waiting(&ticks).await;
        ticks.stop();
        assert!(!waiter.await.unwrap());
        assert!(!ticks.wait().await, "and so does a turn that comes after");
    }
}
