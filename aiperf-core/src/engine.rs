//! The simulated LLM engine behind the embedded default (DESIGN.md §6): the `in_engine`
//! transport runs it inside the process and `aiperf mock-server` serves it over HTTP, so both
//! have known truth.

use std::time::Duration;

/// How the simulated engine behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Time from admission to the first token, before the prefill cost.
    pub ttft: Duration,
    /// Time between consecutive tokens.
    pub itl: Duration,
    /// Tokens sent per streamed chunk.
    pub tokens_per_chunk: u32,
    /// Output length when the request sets no `max_tokens`.
    pub default_output_tokens: u32,
    /// Extra time to first token per input token.
    pub prefill_per_input_token: Duration,
    /// Requests served at once; beyond it requests queue.
    pub max_batch: usize,
    /// Fraction of requests answered with HTTP 500 (0 to 1).
    pub error_rate: f64,
    /// Seed of the engine's random choices (errors, EOS).
    pub seed: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            ttft: Duration::from_millis(20),
            itl: Duration::from_millis(5),
            tokens_per_chunk: 1,
            default_output_tokens: 64,
            prefill_per_input_token: Duration::ZERO,
            max_batch: 256,
            error_rate: 0.0,
            seed: 0,
        }
    }
}
