//! The simulated engine's flags, defined once and shared by `aiperf mock-server` (which serves
//! the engine over HTTP) and `aiperf profile` (which runs it in process when no `--url` is
//! given). Each flag is optional: an unset flag keeps `EngineConfig::default()`.

use std::time::Duration;

use aiperf_core::engine::EngineConfig;
use anyhow::Context;

/// How the simulated engine behaves; unset flags keep the engine's defaults.
#[derive(Debug, Clone, Default, clap::Args, serde::Serialize)]
pub(crate) struct EngineArgs {
    /// Time from admission to the first token, in milliseconds [default: 20].
    #[arg(long, help_heading = "Simulated engine")]
    pub ttft_ms: Option<f64>,
    /// Time between tokens, in milliseconds [default: 2].
    #[arg(long, help_heading = "Simulated engine")]
    pub itl_ms: Option<f64>,
    /// Tokens per streamed chunk (a chunk is sent every ITL × this) [default: 1].
    #[arg(long, help_heading = "Simulated engine")]
    pub tokens_per_chunk: Option<u32>,
    /// Output length of requests that set no max_tokens [default: 64].
    #[arg(long, help_heading = "Simulated engine")]
    pub output_tokens: Option<u32>,
    /// Extra time to first token per prompt token, in microseconds [default: 0].
    #[arg(long, help_heading = "Simulated engine")]
    pub prefill_us_per_token: Option<f64>,
    /// Requests generating at once; later ones wait in FIFO order [default: 256].
    #[arg(long, help_heading = "Simulated engine")]
    pub max_batch: Option<usize>,
    /// Fraction of requests answered with HTTP 500 (0 to 1), chosen by seed and request id
    /// [default: 0].
    #[arg(long, help_heading = "Simulated engine")]
    pub error_rate: Option<f64>,
    /// Probability per token, after min_tokens, that an answer stops early (0 to 1)
    /// [default: 0].
    #[arg(long, help_heading = "Simulated engine")]
    pub eos_rate: Option<f64>,
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
            ("--eos-rate", self.eos_rate.is_some()),
        ];
        flags
            .into_iter()
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
            eos_rate: self.eos_rate.unwrap_or(defaults.eos_rate),
            seed,
            ..defaults
        };
        config
            .validate()
            .context("invalid simulated-engine flags")?;
        Ok(config)
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
    fn bad_values_name_the_flag() {
        let args = EngineArgs {
            itl_ms: Some(-1.0),
            ..EngineArgs::default()
        };
        let message = format!("{:#}", args.engine_config(0).unwrap_err());
        assert!(message.contains("--itl-ms is -1"), "{message}");
    }
}
