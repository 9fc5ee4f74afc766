//! The check of the `sse` fuzz target: the incremental server-sent-events parser
//! ([`aiperf_core::sse::SseParser`]) gives the same result however the stream is cut into
//! reads, and never panics.
//!
//! A transport hands the parser whatever each socket read returned (DESIGN.md §4), so the
//! events must not depend on where reads end: in the middle of a field name, between the `\r`
//! and `\n` of a line ending, inside a UTF-8 byte order mark. [`check`] parses the stream whole,
//! then again with the same parser (which [`SseParser::finish`] must have reset) cut at the
//! fuzzer's chosen points, and asserts the same events, last event id, retry time and
//! end-of-stream verdict.
//!
//! This file is shared: the fuzz target `fuzz/fuzz_targets/sse.rs` calls [`check`] through the
//! `aiperf-fuzz` library, and `aiperf-core/tests/fuzz_corpus.rs` includes it with `#[path]` to
//! replay the committed corpus under `cargo test`. It uses only the public API of aiperf-core.

use aiperf_core::sse::{IncompleteEvent, SseEvent, SseParser};
use bytes::Bytes;

/// How the reads of the second parse are handed to the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feeding {
    /// Push a read, drain every event it completes (what transports do).
    DrainEach,
    /// Push a read, take at most one event: later pushes land before the earlier events are
    /// drained (allowed, and must not lose or reorder anything).
    DrainOne,
    /// One byte per read, draining each.
    ByteByByte,
}

/// Everything a stream parses to.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    events: Vec<SseEvent>,
    last_event_id: Vec<u8>,
    retry_ms: Option<u64>,
    end: Result<(), IncompleteEvent>,
}

/// Decodes a fuzz input: the first byte's low nibble is the number of cuts and its high
/// nibble picks the [`Feeding`]; two bytes per cut follow (little-endian offsets, taken modulo
/// the stream's length plus one); the rest is the stream.
fn decode(input: &[u8]) -> (Feeding, Vec<usize>, &[u8]) {
    let Some((&header, rest)) = input.split_first() else {
        return (Feeding::DrainEach, Vec::new(), input);
    };
    let feeding = match (header >> 4) % 3 {
        0 => Feeding::DrainEach,
        1 => Feeding::DrainOne,
        _ => Feeding::ByteByByte,
    };
    let header_len = (usize::from(header & 0x0f) * 2).min(rest.len());
    let (offsets, stream) = rest.split_at(header_len);
    let mut cuts: Vec<usize> = offsets
        .chunks_exact(2)
        .map(|pair| usize::from(u16::from_le_bytes([pair[0], pair[1]])) % (stream.len() + 1))
        .collect();
    cuts.sort_unstable();
    (feeding, cuts, stream)
}

/// Parses `stream` cut before each of `cuts` (sorted, each at most the length), then finishes.
fn parse(parser: &mut SseParser, stream: &[u8], cuts: &[usize], feeding: Feeding) -> Outcome {
    let mut reads = Vec::new();
    if feeding == Feeding::ByteByByte {
        reads.extend(stream.chunks(1));
    } else {
        let mut start = 0;
        for &cut in cuts.iter().chain([&stream.len()]) {
            reads.push(&stream[start..cut]);
            start = cut;
        }
    }
    let mut events = Vec::new();
    for read in reads {
        parser.push(Bytes::copy_from_slice(read));
        match feeding {
            Feeding::DrainOne => events.extend(parser.next_event()),
            Feeding::DrainEach | Feeding::ByteByByte => {
                events.extend(std::iter::from_fn(|| parser.next_event()));
            }
        }
    }
    events.extend(std::iter::from_fn(|| parser.next_event()));
    let last_event_id = parser.last_event_id().to_vec();
    let retry_ms = parser.retry_ms();
    let end = parser.finish();
    Outcome {
        events,
        last_event_id,
        retry_ms,
        end,
    }
}

/// How often `needle` occurs in `haystack`, overlaps included.
fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

/// Parses the stream `input` encodes whole and cut into reads; panics when the results differ
/// or an event breaks the format's rules.
pub fn check(input: &[u8]) {
    let (feeding, cuts, stream) = decode(input);
    let mut parser = SseParser::new();
    let whole = parse(&mut parser, stream, &[], Feeding::DrainEach);
    let split = parse(&mut parser, stream, &cuts, feeding);
    assert_eq!(
        split, whole,
        "cutting the stream into reads ({feeding:?} at {cuts:?}) changed what it parses to"
    );
    assert!(
        whole.events.len() <= occurrences(stream, b"data"),
        "every event needs a data field"
    );
    for event in &whole.events {
        assert!(
            !event.data.contains(&b'\r'),
            "line endings never reach event data"
        );
        if let Some(event_type) = &event.event_type {
            assert!(
                !event_type.is_empty() && !event_type.iter().any(|&b| b == b'\r' || b == b'\n'),
                "an event type is one non-empty line"
            );
        }
    }
    if let Err(incomplete) = whole.end {
        assert!(
            incomplete.bytes <= stream.len(),
            "an unfinished event cannot hold more than the stream"
        );
    }
}
