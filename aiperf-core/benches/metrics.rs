//! The metrics stage of DESIGN.md §4 on 100,000 streamed requests of 16 tokens: every
//! per-request, aggregate and derived metric and their statistics ([`analyze`]), as
//! `aiperf profile` computes them once the run is over. The records come as the `http://`
//! client makes them, with an HTTP trace (the 14 `http_req_*` metrics), and as the other
//! transports do, without: side by side, the cost of those metrics.
//!
//! `cargo bench -p aiperf-core --bench metrics`

use std::hint::black_box;

use aiperf_core::endpoint::{ResponseText, Usage};
use aiperf_core::http_trace::HttpTrace;
use aiperf_core::metrics::{MetricOptions, RunFacts, analyze};
use aiperf_core::record::{Outcome, Phase, RequestRecord, TokenCounts};
use criterion::{Criterion, Throughput, criterion_main};

const RECORDS: usize = 100_000;
const TOKENS: u64 = 16;
const MS: u64 = 1_000_000;

/// Records of a closed loop at concurrency 64: each request 20 ms to its first token, then a
/// token every 2 ms (with some jitter so that the statistics sort real data).
fn records() -> Vec<RequestRecord> {
    (0..RECORDS as u64)
        .map(|i| {
            let start = (i / 64) * 50 * MS + (i % 64) * 7_919;
            let jitter = (i * 2_654_435_761) % (3 * MS);
            let first = start + 20 * MS + jitter;
            let response_ns: Vec<u64> = (0..TOKENS).map(|t| first + t * 2 * MS).collect();
            RequestRecord {
                request_id: format!("req-{i}"),
                conversation_id: format!("conv-{}", i % 100),
                correlation_id: format!("corr-{i}"),
                turn_index: 0,
                session_num: i,
                phase: Phase::Profiling,
                scheduled_ns: start,
                start_ns: start,
                ack_ns: Some(start + MS),
                end_ns: *response_ns.last().expect("tokens > 0"),
                first_output_ns: Some(first),
                response_ns,
                text: ResponseText {
                    content: " word".repeat(TOKENS as usize),
                    reasoning: String::new(),
                },
                usage: Some(Usage {
                    prompt_tokens: Some(550),
                    completion_tokens: Some(TOKENS),
                    reasoning_tokens: None,
                    total_tokens: Some(550 + TOKENS),
                }),
                client_tokens: TokenCounts {
                    input: Some(550),
                    output: Some(TOKENS),
                    reasoning: Some(0),
                },
                requested_output_tokens: Some(64),
                outcome: Outcome::Success,
                http_trace: Some(HttpTrace {
                    connection_reused: true,
                    send_start_ns: start,
                    send_end_ns: start + 5_000,
                    writes: 1,
                    body_bytes_sent: 2_600,
                    body_first_ns: Some(first),
                    body_last_ns: Some(first + TOKENS * 2 * MS),
                    body_reads: TOKENS as u32 + 2,
                    body_bytes_received: 300 * TOKENS,
                    ..HttpTrace::default()
                }),
            }
        })
        .collect()
}

fn metrics(c: &mut Criterion) {
    let records = records();
    let facts = RunFacts {
        benchmark_id: "bench".into(),
        ..RunFacts::default()
    };
    let options = MetricOptions {
        streaming: true,
        ..MetricOptions::default()
    };
    assert_eq!(
        analyze(&records, &facts, &options).counts.succeeded,
        RECORDS as u64
    );
    let mut group = c.benchmark_group("metrics");
    group.sample_size(10);
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("analyze_100k_streamed_records", |b| {
        b.iter(|| analyze(black_box(&records), &facts, &options))
    });
    let untraced: Vec<RequestRecord> = records
        .iter()
        .map(|record| RequestRecord {
            http_trace: None,
            ..record.clone()
        })
        .collect();
    group.bench_function("analyze_100k_streamed_records_without_http_trace", |b| {
        b.iter(|| analyze(black_box(&untraced), &facts, &options))
    });
    group.finish();
}

/// The benchmark group, in a private module: `criterion_group!` writes an undocumented `pub fn`.
mod groups {
    criterion::criterion_group!(benches, super::metrics);
}

criterion_main!(groups::benches);
