//! Server-sent-event parsing, the framing every streamed response goes through (DESIGN.md §4:
//! transport read -> SSE event -> endpoint parse), on three shapes of a 64-token chat stream:
//! one event per read (a server pacing tokens), the whole stream in one read (a server with
//! zero inter-token latency), and 100-byte reads that split events and lines.
//!
//! `cargo bench -p aiperf-core --bench sse`

use std::hint::black_box;

use aiperf_core::sse::SseParser;
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_main};

/// Tokens in the stream.
const TOKENS: usize = 64;

/// The SSE events of a streamed chat answer as an OpenAI-compatible server sends them: one chunk
/// per token, a usage chunk, then `[DONE]`.
fn events() -> Vec<String> {
    let mut events: Vec<String> = (0..TOKENS)
        .map(|i| {
            format!(
                "data: {{\"id\":\"chatcmpl-{i}\",\"object\":\"chat.completion.chunk\",\
                 \"created\":1718000000,\"model\":\"meta/llama-3.1-8b-instruct\",\"choices\":\
                 [{{\"index\":0,\"delta\":{{\"content\":\" word{i}\"}},\"logprobs\":null,\
                 \"finish_reason\":null}}],\"usage\":null}}\n\n"
            )
        })
        .collect();
    events.push(
        "data: {\"id\":\"chatcmpl-u\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,\
         \"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":550,\"completion_tokens\":64,\
         \"total_tokens\":614}}\n\n"
            .to_owned(),
    );
    events.push("data: [DONE]\n\n".to_owned());
    events
}

/// Feeds every read and counts the events drained.
fn parse(reads: &[Bytes]) -> usize {
    let mut parser = SseParser::new();
    let mut count = 0;
    for read in reads {
        for event in parser.feed(read.clone()) {
            black_box(&event.data);
            count += 1;
        }
    }
    parser.finish().expect("a complete stream");
    count
}

fn sse(c: &mut Criterion) {
    let events = events();
    let whole: String = events.concat();
    let shapes: [(&str, Vec<Bytes>); 3] = [
        (
            "one_event_per_read",
            events.iter().map(|e| Bytes::from(e.clone())).collect(),
        ),
        ("whole_stream_one_read", vec![Bytes::from(whole.clone())]),
        (
            "100_byte_reads",
            whole
                .as_bytes()
                .chunks(100)
                .map(Bytes::copy_from_slice)
                .collect(),
        ),
    ];
    let mut group = c.benchmark_group("sse_chat_stream_64_tokens");
    group.throughput(Throughput::Elements(events.len() as u64));
    for (name, reads) in &shapes {
        assert_eq!(parse(reads), events.len(), "{name}");
        group.bench_function(*name, |b| b.iter(|| parse(black_box(reads))));
    }
    group.finish();
}

/// The benchmark group, in a private module: `criterion_group!` writes an undocumented `pub fn`.
mod groups {
    criterion::criterion_group!(benches, super::sse);
}

criterion_main!(groups::benches);
