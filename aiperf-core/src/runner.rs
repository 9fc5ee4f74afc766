//! The worker stage of DESIGN.md §4: sends the dataset's conversations on the schedule, through
//! an endpoint and a transport, and turns each request into exactly one [`RequestRecord`].
//!
//! A run has an optional warm-up phase (its records are kept but marked [`Phase::Warmup`]) and
//! a profiling phase. Each phase ends after a request count or a duration; in-flight requests
//! then get a grace period and are recorded as cancelled if they outlive it. [`RunControl`]
//! lets the caller stop scheduling at any time (Ctrl-C) with the same guarantees.
//!
//! The unit of work is a conversation (`session`): its turns go out in order, each carrying
//! the conversation so far (the earlier user turns and the server's real answers). How
//! conversations are started is the load mode (`dispatch`): closed loop, open loop at a
//! rate, or a fixed schedule. Per request (`request`) the transport stamps each chunk on
//! arrival and only then hands it to the request's parser, so parsing never delays a timestamp
//! and is spread over the stream rather than piled up at its end.
//!
//! Records leave the runner as they end, through a [`RecordSender`], to whatever processes
//! them beside the run (see [`crate::record_processor`]): the runner keeps none, so a run of
//! any length holds the same memory.

mod dispatch;
mod request;
mod session;
mod turn_ticks;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, watch};

use crate::clock::{after, now_ns};
use crate::dataset::Conversation;
use crate::endpoint::{Endpoint, RequestInput};
use crate::record::{Phase, RequestRecord};
use crate::schedule::{ArrivalTimes, LoadMode, ScheduleError};
use crate::transport::Transport;

pub use request::random_uuid;

/// Where the runner hands each record the moment its request ends: the sending half of a
/// channel whose receiver processes records beside the run. The runner sends exactly one
/// record per request it sends, warm-up included, in the order they end.
pub type RecordSender = Sender<RequestRecord>;

/// One turn ready to send.
#[derive(Clone)]
pub struct PreparedTurn {
    /// The endpoint that formats this turn's body: the run's, or, when the turn names one of
    /// several models, one of the same type made for that model. Only the body comes from it:
    /// the path and the parsing of the response are the run's endpoint's.
    pub endpoint: Arc<dyn Endpoint>,
    /// What this turn says (its own messages; the runner adds the conversation so far).
    pub input: RequestInput,
    /// The body, formatted before the run when it does not depend on earlier answers (the
    /// first turn of a conversation), so that the run does no formatting for it.
    pub payload: Option<Bytes>,
    /// The client tokenizer's count of the prompt, when known before the run.
    pub input_tokens: Option<u64>,
    /// A wait after the previous turn ended.
    pub delay: Option<Duration>,
    /// When the turn is due from the start of the schedule (fixed-schedule replay).
    pub timestamp: Option<Duration>,
}

impl std::fmt::Debug for PreparedTurn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedTurn")
            .field("input", &self.input)
            .field("payload", &self.payload)
            .field("input_tokens", &self.input_tokens)
            .field("delay", &self.delay)
            .field("timestamp", &self.timestamp)
            .finish_non_exhaustive()
    }
}

/// One conversation ready to send.
#[derive(Debug, Clone)]
pub struct PreparedConversation {
    /// The session id (`conversation_id`).
    pub session_id: Arc<str>,
    /// The turns, sent in order.
    pub turns: Vec<PreparedTurn>,
}

impl PreparedConversation {
    /// Each turn's body from turn `from` on, with only that turn's messages, as the dataset
    /// gives them.
    fn own_payloads(&self, from: usize) -> Vec<Bytes> {
        self.turns[from.min(self.turns.len())..]
            .iter()
            .map(|turn| match &turn.payload {
                Some(payload) => payload.clone(),
                None => turn.endpoint.format_payload(&turn.input),
            })
            .collect()
    }

    /// Prepares a dataset conversation, each turn for the endpoint `endpoint_for_turn` gives
    /// (called once per turn, in order): the first turn's payload is formatted now; later turns
    /// are formatted when sent, since they carry the earlier answers.
    pub fn prepare(
        conversation: &Conversation,
        mut endpoint_for_turn: impl FnMut() -> Arc<dyn Endpoint>,
    ) -> Self {
        Self {
            session_id: conversation.session_id.as_str().into(),
            turns: conversation
                .turns
                .iter()
                .enumerate()
                .map(|(i, turn)| {
                    let endpoint = endpoint_for_turn();
                    PreparedTurn {
                        payload: (i == 0).then(|| endpoint.format_payload(&turn.input)),
                        endpoint,
                        input: turn.input.clone(),
                        input_tokens: if i == 0 { turn.input_tokens } else { None },
                        delay: turn.delay,
                        timestamp: turn.timestamp,
                    }
                })
                .collect(),
        }
    }
}

/// When a phase stops sending.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StopCondition {
    /// After this many requests have been sent (`--request-count`).
    Count(usize),
    /// After this long (`--benchmark-duration`); requests still in flight then get `grace`
    /// (`--benchmark-grace-period`) to finish before they are cancelled.
    Duration {
        /// How long requests are sent.
        duration: Duration,
        /// How long in-flight requests may still take after that.
        grace: Duration,
    },
}

impl StopCondition {
    /// No request count: the phase's conversations (`--conversation-num`) end it.
    pub const CONVERSATIONS_ONLY: Self = Self::Count(usize::MAX);
}

/// A share of requests cancelled on purpose (`--request-cancellation-rate`, `-delay`), to
/// measure how a server handles clients that go away.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CancellationPolicy {
    /// Fraction of requests cancelled, 0 to 1.
    pub fraction: f64,
    /// How long after sending they are cancelled.
    pub delay: Duration,
}

/// Everything that shapes a run besides the requests themselves.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// Closed loop, open loop or fixed schedule.
    pub load: LoadMode,
    /// When the profiling phase stops.
    pub stop: StopCondition,
    /// The most conversations the profiling phase starts (`--conversation-num`), beside its
    /// stop condition, whichever comes first: the conversations started finish their turns
    /// (unless the stop condition ends them). `None`: no such limit.
    pub sessions: Option<usize>,
    /// Over how long the profiling phase's concurrency limit rises from 1 to its value, one
    /// step at a time at even intervals (`--concurrency-ramp-duration`), and the warm-up's
    /// unless it has its own; `None` starts at it.
    pub concurrency_ramp: Option<Duration>,
    /// Over how long the profiling phase's request rate rises linearly from 0 to its value
    /// (`--request-rate-ramp-duration`, [`crate::schedule::ramped_offset`]), and the
    /// warm-up's unless it has its own; `None` starts at it.
    pub rate_ramp: Option<Duration>,
    /// The warm-up's own concurrency ramp (`--warmup-concurrency-ramp-duration`), instead of
    /// `concurrency_ramp` ([`RunPlan::warmup_ramps`]).
    pub warmup_concurrency_ramp: Option<Duration>,
    /// The warm-up's own rate ramp (`--warmup-request-rate-ramp-duration`), instead of
    /// `rate_ramp` ([`RunPlan::warmup_ramps`]).
    pub warmup_rate_ramp: Option<Duration>,
    /// Requests of the warm-up phase (`--warmup-request-count`), 0 for none.
    pub warmup_requests: usize,
    /// The longest the warm-up phase sends (`--warmup-duration`): with no request count, it
    /// sends until then; with one, until the first of the two.
    pub warmup_duration: Option<Duration>,
    /// The most conversations the warm-up phase starts (`--num-warmup-sessions`), beside its
    /// request count and duration, whichever comes first.
    pub warmup_sessions: Option<usize>,
    /// The warm-up phase's load, when it is not the profiling phase's (`--warmup-concurrency`,
    /// `--warmup-request-rate`, `--warmup-arrival-pattern`).
    pub warmup_load: Option<LoadMode>,
    /// The most requests of the profiling phase waiting for their first response at once
    /// (`--prefill-concurrency`): a request takes one of these slots before it is sent and
    /// gives it back with its first response, or as it ends without one. `None`: no limit.
    pub prefill_concurrency: Option<usize>,
    /// The warm-up phase's limit (`--warmup-prefill-concurrency`), else the profiling phase's.
    pub warmup_prefill_concurrency: Option<usize>,
    /// Requests cancelled on purpose.
    pub cancellation: Option<CancellationPolicy>,
    /// Whether streamed responses were asked for.
    pub streaming: bool,
    /// The random seed (arrivals, cancellations).
    pub seed: u64,
}

impl RunPlan {
    /// The most requests the run can have in flight at once, to size a transport's
    /// connections: the larger of its phases' needs, each its load mode's
    /// ([`LoadMode::max_in_flight`]) but never more than the phase sends
    /// (`--concurrency 1000 --request-count 5` needs 5).
    pub fn max_in_flight(&self) -> usize {
        // A conversation has at most one request in flight.
        let at_most = |in_flight: usize, sessions: Option<usize>| {
            sessions.map_or(in_flight, |sessions| in_flight.min(sessions.max(1)))
        };
        let profiling = match self.stop {
            StopCondition::Count(count) => self.load.max_in_flight().min(count.max(1)),
            StopCondition::Duration { .. } => self.load.max_in_flight(),
        };
        let warmup_load = self.warmup_load().max_in_flight();
        let warmup = match (self.warmup_requests, self.warmup_duration) {
            _ if !self.has_warmup() => 0,
            // A warm-up by duration or by sessions sends as many as its time or its
            // conversations let go.
            (0, _) | (_, Some(_)) => warmup_load,
            (count, None) => warmup_load.min(count),
        };
        at_most(profiling, self.sessions).max(at_most(warmup, self.warmup_sessions))
    }

    /// Whether the run has a warm-up phase (`--warmup-request-count`, `--warmup-duration` or
    /// `--num-warmup-sessions`).
    pub fn has_warmup(&self) -> bool {
        self.warmup_requests > 0 || self.warmup_duration.is_some() || self.warmup_sessions.is_some()
    }

    /// The warm-up phase's load: its own, or the profiling phase's.
    pub fn warmup_load(&self) -> LoadMode {
        self.warmup_load.unwrap_or(self.load)
    }

    /// The warm-up phase's ramps: its own, or the profiling phase's.
    pub fn warmup_ramps(&self) -> PhaseRamps {
        PhaseRamps {
            concurrency: self.warmup_concurrency_ramp.or(self.concurrency_ramp),
            rate: self.warmup_rate_ramp.or(self.rate_ramp),
        }
    }

    /// The profiling phase's ramps.
    pub fn profiling_ramps(&self) -> PhaseRamps {
        PhaseRamps {
            concurrency: self.concurrency_ramp,
            rate: self.rate_ramp,
        }
    }

    /// The warm-up phase's limit on requests before their first response: its own, or the
    /// profiling phase's.
    pub fn warmup_prefill_limit(&self) -> Option<usize> {
        self.warmup_prefill_concurrency.or(self.prefill_concurrency)
    }
}

/// Over how long a phase's load rises to its value; `None` starts at it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhaseRamps {
    /// The concurrency limit's ramp, from 1, one step at a time at even intervals.
    pub concurrency: Option<Duration>,
    /// The request rate's ramp, linear from 0 ([`crate::schedule::ramped_offset`]).
    pub rate: Option<Duration>,
}

/// Lets the caller watch and stop a run from outside (progress display, Ctrl-C).
#[derive(Debug)]
pub struct RunControl {
    completed: AtomicU64,
    stop_scheduling: AtomicBool,
    /// Wakes [`RunControl::interrupted`]'s waiters.
    interruption: Notify,
    cancel_in_flight_at: watch::Sender<Option<u64>>,
}

impl Default for RunControl {
    fn default() -> Self {
        Self {
            completed: AtomicU64::new(0),
            stop_scheduling: AtomicBool::new(false),
            interruption: Notify::new(),
            cancel_in_flight_at: watch::Sender::new(None),
        }
    }
}

impl RunControl {
    /// Requests ended so far, both phases.
    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    /// Whether [`RunControl::interrupt`] was called.
    pub fn was_interrupted(&self) -> bool {
        self.stop_scheduling.load(Ordering::Relaxed)
    }

    /// Stops scheduling new requests; requests in flight may finish within `grace`, after which
    /// they are recorded as cancelled. Calling it again shortens the grace, never lengthens it.
    pub fn interrupt(&self, grace: Duration) {
        self.stop_scheduling.store(true, Ordering::Relaxed);
        self.cancel_in_flight_by(after(now_ns(), grace));
        self.interruption.notify_waiters();
    }

    /// Resolves once [`RunControl::interrupt`] was called (at once if it was already).
    pub async fn interrupted(&self) {
        loop {
            // Created before the check, it cannot miss an interruption in between.
            let notified = self.interruption.notified();
            if self.was_interrupted() {
                return;
            }
            notified.await;
        }
    }

    fn cancel_in_flight_by(&self, at_ns: u64) {
        self.cancel_in_flight_at.send_modify(|current| {
            *current = Some(current.map_or(at_ns, |c| c.min(at_ns)));
        });
    }
}

/// The request bodies of one conversation, as they were sent (for `inputs.json`).
#[derive(Debug, Clone)]
pub struct SentPayloads {
    /// The session id.
    pub session_id: Arc<str>,
    /// One body per turn, in order.
    pub payloads: Vec<Bytes>,
}

/// What a run produced besides its records (which went to the [`RecordSender`]).
#[derive(Debug)]
pub struct RunOutput {
    /// When the profiling phase started.
    pub profiling_start_ns: u64,
    /// When its last request ended (its start when it sent none).
    pub profiling_end_ns: u64,
    /// Whether the run was interrupted before its stop condition.
    pub was_interrupted: bool,
    /// For each conversation of the dataset, in dataset order: the bodies of its first
    /// complete run, or, if it never ran whole, each turn's body with its own messages only (as
    /// AIPerf writes every turn), without the answers it would have carried.
    pub payloads: Vec<SentPayloads>,
}

/// A run that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The dataset is empty.
    #[error(
        "the dataset has no requests: give --num-dataset-entries of at least 1 or a non-empty input file"
    )]
    EmptyDataset,
    /// The concurrency is 0.
    #[error("concurrency must be at least 1")]
    ZeroConcurrency,
    /// No transport was given to send the requests.
    #[error("the run was given no transport to send its requests: give it at least one")]
    NoTransport,
    /// The arrival schedule is invalid.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
}

/// What every task of a run shares.
struct Shared {
    endpoint: Arc<dyn Endpoint>,
    /// One transport per server; each conversation goes to the next in turn.
    transports: Vec<Arc<dyn Transport>>,
    /// Conversations started so far, both phases: which server the next one goes to.
    conversations_started: AtomicUsize,
    conversations: Vec<PreparedConversation>,
    /// The order conversations are used in by the closed and open loops.
    order: Mutex<Box<dyn Iterator<Item = usize> + Send>>,
    /// The first complete run's bodies of each conversation.
    sent: Vec<OnceLock<Vec<Bytes>>>,
    /// The bodies of the first run of each conversation that was cut short (its phase ended
    /// between its turns), for the conversations that never ran whole.
    sent_in_part: Vec<OnceLock<Vec<Bytes>>>,
    /// Requests claimed so far, both phases: the index of purposeful cancellations.
    requests_claimed: AtomicUsize,
    /// When the last profiling request so far ended (0: none yet).
    profiling_end_ns: AtomicU64,
    /// Where finished requests go.
    records: RecordSender,
    plan: RunPlan,
    control: Arc<RunControl>,
}

impl Shared {
    /// The transport of the next conversation to start: the servers in turn (AIPerf's round
    /// robin of `--url`s), all turns of a conversation to the same one.
    fn next_transport(&self) -> &dyn Transport {
        if let [only] = self.transports.as_slice() {
            return only.as_ref();
        }
        let started = self.conversations_started.fetch_add(1, Ordering::Relaxed);
        self.transports[started % self.transports.len()].as_ref()
    }

    /// The next conversation to start, by the sampling order.
    fn next_conversation(&self) -> usize {
        let mut order = self.order.lock().expect("the order lock is never poisoned");
        order.next().unwrap_or(0) % self.conversations.len()
    }

    /// Hands a finished request's record on.
    fn finish(&self, record: RequestRecord) {
        if record.phase == Phase::Profiling {
            self.profiling_end_ns
                .fetch_max(record.end_ns, Ordering::Relaxed);
        }
        // The receiver lives until the run is over; if it died, its panic is what to report.
        let _ = self.records.send(record);
    }
}

/// Runs the warm-up phase (if any), then the profiling phase, sending every request's record
/// to `records` as it ends.
///
/// `order` yields the indices of conversations in the order the closed and open loops use
/// them (it may be infinite; indices wrap around); a fixed schedule ignores it and plays every
/// conversation once, by timestamp. `transports` holds one transport per server (at least
/// one): each conversation goes to the next in turn.
pub async fn run(
    endpoint: Arc<dyn Endpoint>,
    transports: Vec<Arc<dyn Transport>>,
    conversations: Vec<PreparedConversation>,
    order: Box<dyn Iterator<Item = usize> + Send>,
    plan: RunPlan,
    control: Arc<RunControl>,
    records: RecordSender,
) -> Result<RunOutput, RunError> {
    if conversations.iter().all(|c| c.turns.is_empty()) {
        return Err(RunError::EmptyDataset);
    }
    if transports.is_empty() {
        return Err(RunError::NoTransport);
    }
    if plan.load.max_in_flight() == 0 {
        return Err(RunError::ZeroConcurrency);
    }
    for load in [plan.load, plan.warmup_load()] {
        if let LoadMode::Rate { rate, pattern, .. } = load {
            ArrivalTimes::new(rate, pattern, plan.seed)?;
        }
    }
    let shared = Arc::new(Shared {
        endpoint,
        transports,
        conversations_started: AtomicUsize::new(0),
        sent: conversations.iter().map(|_| OnceLock::new()).collect(),
        sent_in_part: conversations.iter().map(|_| OnceLock::new()).collect(),
        conversations,
        order: Mutex::new(order),
        requests_claimed: AtomicUsize::new(0),
        profiling_end_ns: AtomicU64::new(0),
        records,
        plan,
        control,
    });
    if shared.plan.has_warmup() {
        let warmup = dispatch::PhaseLimits::warmup(&shared.plan);
        dispatch::run_phase(&shared, Phase::Warmup, warmup).await;
    }
    let profiling_start_ns = now_ns();
    let profiling = dispatch::PhaseLimits::profiling(&shared.plan);
    dispatch::run_phase(&shared, Phase::Profiling, profiling).await;
    let profiling_end_ns = match shared.profiling_end_ns.load(Ordering::Relaxed) {
        0 => profiling_start_ns,
        end => end,
    };
    let payloads = shared
        .conversations
        .iter()
        .zip(shared.sent.iter().zip(&shared.sent_in_part))
        .map(|(conversation, (whole, in_part))| SentPayloads {
            session_id: Arc::clone(&conversation.session_id),
            payloads: match (whole.get(), in_part.get()) {
                (Some(whole), _) => whole.clone(),
                // The turns sent as they were sent, the others with only their own messages.
                (None, Some(in_part)) => {
                    let mut payloads = in_part.clone();
                    payloads.extend(conversation.own_payloads(in_part.len()));
                    payloads
                }
                (None, None) => conversation.own_payloads(0),
            },
        })
        .collect();
    Ok(RunOutput {
        profiling_start_ns,
        profiling_end_ns,
        was_interrupted: shared.control.was_interrupted(),
        payloads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_interruption_wakes_its_waiters() {
        let control = Arc::new(RunControl::default());
        let waiter = tokio::spawn({
            let control = Arc::clone(&control);
            async move { control.interrupted().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        control.interrupt(Duration::ZERO);
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("woken")
            .unwrap();
        // Once interrupted, it resolves at once.
        control.interrupted().await;
    }

    #[test]
    fn a_plan_needs_no_more_in_flight_than_a_phase_sends() {
        let plan = |stop, warmup_requests| RunPlan {
            load: LoadMode::Concurrency(1000),
            stop,
            sessions: None,
            concurrency_ramp: None,
            rate_ramp: None,
            warmup_concurrency_ramp: None,
            warmup_rate_ramp: None,
            warmup_requests,
            warmup_duration: None,
            warmup_sessions: None,
            warmup_load: None,
            prefill_concurrency: None,
            warmup_prefill_concurrency: None,
            cancellation: None,
            streaming: true,
            seed: 0,
        };
        assert_eq!(plan(StopCondition::Count(5), 0).max_in_flight(), 5);
        assert_eq!(plan(StopCondition::Count(5), 40).max_in_flight(), 40);
        assert_eq!(plan(StopCondition::Count(5000), 0).max_in_flight(), 1000);
        let duration = StopCondition::Duration {
            duration: Duration::from_secs(1),
            grace: Duration::ZERO,
        };
        assert_eq!(plan(duration, 0).max_in_flight(), 1000);
        let timed_warmup = RunPlan {
            warmup_duration: Some(Duration::from_secs(30)),
            ..plan(StopCondition::Count(5), 0)
        };
        assert_eq!(
            timed_warmup.max_in_flight(),
            1000,
            "a timed warm-up fills every slot"
        );
        let wide_warmup = RunPlan {
            load: LoadMode::Concurrency(4),
            warmup_load: Some(LoadMode::Concurrency(64)),
            ..plan(StopCondition::Count(100), 500)
        };
        assert_eq!(wide_warmup.max_in_flight(), 64, "the warm-up's own load");
        let narrow_warmup = RunPlan {
            warmup_load: Some(LoadMode::Concurrency(2)),
            ..plan(StopCondition::Count(5000), 500)
        };
        assert_eq!(narrow_warmup.max_in_flight(), 1000, "the profiling's");
        let few_sessions = RunPlan {
            sessions: Some(3),
            ..plan(StopCondition::Count(usize::MAX), 0)
        };
        assert_eq!(
            few_sessions.max_in_flight(),
            3,
            "one request per conversation"
        );
        let warmup_sessions = RunPlan {
            warmup_sessions: Some(7),
            ..few_sessions.clone()
        };
        assert!(warmup_sessions.has_warmup());
        assert_eq!(
            warmup_sessions.max_in_flight(),
            7,
            "the warm-up's conversations"
        );
    }
}
