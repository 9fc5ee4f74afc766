//! Every formula of the metric table checked on hand-built records, through [`analyze`] as the
//! runner calls it.

use super::*;
use crate::endpoint::{ResponseText, Usage};
use crate::http_trace::HttpTrace;
use crate::record::{Cancellation, ErrorInfo, Outcome, Phase, RequestRecord, TokenCounts};

pub(crate) const MS: u64 = 1_000_000;
/// When the base record's request was sent (a clock reading).
pub(crate) const START: u64 = 10_000 * MS;

/// A successful streamed request: scheduled 0.5 ms before it was sent, responses 50, 60, 70
/// and 85 ms after sending, 100 prompt tokens and 4 output tokens by the client tokenizer.
pub(crate) fn record() -> RequestRecord {
    RequestRecord {
        request_id: "req-1".into(),
        conversation_id: "conv-1".into(),
        correlation_id: "conv-1".into(),
        turn_index: 0,
        session_num: 0,
        phase: Phase::Profiling,
        scheduled_ns: START - MS / 2,
        start_ns: START,
        ack_ns: Some(START + 20 * MS),
        end_ns: START + 90 * MS,
        response_ns: vec![
            START + 50 * MS,
            START + 60 * MS,
            START + 70 * MS,
            START + 85 * MS,
        ],
        first_output_ns: Some(START + 50 * MS),
        text: ResponseText {
            content: "a b c d".into(),
            reasoning: String::new(),
        },
        usage: None,
        client_tokens: TokenCounts {
            input: Some(100),
            output: Some(4),
            reasoning: None,
        },
        requested_output_tokens: Some(4),
        outcome: Outcome::Success,
        http_trace: None,
    }
}

pub(crate) fn error(code: u16, message: &str) -> RequestRecord {
    RequestRecord {
        request_id: "req-err".into(),
        end_ns: START + 30 * MS,
        response_ns: Vec::new(),
        first_output_ns: None,
        text: ResponseText::default(),
        client_tokens: TokenCounts {
            input: Some(120),
            ..TokenCounts::default()
        },
        outcome: Outcome::Error(ErrorInfo {
            code: Some(code),
            // Typed as the transports type status errors: by the status's reason phrase.
            kind: http::StatusCode::from_u16(code)
                .ok()
                .and_then(|status| status.canonical_reason())
                .unwrap_or("HTTPStatusError")
                .into(),
            message: message.into(),
        }),
        ..record()
    }
}

fn report(records: &[RequestRecord]) -> BenchmarkReport {
    analyze(records, &RunFacts::default(), &MetricOptions::default())
}

fn avg(report: &BenchmarkReport, id: MetricId) -> f64 {
    report
        .stats(id)
        .unwrap_or_else(|| panic!("{} has no statistics", id.tag()))
        .avg
}

fn assert_close(actual: f64, expected: f64) {
    assert!((actual - expected).abs() < 1e-9, "{actual} != {expected}");
}

#[test]
fn timing_metrics_of_a_streamed_request() {
    let r = report(&[record()]);
    assert_close(avg(&r, MetricId::TimeToFirstToken), 50.0);
    assert_close(avg(&r, MetricId::TimeToSecondToken), 10.0);
    assert_close(avg(&r, MetricId::TimeToFirstOutputToken), 50.0);
    assert_close(avg(&r, MetricId::RequestLatency), 85.0);
    // (85 - 50) / (4 - 1)
    assert_close(avg(&r, MetricId::InterTokenLatency), 35.0 / 3.0);
    assert_close(
        avg(&r, MetricId::OutputTokenThroughputPerUser),
        1000.0 / (35.0 / 3.0),
    );
    assert_close(avg(&r, MetricId::CreditToStartLatency), 0.5);
    assert_close(avg(&r, MetricId::EffectiveLatency), 85.5);
}

#[test]
fn inter_chunk_latency_pools_every_gap() {
    let mut second = record();
    second.response_ns = vec![START + 40 * MS, START + 41 * MS];
    let r = report(&[record(), second.clone()]);
    let icl = r.stats(MetricId::InterChunkLatency).unwrap();
    assert_eq!(icl.count, 4);
    assert_close(icl.sum, 10.0 + 10.0 + 15.0 + 1.0);
    assert_close(icl.min, 1.0);
    assert_close(icl.max, 15.0);
    let mut analysis = Analysis::new(&MetricOptions::default());
    let first = analysis.add(&record());
    assert_eq!(
        first.list(MetricId::InterChunkLatency),
        Some(&[10.0, 10.0, 15.0][..])
    );
    let row = analysis.add(&second);
    assert_eq!(row.list(MetricId::InterChunkLatency), Some(&[1.0][..]));
}

#[test]
fn time_to_first_output_token_skips_reasoning() {
    let mut r = record();
    r.text.reasoning = "thinking".into();
    r.first_output_ns = Some(START + 70 * MS);
    r.client_tokens.reasoning = Some(2);
    let report = report(&[r]);
    assert_close(avg(&report, MetricId::TimeToFirstToken), 50.0);
    assert_close(avg(&report, MetricId::TimeToFirstOutputToken), 70.0);
    assert!(report.saw_reasoning);
    assert_close(avg(&report, MetricId::ReasoningTokenCount), 2.0);
    assert_close(avg(&report, MetricId::OutputTokenCount), 4.0);
    assert_close(avg(&report, MetricId::OutputSequenceLength), 6.0);
    assert_eq!(report.scalar(MetricId::TotalReasoningTokens), Some(2.0));
}

#[test]
fn inter_token_latency_needs_two_output_tokens() {
    let mut one_token = record();
    one_token.client_tokens.output = Some(1);
    let r = report(&[one_token]);
    assert!(r.stats(MetricId::InterTokenLatency).is_none());
    assert!(r.stats(MetricId::OutputTokenThroughputPerUser).is_none());
    assert_close(avg(&r, MetricId::TimeToFirstToken), 50.0);

    let mut two_tokens = record();
    two_tokens.client_tokens.output = Some(2);
    assert_close(
        avg(&report(&[two_tokens]), MetricId::InterTokenLatency),
        35.0,
    );
}

#[test]
fn failed_requests_have_a_real_latency_but_stay_out_of_the_statistics() {
    let r = report(&[record(), error(500, "boom")]);
    assert_eq!(r.stats(MetricId::RequestLatency).unwrap().count, 1);
    assert_close(avg(&r, MetricId::RequestLatency), 85.0);
    let mut analysis = Analysis::new(&MetricOptions::default());
    let failed = analysis.add(&error(500, "boom"));
    assert_eq!(failed.value(MetricId::RequestLatency), Some(30.0));
    assert_eq!(failed.value(MetricId::TimeToFirstToken), None);
    assert_eq!(failed.value(MetricId::InputSequenceLength), None);
    assert_eq!(failed.value(MetricId::ErrorIsl), Some(120.0));
    assert_close(avg(&r, MetricId::ErrorIsl), 120.0);
    assert_eq!(r.scalar(MetricId::TotalErrorIsl), Some(120.0));
    assert_eq!(r.scalar(MetricId::ErrorRequestCount), Some(1.0));
    // Dispatch lag is about the client: every request sent counts.
    assert_eq!(r.stats(MetricId::CreditToStartLatency).unwrap().count, 2);
}

#[test]
fn cancelled_and_warmup_requests_are_excluded_from_the_metrics() {
    let mut cancelled = record();
    cancelled.outcome = Outcome::Cancelled(Cancellation::OnPurpose { after_ms: 2500 });
    cancelled.response_ns = vec![START + 5 * MS];
    let mut warmup = record();
    warmup.phase = Phase::Warmup;
    warmup.response_ns = vec![START + 999 * MS];
    let r = report(&[warmup, record(), cancelled]);
    let ttft = r.stats(MetricId::TimeToFirstToken).unwrap();
    assert_eq!((ttft.count, ttft.max), (1, 50.0));
    assert_eq!(
        r.counts,
        RequestCounts {
            sent: 2,
            succeeded: 1,
            errored: 0,
            cancelled: 1,
            warmup: 1
        }
    );
    assert!(r.counts.is_reconciled());
    assert_eq!(r.scalar(MetricId::RequestCount), Some(1.0));
    assert_eq!(r.scalar(MetricId::ErrorRequestCount), Some(1.0));
    assert_eq!(r.scalar(MetricId::CancelledRequestCount), Some(1.0));
    assert_eq!(
        r.error_summary,
        [ErrorCount {
            error: ErrorInfo {
                code: Some(499),
                kind: "RequestCancellationError".into(),
                message: "Request cancelled 2.500s after being sent".into(),
            },
            count: 1
        }]
    );
    // A warm-up record has its values, for its line, but enters no statistic.
    let mut analysis = Analysis::new(&MetricOptions::default());
    let mut warmup = record();
    warmup.phase = Phase::Warmup;
    assert_eq!(
        analysis.add(&warmup).value(MetricId::TimeToFirstToken),
        Some(50.0)
    );
    let report = analysis.finish(&RunFacts::default());
    assert_eq!(report.counts.warmup, 1);
    assert!(report.stats(MetricId::TimeToFirstToken).is_none());
}

#[test]
fn run_metrics_divide_by_the_benchmark_window() {
    // Two requests: the first sent at START, the last response at START + 2 s.
    let mut late = record();
    late.start_ns = START + 1_000 * MS;
    late.scheduled_ns = late.start_ns;
    late.response_ns = vec![START + 1_500 * MS, START + 2_000 * MS];
    let r = report(&[record(), late]);
    assert_close(r.scalar(MetricId::BenchmarkDuration).unwrap(), 2.0);
    assert_close(r.scalar(MetricId::RequestThroughput).unwrap(), 1.0);
    assert_close(r.scalar(MetricId::OutputTokenThroughput).unwrap(), 4.0);
    assert_close(r.scalar(MetricId::TotalTokenThroughput).unwrap(), 104.0);
    assert_eq!(r.scalar(MetricId::TotalOsl), Some(8.0));
    assert_eq!(r.scalar(MetricId::TotalIsl), Some(200.0));
    assert_eq!(r.scalar(MetricId::TotalOutputTokens), Some(8.0));
    assert_eq!((r.start_ns, r.end_ns), (START, START + 2_000 * MS));
    assert!(r.get(MetricId::Goodput).is_none(), "no SLOs, no goodput");
}

#[test]
fn aiperf_derived_metrics_of_one_request_and_of_the_run() {
    // TTFT 50 ms, last response at 85 ms, 100 prompt and 4 output tokens, sent 0.5 ms late.
    let mut cancelled = record();
    cancelled.outcome = Outcome::Cancelled(Cancellation::ByTheRun);
    let r = report(&[record(), error(500, "boom"), cancelled]);
    assert_close(avg(&r, MetricId::DecodeDuration), 35.0);
    assert_close(avg(&r, MetricId::E2eOutputTokenThroughput), 4.0 / 0.085);
    assert_close(avg(&r, MetricId::PrefillThroughputPerUser), 100.0 / 0.050);
    // Over every request, as AIPerf takes it: 85.5 ms, the error's 30.5 ms and the
    // cancelled one's 90.5 ms.
    let effective = r.stats(MetricId::EffectiveLatency).unwrap();
    assert_eq!(effective.count, 3);
    assert_close(effective.min, 30.5);
    assert_close(effective.max, 90.5);
    assert_eq!(r.scalar(MetricId::CompletedRequestCount), Some(3.0));
    assert_close(r.scalar(MetricId::RequestErrorRate).unwrap(), 200.0 / 3.0);
    let duration = r.scalar(MetricId::BenchmarkDuration).unwrap();
    assert_close(
        r.scalar(MetricId::InputTokenThroughput).unwrap(),
        100.0 / duration,
    );
    assert!(r.get(MetricId::GoodRequestFraction).is_none(), "no SLOs");
}

#[test]
fn outputs_shorter_than_asked_are_counted_and_flagged() {
    // Asked for 100 tokens, got 4 (the server stopped early); asked for 4, got 4.
    let mut short = record();
    short.requested_output_tokens = Some(100);
    let r = report(&[short, record()]);
    let diff = r.stats(MetricId::OslMismatchDiffPct).unwrap();
    assert_close(diff.min, -96.0);
    assert_close(diff.max, 0.0);
    assert_eq!(r.scalar(MetricId::OslMismatchCount), Some(1.0));
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("1 of 2 successful requests generated")),
        "{:?}",
        r.warnings
    );
    // AIPerf's tolerance: 5% of the length asked for, at most 50 tokens.
    assert!(!formulas::is_osl_mismatch(5.0, 100.0));
    assert!(formulas::is_osl_mismatch(-6.0, 100.0));
    assert!(
        formulas::is_osl_mismatch(-2.55, 2000.0),
        "51 tokens short of 2000"
    );
    let mut unasked = record();
    unasked.requested_output_tokens = None;
    assert!(report(&[unasked]).get(MetricId::OslMismatchCount).is_none());
}

#[test]
fn goodput_counts_requests_meeting_every_slo() {
    let fast = record();
    let mut slow = record();
    slow.response_ns[0] = START + 150 * MS;
    let mut one_token = record();
    one_token.client_tokens.output = Some(1);
    one_token.requested_output_tokens = Some(1);
    let options = MetricOptions {
        goodput: parse_goodput("time_to_first_token:100 inter_token_latency:20").unwrap(),
        ..MetricOptions::default()
    };
    let r = analyze(
        &[fast, slow, one_token, error(503, "busy")],
        &RunFacts::default(),
        &options,
    );
    // Only `fast`: `slow` misses TTFT, `one_token` has no ITL, the error is not a success.
    assert_eq!(r.scalar(MetricId::GoodRequestCount), Some(1.0));
    let duration = r.scalar(MetricId::BenchmarkDuration).unwrap();
    assert_close(r.scalar(MetricId::Goodput).unwrap(), 1.0 / duration);
    // Of the four completed, failed ones included, as AIPerf counts them.
    assert_close(r.scalar(MetricId::GoodRequestFraction).unwrap(), 0.25);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[test]
fn larger_is_better_slos_use_at_least() {
    let options = MetricOptions {
        goodput: parse_goodput("output_token_throughput_per_user:80").unwrap(),
        ..MetricOptions::default()
    };
    // 1000 / 11.67 = 85.7 tokens/sec/user: good.
    let r = analyze(&[record()], &RunFacts::default(), &options);
    assert_eq!(r.scalar(MetricId::GoodRequestCount), Some(1.0));
    let options = MetricOptions {
        goodput: parse_goodput("output_token_throughput_per_user:90").unwrap(),
        ..MetricOptions::default()
    };
    let r = analyze(&[record()], &RunFacts::default(), &options);
    assert_eq!(r.scalar(MetricId::GoodRequestCount), Some(0.0));
}

#[test]
fn non_streaming_runs_have_no_streaming_metrics_and_warn_about_their_slos() {
    let mut body = record();
    body.response_ns = vec![START + 85 * MS];
    let options = MetricOptions {
        streaming: false,
        goodput: parse_goodput("time_to_first_token:100").unwrap(),
        ..MetricOptions::default()
    };
    let r = analyze(&[body], &RunFacts::default(), &options);
    for id in [
        MetricId::TimeToFirstToken,
        MetricId::TimeToSecondToken,
        MetricId::InterTokenLatency,
        MetricId::InterChunkLatency,
        MetricId::OutputTokenThroughputPerUser,
    ] {
        assert!(r.get(id).is_none(), "{}", id.tag());
    }
    assert_close(avg(&r, MetricId::RequestLatency), 85.0);
    assert_close(avg(&r, MetricId::OutputSequenceLength), 4.0);
    assert_eq!(r.scalar(MetricId::GoodRequestCount), Some(0.0));
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("time_to_first_token") && w.contains("--streaming"))
    );
}

#[test]
fn embeddings_have_no_output_token_metrics() {
    let mut r = record();
    r.client_tokens.output = None;
    let options = MetricOptions {
        streaming: false,
        produces_tokens: false,
        ..MetricOptions::default()
    };
    let r = analyze(&[r], &RunFacts::default(), &options);
    assert!(r.get(MetricId::OutputSequenceLength).is_none());
    assert!(r.get(MetricId::OutputTokenThroughput).is_none());
    assert_close(avg(&r, MetricId::InputSequenceLength), 100.0);
    assert!(r.scalar(MetricId::RequestThroughput).is_some());
}

#[test]
fn server_usage_and_client_counts_are_both_recorded_and_compared() {
    let mut r = record();
    r.usage = Some(Usage {
        prompt_tokens: Some(105),
        completion_tokens: Some(5),
        reasoning_tokens: None,
        total_tokens: Some(110),
    });
    let report = report(&[r.clone()]);
    // Server counts are used by default...
    assert_close(avg(&report, MetricId::InputSequenceLength), 105.0);
    assert_close(avg(&report, MetricId::OutputSequenceLength), 5.0);
    // ...and both sources are recorded, with their difference.
    assert_close(avg(&report, MetricId::UsagePromptTokens), 105.0);
    assert_close(avg(&report, MetricId::ClientPromptTokens), 100.0);
    assert_close(avg(&report, MetricId::UsageCompletionTokens), 5.0);
    assert_close(avg(&report, MetricId::UsageTotalTokens), 110.0);
    assert_close(avg(&report, MetricId::ClientCompletionTokens), 4.0);
    assert_close(avg(&report, MetricId::UsagePromptTokensDiffPct), 5.0);
    assert_close(avg(&report, MetricId::UsageCompletionTokensDiffPct), 25.0);
    assert_eq!(report.scalar(MetricId::UsageDiscrepancyCount), Some(1.0));
    assert_eq!(report.scalar(MetricId::TotalUsagePromptTokens), Some(105.0));
    assert_eq!(
        report.scalar(MetricId::TotalUsageCompletionTokens),
        Some(5.0)
    );
    assert_eq!(report.scalar(MetricId::TotalUsageTotalTokens), Some(110.0));
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("differing by more than 10%"))
    );

    let client = MetricOptions {
        token_source: TokenSource::Client,
        ..MetricOptions::default()
    };
    let report = analyze(&[r], &RunFacts::default(), &client);
    assert_close(avg(&report, MetricId::InputSequenceLength), 100.0);
    assert_close(avg(&report, MetricId::OutputSequenceLength), 4.0);
}

#[test]
fn an_http_trace_gives_the_http_req_metrics_in_aiperf_s_units() {
    let without = report(&[record()]);
    assert!(without.stats(MetricId::HttpReqWaiting).is_none());
    let mut r = record();
    r.http_trace = Some(HttpTrace {
        connecting_ns: MS / 4,
        send_start_ns: START,
        send_end_ns: START + MS / 100,
        writes: 1,
        body_bytes_sent: 2048,
        body_first_ns: Some(START + 50 * MS),
        body_last_ns: Some(START + 90 * MS),
        body_reads: 6,
        body_bytes_received: 5120,
        ..HttpTrace::default()
    });
    let report = report(&[r]);
    assert_close(avg(&report, MetricId::HttpReqConnecting), 0.25);
    assert_close(avg(&report, MetricId::HttpReqSending), 0.01);
    assert_close(avg(&report, MetricId::HttpReqWaiting), 49.99);
    assert_close(avg(&report, MetricId::HttpReqReceiving), 40.0);
    assert_close(avg(&report, MetricId::HttpReqDuration), 90.0);
    assert_close(avg(&report, MetricId::HttpReqTotal), 90.25);
    assert_close(avg(&report, MetricId::HttpReqConnectionOverhead), 0.25);
    assert_close(avg(&report, MetricId::HttpReqConnectionReused), 0.0);
    assert_close(avg(&report, MetricId::HttpReqDataSent), 2.0);
    assert_close(avg(&report, MetricId::HttpReqDataReceived), 5.0);
    assert_close(avg(&report, MetricId::HttpReqChunksReceived), 6.0);
    assert_eq!(MetricId::HttpReqDataSent.def().unit.as_str(), "KB");
    assert_eq!(MetricId::HttpReqChunksSent.def().unit.as_str(), "count");
}

#[test]
fn the_client_falling_behind_its_schedule_is_flagged() {
    let on_time = report(&[record()]);
    let lag = on_time.schedule_lag.unwrap();
    assert!(!lag.fell_behind);
    assert_close(lag.p99_ms, 0.5);

    let mut late = record();
    late.scheduled_ns = START - 25 * MS;
    let r = report(&[record(), late]);
    let lag = r.schedule_lag.unwrap();
    assert!(lag.fell_behind, "{lag:?}");
    assert_close(lag.max_ms, 25.0);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("fell behind its schedule"))
    );
}

#[test]
fn counts_that_do_not_reconcile_are_reported() {
    let run = RunFacts {
        requests_sent: Some(3),
        ..RunFacts::default()
    };
    let r = analyze(
        &[record(), error(500, "x")],
        &run,
        &MetricOptions::default(),
    );
    assert!(!r.counts.is_reconciled());
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("3 requests were sent but 2"))
    );
}

#[test]
fn errors_are_grouped_and_sorted_by_frequency() {
    let records = [
        error(500, "boom"),
        error(429, "slow down"),
        error(429, "slow down"),
        error(500, "other"),
        record(),
    ];
    let r = report(&records);
    let summary: Vec<(Option<u16>, &str, u64)> = r
        .error_summary
        .iter()
        .map(|e| (e.error.code, e.error.message.as_str(), e.count))
        .collect();
    assert_eq!(
        summary,
        [
            (Some(429), "slow down", 2),
            (Some(500), "boom", 1),
            (Some(500), "other", 1)
        ]
    );
}

#[test]
fn an_empty_run_has_counts_and_nothing_else() {
    let r = report(&[]);
    assert_eq!(r.counts, RequestCounts::default());
    assert_eq!(r.scalar(MetricId::RequestCount), Some(0.0));
    assert!(r.get(MetricId::RequestThroughput).is_none());
    assert!(r.get(MetricId::BenchmarkDuration).is_none());
    assert!(r.schedule_lag.is_none());
}
