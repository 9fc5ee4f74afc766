//! The formulas of the metric table (DESIGN.md §5), one function per metric, referenced from
//! [`super::table::METRICS`]. Per-request formulas read one [`RecordInput`]; run formulas read
//! the [`RunTotals`] gathered after every request was measured. All return base units
//! (nanoseconds for times); the analysis converts to the metric's unit.
//!
//! Each formula is independent of the others (inter token latency recomputes request latency
//! and time to first token from the timestamps rather than reading them back), so the table's
//! order is free to follow AIPerf's export order.

use super::report::RequestCounts;
use super::table::MetricId;
use crate::http_trace::HttpTrace;
use crate::record::{RequestRecord, TokenCounts};

/// A per-request formula: the value for one request, if it has one.
pub type RecordFormula = fn(&RecordInput<'_>) -> Option<f64>;
/// A per-request formula with several values (appended to the vector).
pub type ListFormula = fn(&RecordInput<'_>, &mut Vec<f64>);
/// A run formula: the value for the run, if it has one.
pub type ScalarFormula = fn(&RunTotals) -> Option<f64>;

/// What a per-request formula reads.
#[derive(Debug, Clone, Copy)]
pub struct RecordInput<'a> {
    /// The request.
    pub record: &'a RequestRecord,
    /// Its token counts from the source [`super::MetricOptions::token_source`] selects.
    pub tokens: TokenCounts,
}

/// What a run formula reads: counts, the run's window and totals of per-request metrics.
#[derive(Debug, Clone)]
pub struct RunTotals {
    /// The profiling requests by outcome.
    pub counts: RequestCounts,
    /// First profiling request sent and last response (or failure) received, as
    /// [`crate::clock::now_ns`] readings; `None` without profiling requests.
    pub window_ns: Option<(u64, u64)>,
    /// Successful requests meeting every SLO; `None` when no SLO was given.
    pub good_requests: Option<u64>,
    /// Successful requests whose server and client token counts differ by more than the
    /// threshold; `None` when no request had both counts.
    pub usage_discrepancies: Option<u64>,
    /// Successful requests whose output length missed the one asked for
    /// ([`is_osl_mismatch`]); `None` when no request asked for one.
    pub osl_mismatches: Option<u64>,
    /// The sum of each per-request metric's values over its population, in its unit;
    /// `None` when it has no value. Indexed by [`MetricId`].
    pub sums: Vec<Option<f64>>,
}

impl RunTotals {
    /// The sum of a per-request metric's values, if it has any.
    pub fn sum(&self, id: MetricId) -> Option<f64> {
        self.sums.get(id as usize).copied().flatten()
    }

    /// The benchmark duration in seconds, when positive.
    fn duration_seconds(&self) -> Option<f64> {
        let (start, end) = self.window_ns?;
        (end > start).then(|| (end - start) as f64 / 1e9)
    }
}

fn nanos_between(from: u64, to: u64) -> f64 {
    to.saturating_sub(from) as f64
}

fn count(n: Option<u64>) -> Option<f64> {
    n.map(|n| n as f64)
}

// --- Per-request formulas -------------------------------------------------------------------

/// `responses[0] - start`.
pub fn time_to_first_token(input: &RecordInput<'_>) -> Option<f64> {
    let r = input.record;
    r.response_ns
        .first()
        .map(|&first| nanos_between(r.start_ns, first))
}

/// `responses[1] - responses[0]`.
pub fn time_to_second_token(input: &RecordInput<'_>) -> Option<f64> {
    match input.record.response_ns.as_slice() {
        [first, second, ..] => Some(nanos_between(*first, *second)),
        _ => None,
    }
}

/// First response with answer content (not reasoning) `- start`.
pub fn time_to_first_output_token(input: &RecordInput<'_>) -> Option<f64> {
    let r = input.record;
    r.first_output_ns
        .map(|first| nanos_between(r.start_ns, first))
}

/// Success: `responses[-1] - start`. Failure or cancellation: `end - start` (the failure's
/// time; a failed request is never reported with latency 0 as a placeholder).
pub fn request_latency(input: &RecordInput<'_>) -> Option<f64> {
    let r = input.record;
    if r.is_success() {
        r.response_ns
            .last()
            .map(|&last| nanos_between(r.start_ns, last))
    } else {
        Some(nanos_between(r.start_ns, r.end_ns))
    }
}

/// `(request_latency - ttft) / (osl - 1)`, for `osl >= 2`.
pub fn inter_token_latency(input: &RecordInput<'_>) -> Option<f64> {
    let osl = output_sequence_tokens(&input.tokens)?;
    if osl < 2 {
        return None;
    }
    let latency = request_latency(input)?;
    let ttft = time_to_first_token(input)?;
    Some((latency - ttft).max(0.0) / (osl - 1) as f64)
}

/// `1 / inter_token_latency` in tokens per second.
pub fn output_token_throughput_per_user(input: &RecordInput<'_>) -> Option<f64> {
    let itl_ns = inter_token_latency(input)?;
    (itl_ns > 0.0).then(|| 1e9 / itl_ns)
}

/// Output plus reasoning tokens.
pub fn output_sequence_length(input: &RecordInput<'_>) -> Option<f64> {
    count(output_sequence_tokens(&input.tokens))
}

/// Prompt tokens (for `input_sequence_length` and, over failed requests, `error_isl`).
pub fn input_sequence_length(input: &RecordInput<'_>) -> Option<f64> {
    count(input.tokens.input)
}

/// Output tokens, reasoning excluded.
pub fn output_token_count(input: &RecordInput<'_>) -> Option<f64> {
    count(input.tokens.output)
}

/// Reasoning tokens, when the request reasoned.
pub fn reasoning_token_count(input: &RecordInput<'_>) -> Option<f64> {
    count(input.tokens.reasoning.filter(|&n| n > 0))
}

/// The gaps between consecutive responses.
pub fn inter_chunk_latency(input: &RecordInput<'_>, out: &mut Vec<f64>) {
    out.extend(
        input
            .record
            .response_ns
            .windows(2)
            .map(|w| nanos_between(w[0], w[1])),
    );
}

/// `start - scheduled`: how late the request left compared with its schedule.
pub fn dispatch_lag(input: &RecordInput<'_>) -> Option<f64> {
    Some(input.record.dispatch_lag_ns() as f64)
}

/// `dispatch lag + request latency`: from when the schedule meant to send the request to its
/// last response or its failure, latency as a user arriving on schedule sees it.
pub fn effective_latency(input: &RecordInput<'_>) -> Option<f64> {
    Some(dispatch_lag(input)? + request_latency(input)?)
}

/// `request_latency - ttft` (none when negative, as in AIPerf).
pub fn decode_duration(input: &RecordInput<'_>) -> Option<f64> {
    let decode = request_latency(input)? - time_to_first_token(input)?;
    (decode >= 0.0).then_some(decode)
}

/// `osl / request_latency` in tokens per second.
pub fn e2e_output_token_throughput(input: &RecordInput<'_>) -> Option<f64> {
    let latency_ns = request_latency(input)?;
    (latency_ns > 0.0)
        .then(|| output_sequence_length(input))
        .flatten()
        .map(|osl| osl * 1e9 / latency_ns)
}

/// `isl / ttft` in tokens per second.
pub fn prefill_throughput_per_user(input: &RecordInput<'_>) -> Option<f64> {
    let ttft_ns = time_to_first_token(input)?;
    (ttft_ns > 0.0)
        .then(|| input_sequence_length(input))
        .flatten()
        .map(|isl| isl * 1e9 / ttft_ns)
}

/// The server's `usage.prompt_tokens`.
pub fn usage_prompt_tokens(input: &RecordInput<'_>) -> Option<f64> {
    count(input.record.usage?.prompt_tokens)
}

/// The server's `usage.completion_tokens` (reasoning included).
pub fn usage_completion_tokens(input: &RecordInput<'_>) -> Option<f64> {
    count(input.record.usage?.completion_tokens)
}

/// The server's `usage.completion_tokens_details.reasoning_tokens`.
pub fn usage_reasoning_tokens(input: &RecordInput<'_>) -> Option<f64> {
    count(input.record.usage?.reasoning_tokens)
}

/// The server's `usage.total_tokens`.
pub fn usage_total_tokens(input: &RecordInput<'_>) -> Option<f64> {
    count(input.record.usage?.total_tokens)
}

/// The client tokenizer's prompt tokens.
pub fn client_prompt_tokens(input: &RecordInput<'_>) -> Option<f64> {
    count(input.record.client_tokens.input)
}

/// The client tokenizer's output plus reasoning tokens.
pub fn client_completion_tokens(input: &RecordInput<'_>) -> Option<f64> {
    count(output_sequence_tokens(&input.record.client_tokens))
}

/// The client tokenizer's reasoning tokens.
pub fn client_reasoning_tokens(input: &RecordInput<'_>) -> Option<f64> {
    count(input.record.client_tokens.reasoning)
}

/// `|server - client| / client * 100` for prompt tokens.
pub fn usage_prompt_tokens_diff_pct(input: &RecordInput<'_>) -> Option<f64> {
    let server = input.record.usage?.prompt_tokens?;
    diff_pct(server, input.record.client_tokens.input?)
}

/// `|server - client| / client * 100` for completion tokens (reasoning included on both sides).
pub fn usage_completion_tokens_diff_pct(input: &RecordInput<'_>) -> Option<f64> {
    let server = input.record.usage?.completion_tokens?;
    diff_pct(server, output_sequence_tokens(&input.record.client_tokens)?)
}

/// `|server - client| / client * 100` for reasoning tokens.
pub fn usage_reasoning_tokens_diff_pct(input: &RecordInput<'_>) -> Option<f64> {
    let server = input.record.usage?.reasoning_tokens?;
    diff_pct(server, input.record.client_tokens.reasoning?)
}

/// `(osl - requested) / requested * 100`, signed, when the request asked for a length.
pub fn osl_mismatch_diff_pct(input: &RecordInput<'_>) -> Option<f64> {
    let requested = input.record.requested_output_tokens.filter(|&n| n > 0)? as f64;
    let osl = output_sequence_length(input)?;
    Some((osl - requested) / requested * 100.0)
}

/// Whether an output `diff_pct` percent off the `requested` length ([`osl_mismatch_diff_pct`])
/// misses it by more than AIPerf's tolerance: 5% of it, at most 50 tokens.
pub fn is_osl_mismatch(diff_pct: f64, requested: f64) -> bool {
    diff_pct.abs() / 100.0 * requested > (requested * 0.05).min(50.0)
}

/// Output plus reasoning, when either is known.
fn output_sequence_tokens(tokens: &TokenCounts) -> Option<u64> {
    match (tokens.output, tokens.reasoning) {
        (None, None) => None,
        (output, reasoning) => Some(output.unwrap_or(0) + reasoning.unwrap_or(0)),
    }
}

fn diff_pct(server: u64, client: u64) -> Option<f64> {
    (client > 0).then(|| server.abs_diff(client) as f64 / client as f64 * 100.0)
}

// --- HTTP trace formulas (`http_req_*`): requests whose transport recorded an HttpTrace -----

fn http_trace<'a>(input: &RecordInput<'a>) -> Option<&'a HttpTrace> {
    input.record.http_trace.as_ref()
}

/// [`HttpTrace::blocked_ns`].
pub fn http_req_blocked(input: &RecordInput<'_>) -> Option<f64> {
    Some(http_trace(input)?.blocked_ns as f64)
}

/// [`HttpTrace::dns_lookup_ns`].
pub fn http_req_dns_lookup(input: &RecordInput<'_>) -> Option<f64> {
    Some(http_trace(input)?.dns_lookup_ns as f64)
}

/// [`HttpTrace::connecting_ns`].
pub fn http_req_connecting(input: &RecordInput<'_>) -> Option<f64> {
    Some(http_trace(input)?.connecting_ns as f64)
}

/// [`HttpTrace::sending_ns`].
pub fn http_req_sending(input: &RecordInput<'_>) -> Option<f64> {
    Some(http_trace(input)?.sending_ns() as f64)
}

/// [`HttpTrace::waiting_ns`].
pub fn http_req_waiting(input: &RecordInput<'_>) -> Option<f64> {
    http_trace(input)?.waiting_ns().map(|ns| ns as f64)
}

/// [`HttpTrace::receiving_ns`].
pub fn http_req_receiving(input: &RecordInput<'_>) -> Option<f64> {
    http_trace(input)?.receiving_ns().map(|ns| ns as f64)
}

/// [`HttpTrace::duration_ns`].
pub fn http_req_duration(input: &RecordInput<'_>) -> Option<f64> {
    http_trace(input)?.duration_ns().map(|ns| ns as f64)
}

/// [`HttpTrace::body_bytes_sent`], in bytes.
pub fn http_req_data_sent(input: &RecordInput<'_>) -> Option<f64> {
    Some(http_trace(input)?.body_bytes_sent as f64)
}

/// [`HttpTrace::body_bytes_received`], in bytes.
pub fn http_req_data_received(input: &RecordInput<'_>) -> Option<f64> {
    Some(http_trace(input)?.body_bytes_received as f64)
}

/// [`HttpTrace::writes`].
pub fn http_req_chunks_sent(input: &RecordInput<'_>) -> Option<f64> {
    Some(f64::from(http_trace(input)?.writes))
}

/// [`HttpTrace::body_reads`].
pub fn http_req_chunks_received(input: &RecordInput<'_>) -> Option<f64> {
    Some(f64::from(http_trace(input)?.body_reads))
}

/// [`HttpTrace::connection_reused`] as 1 or 0.
pub fn http_req_connection_reused(input: &RecordInput<'_>) -> Option<f64> {
    Some(if http_trace(input)?.connection_reused {
        1.0
    } else {
        0.0
    })
}

/// [`HttpTrace::connection_overhead_ns`].
pub fn http_req_connection_overhead(input: &RecordInput<'_>) -> Option<f64> {
    Some(http_trace(input)?.connection_overhead_ns() as f64)
}

/// [`HttpTrace::total_ns`].
pub fn http_req_total(input: &RecordInput<'_>) -> Option<f64> {
    Some(http_trace(input)?.total_ns() as f64)
}

// --- Run formulas ---------------------------------------------------------------------------

/// `request_count / benchmark_duration`.
pub fn request_throughput(totals: &RunTotals) -> Option<f64> {
    Some(totals.counts.succeeded as f64 / totals.duration_seconds()?)
}

/// Successful requests.
pub fn request_count(totals: &RunTotals) -> Option<f64> {
    Some(totals.counts.succeeded as f64)
}

/// Failed plus cancelled requests.
pub fn error_request_count(totals: &RunTotals) -> Option<f64> {
    Some((totals.counts.errored + totals.counts.cancelled) as f64)
}

/// Cancelled requests, when there were any.
pub fn cancelled_request_count(totals: &RunTotals) -> Option<f64> {
    (totals.counts.cancelled > 0).then_some(totals.counts.cancelled as f64)
}

/// `total_osl / benchmark_duration`.
pub fn output_token_throughput(totals: &RunTotals) -> Option<f64> {
    Some(totals.sum(MetricId::OutputSequenceLength)? / totals.duration_seconds()?)
}

/// `(total_isl + total_osl) / benchmark_duration`.
pub fn total_token_throughput(totals: &RunTotals) -> Option<f64> {
    let tokens =
        totals.sum(MetricId::InputSequenceLength)? + totals.sum(MetricId::OutputSequenceLength)?;
    Some(tokens / totals.duration_seconds()?)
}

/// `total_isl / benchmark_duration`.
pub fn input_token_throughput(totals: &RunTotals) -> Option<f64> {
    Some(totals.sum(MetricId::InputSequenceLength)? / totals.duration_seconds()?)
}

/// Requests that succeeded, failed or were cancelled, when there were any.
pub fn completed_request_count(totals: &RunTotals) -> Option<f64> {
    let c = &totals.counts;
    let completed = c.succeeded + c.errored + c.cancelled;
    (completed > 0).then_some(completed as f64)
}

/// `error_request_count / completed_request_count * 100`.
pub fn request_error_rate(totals: &RunTotals) -> Option<f64> {
    Some(error_request_count(totals)? / completed_request_count(totals)? * 100.0)
}

/// `good_request_count / completed_request_count` (0 when nothing completed).
pub fn good_request_fraction(totals: &RunTotals) -> Option<f64> {
    let good = totals.good_requests? as f64;
    Some(completed_request_count(totals).map_or(0.0, |completed| good / completed))
}

/// Sum of the server's usage prompt tokens.
pub fn total_usage_prompt_tokens(totals: &RunTotals) -> Option<f64> {
    totals.sum(MetricId::UsagePromptTokens)
}

/// Sum of the server's usage completion tokens.
pub fn total_usage_completion_tokens(totals: &RunTotals) -> Option<f64> {
    totals.sum(MetricId::UsageCompletionTokens)
}

/// Sum of the server's usage total tokens.
pub fn total_usage_total_tokens(totals: &RunTotals) -> Option<f64> {
    totals.sum(MetricId::UsageTotalTokens)
}

/// Sum of the server's usage reasoning tokens.
pub fn total_usage_reasoning_tokens(totals: &RunTotals) -> Option<f64> {
    totals.sum(MetricId::UsageReasoningTokens)
}

/// `good_request_count / benchmark_duration`.
pub fn goodput(totals: &RunTotals) -> Option<f64> {
    Some(totals.good_requests? as f64 / totals.duration_seconds()?)
}

/// Successful requests meeting every SLO.
pub fn good_request_count(totals: &RunTotals) -> Option<f64> {
    count(totals.good_requests)
}

/// Last response received minus first request sent.
pub fn benchmark_duration(totals: &RunTotals) -> Option<f64> {
    let (start, end) = totals.window_ns?;
    Some(nanos_between(start, end))
}

/// Sum of output token counts.
pub fn total_output_tokens(totals: &RunTotals) -> Option<f64> {
    totals.sum(MetricId::OutputTokenCount)
}

/// Sum of reasoning token counts.
pub fn total_reasoning_tokens(totals: &RunTotals) -> Option<f64> {
    totals.sum(MetricId::ReasoningTokenCount)
}

/// Sum of input sequence lengths.
pub fn total_isl(totals: &RunTotals) -> Option<f64> {
    totals.sum(MetricId::InputSequenceLength)
}

/// Sum of output sequence lengths.
pub fn total_osl(totals: &RunTotals) -> Option<f64> {
    totals.sum(MetricId::OutputSequenceLength)
}

/// Sum of failed requests' prompt tokens.
pub fn total_error_isl(totals: &RunTotals) -> Option<f64> {
    totals.sum(MetricId::ErrorIsl)
}

/// Requests whose output length missed the one asked for ([`is_osl_mismatch`]).
pub fn osl_mismatch_count(totals: &RunTotals) -> Option<f64> {
    count(totals.osl_mismatches)
}

/// Requests whose server and client counts disagree beyond the threshold.
pub fn usage_discrepancy_count(totals: &RunTotals) -> Option<f64> {
    count(totals.usage_discrepancies)
}
