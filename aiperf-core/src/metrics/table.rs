//! The metric table: every metric aiperf reports, defined once (tag, header, unit, kind,
//! flags, console order, formula). The console table, the JSON and CSV keys, the JSONL
//! per-request values, the goodput tags and the docs are all derived from [`METRICS`].
//!
//! Tags, headers and units are AIPerf 0.13's, so that scripts reading AIPerf's exports read
//! ours. Table order is the export order of `profile_export_aiperf.json`: AIPerf's declared
//! fields first, in AIPerf's order (up to [`MetricId::TotalErrorIsl`]), then the metrics AIPerf
//! adds dynamically.

use super::formulas;
use super::timeline::Curve;

/// The unit a metric is displayed and exported in. Formulas produce base units (nanoseconds
/// for times, plain counts otherwise); [`Unit::scale_from_base`] converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Milliseconds (base: nanoseconds).
    Milliseconds,
    /// Seconds (base: nanoseconds).
    Seconds,
    /// Nanoseconds since the Unix epoch, for timestamps.
    Nanoseconds,
    /// Tokens.
    Tokens,
    /// Requests.
    Requests,
    /// A percentage.
    Percent,
    /// A fraction of 1.
    Ratio,
    /// Tokens per second over the run.
    TokensPerSecond,
    /// Tokens per second as one request sees them.
    TokensPerSecondPerUser,
    /// Requests per second.
    RequestsPerSecond,
    /// A count of things other than requests or tokens (reads, writes).
    Count,
    /// Kilobytes of 1024 bytes (base: bytes), as AIPerf shows data sizes.
    Kilobytes,
}

impl Unit {
    /// The unit as AIPerf writes it (`"ms"`, `"tokens/sec"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Milliseconds => "ms",
            Self::Seconds => "sec",
            Self::Nanoseconds => "ns",
            Self::Tokens => "tokens",
            Self::Requests => "requests",
            Self::Percent => "%",
            Self::Ratio => "ratio",
            Self::TokensPerSecond => "tokens/sec",
            Self::TokensPerSecondPerUser => "tokens/sec/user",
            Self::RequestsPerSecond => "requests/sec",
            Self::Count => "count",
            Self::Kilobytes => "KB",
        }
    }

    /// The factor from the formula's base unit to this unit.
    pub fn scale_from_base(self) -> f64 {
        match self {
            Self::Milliseconds => 1e-6,
            Self::Seconds => 1e-9,
            Self::Kilobytes => 1.0 / 1024.0,
            _ => 1.0,
        }
    }

    /// Whether values in this unit are whole numbers (exported without a fraction).
    pub fn is_integral(self) -> bool {
        matches!(self, Self::Tokens | Self::Requests | Self::Count)
    }
}

/// Properties of a metric that decide where it applies and how it is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MetricFlags(u16);

impl MetricFlags {
    /// No flag.
    pub const NONE: Self = Self(0);
    /// Only meaningful for streamed responses (`--streaming`).
    pub const STREAMING_ONLY: Self = Self(1);
    /// Only meaningful for endpoints that generate tokens (not embeddings).
    pub const PRODUCES_TOKENS_ONLY: Self = Self(1 << 1);
    /// Both of the above.
    pub const STREAMING_TOKENS_ONLY: Self = Self(1 | 1 << 1);
    /// A larger value is better (throughputs); goodput SLOs on it use `>=`.
    pub const LARGER_IS_BETTER: Self = Self(1 << 2);
    /// Exported but not shown in the console table.
    pub const NO_CONSOLE: Self = Self(1 << 3);
    /// Only about failed requests.
    pub const ERROR_ONLY: Self = Self(1 << 4);
    /// About reasoning: shown in the console only when the run saw reasoning content.
    pub const SUPPORTS_REASONING: Self = Self(1 << 5);
    /// Only computed when `--goodput` SLOs are given.
    pub const GOODPUT: Self = Self(1 << 6);
    /// Compares the server's usage with the client tokenizer.
    pub const USAGE_DIFF: Self = Self(1 << 7);
    /// A per-request value is also exported for failed and cancelled requests (in
    /// `profile_export.jsonl`), though only successful ones enter the statistics.
    pub const ALSO_FOR_FAILED: Self = Self(1 << 8);
    /// Shown in the console's table of effective (time-weighted) metrics, AIPerf's
    /// "LLM Metrics: Effective".
    pub const EFFECTIVE_TABLE: Self = Self(1 << 9);
    /// Shown in the console's table of metrics taken while their stage is active, AIPerf's
    /// "LLM Metrics: Active".
    pub const ACTIVE_TABLE: Self = Self(1 << 10);

    /// Both sets of flags.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for MetricFlags {
    type Output = Self;

    fn bitor(self, other: Self) -> Self {
        self.union(other)
    }
}

/// Which profiling requests a per-request metric's statistics are taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Population {
    /// Requests that succeeded (AIPerf's "valid" records).
    Succeeded,
    /// Requests that failed or were cancelled.
    Failed,
    /// Every request sent.
    Sent,
}

/// How a metric is computed, with its formula.
#[derive(Debug, Clone, Copy)]
pub enum MetricKind {
    /// One value per request, summarized into [`crate::stats::Stats`].
    Record {
        /// The requests whose values enter the statistics.
        population: Population,
        /// The value for one request, in the base unit, if it has one.
        formula: formulas::RecordFormula,
    },
    /// Several values per request (one per gap between chunks), pooled into one distribution
    /// over the successful requests.
    RecordList {
        /// Appends the request's values, in the base unit.
        formula: formulas::ListFormula,
    },
    /// One value for the run, from counts, totals and the run's window.
    Scalar {
        /// The value, in the base unit, if the run has one.
        formula: formulas::ScalarFormula,
    },
    /// Time-weighted statistics of a step function over the run's timeline of requests
    /// (AIPerf's `effective_*` and `active_*`: see [`Curve`]), in the display unit.
    TimeWeighted {
        /// The step function.
        curve: Curve,
        /// Only the moments its stage has a request in it (AIPerf's `active_*`), rather than
        /// the whole window (`effective_*`).
        active_only: bool,
    },
}

impl MetricKind {
    /// Whether the metric has values per request (exported with percentiles).
    pub fn is_distribution(&self) -> bool {
        matches!(self, Self::Record { .. } | Self::RecordList { .. })
    }
}

/// One row of the metric table.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    /// The metric's identity.
    pub id: MetricId,
    /// AIPerf's tag: the key in JSON and JSONL exports and in `--goodput`.
    pub tag: &'static str,
    /// The human name, in the console and the CSV (`"Header (unit)"`).
    pub header: &'static str,
    /// What it measures, for docs and help.
    pub description: &'static str,
    /// Its display and export unit.
    pub unit: Unit,
    /// How it is computed.
    pub kind: MetricKind,
    /// Where it applies and how it is shown.
    pub flags: MetricFlags,
    /// Its position in the console (smaller first); `None` keeps it out of the console.
    pub console_order: Option<u16>,
}

impl MetricDef {
    /// Whether the metric is shown in the console at all.
    pub fn is_console(&self) -> bool {
        self.console_order.is_some()
            && !self.flags.contains(MetricFlags::NO_CONSOLE)
            && !self.flags.contains(MetricFlags::ERROR_ONLY)
    }
}

macro_rules! metric_table {
    ($(
        $id:ident {
            tag: $tag:literal,
            header: $header:literal,
            description: $description:literal,
            unit: $unit:ident,
            kind: $kind:expr,
            flags: $flags:expr,
            console: $console:expr $(,)?
        }
    ),+ $(,)?) => {
        /// A metric of [`METRICS`]; its discriminant is its row.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum MetricId {
            $(
                #[doc = $description]
                $id,
            )+
        }

        /// Every metric, in export order; `METRICS[id as usize].id == id`.
        pub static METRICS: &[MetricDef] = &[
            $(
                MetricDef {
                    id: MetricId::$id,
                    tag: $tag,
                    header: $header,
                    description: $description,
                    unit: Unit::$unit,
                    kind: $kind,
                    flags: $flags,
                    console_order: $console,
                },
            )+
        ];
    };
}

use MetricFlags as F;
use MetricKind::{Record, RecordList, Scalar, TimeWeighted};
use Population::{Failed, Sent, Succeeded};

metric_table! {
    RequestThroughput {
        tag: "request_throughput",
        header: "Request Throughput",
        description: "Successful requests per second over the benchmark duration.",
        unit: RequestsPerSecond,
        kind: Scalar { formula: formulas::request_throughput },
        flags: F::LARGER_IS_BETTER,
        console: Some(900),
    },
    RequestLatency {
        tag: "request_latency",
        header: "Request Latency",
        description: "From sending the request to its last response; for a failed request, to the failure.",
        unit: Milliseconds,
        kind: Record { population: Succeeded, formula: formulas::request_latency },
        flags: F::ALSO_FOR_FAILED,
        console: Some(300),
    },
    RequestCount {
        tag: "request_count",
        header: "Request Count",
        description: "Requests that succeeded.",
        unit: Requests,
        kind: Scalar { formula: formulas::request_count },
        flags: F::LARGER_IS_BETTER,
        console: Some(1000),
    },
    TimeToFirstToken {
        tag: "time_to_first_token",
        header: "Time to First Token",
        description: "From sending the request to its first response with content or reasoning.",
        unit: Milliseconds,
        kind: Record { population: Succeeded, formula: formulas::time_to_first_token },
        flags: F::STREAMING_TOKENS_ONLY,
        console: Some(100),
    },
    TimeToSecondToken {
        tag: "time_to_second_token",
        header: "Time to Second Token",
        description: "From the first response to the second.",
        unit: Milliseconds,
        kind: Record { population: Succeeded, formula: formulas::time_to_second_token },
        flags: F::STREAMING_TOKENS_ONLY,
        console: Some(120),
    },
    InterTokenLatency {
        tag: "inter_token_latency",
        header: "Inter Token Latency",
        description: "(request latency - time to first token) / (output sequence length - 1), for outputs of at least 2 tokens.",
        unit: Milliseconds,
        kind: Record { population: Succeeded, formula: formulas::inter_token_latency },
        flags: F::STREAMING_TOKENS_ONLY,
        console: Some(400),
    },
    OutputTokenThroughput {
        tag: "output_token_throughput",
        header: "Output Token Throughput",
        description: "Total output sequence length per second over the benchmark duration.",
        unit: TokensPerSecond,
        kind: Scalar { formula: formulas::output_token_throughput },
        flags: F::PRODUCES_TOKENS_ONLY.union(F::LARGER_IS_BETTER),
        console: Some(800),
    },
    OutputTokenThroughputPerUser {
        tag: "output_token_throughput_per_user",
        header: "Output Token Throughput Per User",
        description: "1 / inter token latency in seconds: the decode speed one request sees.",
        unit: TokensPerSecondPerUser,
        kind: Record { population: Succeeded, formula: formulas::output_token_throughput_per_user },
        flags: F::STREAMING_TOKENS_ONLY.union(F::LARGER_IS_BETTER),
        console: Some(500),
    },
    OutputSequenceLength {
        tag: "output_sequence_length",
        header: "Output Sequence Length",
        description: "Output tokens plus reasoning tokens of one request.",
        unit: Tokens,
        kind: Record { population: Succeeded, formula: formulas::output_sequence_length },
        flags: F::PRODUCES_TOKENS_ONLY,
        console: Some(600),
    },
    InputSequenceLength {
        tag: "input_sequence_length",
        header: "Input Sequence Length",
        description: "Prompt tokens of one request.",
        unit: Tokens,
        kind: Record { population: Succeeded, formula: formulas::input_sequence_length },
        flags: F::NONE,
        console: Some(700),
    },
    Goodput {
        tag: "goodput",
        header: "Goodput",
        description: "Requests meeting every --goodput SLO, per second over the benchmark duration.",
        unit: RequestsPerSecond,
        kind: Scalar { formula: formulas::goodput },
        flags: F::GOODPUT.union(F::LARGER_IS_BETTER),
        console: Some(950),
    },
    GoodRequestCount {
        tag: "good_request_count",
        header: "Good Request Count",
        description: "Successful requests meeting every --goodput SLO.",
        unit: Requests,
        kind: Scalar { formula: formulas::good_request_count },
        flags: F::GOODPUT.union(F::LARGER_IS_BETTER),
        console: Some(1030),
    },
    OutputTokenCount {
        tag: "output_token_count",
        header: "Output Token Count",
        description: "Output tokens of one request, reasoning excluded.",
        unit: Tokens,
        kind: Record { population: Succeeded, formula: formulas::output_token_count },
        flags: F::PRODUCES_TOKENS_ONLY,
        console: None,
    },
    ReasoningTokenCount {
        tag: "reasoning_token_count",
        header: "Reasoning Token Count",
        description: "Reasoning tokens of one request, when it reasoned.",
        unit: Tokens,
        kind: Record { population: Succeeded, formula: formulas::reasoning_token_count },
        flags: F::PRODUCES_TOKENS_ONLY.union(F::SUPPORTS_REASONING),
        console: Some(650),
    },
    InterChunkLatency {
        tag: "inter_chunk_latency",
        header: "Inter Chunk Latency",
        description: "Every gap between consecutive responses of a streamed request, pooled over the run.",
        unit: Milliseconds,
        kind: RecordList { formula: formulas::inter_chunk_latency },
        flags: F::STREAMING_TOKENS_ONLY.union(F::NO_CONSOLE),
        console: None,
    },
    TotalOutputTokens {
        tag: "total_output_tokens",
        header: "Total Output Tokens",
        description: "Sum of output token counts over successful requests.",
        unit: Tokens,
        kind: Scalar { formula: formulas::total_output_tokens },
        flags: F::PRODUCES_TOKENS_ONLY.union(F::NO_CONSOLE),
        console: None,
    },
    TotalReasoningTokens {
        tag: "total_reasoning_tokens",
        header: "Total Reasoning Tokens",
        description: "Sum of reasoning token counts over successful requests.",
        unit: Tokens,
        kind: Scalar { formula: formulas::total_reasoning_tokens },
        flags: F::PRODUCES_TOKENS_ONLY.union(F::SUPPORTS_REASONING).union(F::NO_CONSOLE),
        console: None,
    },
    BenchmarkDuration {
        tag: "benchmark_duration",
        header: "Benchmark Duration",
        description: "From the first profiling request sent to the last response received.",
        unit: Seconds,
        kind: Scalar { formula: formulas::benchmark_duration },
        flags: F::NONE,
        console: Some(1100),
    },
    TotalIsl {
        tag: "total_isl",
        header: "Total Input Sequence Length",
        description: "Sum of input sequence lengths over successful requests.",
        unit: Tokens,
        kind: Scalar { formula: formulas::total_isl },
        flags: F::NO_CONSOLE,
        console: None,
    },
    TotalOsl {
        tag: "total_osl",
        header: "Total Output Sequence Length",
        description: "Sum of output sequence lengths over successful requests.",
        unit: Tokens,
        kind: Scalar { formula: formulas::total_osl },
        flags: F::PRODUCES_TOKENS_ONLY.union(F::NO_CONSOLE),
        console: None,
    },
    ErrorRequestCount {
        tag: "error_request_count",
        header: "Error Request Count",
        description: "Requests that failed or were cancelled (AIPerf counts cancellations as errors).",
        unit: Requests,
        kind: Scalar { formula: formulas::error_request_count },
        flags: F::NONE,
        console: Some(1010),
    },
    ErrorIsl {
        tag: "error_isl",
        header: "Error Input Sequence Length",
        description: "Prompt tokens of one failed or cancelled request.",
        unit: Tokens,
        kind: Record { population: Failed, formula: formulas::input_sequence_length },
        flags: F::ERROR_ONLY.union(F::NO_CONSOLE),
        console: None,
    },
    TotalErrorIsl {
        tag: "total_error_isl",
        header: "Total Error Input Sequence Length",
        description: "Sum of prompt tokens over failed and cancelled requests.",
        unit: Tokens,
        kind: Scalar { formula: formulas::total_error_isl },
        flags: F::ERROR_ONLY.union(F::NO_CONSOLE),
        console: None,
    },
    TimeToFirstOutputToken {
        tag: "time_to_first_output_token",
        header: "Time to First Output Token",
        description: "From sending the request to its first response with answer content (reasoning excluded).",
        unit: Milliseconds,
        kind: Record { population: Succeeded, formula: formulas::time_to_first_output_token },
        flags: F::STREAMING_TOKENS_ONLY.union(F::SUPPORTS_REASONING),
        console: Some(110),
    },
    TotalTokenThroughput {
        tag: "total_token_throughput",
        header: "Total Token Throughput",
        description: "Total input plus output sequence length per second over the benchmark duration.",
        unit: TokensPerSecond,
        kind: Scalar { formula: formulas::total_token_throughput },
        flags: F::PRODUCES_TOKENS_ONLY.union(F::LARGER_IS_BETTER).union(F::NO_CONSOLE),
        console: None,
    },
    CancelledRequestCount {
        tag: "cancelled_request_count",
        header: "Cancelled Request Count",
        description: "Requests cancelled by the client (--request-cancellation-rate or the end of the run).",
        unit: Requests,
        kind: Scalar { formula: formulas::cancelled_request_count },
        flags: F::NONE,
        console: Some(1020),
    },
    CreditToStartLatency {
        tag: "credit_to_start_latency",
        header: "Credit-to-Start Latency",
        description: "Dispatch lag: from when the schedule meant to send a request to when it was sent.",
        unit: Milliseconds,
        kind: Record { population: Sent, formula: formulas::dispatch_lag },
        flags: F::NO_CONSOLE,
        console: None,
    },
    EffectiveLatency {
        tag: "effective_latency",
        header: "Effective Latency (CO-aware)",
        description: "From when the schedule meant to send a request to its last response (or its failure): request latency plus dispatch lag, over every request, as AIPerf takes it.",
        unit: Milliseconds,
        kind: Record { population: Sent, formula: formulas::effective_latency },
        flags: F::EFFECTIVE_TABLE,
        console: Some(3900),
    },
    UsagePromptTokens {
        tag: "usage_prompt_tokens",
        header: "Usage Prompt Tokens",
        description: "Prompt tokens as the server's usage reports them.",
        unit: Tokens,
        kind: Record { population: Succeeded, formula: formulas::usage_prompt_tokens },
        flags: F::NO_CONSOLE,
        console: None,
    },
    UsageCompletionTokens {
        tag: "usage_completion_tokens",
        header: "Usage Completion Tokens",
        description: "Completion tokens (reasoning included) as the server's usage reports them.",
        unit: Tokens,
        kind: Record { population: Succeeded, formula: formulas::usage_completion_tokens },
        flags: F::PRODUCES_TOKENS_ONLY.union(F::NO_CONSOLE),
        console: None,
    },
    UsageReasoningTokens {
        tag: "usage_reasoning_tokens",
        header: "Usage Reasoning Tokens",
        description: "Reasoning tokens as the server's usage reports them.",
        unit: Tokens,
        kind: Record { population: Succeeded, formula: formulas::usage_reasoning_tokens },
        flags: F::PRODUCES_TOKENS_ONLY.union(F::SUPPORTS_REASONING).union(F::NO_CONSOLE),
        console: None,
    },
    UsageTotalTokens {
        tag: "usage_total_tokens",
        header: "Usage Total Tokens",
        description: "Prompt plus completion tokens as the server's usage reports them (its total_tokens).",
        unit: Tokens,
        kind: Record { population: Succeeded, formula: formulas::usage_total_tokens },
        flags: F::PRODUCES_TOKENS_ONLY.union(F::NO_CONSOLE),
        console: None,
    },
    ClientPromptTokens {
        tag: "client_prompt_tokens",
        header: "Client Prompt Tokens",
        description: "Prompt tokens as the client tokenizer counts them.",
        unit: Tokens,
        kind: Record { population: Succeeded, formula: formulas::client_prompt_tokens },
        flags: F::NO_CONSOLE,
        console: None,
    },
    ClientCompletionTokens {
        tag: "client_completion_tokens",
        header: "Client Completion Tokens",
        description: "Output plus reasoning tokens as the client tokenizer counts them.",
        unit: Tokens,
        kind: Record { population: Succeeded, formula: formulas::client_completion_tokens },
        flags: F::PRODUCES_TOKENS_ONLY.union(F::NO_CONSOLE),
        console: None,
    },
    ClientReasoningTokens {
        tag: "client_reasoning_tokens",
        header: "Client Reasoning Tokens",
        description: "Reasoning tokens as the client tokenizer counts them.",
        unit: Tokens,
        kind: Record { population: Succeeded, formula: formulas::client_reasoning_tokens },
        flags: F::PRODUCES_TOKENS_ONLY.union(F::SUPPORTS_REASONING).union(F::NO_CONSOLE),
        console: None,
    },
    UsagePromptTokensDiffPct {
        tag: "usage_prompt_tokens_diff_pct",
        header: "Usage Prompt Diff %",
        description: "|server prompt tokens - client prompt tokens| / client prompt tokens * 100.",
        unit: Percent,
        kind: Record { population: Succeeded, formula: formulas::usage_prompt_tokens_diff_pct },
        flags: F::USAGE_DIFF.union(F::NO_CONSOLE),
        console: None,
    },
    UsageCompletionTokensDiffPct {
        tag: "usage_completion_tokens_diff_pct",
        header: "Usage Completion Diff %",
        description: "|server completion tokens - client completion tokens| / client completion tokens * 100.",
        unit: Percent,
        kind: Record { population: Succeeded, formula: formulas::usage_completion_tokens_diff_pct },
        flags: F::PRODUCES_TOKENS_ONLY.union(F::USAGE_DIFF).union(F::NO_CONSOLE),
        console: None,
    },
    UsageReasoningTokensDiffPct {
        tag: "usage_reasoning_tokens_diff_pct",
        header: "Usage Reasoning Diff %",
        description: "|server reasoning tokens - client reasoning tokens| / client reasoning tokens * 100.",
        unit: Percent,
        kind: Record { population: Succeeded, formula: formulas::usage_reasoning_tokens_diff_pct },
        flags: F::PRODUCES_TOKENS_ONLY
            .union(F::SUPPORTS_REASONING)
            .union(F::USAGE_DIFF)
            .union(F::NO_CONSOLE),
        console: None,
    },
    UsageDiscrepancyCount {
        tag: "usage_discrepancy_count",
        header: "Usage Discrepancy Count",
        description: "Successful requests whose server and client token counts differ by more than the threshold (10% by default).",
        unit: Requests,
        kind: Scalar { formula: formulas::usage_discrepancy_count },
        flags: F::USAGE_DIFF.union(F::NO_CONSOLE),
        console: None,
    },
    DecodeDuration {
        tag: "decode_duration",
        header: "Decode Duration",
        description: "From the first response to the last: request latency - time to first token.",
        unit: Milliseconds,
        kind: Record { population: Succeeded, formula: formulas::decode_duration },
        flags: F::STREAMING_TOKENS_ONLY,
        console: Some(350),
    },
    E2eOutputTokenThroughput {
        tag: "e2e_output_token_throughput",
        header: "E2E Output Token Throughput",
        description: "Output sequence length / request latency in seconds: one request's output speed, time to first token included.",
        unit: TokensPerSecondPerUser,
        kind: Record { population: Succeeded, formula: formulas::e2e_output_token_throughput },
        flags: F::PRODUCES_TOKENS_ONLY.union(F::LARGER_IS_BETTER),
        console: Some(510),
    },
    PrefillThroughputPerUser {
        tag: "prefill_throughput_per_user",
        header: "Prefill Throughput Per User",
        description: "Input sequence length / time to first token in seconds: the prefill speed one request sees.",
        unit: TokensPerSecondPerUser,
        kind: Record { population: Succeeded, formula: formulas::prefill_throughput_per_user },
        flags: F::STREAMING_TOKENS_ONLY.union(F::LARGER_IS_BETTER).union(F::NO_CONSOLE),
        console: None,
    },
    InputTokenThroughput {
        tag: "input_token_throughput",
        header: "Input Token Throughput",
        description: "Total input sequence length per second over the benchmark duration.",
        unit: TokensPerSecond,
        kind: Scalar { formula: formulas::input_token_throughput },
        flags: F::LARGER_IS_BETTER,
        console: Some(805),
    },
    CompletedRequestCount {
        tag: "completed_request_count",
        header: "Completed Requests (Success + Error)",
        description: "Requests that succeeded, failed or were cancelled.",
        unit: Requests,
        kind: Scalar { formula: formulas::completed_request_count },
        flags: F::NONE,
        console: Some(1075),
    },
    RequestErrorRate {
        tag: "request_error_rate",
        header: "Request Error Rate",
        description: "Error request count / completed request count * 100.",
        unit: Percent,
        kind: Scalar { formula: formulas::request_error_rate },
        flags: F::NONE,
        console: Some(1080),
    },
    GoodRequestFraction {
        tag: "good_request_fraction",
        header: "GoodRequestFraction",
        description: "Good request count / completed request count: failed requests count against it.",
        unit: Ratio,
        kind: Scalar { formula: formulas::good_request_fraction },
        flags: F::GOODPUT.union(F::LARGER_IS_BETTER).union(F::NO_CONSOLE),
        console: None,
    },
    OslMismatchDiffPct {
        tag: "osl_mismatch_diff_pct",
        header: "OSL Mismatch Diff %",
        description: "(output sequence length - the max_tokens asked for) / max_tokens * 100: negative when the server stopped early, as at an end-of-sequence token.",
        unit: Percent,
        kind: Record { population: Succeeded, formula: formulas::osl_mismatch_diff_pct },
        flags: F::PRODUCES_TOKENS_ONLY.union(F::NO_CONSOLE),
        console: None,
    },
    OslMismatchCount {
        tag: "osl_mismatch_count",
        header: "OSL Mismatch Count",
        description: "Successful requests whose output length differs from the max_tokens asked for by more than 5% of it, or 50 tokens.",
        unit: Requests,
        kind: Scalar { formula: formulas::osl_mismatch_count },
        flags: F::PRODUCES_TOKENS_ONLY.union(F::NO_CONSOLE),
        console: None,
    },
    TotalUsagePromptTokens {
        tag: "total_usage_prompt_tokens",
        header: "Total Usage Prompt Tokens",
        description: "Sum of the server's usage prompt tokens over successful requests.",
        unit: Tokens,
        kind: Scalar { formula: formulas::total_usage_prompt_tokens },
        flags: F::NO_CONSOLE,
        console: None,
    },
    TotalUsageCompletionTokens {
        tag: "total_usage_completion_tokens",
        header: "Total Usage Completion Tokens",
        description: "Sum of the server's usage completion tokens over successful requests.",
        unit: Tokens,
        kind: Scalar { formula: formulas::total_usage_completion_tokens },
        flags: F::PRODUCES_TOKENS_ONLY.union(F::NO_CONSOLE),
        console: None,
    },
    TotalUsageTotalTokens {
        tag: "total_usage_total_tokens",
        header: "Total Usage Total Tokens",
        description: "Sum of the server's usage total tokens over successful requests.",
        unit: Tokens,
        kind: Scalar { formula: formulas::total_usage_total_tokens },
        flags: F::PRODUCES_TOKENS_ONLY.union(F::NO_CONSOLE),
        console: None,
    },
    TotalUsageReasoningTokens {
        tag: "total_usage_reasoning_tokens",
        header: "Total Usage Reasoning Tokens",
        description: "Sum of the server's usage reasoning tokens over successful requests.",
        unit: Tokens,
        kind: Scalar { formula: formulas::total_usage_reasoning_tokens },
        flags: F::PRODUCES_TOKENS_ONLY.union(F::SUPPORTS_REASONING).union(F::NO_CONSOLE),
        console: None,
    },
    HttpReqBlocked {
        tag: "http_req_blocked",
        header: "HTTP Blocked",
        description: "Time the request waited for a free connection from the pool (http:// only, as every http_req_ metric).",
        unit: Milliseconds,
        kind: Record { population: Succeeded, formula: formulas::http_req_blocked },
        flags: F::NO_CONSOLE,
        console: None,
    },
    HttpReqDnsLookup {
        tag: "http_req_dns_lookup",
        header: "HTTP DNS Lookup",
        description: "Time finding the server's address, for a connection the request opened (0 on a connection already open).",
        unit: Milliseconds,
        kind: Record { population: Succeeded, formula: formulas::http_req_dns_lookup },
        flags: F::NO_CONSOLE,
        console: None,
    },
    HttpReqConnecting {
        tag: "http_req_connecting",
        header: "HTTP Connecting",
        description: "Time connecting, for a connection the request opened (0 on a connection already open).",
        unit: Milliseconds,
        kind: Record { population: Succeeded, formula: formulas::http_req_connecting },
        flags: F::NO_CONSOLE,
        console: None,
    },
    HttpReqSending {
        tag: "http_req_sending",
        header: "HTTP Sending",
        description: "From the request's first bytes written to its last.",
        unit: Milliseconds,
        kind: Record { population: Succeeded, formula: formulas::http_req_sending },
        flags: F::NO_CONSOLE,
        console: None,
    },
    HttpReqWaiting {
        tag: "http_req_waiting",
        header: "HTTP Waiting (TTFB)",
        description: "From the request's last bytes written to the first read of the response's body: a stream's first event; a body taken whole, its last bytes (as AIPerf takes it).",
        unit: Milliseconds,
        kind: Record { population: Succeeded, formula: formulas::http_req_waiting },
        flags: F::NO_CONSOLE,
        console: None,
    },
    HttpReqReceiving {
        tag: "http_req_receiving",
        header: "HTTP Receiving",
        description: "From the first read of the response's body to its last (0 for a body taken whole).",
        unit: Milliseconds,
        kind: Record { population: Succeeded, formula: formulas::http_req_receiving },
        flags: F::NO_CONSOLE,
        console: None,
    },
    HttpReqConnectionReused {
        tag: "http_req_connection_reused",
        header: "HTTP Connection Reused",
        description: "1 when the request went on a connection already open (kept alive, or opened before the run), else 0.",
        unit: Ratio,
        kind: Record { population: Succeeded, formula: formulas::http_req_connection_reused },
        flags: F::NO_CONSOLE,
        console: None,
    },
    HttpReqDataSent {
        tag: "http_req_data_sent",
        header: "HTTP Data Sent",
        description: "The request body's bytes (the head left out, as AIPerf counts them).",
        unit: Kilobytes,
        kind: Record { population: Succeeded, formula: formulas::http_req_data_sent },
        flags: F::NO_CONSOLE,
        console: None,
    },
    HttpReqChunksSent {
        tag: "http_req_chunks_sent",
        header: "HTTP Chunks Sent",
        description: "Writes that carried the request.",
        unit: Count,
        kind: Record { population: Succeeded, formula: formulas::http_req_chunks_sent },
        flags: F::NO_CONSOLE,
        console: None,
    },
    HttpReqDataReceived {
        tag: "http_req_data_received",
        header: "HTTP Data Received",
        description: "The response body's data bytes (head and chunked framing left out, as AIPerf counts them).",
        unit: Kilobytes,
        kind: Record { population: Succeeded, formula: formulas::http_req_data_received },
        flags: F::NO_CONSOLE,
        console: None,
    },
    HttpReqChunksReceived {
        tag: "http_req_chunks_received",
        header: "HTTP Chunks Received",
        description: "Reads that yielded the response's body data (a body taken whole counts as one).",
        unit: Count,
        kind: Record { population: Succeeded, formula: formulas::http_req_chunks_received },
        flags: F::NO_CONSOLE,
        console: None,
    },
    HttpReqConnectionOverhead {
        tag: "http_req_connection_overhead",
        header: "HTTP Connection Overhead",
        description: "blocked + DNS lookup + connecting.",
        unit: Milliseconds,
        kind: Record { population: Succeeded, formula: formulas::http_req_connection_overhead },
        flags: F::NO_CONSOLE,
        console: None,
    },
    HttpReqDuration {
        tag: "http_req_duration",
        header: "HTTP Duration (excl. conn)",
        description: "From the request's first bytes written to the response's last: sending + waiting + receiving, without the connection's setup.",
        unit: Milliseconds,
        kind: Record { population: Succeeded, formula: formulas::http_req_duration },
        flags: F::NO_CONSOLE,
        console: None,
    },
    HttpReqTotal {
        tag: "http_req_total",
        header: "HTTP Total Time",
        description: "Every phase added up: blocked + DNS lookup + connecting + sending + waiting + receiving.",
        unit: Milliseconds,
        kind: Record { population: Succeeded, formula: formulas::http_req_total },
        flags: F::NO_CONSOLE,
        console: None,
    },
    EffectiveConcurrency {
        tag: "effective_concurrency",
        header: "Effective Concurrency",
        description: "Requests in flight (failed and cancelled ones too), time-weighted over the benchmark's window.",
        unit: Requests,
        kind: TimeWeighted { curve: Curve::Concurrency, active_only: false },
        flags: F::EFFECTIVE_TABLE,
        console: Some(3000),
    },
    EffectiveDecodeThroughput {
        tag: "effective_decode_throughput",
        header: "Effective Decode Throughput",
        description: "Output tokens per second being generated: each streamed request's tokens after its first spread evenly over its decode time, time-weighted over the window.",
        unit: TokensPerSecond,
        kind: TimeWeighted { curve: Curve::DecodeThroughput, active_only: false },
        flags: F::EFFECTIVE_TABLE,
        console: Some(3100),
    },
    EffectivePrefillThroughput {
        tag: "effective_prefill_throughput",
        header: "Effective Prefill Throughput",
        description: "Input tokens per second being processed: each streamed request's input tokens spread evenly over its time to first token, time-weighted over the window.",
        unit: TokensPerSecond,
        kind: TimeWeighted { curve: Curve::PrefillThroughput, active_only: false },
        flags: F::EFFECTIVE_TABLE,
        console: Some(3200),
    },
    EffectiveDecodeConcurrency {
        tag: "effective_decode_concurrency",
        header: "Effective Decode Concurrency",
        description: "Streamed requests between their first token and their end, time-weighted over the window.",
        unit: Requests,
        kind: TimeWeighted { curve: Curve::DecodeConcurrency, active_only: false },
        flags: F::EFFECTIVE_TABLE,
        console: Some(3300),
    },
    EffectivePrefillConcurrency {
        tag: "effective_prefill_concurrency",
        header: "Effective Prefill Concurrency",
        description: "Streamed requests between their send and their first token, time-weighted over the window.",
        unit: Requests,
        kind: TimeWeighted { curve: Curve::PrefillConcurrency, active_only: false },
        flags: F::EFFECTIVE_TABLE,
        console: Some(3400),
    },
    EffectiveTotalThroughput {
        tag: "effective_total_throughput",
        header: "Effective Total Throughput",
        description: "Prefill and decode throughput together, time-weighted over the window.",
        unit: TokensPerSecond,
        kind: TimeWeighted { curve: Curve::TotalThroughput, active_only: false },
        flags: F::EFFECTIVE_TABLE,
        console: Some(3500),
    },
    EffectiveDecodeThroughputPerUser {
        tag: "effective_decode_throughput_per_user",
        header: "Effective Decode Throughput Per User",
        description: "Decode throughput divided by the requests in decode (0 while none is), time-weighted over the window.",
        unit: TokensPerSecondPerUser,
        kind: TimeWeighted { curve: Curve::DecodeThroughputPerUser, active_only: false },
        flags: F::EFFECTIVE_TABLE,
        console: Some(3600),
    },
    EffectivePrefillThroughputPerUser {
        tag: "effective_prefill_throughput_per_user",
        header: "Effective Prefill Throughput Per User",
        description: "Prefill throughput divided by the requests in prefill (0 while none is), time-weighted over the window.",
        unit: TokensPerSecondPerUser,
        kind: TimeWeighted { curve: Curve::PrefillThroughputPerUser, active_only: false },
        flags: F::EFFECTIVE_TABLE,
        console: Some(3700),
    },
    TokensInFlight {
        tag: "tokens_in_flight",
        header: "Tokens In Flight",
        description: "Tokens the server holds for the requests in flight: input tokens from a request's send, output tokens from its first token, to its end; time-weighted over the window.",
        unit: Tokens,
        kind: TimeWeighted { curve: Curve::TokensInFlight, active_only: false },
        flags: F::EFFECTIVE_TABLE,
        console: Some(3800),
    },
    ActiveDecodeThroughput {
        tag: "active_decode_throughput",
        header: "Active Decode Throughput",
        description: "Decode throughput, time-weighted over only the moments some request is in decode.",
        unit: TokensPerSecond,
        kind: TimeWeighted { curve: Curve::DecodeThroughput, active_only: true },
        flags: F::ACTIVE_TABLE,
        console: Some(4000),
    },
    ActivePrefillThroughput {
        tag: "active_prefill_throughput",
        header: "Active Prefill Throughput",
        description: "Prefill throughput, time-weighted over only the moments some request is in prefill.",
        unit: TokensPerSecond,
        kind: TimeWeighted { curve: Curve::PrefillThroughput, active_only: true },
        flags: F::ACTIVE_TABLE,
        console: Some(4100),
    },
    ActiveDecodeThroughputPerUser {
        tag: "active_decode_throughput_per_user",
        header: "Active Decode Throughput Per User",
        description: "Decode throughput per request in decode, over only the moments some request is in decode.",
        unit: TokensPerSecondPerUser,
        kind: TimeWeighted { curve: Curve::DecodeThroughputPerUser, active_only: true },
        flags: F::ACTIVE_TABLE,
        console: Some(4200),
    },
    ActivePrefillThroughputPerUser {
        tag: "active_prefill_throughput_per_user",
        header: "Active Prefill Throughput Per User",
        description: "Prefill throughput per request in prefill, over only the moments some request is in prefill.",
        unit: TokensPerSecondPerUser,
        kind: TimeWeighted { curve: Curve::PrefillThroughputPerUser, active_only: true },
        flags: F::ACTIVE_TABLE,
        console: Some(4300),
    },
    ActiveTotalThroughput {
        tag: "active_total_throughput",
        header: "Active Total Throughput",
        description: "Prefill and decode throughput together, over only the moments some request is in flight.",
        unit: TokensPerSecond,
        kind: TimeWeighted { curve: Curve::TotalThroughput, active_only: true },
        flags: F::ACTIVE_TABLE,
        console: Some(4400),
    },
}

impl MetricId {
    /// The metric's row of [`METRICS`].
    pub fn def(self) -> &'static MetricDef {
        &METRICS[self as usize]
    }

    /// The metric's tag.
    pub fn tag(self) -> &'static str {
        self.def().tag
    }

    /// The metric with this AIPerf tag.
    pub fn from_tag(tag: &str) -> Option<Self> {
        METRICS.iter().find(|def| def.tag == tag).map(|def| def.id)
    }

    /// How many metrics there are.
    pub fn count() -> usize {
        METRICS.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_row_sits_at_its_discriminant() {
        for (row, def) in METRICS.iter().enumerate() {
            assert_eq!(def.id as usize, row, "{}", def.tag);
            assert_eq!(MetricId::from_tag(def.tag), Some(def.id));
        }
    }

    #[test]
    fn tags_headers_and_console_orders_are_unique() {
        let tags: HashSet<_> = METRICS.iter().map(|d| d.tag).collect();
        let headers: HashSet<_> = METRICS.iter().map(|d| d.header).collect();
        let orders: Vec<_> = METRICS.iter().filter_map(|d| d.console_order).collect();
        assert_eq!(tags.len(), METRICS.len());
        assert_eq!(headers.len(), METRICS.len());
        assert_eq!(orders.iter().collect::<HashSet<_>>().len(), orders.len());
    }

    #[test]
    fn tags_are_snake_case_and_descriptions_are_sentences() {
        for def in METRICS {
            assert!(
                def.tag
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
            );
            assert!(def.description.ends_with('.'), "{}", def.tag);
            assert!(!def.header.is_empty());
        }
    }

    #[test]
    fn hidden_metrics_have_no_console_order() {
        for def in METRICS {
            if def.flags.contains(MetricFlags::NO_CONSOLE)
                || def.flags.contains(MetricFlags::ERROR_ONLY)
            {
                assert_eq!(def.console_order, None, "{}", def.tag);
            }
        }
    }

    #[test]
    fn aiperf_declared_metrics_come_first_in_its_order() {
        // AIPerf 0.13's JsonExportData declares these fields in this order (with
        // min_request_timestamp and max_response_timestamp, internal metrics it never writes).
        let aiperf = [
            "request_throughput",
            "request_latency",
            "request_count",
            "time_to_first_token",
            "time_to_second_token",
            "inter_token_latency",
            "output_token_throughput",
            "output_token_throughput_per_user",
            "output_sequence_length",
            "input_sequence_length",
            "goodput",
            "good_request_count",
            "output_token_count",
            "reasoning_token_count",
            "inter_chunk_latency",
            "total_output_tokens",
            "total_reasoning_tokens",
            "benchmark_duration",
            "total_isl",
            "total_osl",
            "error_request_count",
            "error_isl",
            "total_error_isl",
        ];
        let ours: Vec<&str> = METRICS.iter().take(aiperf.len()).map(|d| d.tag).collect();
        assert_eq!(ours, aiperf);
    }

    #[test]
    fn units_convert_from_base_units() {
        assert_eq!(Unit::Milliseconds.scale_from_base() * 79_700_000.0, 79.7);
        assert_eq!(Unit::Seconds.scale_from_base() * 2_500_000_000.0, 2.5);
        assert_eq!(Unit::Tokens.scale_from_base(), 1.0);
        assert!(Unit::Tokens.is_integral() && !Unit::Milliseconds.is_integral());
    }

    #[test]
    fn flags_combine() {
        let f = F::STREAMING_ONLY | F::LARGER_IS_BETTER;
        assert!(f.contains(F::STREAMING_ONLY) && f.contains(F::LARGER_IS_BETTER));
        assert!(!f.contains(F::NO_CONSOLE));
        assert_eq!(
            F::STREAMING_TOKENS_ONLY,
            F::STREAMING_ONLY | F::PRODUCES_TOKENS_ONLY
        );
    }
}
