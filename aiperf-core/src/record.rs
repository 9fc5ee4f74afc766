//! The request record: everything measured about one request, kept compact while the run goes
//! on and turned into metrics after it (DESIGN.md §4). Every request ends as exactly one record:
//! success, error or cancelled.

use serde::Serialize;

use crate::endpoint::{ResponseText, Usage};
use crate::http_trace::HttpTrace;

/// Which part of the run a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// `--warmup-request-count` requests: sent, recorded, excluded from the metrics.
    Warmup,
    /// The measured requests.
    Profiling,
}

impl Phase {
    /// The name used in exports (`benchmark_phase`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warmup => "warmup",
            Self::Profiling => "profiling",
        }
    }
}

/// Why a request did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ErrorInfo {
    /// The status code, when the server sent one.
    pub code: Option<u16>,
    /// The kind of error, as the error summary groups them: an HTTP status's reason phrase
    /// (`Internal Server Error`, as AIPerf names them), else `TimeoutError`, `ConnectionError`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// What happened.
    pub message: String,
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// A complete response.
    Success,
    /// A failure; the record keeps whatever had arrived.
    Error(ErrorInfo),
    /// Cancelled on purpose (`--request-cancellation-rate`) or by the run (its end, Ctrl-C).
    Cancelled(Cancellation),
}

impl Outcome {
    /// Whether the request was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Cancelled(_))
    }
}

/// Why a request was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Cancellation {
    /// `--request-cancellation-rate` picked it: cancelled this long after it was sent
    /// (`--request-cancellation-delay`).
    OnPurpose {
        /// The delay, in milliseconds.
        after_ms: u64,
    },
    /// The run cancelled it: the duration's grace period ended, or the user interrupted.
    ByTheRun,
}

impl Cancellation {
    /// The error it is reported with, as AIPerf reports cancellations: code 499,
    /// `RequestCancellationError`, and AIPerf's message for each cause.
    pub fn error(self) -> ErrorInfo {
        let message = match self {
            Self::OnPurpose { after_ms } => {
                format!(
                    "Request cancelled {:.3}s after being sent",
                    after_ms as f64 / 1e3
                )
            }
            Self::ByTheRun => "Request cancelled by external signal".to_owned(),
        };
        ErrorInfo {
            code: Some(499),
            kind: "RequestCancellationError".to_owned(),
            message,
        }
    }
}

/// Token counts for one request from one source (the server's usage or the client tokenizer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TokenCounts {
    /// Prompt tokens.
    pub input: Option<u64>,
    /// Answer tokens, reasoning excluded.
    pub output: Option<u64>,
    /// Reasoning tokens.
    pub reasoning: Option<u64>,
}

/// Everything measured about one request. Timestamps are [`crate::clock::now_ns`] readings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// The `X-Request-ID` sent.
    pub request_id: String,
    /// The conversation (dataset session) this request belongs to.
    pub conversation_id: String,
    /// The id of this run of the conversation (`x_correlation_id`): shared by its turns,
    /// different each time the conversation is sent again.
    pub correlation_id: String,
    /// The turn's index within its conversation.
    pub turn_index: u32,
    /// The request's number within its phase, from 0, in the order requests were let go
    /// (AIPerf 0.13 writes its per-phase credit number as `session_num`).
    pub session_num: u64,
    /// Warm-up or profiling.
    pub phase: Phase,
    /// When the schedule meant to send it.
    pub scheduled_ns: u64,
    /// When it was actually sent (`request_start_ns`): latencies are measured from here.
    pub start_ns: u64,
    /// When the response headers arrived.
    pub ack_ns: Option<u64>,
    /// When it ended: last byte, error or cancellation.
    pub end_ns: u64,
    /// Arrival time of each chunk that counts as a response (non-empty content or reasoning).
    pub response_ns: Vec<u64>,
    /// Arrival time of the first chunk with non-reasoning content.
    pub first_output_ns: Option<u64>,
    /// The text received.
    pub text: ResponseText,
    /// The server's last non-null usage.
    pub usage: Option<Usage>,
    /// The client tokenizer's counts, filled after the run (prompt tokens at dataset time).
    pub client_tokens: TokenCounts,
    /// The output length the request asked for (its `max_tokens`), when it named one.
    pub requested_output_tokens: Option<u64>,
    /// How it ended.
    pub outcome: Outcome,
    /// What its HTTP transport saw of the exchange on the wire, when it sees it.
    pub http_trace: Option<HttpTrace>,
}

impl RequestRecord {
    /// The gap between the intended and the actual send time (dispatch lag).
    pub fn dispatch_lag_ns(&self) -> u64 {
        self.start_ns.saturating_sub(self.scheduled_ns)
    }

    /// Whether the request succeeded.
    pub fn is_success(&self) -> bool {
        self.outcome == Outcome::Success
    }

    /// The server's token counts, as the metric contract reads them: output excludes reasoning
    /// (OpenAI's `completion_tokens` includes it).
    pub fn server_tokens(&self) -> TokenCounts {
        let Some(usage) = self.usage else {
            return TokenCounts::default();
        };
        let reasoning = usage.reasoning_tokens;
        TokenCounts {
            input: usage.prompt_tokens,
            output: usage
                .completion_tokens
                .map(|c| c.saturating_sub(reasoning.unwrap_or(0))),
            reasoning,
        }
    }
}
