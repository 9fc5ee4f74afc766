//! The worker stage of DESIGN.md §4: sends the dataset's requests on the schedule, through an
//! endpoint and a transport, and turns each into exactly one [`RequestRecord`].
//!
//! A run has an optional warm-up phase (its records are kept but marked [`Phase::Warmup`]) and
//! a profiling phase. Each phase ends after a request count or a duration; in-flight requests
//! then get a grace period and are recorded as cancelled if they outlive it. [`RunControl`]
//! lets the caller stop scheduling at any time (Ctrl-C) with the same guarantees.
//!
//! Per request, the worker only stamps times and stores the transport's chunks; the chunks are
//! parsed once the request has ended, so parsing never delays a timestamp.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Semaphore, watch};
use tokio::time::sleep_until;

use crate::clock::{instant_at, now_ns};
use crate::endpoint::{Endpoint, ResponseText};
use crate::record::{ErrorInfo, Outcome, Phase, RequestRecord, TokenCounts};
use crate::schedule::{ArrivalTimes, LoadMode, ScheduleError};
use crate::transport::{ResponseSink, Transport, TransportRequest};

/// One request ready to send: its payload is formatted before the run starts, so the run
/// itself does no formatting.
#[derive(Debug, Clone)]
pub struct PreparedRequest {
    /// The conversation's session id.
    pub session_id: Arc<str>,
    /// The turn's index in its conversation.
    pub turn_index: u32,
    /// The body, as the endpoint wrote it.
    pub payload: Bytes,
    /// The client tokenizer's count of the prompt, when known.
    pub input_tokens: Option<u64>,
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
    /// Closed or open loop.
    pub load: LoadMode,
    /// When the profiling phase stops.
    pub stop: StopCondition,
    /// Requests of the warm-up phase (`--warmup-request-count`), 0 for none.
    pub warmup_requests: usize,
    /// Requests cancelled on purpose.
    pub cancellation: Option<CancellationPolicy>,
    /// Whether streamed responses were asked for.
    pub streaming: bool,
    /// The random seed (arrivals, cancellations).
    pub seed: u64,
}

/// Lets the caller watch and stop a run from outside (progress display, Ctrl-C).
#[derive(Debug)]
pub struct RunControl {
    completed: AtomicU64,
    stop_scheduling: AtomicBool,
    cancel_in_flight_at: watch::Sender<Option<u64>>,
}

impl Default for RunControl {
    fn default() -> Self {
        Self {
            completed: AtomicU64::new(0),
            stop_scheduling: AtomicBool::new(false),
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
        self.cancel_in_flight_by(now_ns() + grace.as_nanos() as u64);
    }

    fn cancel_in_flight_by(&self, at_ns: u64) {
        self.cancel_in_flight_at.send_modify(|current| {
            *current = Some(current.map_or(at_ns, |c| c.min(at_ns)));
        });
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutput {
    /// One record per request sent, warm-up first.
    pub records: Vec<RequestRecord>,
    /// When the profiling phase started.
    pub profiling_start_ns: u64,
    /// When its last request ended.
    pub profiling_end_ns: u64,
    /// Whether the run was interrupted before its stop condition.
    pub was_interrupted: bool,
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
    /// The arrival schedule is invalid.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
}

struct Shared {
    endpoint: Arc<dyn Endpoint>,
    transport: Arc<dyn Transport>,
    requests: Vec<PreparedRequest>,
    plan: RunPlan,
    control: Arc<RunControl>,
}

/// Runs the warm-up phase (if any), then the profiling phase, and returns every record.
pub async fn run(
    endpoint: Arc<dyn Endpoint>,
    transport: Arc<dyn Transport>,
    requests: Vec<PreparedRequest>,
    plan: RunPlan,
    control: Arc<RunControl>,
) -> Result<RunOutput, RunError> {
    if requests.is_empty() {
        return Err(RunError::EmptyDataset);
    }
    if plan.load.max_in_flight() == 0 {
        return Err(RunError::ZeroConcurrency);
    }
    if let LoadMode::Rate { rate, pattern, .. } = plan.load {
        ArrivalTimes::new(rate, pattern, plan.seed)?;
    }
    let shared = Arc::new(Shared {
        endpoint,
        transport,
        requests,
        plan,
        control,
    });
    let mut records = Vec::new();
    let next_request = Arc::new(AtomicUsize::new(0));
    if shared.plan.warmup_requests > 0 {
        let warmup = StopCondition::Count(shared.plan.warmup_requests);
        records.extend(run_phase(&shared, Phase::Warmup, warmup, &next_request).await);
    }
    let profiling_start_ns = now_ns();
    let profiling = run_phase(&shared, Phase::Profiling, shared.plan.stop, &next_request).await;
    let profiling_end_ns = profiling
        .iter()
        .map(|r| r.end_ns)
        .max()
        .unwrap_or(profiling_start_ns);
    records.extend(profiling);
    Ok(RunOutput {
        records,
        profiling_start_ns,
        profiling_end_ns,
        was_interrupted: shared.control.was_interrupted(),
    })
}

/// Runs one phase to its stop condition and returns its records, sorted by start time.
async fn run_phase(
    shared: &Arc<Shared>,
    phase: Phase,
    stop: StopCondition,
    next_request: &Arc<AtomicUsize>,
) -> Vec<RequestRecord> {
    let phase_start_ns = now_ns();
    let (count, send_until_ns) = match stop {
        StopCondition::Count(n) => (n, None),
        StopCondition::Duration { duration, grace } => {
            let end = phase_start_ns + duration.as_nanos() as u64;
            shared
                .control
                .cancel_in_flight_by(end + grace.as_nanos() as u64);
            (usize::MAX, Some(end))
        }
    };
    let phase = PhaseState {
        phase,
        count,
        sent: AtomicUsize::new(0),
        send_until_ns,
        next_request: Arc::clone(next_request),
    };
    let phase = Arc::new(phase);
    let mut records = match shared.plan.load {
        LoadMode::Concurrency(workers) => closed_loop(shared, &phase, workers).await,
        LoadMode::Rate {
            rate,
            pattern,
            max_concurrency,
        } => {
            open_loop(
                shared,
                &phase,
                phase_start_ns,
                rate,
                pattern,
                max_concurrency,
            )
            .await
        }
    };
    records.sort_by_key(|r| r.start_ns);
    records
}

struct PhaseState {
    phase: Phase,
    count: usize,
    sent: AtomicUsize,
    send_until_ns: Option<u64>,
    next_request: Arc<AtomicUsize>,
}

impl PhaseState {
    /// Claims the next request to send, or `None` when the phase must stop sending.
    fn claim(&self, control: &RunControl, now: u64) -> Option<usize> {
        if control.was_interrupted() || self.send_until_ns.is_some_and(|end| now >= end) {
            return None;
        }
        let sent = self.sent.fetch_add(1, Ordering::Relaxed);
        if sent >= self.count {
            return None;
        }
        Some(self.next_request.fetch_add(1, Ordering::Relaxed))
    }
}

/// N workers, each sending its next request as soon as its previous one ended.
async fn closed_loop(
    shared: &Arc<Shared>,
    phase: &Arc<PhaseState>,
    workers: usize,
) -> Vec<RequestRecord> {
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let shared = Arc::clone(shared);
            let phase = Arc::clone(phase);
            tokio::spawn(async move {
                let mut records = Vec::new();
                loop {
                    let now = now_ns();
                    let Some(index) = phase.claim(&shared.control, now) else {
                        break;
                    };
                    records.push(execute(&shared, phase.phase, index, now).await);
                }
                records
            })
        })
        .collect();
    let mut records = Vec::new();
    for handle in handles {
        records.extend(handle.await.expect("request workers do not panic"));
    }
    records
}

/// Requests due at absolute offsets from the phase start, each in its own task.
async fn open_loop(
    shared: &Arc<Shared>,
    phase: &Arc<PhaseState>,
    phase_start_ns: u64,
    rate: f64,
    pattern: crate::schedule::ArrivalPattern,
    max_concurrency: Option<usize>,
) -> Vec<RequestRecord> {
    let arrivals =
        ArrivalTimes::new(rate, pattern, shared.plan.seed).expect("validated before the run");
    let limit = max_concurrency.map(|n| Arc::new(Semaphore::new(n)));
    let mut interrupted = shared.control.cancel_in_flight_at.subscribe();
    let mut handles = Vec::new();
    for offset in arrivals {
        let due_ns = phase_start_ns + offset.as_nanos() as u64;
        if phase.send_until_ns.is_some_and(|end| due_ns >= end) {
            break;
        }
        tokio::select! {
            _ = sleep_until(instant_at(due_ns).into()) => {}
            _ = interrupted.changed() => {}
        }
        let permit = match &limit {
            Some(limit) => Some(
                Arc::clone(limit)
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed"),
            ),
            None => None,
        };
        let Some(index) = phase.claim(&shared.control, due_ns) else {
            break;
        };
        let shared = Arc::clone(shared);
        let kind = phase.phase;
        handles.push(tokio::spawn(async move {
            let record = execute(&shared, kind, index, due_ns).await;
            drop(permit);
            record
        }));
    }
    let mut records = Vec::with_capacity(handles.len());
    for handle in handles {
        records.push(handle.await.expect("request tasks do not panic"));
    }
    records
}

/// Whether request `index` is one of those cancelled on purpose: a deterministic draw from
/// the seed and the index.
fn is_cancelled_on_purpose(policy: &CancellationPolicy, seed: u64, index: usize) -> bool {
    // SplitMix64 of (seed, index): uniform, cheap, and the same on every run.
    let mut z = seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z >> 11) as f64 / (1u64 << 53) as f64) < policy.fraction
}

/// A random UUID (version 4): request ids (`X-Request-ID`) and benchmark ids.
pub fn random_uuid() -> String {
    let bits: u128 = rand::random();
    let bits = (bits & !(0xF << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

enum Ending {
    Finished(Result<(), crate::transport::TransportError>),
    Cancelled,
}

/// Sends request `index` (of the dataset, cycled) and returns its record.
async fn execute(shared: &Shared, phase: Phase, index: usize, scheduled_ns: u64) -> RequestRecord {
    let prepared = &shared.requests[index % shared.requests.len()];
    let request_id = random_uuid();
    let mut sink = ResponseSink::default();
    let mut cancel_at = shared.control.cancel_in_flight_at.subscribe();
    let on_purpose = shared
        .plan
        .cancellation
        .filter(|policy| is_cancelled_on_purpose(policy, shared.plan.seed, index))
        .map(|policy| policy.delay);

    let start_ns = now_ns();
    let ending = {
        let request = TransportRequest {
            path: shared.endpoint.path(),
            payload: prepared.payload.clone(),
            request_id: &request_id,
            streaming: shared.plan.streaming,
        };
        let send = shared.transport.send(request, &mut sink);
        let on_purpose_at = on_purpose.map(|delay| instant_at(start_ns + delay.as_nanos() as u64));
        tokio::select! {
            result = send => Ending::Finished(result),
            () = wait_for_deadline(&mut cancel_at) => Ending::Cancelled,
            () = sleep_or_never(on_purpose_at) => Ending::Cancelled,
        }
    };
    let ended_ns = now_ns();
    shared.control.completed.fetch_add(1, Ordering::Relaxed);
    build_record(
        shared,
        phase,
        prepared,
        request_id,
        scheduled_ns,
        start_ns,
        ended_ns,
        sink,
        ending,
    )
}

/// Resolves when the run's in-flight deadline (if any, it may be set later) passes.
async fn wait_for_deadline(deadline: &mut watch::Receiver<Option<u64>>) {
    loop {
        let current = *deadline.borrow_and_update();
        match current {
            Some(at_ns) => tokio::select! {
                _ = sleep_until(instant_at(at_ns).into()) => return,
                changed = deadline.changed() => if changed.is_err() { std::future::pending::<()>().await },
            },
            None => {
                if deadline.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

async fn sleep_or_never(at: Option<std::time::Instant>) {
    match at {
        Some(at) => sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Parses the chunks a request received and assembles its record.
#[allow(clippy::too_many_arguments)]
fn build_record(
    shared: &Shared,
    phase: Phase,
    prepared: &PreparedRequest,
    request_id: String,
    scheduled_ns: u64,
    start_ns: u64,
    ended_ns: u64,
    sink: ResponseSink,
    ending: Ending,
) -> RequestRecord {
    let mut text = ResponseText::default();
    let mut response_ns = Vec::with_capacity(sink.chunks.len());
    let mut first_output_ns = None;
    let mut usage = None;
    let mut parse_error = None;
    for chunk in &sink.chunks {
        match shared.endpoint.parse_response(&chunk.data, &mut text) {
            Ok(parsed) => {
                if parsed.is_response() {
                    response_ns.push(chunk.received_ns);
                }
                if parsed.has_content && first_output_ns.is_none() {
                    first_output_ns = Some(chunk.received_ns);
                }
                if parsed.usage.is_some() {
                    usage = parsed.usage;
                }
            }
            Err(err) => {
                parse_error.get_or_insert(ErrorInfo {
                    code: sink.status,
                    kind: "ResponseParseError".to_owned(),
                    message: format!("could not parse a response chunk: {err}"),
                });
            }
        }
    }
    let (outcome, end_ns) = match ending {
        Ending::Cancelled => (Outcome::Cancelled, ended_ns),
        Ending::Finished(Err(err)) => (
            Outcome::Error(ErrorInfo {
                code: err.code,
                kind: err.kind.as_str().to_owned(),
                message: err.message,
            }),
            ended_ns,
        ),
        Ending::Finished(Ok(())) => {
            let last_byte_ns = sink
                .chunks
                .last()
                .map(|c| c.received_ns)
                .or(sink.ack_ns)
                .unwrap_or(ended_ns);
            match parse_error {
                Some(error) => (Outcome::Error(error), last_byte_ns),
                None if response_ns.is_empty() => (
                    Outcome::Error(ErrorInfo {
                        code: sink.status,
                        kind: "EmptyResponseError".to_owned(),
                        message: "the response carried no content".to_owned(),
                    }),
                    last_byte_ns,
                ),
                None => (Outcome::Success, last_byte_ns),
            }
        }
    };
    RequestRecord {
        request_id,
        conversation_id: prepared.session_id.to_string(),
        turn_index: prepared.turn_index,
        phase,
        scheduled_ns,
        start_ns,
        ack_ns: sink.ack_ns,
        end_ns,
        response_ns,
        first_output_ns,
        text,
        usage,
        client_tokens: TokenCounts {
            input: prepared.input_tokens,
            ..TokenCounts::default()
        },
        outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_version_4_uuids_and_unique() {
        let a = random_uuid();
        let b = random_uuid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'), "{a}");
        assert!(
            matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
            "{a}"
        );
    }

    #[test]
    fn purposeful_cancellations_follow_the_fraction_deterministically() {
        let policy = CancellationPolicy {
            fraction: 0.25,
            delay: Duration::ZERO,
        };
        let picks: Vec<bool> = (0..10_000)
            .map(|i| is_cancelled_on_purpose(&policy, 3, i))
            .collect();
        let share = picks.iter().filter(|&&p| p).count() as f64 / picks.len() as f64;
        assert!((share - 0.25).abs() < 0.02, "{share}");
        let again: Vec<bool> = (0..10_000)
            .map(|i| is_cancelled_on_purpose(&policy, 3, i))
            .collect();
        assert_eq!(picks, again);
        let none = CancellationPolicy {
            fraction: 0.0,
            ..policy
        };
        assert!((0..1000).all(|i| !is_cancelled_on_purpose(&none, 3, i)));
    }
}
