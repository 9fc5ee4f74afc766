//! What the user chose that shapes the metrics: streaming or not, which token counts to trust,
//! goodput SLOs and the thresholds behind the run's warnings.

use super::goodput::Slo;
use crate::record::{RequestRecord, TokenCounts};

/// Where token counts (input and output sequence lengths) come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenSource {
    /// The server's `usage` when the response carried it, else the client tokenizer
    /// (DESIGN.md §5). Prompt and output counts are chosen separately, since a server may
    /// report one without the other.
    #[default]
    ServerWhenPresent,
    /// Only the server's `usage` (`--use-server-token-count`); requests without usage have
    /// no token metrics.
    Server,
    /// Only the client tokenizer (AIPerf's default).
    Client,
}

impl TokenSource {
    /// The counts of `record` this source selects.
    pub fn select(self, record: &RequestRecord) -> TokenCounts {
        let server = record.server_tokens();
        let client = record.client_tokens;
        match self {
            Self::Server => server,
            Self::Client => client,
            Self::ServerWhenPresent => {
                // Output and reasoning go together: a server that reports completion tokens
                // without the reasoning detail counts reasoning inside its output.
                let (output, reasoning) = if server.output.is_some() {
                    (server.output, server.reasoning)
                } else {
                    (client.output, client.reasoning)
                };
                TokenCounts {
                    input: server.input.or(client.input),
                    output,
                    reasoning,
                }
            }
        }
    }
}

/// The metric options of one run.
#[derive(Debug, Clone)]
pub struct MetricOptions {
    /// Responses were streamed (`--streaming`): streaming-only metrics (TTFT, ITL, ...) apply.
    pub streaming: bool,
    /// The endpoint generates tokens (chat, completions; not embeddings): token metrics apply.
    pub produces_tokens: bool,
    /// Where token counts come from.
    pub token_source: TokenSource,
    /// `--goodput` SLOs; empty for none.
    pub goodput: Vec<Slo>,
    /// A request whose server and client token counts differ by more than this percentage
    /// counts in `usage_discrepancy_count` (AIPerf's default: 10).
    pub usage_discrepancy_threshold_pct: f64,
    /// The run is flagged as having fallen behind its schedule when the dispatch lag's p99
    /// exceeds this many milliseconds.
    ///
    /// The default, 10 ms, is an order of magnitude above what a healthy client shows (tokio
    /// timers fire within about a millisecond of their deadline, and dispatching costs
    /// microseconds), and at the scale where it starts to distort what is measured: a request
    /// sent 10 ms late hides 10 ms from its TTFT and shifts the offered load. AIPerf flags
    /// trace replay at 500 ms, but measures lag relative to the least-late request of a Python
    /// event loop; our lag is absolute, from each request's own deadline.
    pub behind_schedule_threshold_ms: f64,
}

impl Default for MetricOptions {
    fn default() -> Self {
        Self {
            streaming: true,
            produces_tokens: true,
            token_source: TokenSource::default(),
            goodput: Vec::new(),
            usage_discrepancy_threshold_pct: 10.0,
            behind_schedule_threshold_ms: 10.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Usage;
    use crate::metrics::tests::record;

    #[test]
    fn server_counts_win_when_present_output_and_reasoning_together() {
        let mut r = record();
        r.client_tokens = TokenCounts {
            input: Some(100),
            output: Some(40),
            reasoning: Some(10),
        };
        r.usage = Some(Usage {
            prompt_tokens: Some(102),
            completion_tokens: Some(55),
            ..Usage::default()
        });
        let auto = TokenSource::ServerWhenPresent.select(&r);
        // The server's 55 completion tokens include its reasoning: no client reasoning added.
        assert_eq!(
            auto,
            TokenCounts {
                input: Some(102),
                output: Some(55),
                reasoning: None
            }
        );
        assert_eq!(TokenSource::Client.select(&r), r.client_tokens);
        assert_eq!(TokenSource::Server.select(&r).output, Some(55));
    }

    #[test]
    fn client_counts_fill_in_what_the_server_did_not_report() {
        let mut r = record();
        r.client_tokens = TokenCounts {
            input: Some(100),
            output: Some(40),
            reasoning: Some(10),
        };
        r.usage = Some(Usage {
            prompt_tokens: Some(101),
            ..Usage::default()
        });
        let auto = TokenSource::ServerWhenPresent.select(&r);
        assert_eq!(
            auto,
            TokenCounts {
                input: Some(101),
                output: Some(40),
                reasoning: Some(10)
            }
        );
        r.usage = None;
        assert_eq!(TokenSource::ServerWhenPresent.select(&r), r.client_tokens);
        assert_eq!(TokenSource::Server.select(&r), TokenCounts::default());
    }
}
