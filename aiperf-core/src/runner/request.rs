//! One request, start to end: stamp the send time, let the transport fill the sink (chunks
//! stamped on arrival), race it against the run's deadlines and any purposeful cancellation,
//! then assemble the [`RequestRecord`].
//!
//! Chunks are parsed by a [`ChunkParser`] the sink hands each one to right after the transport
//! stamped it, so a chunk's parse never delays its own timestamp, and the parsing of a stream
//! is spread over its life: parsing every chunk when the request ended made each end a burst of
//! work (about 100 µs for 64 tokens) that delayed the timestamps of every other stream, and at
//! high concurrency, where a closed loop's requests end together, bursts of many milliseconds.
//! Chunks of a transport that does not hand them over are parsed when the request ends.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::sleep_until;

use super::{CancellationPolicy, Shared};
use crate::clock::{after, instant_at, now_ns};
use crate::endpoint::{Endpoint, ParseError, ResponseText, Usage};
use crate::record::{Cancellation, ErrorInfo, Outcome, Phase, RequestRecord, TokenCounts};
use crate::transport::{ChunkConsumer, ResponseSink, TimedChunk, Transport, TransportRequest};

/// Whether request `index` is one of those cancelled on purpose: a deterministic draw from
/// the seed and the index.
pub(super) fn is_cancelled_on_purpose(
    policy: &CancellationPolicy,
    seed: u64,
    index: usize,
) -> bool {
    // SplitMix64 of (seed, index): uniform, cheap, and the same on every run.
    let mut z = seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z >> 11) as f64 / (1u64 << 53) as f64) < policy.fraction
}

/// A random UUID (version 4): request ids (`X-Request-ID`) and benchmark ids.
pub fn random_uuid() -> String {
    uuid_v4_text(rand::random())
}

/// The text of the version-4 UUID made of `random` bits: version and variant set, lowercase
/// hex in 8-4-4-4-12 groups. Written digit by digit: two `format!` calls per request were a
/// measurable share of the runner's own work.
fn uuid_v4_text(random: u128) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bits = (random & !(0xF << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let mut text = [b'-'; 36];
    let mut shift = 128;
    for (i, byte) in text.iter_mut().enumerate() {
        if !matches!(i, 8 | 13 | 18 | 23) {
            shift -= 4;
            *byte = HEX[((bits >> shift) & 0xF) as usize];
        }
    }
    String::from_utf8(text.to_vec()).expect("hex digits and dashes are ASCII")
}

enum Ending {
    Finished(Result<(), crate::transport::TransportError>),
    Cancelled(Cancellation),
}

/// What identifies one request within its conversation.
pub(super) struct RequestSpec<'a> {
    /// The phase it belongs to.
    pub phase: Phase,
    /// Its index among all requests of the run (drives purposeful cancellations).
    pub index: usize,
    /// When the schedule meant to send it.
    pub scheduled_ns: u64,
    /// The body to send.
    pub payload: Bytes,
    /// Its conversation's session id.
    pub session_id: &'a Arc<str>,
    /// This run of the conversation.
    pub correlation_id: &'a str,
    /// The turn's index in the conversation.
    pub turn_index: u32,
    /// Its number within its phase ([`RequestRecord::session_num`]).
    pub session_num: u64,
    /// The client's prompt token count, when known.
    pub input_tokens: Option<u64>,
    /// The output length it asks for, when it names one.
    pub max_output_tokens: Option<u64>,
    /// Where it goes: its conversation's server.
    pub transport: &'a dyn Transport,
    /// Its `--prefill-concurrency` slot, given back with its first response.
    pub prefill_slot: Option<OwnedSemaphorePermit>,
}

/// Sends one request and returns its record.
pub(super) async fn execute(shared: &Shared, mut spec: RequestSpec<'_>) -> RequestRecord {
    let request_id = random_uuid();
    let mut parser = ChunkParser::new(Arc::clone(&shared.endpoint));
    parser.prefill_slot = spec.prefill_slot.take();
    let mut sink = ResponseSink::with_consumer(Box::new(parser));
    let mut cancel_at = shared.control.cancel_in_flight_at.subscribe();
    let on_purpose = shared
        .plan
        .cancellation
        .filter(|policy| is_cancelled_on_purpose(policy, shared.plan.seed, spec.index))
        .map(|policy| policy.delay);

    let start_ns = now_ns();
    let ending = {
        let request = TransportRequest {
            path: shared.endpoint.path(),
            payload: spec.payload.clone(),
            request_id: &request_id,
            correlation_id: spec.correlation_id,
            streaming: shared.plan.streaming,
        };
        let send = spec.transport.send(request, &mut sink);
        let on_purpose_at = on_purpose.map(|delay| instant_at(after(start_ns, delay)));
        tokio::select! {
            result = send => Ending::Finished(result),
            () = wait_for_deadline(&mut cancel_at) => Ending::Cancelled(Cancellation::ByTheRun),
            () = sleep_or_never(on_purpose_at) => Ending::Cancelled(Cancellation::OnPurpose {
                after_ms: on_purpose.map_or(0, |delay| delay.as_millis() as u64),
            }),
        }
    };
    let ended_ns = now_ns();
    shared.control.completed.fetch_add(1, Ordering::Relaxed);
    let start_ns = sink.sent_ns.unwrap_or(start_ns);
    build_record(shared, &spec, request_id, start_ns, ended_ns, sink, ending)
}

/// Resolves when the run's in-flight deadline (if any, it may be set later) passes.
pub(super) async fn wait_for_deadline(deadline: &mut watch::Receiver<Option<u64>>) {
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

/// What a request's chunks said, parsed one by one as they arrived.
struct ChunkParser {
    endpoint: Arc<dyn Endpoint>,
    /// Chunks parsed.
    parsed: usize,
    text: ResponseText,
    /// Arrival time of each chunk that counts as a response.
    response_ns: Vec<u64>,
    /// Arrival time of the first chunk with non-reasoning content.
    first_output_ns: Option<u64>,
    /// The last usage reported.
    usage: Option<Usage>,
    /// The first chunk that could not be parsed.
    error: Option<ParseError>,
    /// The request's `--prefill-concurrency` slot, given back with the first response (or
    /// with the parser, when the request ends without one or its transport hands over no
    /// chunks).
    prefill_slot: Option<OwnedSemaphorePermit>,
}

impl std::fmt::Debug for ChunkParser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkParser")
            .field("parsed", &self.parsed)
            .field("responses", &self.response_ns.len())
            .finish_non_exhaustive()
    }
}

impl ChunkParser {
    fn new(endpoint: Arc<dyn Endpoint>) -> Self {
        Self {
            endpoint,
            parsed: 0,
            text: ResponseText::default(),
            response_ns: Vec::new(),
            first_output_ns: None,
            usage: None,
            error: None,
            prefill_slot: None,
        }
    }
}

impl ChunkConsumer for ChunkParser {
    fn consume(&mut self, chunk: &TimedChunk) {
        self.parsed += 1;
        match self.endpoint.parse_response(&chunk.data, &mut self.text) {
            Ok(parsed) => {
                if parsed.is_response() {
                    // A response: the request is out of prefill (its slot, if any, goes back).
                    self.prefill_slot = None;
                    self.response_ns.push(chunk.received_ns);
                }
                if parsed.has_content && self.first_output_ns.is_none() {
                    self.first_output_ns = Some(chunk.received_ns);
                }
                if parsed.usage.is_some() {
                    self.usage = parsed.usage;
                }
            }
            Err(error) => {
                self.error.get_or_insert(error);
            }
        }
    }
}

/// Assembles a request's record from its sink: the chunks its [`ChunkParser`] parsed, or, from
/// a transport that did not hand them over, the chunks it kept.
fn build_record(
    shared: &Shared,
    spec: &RequestSpec<'_>,
    request_id: String,
    start_ns: u64,
    ended_ns: u64,
    mut sink: ResponseSink,
    ending: Ending,
) -> RequestRecord {
    let consumer: Option<Box<dyn std::any::Any>> = sink.take_consumer().map(|c| c as _);
    let mut parser = match consumer.map(|c| c.downcast::<ChunkParser>()) {
        Some(Ok(parser)) => *parser,
        _ => ChunkParser::new(Arc::clone(&shared.endpoint)),
    };
    if parser.parsed == 0 {
        for chunk in &sink.chunks {
            parser.consume(chunk);
        }
    }
    let ChunkParser {
        text,
        response_ns,
        first_output_ns,
        usage,
        error,
        ..
    } = parser;
    let parse_error = error.map(|error| match error.reported_by_server {
        true => ErrorInfo {
            code: sink.status,
            kind: "ServerError".to_owned(),
            message: error.message,
        },
        false => ErrorInfo {
            code: sink.status,
            kind: "ResponseParseError".to_owned(),
            message: format!("could not parse a response chunk: {error}"),
        },
    });
    let (outcome, end_ns) = match ending {
        Ending::Cancelled(why) => (Outcome::Cancelled(why), ended_ns),
        Ending::Finished(Err(err)) => (
            Outcome::Error(ErrorInfo {
                code: err.code,
                kind: err.summary_type().to_owned(),
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
        conversation_id: spec.session_id.to_string(),
        correlation_id: spec.correlation_id.to_owned(),
        turn_index: spec.turn_index,
        session_num: spec.session_num,
        phase: spec.phase,
        scheduled_ns: spec.scheduled_ns,
        start_ns,
        ack_ns: sink.ack_ns,
        end_ns,
        response_ns,
        first_output_ns,
        text,
        usage,
        client_tokens: TokenCounts {
            input: spec.input_tokens,
            ..TokenCounts::default()
        },
        requested_output_tokens: spec.max_output_tokens,
        outcome,
        http_trace: sink.http_trace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
    fn uuid_text_is_the_grouped_hex_of_the_bits_with_version_and_variant() {
        let bits = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210_u128;
        assert_eq!(uuid_v4_text(bits), "01234567-89ab-4def-bedc-ba9876543210");
        assert_eq!(uuid_v4_text(0), "00000000-0000-4000-8000-000000000000");
        assert_eq!(
            uuid_v4_text(u128::MAX),
            "ffffffff-ffff-4fff-bfff-ffffffffffff"
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
