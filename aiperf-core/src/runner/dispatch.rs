//! How conversations are started in a phase, one function per load mode: a closed loop of
//! workers, an open loop at a rate, or a fixed schedule replaying timestamps. All share
//! [`PhaseState`], which hands out the phase's requests and says when to stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::sleep_until;

use super::session::run_conversation;
use super::turn_ticks::TurnTicks;
use super::{PhaseRamps, RunPlan, Shared, StopCondition};
use crate::clock::{after, instant_at, now_ns};
use crate::record::Phase;
use crate::schedule::{ArrivalPattern, ArrivalTimes, LoadMode, ramped_offset};

/// The state of one phase: which phase, when it started, and how many requests and
/// conversations it may still start.
pub(super) struct PhaseState {
    /// Warm-up or profiling.
    pub phase: Phase,
    /// When the phase started; fixed-schedule timestamps count from here.
    pub start_ns: u64,
    /// How the phase sends (its own: the warm-up's may differ from the profiling phase's).
    pub load: LoadMode,
    count: usize,
    claimed: AtomicUsize,
    /// Set once the last request of `count` is claimed, for turns waiting out a delay.
    count_reached: watch::Sender<bool>,
    sessions: usize,
    sessions_started: AtomicUsize,
    /// Set once the last of `sessions` conversations started, for workers waiting to start.
    sessions_all_started: watch::Sender<bool>,
    send_until_ns: Option<u64>,
    /// At a request rate, the ticks later turns wait for (`None` for the other load modes,
    /// where a later turn goes when its delay has passed).
    pub turn_ticks: Option<TurnTicks>,
    /// The slots of requests waiting for their first response ([`RunPlan::prefill_concurrency`]);
    /// `None`: no limit.
    pub prefill_slots: Option<Arc<Semaphore>>,
    /// Over how long the phase's concurrency limit and rate rise to their values.
    ramps: PhaseRamps,
}

/// A request a phase let go: its numbers.
#[derive(Debug, Clone, Copy)]
pub(super) struct Claim {
    /// Its index among the run's requests, both phases (drives purposeful cancellations).
    pub run_index: usize,
    /// Its index among its phase's requests, from 0 (AIPerf's credit number).
    pub phase_index: usize,
}

impl PhaseState {
    /// Claims one request of the phase, due at `due_ns`; `None` when the phase must stop
    /// sending (count reached, duration over, interrupted).
    pub fn claim(&self, shared: &Shared, due_ns: u64) -> Option<Claim> {
        if self.is_over(shared, due_ns) {
            return None;
        }
        let phase_index = self.claimed.fetch_add(1, Ordering::Relaxed);
        if phase_index >= self.count {
            return None;
        }
        if phase_index + 1 == self.count {
            self.count_reached.send_replace(true);
        }
        Some(Claim {
            run_index: shared.requests_claimed.fetch_add(1, Ordering::Relaxed),
            phase_index,
        })
    }

    /// Lets one more conversation start, `false` once the phase started all it may: its later
    /// turns are still sent (they claim their requests as they go).
    pub fn start_session(&self) -> bool {
        let started = self.sessions_started.fetch_add(1, Ordering::Relaxed);
        if started + 1 == self.sessions {
            self.sessions_all_started.send_replace(true);
        }
        started < self.sessions
    }

    /// Whether the phase started every conversation it may.
    fn sessions_exhausted(&self) -> bool {
        self.sessions_started.load(Ordering::Relaxed) >= self.sessions
    }

    /// Resolves once the phase sends no more requests: its count claimed, its duration over,
    /// or the run interrupted; so that a turn waiting out its delay is not waited for.
    pub async fn sending_ended(&self, shared: &Shared) {
        let mut count_reached = self.count_reached.subscribe();
        let duration_over = async {
            match self.send_until_ns {
                Some(end) => sleep_until(instant_at(end).into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = count_reached.wait_for(|&reached| reached) => {}
            () = duration_over => {}
            () = shared.control.interrupted() => {}
        }
    }

    /// Resolves once the phase starts no more conversations: it sends no more requests
    /// ([`PhaseState::sending_ended`]) or started all it may.
    async fn starting_ended(&self, shared: &Shared) {
        let mut all_started = self.sessions_all_started.subscribe();
        tokio::select! {
            () = self.sending_ended(shared) => {}
            _ = all_started.wait_for(|&all| all) => {}
        }
    }

    /// Whether no request due at `due_ns` may be sent any more: the phase was interrupted or
    /// sent its count, or its duration is over, by the due time or by the clock (a request
    /// that waited past the end for a `--concurrency` slot is not sent: no request leaves
    /// after the duration, as in AIPerf).
    fn is_over(&self, shared: &Shared, due_ns: u64) -> bool {
        shared.control.was_interrupted()
            || self
                .send_until_ns
                .is_some_and(|end| due_ns >= end || now_ns() >= end)
            || self.claimed.load(Ordering::Relaxed) >= self.count
    }
}

/// How a phase sends: under `load`, at most `count` requests in at most `sessions`
/// conversations, at most `prefill_concurrency` of them before their first response, for at
/// most `send_for`, its concurrency and rate reached over their ramps; then,
/// with `cancel_after`, the requests still in flight are cancelled once that grace has passed
/// (the profiling phase's `--benchmark-grace-period`), else they are waited for.
#[derive(Debug, Clone, Copy)]
pub(super) struct PhaseLimits {
    pub load: LoadMode,
    pub count: usize,
    pub sessions: usize,
    pub send_for: Option<Duration>,
    pub cancel_after: Option<Duration>,
    /// The most requests waiting for their first response at once.
    pub prefill_concurrency: Option<usize>,
    /// Over how long its concurrency limit and rate rise to their values.
    pub ramps: PhaseRamps,
}

impl PhaseLimits {
    /// The warm-up phase's: its load, for its count of requests, its conversations, its
    /// duration, or the first of them; its requests are waited for (none is cancelled, as in
    /// AIPerf).
    pub fn warmup(plan: &RunPlan) -> Self {
        Self {
            load: plan.warmup_load(),
            count: match plan.warmup_requests {
                0 => usize::MAX,
                count => count,
            },
            sessions: plan.warmup_sessions.unwrap_or(usize::MAX),
            send_for: plan.warmup_duration,
            cancel_after: None,
            prefill_concurrency: plan.warmup_prefill_limit(),
            ramps: plan.warmup_ramps(),
        }
    }

    /// The profiling phase's: its load until its stop condition or its conversations.
    pub fn profiling(plan: &RunPlan) -> Self {
        let (count, send_for, cancel_after) = match plan.stop {
            StopCondition::Count(count) => (count, None, None),
            StopCondition::Duration { duration, grace } => {
                (usize::MAX, Some(duration), Some(grace))
            }
        };
        Self {
            load: plan.load,
            count,
            sessions: plan.sessions.unwrap_or(usize::MAX),
            send_for,
            cancel_after,
            prefill_concurrency: plan.prefill_concurrency,
            ramps: plan.profiling_ramps(),
        }
    }
}

/// Runs one phase to its limits; its records go to the run's record sender as they end.
pub(super) async fn run_phase(shared: &Arc<Shared>, phase: Phase, limits: PhaseLimits) {
    let start_ns = now_ns();
    let send_until_ns = limits.send_for.map(|duration| after(start_ns, duration));
    if let (Some(end), Some(grace)) = (send_until_ns, limits.cancel_after) {
        shared.control.cancel_in_flight_by(after(end, grace));
    }
    let state = Arc::new(PhaseState {
        phase,
        start_ns,
        load: limits.load,
        count: limits.count,
        claimed: AtomicUsize::new(0),
        count_reached: watch::Sender::new(false),
        sessions: limits.sessions,
        sessions_started: AtomicUsize::new(0),
        sessions_all_started: watch::Sender::new(false),
        send_until_ns,
        turn_ticks: matches!(limits.load, LoadMode::Rate { .. }).then(TurnTicks::default),
        prefill_slots: limits
            .prefill_concurrency
            .map(|slots| Arc::new(Semaphore::new(slots))),
        ramps: limits.ramps,
    });
    match limits.load {
        LoadMode::Concurrency(workers) => closed_loop(shared, &state, workers).await,
        LoadMode::Rate {
            rate,
            pattern,
            max_concurrency,
        } => open_loop(shared, &state, rate, pattern, max_concurrency).await,
        LoadMode::FixedSchedule { max_concurrency } => {
            fixed_schedule(shared, &state, max_concurrency).await
        }
    }
}

/// N workers, each starting its next conversation as soon as its previous one ended; never
/// more workers than the phase has requests or conversations (`--concurrency 100000
/// --request-count 5` starts 5).
async fn closed_loop(shared: &Arc<Shared>, state: &Arc<PhaseState>, concurrency: usize) {
    let mut tasks = JoinSet::new();
    let ramp = state.ramps.concurrency;
    // Under a ramp, worker k starts when the limit, rising from 1 to the concurrency asked
    // for (not to the count of a short phase), reaches k + 1, as AIPerf raises it.
    for worker in 0..concurrency.min(state.count).min(state.sessions) {
        let shared = Arc::clone(shared);
        let state = Arc::clone(state);
        tasks.spawn(async move {
            if let Some(ramp) = ramp {
                let opens_at = ramp_step_ns(state.start_ns, ramp, worker, concurrency);
                if state.send_until_ns.is_some_and(|end| opens_at >= end) {
                    return;
                }
                // Not past the phase's end: a short phase may be done before a slot opens.
                tokio::select! {
                    _ = sleep_until(instant_at(opens_at).into()) => {}
                    () = state.starting_ended(&shared) => return,
                }
            }
            while !state.is_over(&shared, now_ns()) && state.start_session() {
                let index = shared.next_conversation();
                run_conversation(&shared, &state, index, now_ns(), None).await;
            }
        });
    }
    join_all(tasks).await;
}

/// Conversations started at absolute offsets from the phase start, each in its own task,
/// with at most `max_concurrency` in flight when given.
async fn open_loop(
    shared: &Arc<Shared>,
    state: &Arc<PhaseState>,
    rate: f64,
    pattern: ArrivalPattern,
    max_concurrency: Option<usize>,
) {
    let arrivals =
        ArrivalTimes::new(rate, pattern, shared.plan.seed).expect("validated before the run");
    let ramp = state.ramps.rate;
    let due_times = arrivals.map(move |offset| {
        let offset = ramp.map_or(offset, |ramp| ramped_offset(offset, ramp));
        after(state.start_ns, offset)
    });
    // Each tick goes to a conversation's later turn first, else to the next conversation.
    let ticks = due_times.map(|due_ns| (due_ns, None));
    start_on_schedule(shared, state, ticks, max_concurrency).await;
}

/// Every conversation once, due at its first turn's timestamp from the phase start.
async fn fixed_schedule(
    shared: &Arc<Shared>,
    state: &Arc<PhaseState>,
    max_concurrency: Option<usize>,
) {
    let mut starts: Vec<(u64, usize)> = shared
        .conversations
        .iter()
        .enumerate()
        .filter_map(|(index, conversation)| {
            let first = conversation.turns.first()?;
            let offset = first.timestamp.unwrap_or_default();
            Some((after(state.start_ns, offset), index))
        })
        .collect();
    starts.sort_unstable();
    let starts = starts
        .into_iter()
        .map(|(due_ns, index)| (due_ns, Some(index)));
    start_on_schedule(shared, state, starts, max_concurrency).await;
}

/// At each `(due_ns, conversation)`, in order, until the phase is over: starts that
/// conversation, or, for `None` (a tick of a request rate), gives the tick to a later turn
/// waiting for one ([`TurnTicks`]), else starts the next conversation if a `--concurrency` slot
/// is free, else lets the tick pass, as AIPerf does. Once the phase may start no more
/// conversations, its ticks go on while those started still run. Conversations that ended are
/// reaped as new ones start, so a long run holds only the tasks in flight.
async fn start_on_schedule(
    shared: &Arc<Shared>,
    state: &Arc<PhaseState>,
    schedule: impl Iterator<Item = (u64, Option<usize>)>,
    max_concurrency: Option<usize>,
) {
    let ramp = state.ramps.concurrency;
    let limit =
        max_concurrency.map(|n| Arc::new(Semaphore::new(if ramp.is_some() { 1 } else { n })));
    // Under a ramp, the limit's other slots open one by one.
    let opening = match (&limit, ramp, max_concurrency) {
        (Some(limit), Some(ramp), Some(n)) => {
            let limit = Arc::clone(limit);
            let start_ns = state.start_ns;
            Some(tokio::spawn(async move {
                for slot in 1..n {
                    sleep_until(instant_at(ramp_step_ns(start_ns, ramp, slot, n)).into()).await;
                    limit.add_permits(1);
                }
            }))
        }
        _ => None,
    };
    let mut interrupted = shared.control.cancel_in_flight_at.subscribe();
    // The duration's end and an interruption wake the loop by its own due times and
    // `interrupted`; the last request's claim, by a conversation started meanwhile, by this.
    let mut count_reached = state.count_reached.subscribe();
    let mut tasks = JoinSet::new();
    for (due_ns, planned) in schedule {
        while let Some(ended) = tasks.try_join_next() {
            ended.expect("request tasks do not panic");
        }
        let only_later_turns = state.sessions_exhausted();
        if state.is_over(shared, due_ns) || (only_later_turns && tasks.is_empty()) {
            break;
        }
        tokio::select! {
            _ = sleep_until(instant_at(due_ns).into()) => {}
            _ = interrupted.changed() => {}
            _ = count_reached.wait_for(|&reached| reached) => {}
            // No new conversation to wait for: the phase ends with the last one running.
            () = join_all_of(&mut tasks), if only_later_turns => break,
        }
        if state.is_over(shared, due_ns) {
            break;
        }
        let tick = planned.is_none();
        if tick && state.turn_ticks.as_ref().is_some_and(TurnTicks::give) {
            continue;
        }
        let permit = match &limit {
            // A tick that finds every slot taken passes (AIPerf skips it): waiting would
            // send the ticks missed meanwhile in a burst.
            Some(limit) if tick => match Arc::clone(limit).try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => continue,
            },
            // A conversation due at its timestamp waits for a slot, which may be a ramp step
            // away: an interruption does not wait for it.
            Some(limit) => tokio::select! {
                permit = Arc::clone(limit).acquire_owned() => {
                    Some(permit.expect("the semaphore is never closed"))
                }
                () = shared.control.interrupted() => break,
            },
            None => None,
        };
        // Under --prefill-concurrency, a tick that finds every prefill slot taken passes too,
        // as in AIPerf; a conversation due at its timestamp waits for one as it starts.
        let prefill_slot = match &state.prefill_slots {
            Some(slots) if tick => match Arc::clone(slots).try_acquire_owned() {
                Ok(slot) => Some(slot),
                Err(_) => continue,
            },
            _ => None,
        };
        if state.is_over(shared, due_ns) {
            break;
        }
        if !state.start_session() {
            // No new conversation; the ticks go on for the later turns of those started.
            continue;
        }
        let index = planned.unwrap_or_else(|| shared.next_conversation());
        let shared = Arc::clone(shared);
        let state = Arc::clone(state);
        tasks.spawn(async move {
            run_conversation(&shared, &state, index, due_ns, prefill_slot).await;
            drop(permit);
        });
    }
    if let Some(opening) = opening {
        opening.abort();
    }
    if let Some(ticks) = &state.turn_ticks {
        ticks.stop();
    }
    join_all(tasks).await;
}

/// When slot `slot` (from 0) of a concurrency limit of `limit` opens under a ramp of `ramp` from
/// `start_ns`: the first at once, the last at the ramp's end, the others evenly between
/// (AIPerf's linear ramp from 1 to the limit, one step at a time).
fn ramp_step_ns(start_ns: u64, ramp: Duration, slot: usize, limit: usize) -> u64 {
    if limit <= 1 {
        return start_ns;
    }
    after(start_ns, ramp.mul_f64(slot as f64 / (limit - 1) as f64))
}

/// Waits for every task of `tasks`.
async fn join_all(mut tasks: JoinSet<()>) {
    join_all_of(&mut tasks).await;
}

/// Waits for every task of `tasks`, which is left empty (cancel-safe: the tasks not yet
/// joined stay in the set).
async fn join_all_of(tasks: &mut JoinSet<()>) {
    while let Some(ended) = tasks.join_next().await {
        ended.expect("request tasks do not panic");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> RunPlan {
        RunPlan {
            load: LoadMode::Concurrency(8),
            stop: StopCondition::Count(100),
            sessions: None,
            concurrency_ramp: Some(Duration::from_secs(4)),
            rate_ramp: Some(Duration::from_secs(2)),
            warmup_concurrency_ramp: None,
            warmup_rate_ramp: None,
            warmup_requests: 10,
            warmup_duration: None,
            warmup_sessions: None,
            warmup_load: None,
            prefill_concurrency: Some(3),
            warmup_prefill_concurrency: None,
            cancellation: None,
            streaming: true,
            seed: 0,
        }
    }

    #[test]
    fn the_warm_up_takes_the_profiling_phase_s_ramps_and_prefill_limit_unless_given_its_own() {
        let inherited = PhaseLimits::warmup(&plan());
        let profiling_ramps = PhaseRamps {
            concurrency: Some(Duration::from_secs(4)),
            rate: Some(Duration::from_secs(2)),
        };
        assert_eq!(inherited.ramps, profiling_ramps);
        assert_eq!(inherited.prefill_concurrency, Some(3));
        assert_eq!(inherited.count, 10);
        let own = PhaseLimits::warmup(&RunPlan {
            warmup_concurrency_ramp: Some(Duration::from_secs(1)),
            warmup_rate_ramp: Some(Duration::from_millis(500)),
            warmup_prefill_concurrency: Some(1),
            ..plan()
        });
        let own_ramps = PhaseRamps {
            concurrency: Some(Duration::from_secs(1)),
            rate: Some(Duration::from_millis(500)),
        };
        assert_eq!(own.ramps, own_ramps);
        assert_eq!(own.prefill_concurrency, Some(1));
        // The profiling phase keeps its own whatever the warm-up's are.
        let profiling = PhaseLimits::profiling(&RunPlan {
            warmup_concurrency_ramp: Some(Duration::from_secs(1)),
            warmup_prefill_concurrency: Some(1),
            ..plan()
        });
        assert_eq!(profiling.ramps, profiling_ramps);
        assert_eq!(profiling.prefill_concurrency, Some(3));
        assert_eq!(profiling.count, 100);
    }
}
