//! The simulated engine's flags, defined once and shared by `aiperf mock-server` (which serves
//! the engine over HTTP) and `aiperf profile` (which runs it in process when no `--url` is
//! given). Each flag is optional: an unset flag keeps `EngineConfig::default()`.
//!
//! The engine's own faults (`aiperf_core::engine::Fault` of the engine layer: rate limits,
//! stalls, invalid JSON, streams without `[DONE]` or usage) are flags here, since the engine
//! makes them wherever it runs. The wire faults (resets, malformed SSE, slow headers) are
//! `aiperf mock-server`'s own flags: in process there is no connection to break.

use std::time::Duration;

use aiperf_core::engine::{EngineConfig, Fault, FaultConfig};
use anyhow::Context;

use crate::flag_values::whole_number;

/// How the simulated engine behaves; unset flags keep the engine's defaults.
#[derive(Debug, Clone, Default, clap::Args, serde::Serialize)]
#[group(skip)]
pub(crate) struct EngineArgs {
    /// Time from admission to the first token, in milliseconds [default: 20].
    #[arg(long, help_heading = "Simulated engine")]
    pub ttft_ms: Option<f64>,
    /// Time between tokens, in milliseconds [default: 2].
    #[arg(long, help_heading = "Simulated engine")]
    pub itl_ms: Option<f64>,
    /// Tokens per streamed chunk (a chunk is sent every ITL × this) [default: 1].
    #[arg(value_parser = whole_number::<u32>, long, help_heading = "Simulated engine")]
    pub tokens_per_chunk: Option<u32>,
    /// Output length of requests that set no max_tokens [default: 64].
    #[arg(value_parser = whole_number::<u32>, long, help_heading = "Simulated engine")]
    pub output_tokens: Option<u32>,
    /// Extra time to first token per prompt token, in microseconds [default: 0].
    #[arg(long, help_heading = "Simulated engine")]
    pub prefill_us_per_token: Option<f64>,
    /// Requests generating at once; later ones wait in FIFO order [default: 256].
    #[arg(value_parser = whole_number::<usize>, long, help_heading = "Simulated engine")]
    pub max_batch: Option<usize>,
    /// Fraction of requests answered with an error status (0 to 1), chosen by seed and request
    /// id [default: 0]. Drawn apart from the injected faults, which apply to the other
    /// requests (--error-rate 0.3 --rate-limit-rate 0.3 answers 30% with errors and 21% with
    /// 429s).
    #[arg(long, help_heading = "Simulated engine")]
    pub error_rate: Option<f64>,
    /// The status of the --error-rate answers, 400 to 599 [default: 500].
    #[arg(value_parser = whole_number::<u16>, long, help_heading = "Simulated engine")]
    pub error_status: Option<u16>,
    /// Probability per token, after min_tokens, that an answer stops early (0 to 1)
    /// [default: 0].
    #[arg(long, help_heading = "Simulated engine")]
    pub eos_rate: Option<f64>,
    /// Fraction of requests answered with 429 Too Many Requests and a retry-after header
    /// [default: 0]. Fault rates are exclusive slices of one draw per request (seed and
    /// request id): together they may not exceed 1.
    #[arg(long, help_heading = "Injected faults")]
    pub rate_limit_rate: Option<f64>,
    /// The retry-after of 429 answers, in seconds [default: 1].
    #[arg(value_parser = whole_number::<u32>, long, help_heading = "Injected faults")]
    pub retry_after_seconds: Option<u32>,
    /// How long a stall (and mock-server's slow headers) lasts, in milliseconds [default: 1000].
    #[arg(long, help_heading = "Injected faults")]
    pub stall_ms: Option<f64>,
    /// Fraction of requests that send nothing for --stall-ms before the first token
    /// [default: 0].
    #[arg(long, help_heading = "Injected faults")]
    pub stall_before_first_token_rate: Option<f64>,
    /// Fraction of requests that send nothing for --stall-ms halfway through the answer
    /// [default: 0].
    #[arg(long, help_heading = "Injected faults")]
    pub stall_between_tokens_rate: Option<f64>,
    /// Fraction of requests with one chunk (the middle one, or a whole body) cut to invalid
    /// JSON [default: 0].
    #[arg(long, help_heading = "Injected faults")]
    pub invalid_json_rate: Option<f64>,
    /// Fraction of streams that end without `data: [DONE]` [default: 0].
    #[arg(long, help_heading = "Injected faults")]
    pub no_done_rate: Option<f64>,
    /// Fraction of streams without the usage chunk, even when asked for [default: 0].
    #[arg(long, help_heading = "Injected faults")]
    pub no_usage_rate: Option<f64>,
}

impl EngineArgs {
    /// The flags given, by name, for messages about flags that do not apply.
    pub(crate) fn given(&self) -> Vec<&'static str> {
        let flags = [
            ("--ttft-ms", self.ttft_ms.is_some()),
            ("--itl-ms", self.itl_ms.is_some()),
            ("--tokens-per-chunk", self.tokens_per_chunk.is_some()),
            ("--output-tokens", self.output_tokens.is_some()),
            (
                "--prefill-us-per-token",
                self.prefill_us_per_token.is_some(),
            ),
            ("--max-batch", self.max_batch.is_some()),
            ("--error-rate", self.error_rate.is_some()),
            ("--error-status", self.error_status.is_some()),
            ("--eos-rate", self.eos_rate.is_some()),
            ("--rate-limit-rate", self.rate_limit_rate.is_some()),
            ("--retry-after-seconds", self.retry_after_seconds.is_some()),
            ("--stall-ms", self.stall_ms.is_some()),
        ];
        let faults = self
            .fault_rates()
            .map(|(flag, _, rate)| (flag, rate.is_some()));
        flags
            .into_iter()
            .chain(faults)
            .filter(|(_, given)| *given)
            .map(|(flag, _)| flag)
            .collect()
    }

    /// The engine configuration: the defaults, with every given flag applied and checked;
    /// `seed` drives the engine's random choices (errors, early stops, answer words).
    pub(crate) fn engine_config(&self, seed: u64) -> anyhow::Result<EngineConfig> {
        let defaults = EngineConfig::default();
        let config = EngineConfig {
            ttft: duration_flag("--ttft-ms", self.ttft_ms, 1e-3)?.unwrap_or(defaults.ttft),
            itl: duration_flag("--itl-ms", self.itl_ms, 1e-3)?.unwrap_or(defaults.itl),
            tokens_per_chunk: self.tokens_per_chunk.unwrap_or(defaults.tokens_per_chunk),
            default_output_tokens: self.output_tokens.unwrap_or(defaults.default_output_tokens),
            prefill_per_input_token: duration_flag(
                "--prefill-us-per-token",
                self.prefill_us_per_token,
                1e-6,
            )?
            .unwrap_or(defaults.prefill_per_input_token),
            max_batch: self.max_batch.unwrap_or(defaults.max_batch),
            error_rate: self.error_rate.unwrap_or(defaults.error_rate),
            error_status: self.error_status.unwrap_or(defaults.error_status),
            eos_rate: self.eos_rate.unwrap_or(defaults.eos_rate),
            faults: self.fault_config(defaults.faults)?,
            seed,
            ..defaults
        };
        config
            .validate()
            .context("invalid simulated-engine flags")?;
        Ok(config)
    }

    /// Each engine fault's rate flag, with its fault and value.
    fn fault_rates(&self) -> [(&'static str, Fault, Option<f64>); 6] {
        [
            (
                "--rate-limit-rate",
                Fault::RateLimited,
                self.rate_limit_rate,
            ),
            (
                "--stall-before-first-token-rate",
                Fault::StallBeforeFirstToken,
                self.stall_before_first_token_rate,
            ),
            (
                "--stall-between-tokens-rate",
                Fault::StallBetweenTokens,
                self.stall_between_tokens_rate,
            ),
            (
                "--invalid-json-rate",
                Fault::InvalidJson,
                self.invalid_json_rate,
            ),
            ("--no-done-rate", Fault::NoDone, self.no_done_rate),
            ("--no-usage-rate", Fault::NoUsage, self.no_usage_rate),
        ]
    }

    /// `defaults` with the given fault flags applied (checked with the whole configuration).
    fn fault_config(&self, mut faults: FaultConfig) -> anyhow::Result<FaultConfig> {
        for (_, fault, rate) in self.fault_rates() {
            if let Some(rate) = rate {
                faults.set_rate(fault, rate);
            }
        }
        if let Some(stall) = duration_flag("--stall-ms", self.stall_ms, 1e-3)? {
            faults.stall = stall;
        }
        if let Some(seconds) = self.retry_after_seconds {
            faults.retry_after_seconds = seconds;
        }
        Ok(faults)
    }
}

/// A duration flag given in `unit_seconds` units (1e-3 for ms).
fn duration_flag(
    flag: &str,
    value: Option<f64>,
    unit_seconds: f64,
) -> anyhow::Result<Option<Duration>> {
    value
        .map(|value| {
            Duration::try_from_secs_f64(value * unit_seconds)
                .map_err(|_| anyhow::anyhow!("{flag} is {value}: give a non-negative number"))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_flags_keep_the_defaults_and_set_ones_apply() {
        let defaults = EngineConfig::default();
        assert_eq!(
            EngineArgs::default().engine_config(defaults.seed).unwrap(),
            defaults
        );
        let args = EngineArgs {
            ttft_ms: Some(50.0),
            prefill_us_per_token: Some(2.0),
            ..EngineArgs::default()
        };
        let config = args.engine_config(9).unwrap();
        assert_eq!(config.ttft, Duration::from_millis(50));
        assert_eq!(config.prefill_per_input_token, Duration::from_micros(2));
        assert_eq!(config.seed, 9);
        assert_eq!(config.itl, EngineConfig::default().itl);
        assert_eq!(args.given(), ["--ttft-ms", "--prefill-us-per-token"]);
    }

    #[test]
    fn fault_flags_set_the_fault_plan() {
        let args = EngineArgs {
            no_done_rate: Some(0.25),
            stall_before_first_token_rate: Some(0.5),
            stall_ms: Some(250.0),
            retry_after_seconds: Some(3),
            error_status: Some(503),
            ..EngineArgs::default()
        };
        let config = args.engine_config(0).unwrap();
        assert_eq!(config.faults.rate(Fault::NoDone), 0.25);
        assert_eq!(config.faults.rate(Fault::StallBeforeFirstToken), 0.5);
        assert_eq!(config.faults.rate(Fault::InvalidJson), 0.0);
        assert_eq!(config.faults.stall, Duration::from_millis(250));
        assert_eq!(config.faults.retry_after_seconds, 3);
        assert_eq!(config.error_status, 503);
        assert_eq!(
            args.given(),
            [
                "--error-status",
                "--retry-after-seconds",
                "--stall-ms",
                "--stall-before-first-token-rate",
                "--no-done-rate"
            ]
        );
        let over = EngineArgs {
            no_done_rate: Some(0.6),
            no_usage_rate: Some(0.6),
            ..EngineArgs::default()
        };
        let message = format!("{:#}", over.engine_config(0).unwrap_err());
        assert!(message.contains("at most 1"), "{message}");
    }

    #[test]
    fn bad_values_name_the_flag() {
        let args = EngineArgs {
            itl_ms: Some(-1.0),
            ..EngineArgs::default()
        };
        let message = format!("{:#}", args.engine_config(0).unwrap_err());
        assert!(message.contains("--itl-ms is -1"), "{message}");
    }
}
