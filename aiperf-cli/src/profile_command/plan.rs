//! From flags to a checked plan: every flag combination is validated before anything runs
//! (each error says what to change), and what depends on the dataset (fixed schedule, default
//! request count) is settled once it is loaded.

use std::path::PathBuf;
use std::time::Duration;

use super::args::{ArrivalPatternArg, ExportLevelArg, ProfileArgs, WindowStyleArg};
use aiperf_core::dataset::custom::{CustomDatasetConfig, CustomDatasetType};
use aiperf_core::dataset::range_ratio::{RangeRatio, WindowStyle};
use aiperf_core::dataset::synthetic::{LengthDistribution, SyntheticConfig, TurnDelay};
use aiperf_core::dataset::{
    Conversation, PrefixConfig, PromptWords, SamplingStrategy, ScheduleWindow, SystemPrompt,
};
use aiperf_core::endpoint::EndpointContext;
use aiperf_core::export::ArtifactDir;
use aiperf_core::metrics::{MetricOptions, TokenSource, parse_goodput};
use aiperf_core::runner::{CancellationPolicy, RunPlan, StopCondition};
use aiperf_core::schedule::{ArrivalPattern, LoadMode};
use aiperf_core::tokenizer::hub_cache::{self, HubCache};
use aiperf_core::tokenizer::{Tokenizer, TokenizerError};
use aiperf_core::transport::TransportContext;
use anyhow::{Context, anyhow, bail};
use serde_json::{Map, Value};

use super::pairs::{PairsOf, header_value, pairs};
use crate::verbosity::{LogLevel, say};

/// The validated form of [`ProfileArgs`]: every combination checked, every string parsed.
#[derive(Debug)]
pub(crate) struct Profile {
    /// The `--model` names, at least one; the endpoint context names the first.
    pub(crate) models: Vec<String>,
    pub(crate) plan: RunPlan,
    pub(crate) metric_options: MetricOptions,
    pub(crate) endpoint_ctx: EndpointContext,
    /// The transport context of the first `--url` (or of the built-in engine without one).
    pub(crate) transport_ctx: TransportContext,
    /// Every `--url`, normalized; the conversations go to each in turn.
    pub(crate) urls: Vec<String>,
    /// The base name of the exports (`--profile-export-prefix`), checked.
    pub(crate) export_prefix: Option<String>,
    pub(crate) dataset: DatasetSource,
    pub(crate) sampling: SamplingStrategy,
    pub(crate) tokenizer: Tokenizer,
    pub(crate) artifact_dir: PathBuf,
}

impl Profile {
    /// The transport context of each server: one per `--url`, or the built-in engine's
    /// without one. Each is sized for every request in flight: the round robin shares the
    /// conversations' starts, not the requests in flight, and a server holding more than its
    /// share must not open connections inside requests' measured times.
    pub(crate) fn transport_contexts(&self) -> Vec<TransportContext> {
        if self.urls.len() <= 1 {
            return vec![self.transport_ctx.clone()];
        }
        self.urls
            .iter()
            .map(|url| TransportContext {
                url: Some(url.clone()),
                ..self.transport_ctx.clone()
            })
            .collect()
    }
}

/// Where the conversations come from.
#[derive(Debug)]
pub(crate) enum DatasetSource {
    /// Synthetic prompts of exact lengths.
    Synthetic(SyntheticConfig),
    /// A dataset file.
    File(CustomDatasetConfig),
}

impl DatasetSource {
    /// The prefixes and system prompt its conversations open with.
    pub(crate) fn prefix(&self) -> &PrefixConfig {
        match self {
            Self::Synthetic(config) => &config.prefix,
            Self::File(config) => &config.prefix,
        }
    }
}

/// The most requests `--concurrency` may ask to hold in flight: a sanity bound (each one is a
/// task, and over a network transport a connection or a stream), far above what one client
/// machine sustains.
const MAX_CONCURRENCY: usize = 1_000_000;

/// The longest wait between turns `--conversation-turn-delay-mean` and `-stddev` may ask for, in
/// milliseconds: a day (a longer think time is no benchmark's).
const MAX_TURN_DELAY_MS: f64 = 86_400_000.0;

/// The most prompt tokens a synthetic dataset may hold: its prompts and their request bodies
/// are built in memory before the run (the text, then its request body), so this is gigabytes.
const MAX_SYNTHETIC_PROMPT_TOKENS: u64 = 1 << 28;

/// Checks the flags and their combinations; every error says what to change.
pub(crate) fn validate(args: &ProfileArgs) -> anyhow::Result<Profile> {
    if args.request_count.is_some() && args.benchmark_duration.is_some() {
        bail!("--request-count and --benchmark-duration both say when to stop: give only one");
    }
    match args.concurrency {
        Some(0) => bail!("--concurrency must be at least 1"),
        Some(n) if n > MAX_CONCURRENCY => bail!(
            "--concurrency {n} is more than the {MAX_CONCURRENCY} requests in flight aiperf can \
             hold at once: lower it"
        ),
        _ => {}
    }
    for (flag, value) in [
        ("--request-count", args.request_count),
        ("--conversation-num", args.conversation_num),
        ("--num-warmup-sessions", args.num_warmup_sessions),
        ("--warmup-concurrency", args.warmup_concurrency),
        ("--prefill-concurrency", args.prefill_concurrency),
        (
            "--warmup-prefill-concurrency",
            args.warmup_prefill_concurrency,
        ),
    ] {
        if value == Some(0) {
            bail!("{flag} must be at least 1");
        }
    }
    prefill_limits_fit(args)?;
    if let Some(rate) = args.request_rate
        && !(rate.is_finite() && rate > 0.0)
    {
        bail!("--request-rate must be a positive number of requests per second, got {rate}");
    }
    let rate_given = args.request_rate.is_some() || args.warmup_request_rate.is_some();
    if !rate_given && (args.arrival_pattern.is_some() || args.arrival_smoothness.is_some()) {
        bail!(
            "--arrival-pattern applies only with --request-rate (or --warmup-request-rate): add \
             one or drop --arrival-pattern and --arrival-smoothness"
        );
    }
    let pattern = match (args.arrival_pattern, args.arrival_smoothness) {
        (_, Some(smoothness)) if !(smoothness.is_finite() && smoothness > 0.0) => {
            bail!("--arrival-smoothness must be a positive number (1 is Poisson), got {smoothness}")
        }
        (Some(ArrivalPatternArg::Constant | ArrivalPatternArg::Poisson), Some(_)) => {
            bail!("--arrival-smoothness applies only to --arrival-pattern gamma")
        }
        (Some(arg), smoothness) => pattern_of(arg, smoothness),
        // Smoothness alone picks gamma, as AIPerf's --vllm-burstiness does.
        (None, Some(smoothness)) => ArrivalPattern::Gamma { smoothness },
        (None, None) => ArrivalPattern::Poisson,
    };
    let seconds = |flag: &str, value: f64| -> anyhow::Result<Duration> {
        Duration::try_from_secs_f64(value).map_err(|_| {
            anyhow::anyhow!("{flag} must be a non-negative number of seconds, got {value}")
        })
    };
    let positive_seconds = |flag: &str, value: f64| -> anyhow::Result<Duration> {
        match seconds(flag, value) {
            Ok(duration) if !duration.is_zero() => Ok(duration),
            _ => bail!("{flag} must be a positive number of seconds, got {value}"),
        }
    };
    let stop = match args.benchmark_duration {
        Some(duration) => {
            let duration = positive_seconds("--benchmark-duration", duration)?;
            StopCondition::Duration {
                duration,
                grace: seconds("--benchmark-grace-period", args.benchmark_grace_period)?,
            }
        }
        None => match (args.request_count, args.conversation_num) {
            (Some(count), _) => StopCondition::Count(count),
            (None, Some(_)) => StopCondition::CONVERSATIONS_ONLY,
            (None, None) => StopCondition::Count(10),
        },
    };
    let load = match args.request_rate {
        Some(rate) => LoadMode::Rate {
            rate,
            pattern,
            max_concurrency: args.concurrency,
        },
        None => LoadMode::Concurrency(args.concurrency.unwrap_or(1)),
    };
    warn_of_warmup_flags_without_a_warmup(args);
    let warmup_load = warmup_load(args, load, pattern)?;
    if !(0.0..=100.0).contains(&args.request_cancellation_rate) {
        bail!(
            "--request-cancellation-rate is a percentage from 0 to 100, got {}",
            args.request_cancellation_rate
        );
    }
    let cancellation_delay = seconds(
        "--request-cancellation-delay",
        args.request_cancellation_delay,
    )?;
    let cancellation = (args.request_cancellation_rate > 0.0).then_some(CancellationPolicy {
        fraction: args.request_cancellation_rate / 100.0,
        delay: cancellation_delay,
    });
    seconds("--wait-for-model-timeout", args.wait_for_model_timeout)?;
    let request_timeout =
        positive_seconds("--request-timeout-seconds", args.request_timeout_seconds)?;
    if args.isl == 0 {
        bail!("--synthetic-input-tokens-mean (--isl) must be at least 1");
    }
    if args.osl == Some(0) {
        bail!("--output-tokens-mean (--osl) must be at least 1");
    }
    if let Some(name) = &args.session_header {
        aiperf_core::transport::check_session_header(name).map_err(|error| anyhow!(error))?;
    }
    if args.conversation_turn_mean == 0 {
        bail!("--conversation-turn-mean must be at least 1");
    }
    for (flag, value) in [
        ("--isl-stddev", args.isl_stddev),
        ("--osl-stddev", args.osl_stddev),
        ("--conversation-turn-stddev", args.conversation_turn_stddev),
        (
            "--conversation-turn-delay-mean",
            args.conversation_turn_delay_mean,
        ),
        (
            "--conversation-turn-delay-stddev",
            args.conversation_turn_delay_stddev,
        ),
        (
            "--conversation-turn-delay-ratio",
            args.conversation_turn_delay_ratio,
        ),
    ] {
        if !(value.is_finite() && value >= 0.0) {
            bail!("{flag} must be a non-negative number, got {value}");
        }
    }
    for (flag, ms) in [
        (
            "--conversation-turn-delay-mean",
            args.conversation_turn_delay_mean,
        ),
        (
            "--conversation-turn-delay-stddev",
            args.conversation_turn_delay_stddev,
        ),
    ] {
        let scaled = ms * args.conversation_turn_delay_ratio;
        if scaled > MAX_TURN_DELAY_MS {
            bail!(
                "{flag} is in milliseconds, times --conversation-turn-delay-ratio: {scaled} is \
                 more than a day, the most aiperf waits between turns"
            );
        }
    }
    if args.osl.is_none() && args.osl_stddev > 0.0 {
        bail!("--output-tokens-stddev needs a mean: add --output-tokens-mean (--osl)");
    }
    if args.request_cancellation_rate == 0.0 && args.request_cancellation_delay > 0.0 {
        bail!(
            "--request-cancellation-delay applies to the requests --request-cancellation-rate \
             cancels: add a rate"
        );
    }
    let models = super::models::model_names(&args.model)?;
    let (tokenizer, prompt_words) = tokenizer_and_words(args, &models[0])?;
    let prefix = PrefixConfig {
        num_prefix_prompts: args.num_prefix_prompts,
        prefix_prompt_length: args.prefix_prompt_length,
        shared_system_prompt_length: args.shared_system_prompt_length,
        system_prompt: system_prompt(args, &tokenizer)?,
    };
    let system_tokens = match &prefix.system_prompt {
        Some(verbatim) => verbatim.tokens(),
        None => prefix.shared_system_prompt_length,
    };
    let entries = dataset_entries(args, system_tokens)?;
    if (prefix.num_prefix_prompts == 0) != (prefix.prefix_prompt_length == 0) {
        bail!("--num-prefix-prompts and --prefix-prompt-length go together: give both, or neither");
    }
    let Some(isl_block_size) = std::num::NonZeroU32::new(args.isl_block_size) else {
        bail!("--isl-block-size must be at least 1");
    };
    if let (Some(start), Some(end)) = (
        args.fixed_schedule_start_offset,
        args.fixed_schedule_end_offset,
    ) && start > end
    {
        bail!(
            "--fixed-schedule-start-offset ({start} ms) is after --fixed-schedule-end-offset ({end} ms)"
        );
    }
    if args.fixed_schedule && args.request_rate.is_some() {
        bail!(
            "--fixed-schedule replays the dataset's timestamps; --request-rate sets its own: give only one"
        );
    }
    let (input_tokens, output_tokens) = sequence_lengths(args)?;
    let (turns, turn_delay, synthetic_turns) = synthetic_turns(args);
    let dataset = match &args.input_file {
        Some(path) => {
            if !synthetic_turns.is_empty() {
                bail!(
                    "{} shape synthetic conversations; an --input-file gives its own turns and \
                     delays (multi_turn lines, with `delay`): drop them, as AIPerf refuses them",
                    synthetic_turns.join(", ")
                );
            }
            let kind: CustomDatasetType = args
                .custom_dataset_type
                .parse()
                .map_err(|err| anyhow::anyhow!("invalid --custom-dataset-type: {err}"))?;
            let mut config = CustomDatasetConfig::new(path.clone(), kind, tokenizer.clone())?;
            config.prompt_words = prompt_words.clone();
            config.prefix = prefix;
            config.isl_block_size = isl_block_size;
            config.seed = args.random_seed;
            config.output_tokens = output_tokens;
            DatasetSource::File(config)
        }
        None => DatasetSource::Synthetic(SyntheticConfig {
            input_tokens,
            output_tokens,
            entries,
            seed: args.random_seed,
            prompt_words: prompt_words.clone(),
            prefix,
            turns,
            turn_delay,
        }),
    };
    let sampling = match &args.dataset_sampling_strategy {
        Some(strategy) => strategy
            .parse()
            .map_err(|err| anyhow::anyhow!("invalid --dataset-sampling-strategy: {err}"))?,
        // AIPerf 0.13 goes through a synthetic dataset in order.
        None => match &dataset {
            DatasetSource::Synthetic(_) => SamplingStrategy::Sequential,
            DatasetSource::File(config) => config.kind.preferred_sampling(),
        },
    };

    // AIPerf splits a --url at its commas too.
    let urls: Vec<String> = args
        .url
        .iter()
        .flat_map(|url| url.split(','))
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(normalize_url)
        .collect();
    let url = urls.first().cloned();
    let engine_flags = args.engine.given();
    if url.is_some() && !engine_flags.is_empty() {
        bail!(
            "simulated-engine flags ({}) have no effect with --url: drop them, or drop --url to benchmark the built-in engine",
            engine_flags.join(", ")
        );
    }
    let engine = args.engine.engine_config(args.random_seed)?;
    let mut headers = Vec::with_capacity(args.headers.len() + 1);
    for header in &args.headers {
        let parsed = pairs(header, PairsOf::Headers)
            .map_err(|error| anyhow!("-H/--header {error}: give Name:Value"))?;
        headers.extend(
            parsed
                .into_iter()
                .map(|(name, value)| (name, header_value(&value))),
        );
    }
    if headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("x-request-id"))
    {
        say!(
            LogLevel::Warning,
            "aiperf: -H X-Request-ID is not sent: aiperf names each request itself (a new id \
             per request, which its records keep so that server logs can be matched to them)"
        );
        headers.retain(|(name, _)| !name.eq_ignore_ascii_case("x-request-id"));
    }
    if let Some(key) = &args.api_key {
        let before = headers.len();
        headers.retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
        if headers.len() < before {
            say!(
                LogLevel::Warning,
                "aiperf: --api-key's `Authorization: Bearer <key>` replaces the -H Authorization \
                 header, as in AIPerf"
            );
        }
        headers.push(("Authorization".to_owned(), format!("Bearer {key}")));
    }

    let artifact_dir = args
        .artifact_dir
        .clone()
        .unwrap_or_else(|| default_artifact_dir(args, &models, &load));
    let goodput = match &args.goodput {
        Some(slos) => parse_goodput(slos).context("invalid --goodput")?,
        None => Vec::new(),
    };
    if args.gpu_telemetry.is_some() {
        bail!(
            "--gpu-telemetry asks for AIPerf's GPU telemetry (DCGM, pynvml or amdsmi), which \
             aiperf does not collect: leave it out (the exports' telemetry_data stays empty, as \
             AIPerf's does without it)"
        );
    }
    if args.server_metrics.is_some() {
        bail!(
            "--server-metrics asks for AIPerf's scrape of the server's Prometheus metrics, \
             which aiperf does not do: leave it out, and read the server's /metrics yourself \
             if you need them"
        );
    }
    if args.export_level == ExportLevelArg::Raw {
        bail!(
            "--export-level raw asks for AIPerf's profile_export_raw.jsonl (every request and \
             response body), which aiperf does not write: use --export-level records (the \
             default; inputs.json holds the request bodies)"
        );
    }
    let concurrency_ramp = args
        .concurrency_ramp_duration
        .map(|seconds| positive_seconds("--concurrency-ramp-duration", seconds))
        .transpose()?;
    // A warm-up of its own concurrency takes the profiling ramp unless it has its own.
    let warmup_takes_the_ramp = has_warmup(args)
        && args.warmup_concurrency.is_some()
        && args.warmup_concurrency_ramp_duration.is_none();
    if concurrency_ramp.is_some() && args.concurrency.is_none() && !warmup_takes_the_ramp {
        say!(
            LogLevel::Warning,
            "aiperf: --concurrency-ramp-duration has no effect without --concurrency (or \
             --warmup-concurrency), the concurrency it raises"
        );
    }
    let rate_ramp = args
        .request_rate_ramp_duration
        .map(|seconds| positive_seconds("--request-rate-ramp-duration", seconds))
        .transpose()?;
    if rate_ramp.is_some() && args.request_rate.is_none() {
        bail!(
            "--request-rate-ramp-duration raises the rate to --request-rate: give one (AIPerf \
             refuses it without a rate too)"
        );
    }
    let warmup_concurrency_ramp = args
        .warmup_concurrency_ramp_duration
        .map(|seconds| positive_seconds("--warmup-concurrency-ramp-duration", seconds))
        .transpose()?;
    let warmup_rate_ramp = args
        .warmup_request_rate_ramp_duration
        .map(|seconds| positive_seconds("--warmup-request-rate-ramp-duration", seconds))
        .transpose()?;
    if has_warmup(args) {
        if warmup_rate_ramp.is_some() && args.warmup_request_rate.or(args.request_rate).is_none() {
            bail!(
                "--warmup-request-rate-ramp-duration raises the warm-up's rate: give \
                 --warmup-request-rate (or --request-rate), as AIPerf asks"
            );
        }
        if warmup_concurrency_ramp.is_some()
            && args.warmup_concurrency.or(args.concurrency).is_none()
        {
            say!(
                LogLevel::Warning,
                "aiperf: --warmup-concurrency-ramp-duration has no effect without \
                 --warmup-concurrency (or --concurrency), the concurrency it raises"
            );
        }
    }
    let plan = RunPlan {
        load,
        stop,
        sessions: args.conversation_num,
        concurrency_ramp,
        rate_ramp,
        warmup_concurrency_ramp,
        warmup_rate_ramp,
        warmup_requests: args.warmup_request_count,
        warmup_duration: args
            .warmup_duration
            .map(|seconds| positive_seconds("--warmup-duration", seconds))
            .transpose()?,
        warmup_sessions: args.num_warmup_sessions,
        warmup_load,
        prefill_concurrency: args.prefill_concurrency,
        warmup_prefill_concurrency: args.warmup_prefill_concurrency,
        cancellation,
        streaming: args.streaming,
        seed: args.random_seed,
    };
    Ok(Profile {
        metric_options: MetricOptions {
            streaming: args.streaming,
            produces_tokens: true,
            token_source: if args.use_server_token_count {
                TokenSource::Server
            } else {
                TokenSource::ServerWhenPresent
            },
            goodput,
            ..MetricOptions::default()
        },
        endpoint_ctx: EndpointContext {
            model: models[0].clone(),
            streaming: args.streaming,
            extra_inputs: parse_extra_inputs(&args.extra_inputs)?,
            custom_path: args.custom_endpoint.clone(),
            use_legacy_max_tokens: args.use_legacy_max_tokens,
        },
        transport_ctx: TransportContext {
            url,
            headers,
            request_timeout: Some(request_timeout),
            max_in_flight: plan.max_in_flight(),
            engine,
            session_header: args.session_header.clone(),
        },
        urls,
        export_prefix: args
            .profile_export_prefix
            .as_deref()
            .map(|prefix| export_prefix(prefix, args.export_outputs_json))
            .transpose()?,
        dataset,
        sampling,
        tokenizer,
        artifact_dir,
        models,
        plan,
    })
}

/// AIPerf accepts `localhost:8000`: a URL without a scheme is taken as http.
fn normalize_url(url: &str) -> String {
    if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    }
}

/// An arrival pattern named on the command line, gamma of `smoothness` (1, Poisson's, when not
/// given).
fn pattern_of(arg: ArrivalPatternArg, smoothness: Option<f64>) -> ArrivalPattern {
    match arg {
        ArrivalPatternArg::Constant => ArrivalPattern::Constant,
        ArrivalPatternArg::Poisson => ArrivalPattern::Poisson,
        ArrivalPatternArg::Gamma => ArrivalPattern::Gamma {
            smoothness: smoothness.unwrap_or(1.0),
        },
    }
}

/// The flag of a `(flag, given)` pair, if given.
fn given_flag((flag, given): (&str, bool)) -> Option<&str> {
    given.then_some(flag)
}

/// Whether the run has a warm-up (`--warmup-request-count`, `--warmup-duration` or
/// `--num-warmup-sessions`), which the other `--warmup-*` flags shape.
fn has_warmup(args: &ProfileArgs) -> bool {
    args.warmup_request_count > 0
        || args.warmup_duration.is_some()
        || args.num_warmup_sessions.is_some()
}

/// Says which `--warmup-*` flags shape a warm-up the run does not have.
fn warn_of_warmup_flags_without_a_warmup(args: &ProfileArgs) {
    if has_warmup(args) {
        return;
    }
    let shaping: Vec<&str> = [
        ("--warmup-concurrency", args.warmup_concurrency.is_some()),
        ("--warmup-request-rate", args.warmup_request_rate.is_some()),
        (
            "--warmup-arrival-pattern",
            args.warmup_arrival_pattern.is_some(),
        ),
        (
            "--warmup-concurrency-ramp-duration",
            args.warmup_concurrency_ramp_duration.is_some(),
        ),
        (
            "--warmup-request-rate-ramp-duration",
            args.warmup_request_rate_ramp_duration.is_some(),
        ),
        (
            "--warmup-prefill-concurrency",
            args.warmup_prefill_concurrency.is_some(),
        ),
    ]
    .into_iter()
    .filter_map(given_flag)
    .collect();
    let verb = if shaping.len() == 1 {
        "shapes"
    } else {
        "shape"
    };
    if !shaping.is_empty() {
        say!(
            LogLevel::Warning,
            "aiperf: {} {verb} the warm-up, and there is none without --warmup-request-count, \
             --warmup-duration or --num-warmup-sessions",
            shaping.join(", ")
        );
    }
}

/// The warm-up phase's load when `--warmup-concurrency`, `--warmup-request-rate` or
/// `--warmup-arrival-pattern` makes it differ from the profiling phase's `profiling`, of
/// pattern `pattern` (AIPerf's: each replaces its profiling counterpart, the rest is the
/// profiling phase's); `None` without them, or without a warm-up.
fn warmup_load(
    args: &ProfileArgs,
    profiling: LoadMode,
    pattern: ArrivalPattern,
) -> anyhow::Result<Option<LoadMode>> {
    let (concurrency, rate) = (args.warmup_concurrency, args.warmup_request_rate);
    if let Some(rate) = rate.filter(|rate| !(rate.is_finite() && *rate > 0.0)) {
        bail!("--warmup-request-rate must be a positive number of requests per second, got {rate}");
    }
    if !has_warmup(args)
        || (concurrency.is_none() && rate.is_none() && args.warmup_arrival_pattern.is_none())
    {
        return Ok(None);
    }
    if args.warmup_arrival_pattern.is_some() && rate.or(args.request_rate).is_none() {
        // AIPerf ignores it then; so does aiperf, saying so.
        say!(
            LogLevel::Warning,
            "aiperf: --warmup-arrival-pattern has no effect without a request rate \
             (--warmup-request-rate or --request-rate): the warm-up runs at its concurrency"
        );
    }
    let pattern = args
        .warmup_arrival_pattern
        .map_or(pattern, |arg| pattern_of(arg, args.arrival_smoothness));
    Ok(Some(match (profiling, rate) {
        // Set later, from the dataset, where a warm-up load of its own is refused.
        (LoadMode::FixedSchedule { .. }, _) => return Ok(None),
        (
            LoadMode::Rate {
                max_concurrency, ..
            },
            Some(rate),
        ) => LoadMode::Rate {
            rate,
            pattern,
            max_concurrency: concurrency.or(max_concurrency),
        },
        (LoadMode::Concurrency(_), Some(rate)) => LoadMode::Rate {
            rate,
            pattern,
            max_concurrency: concurrency.or(args.concurrency),
        },
        (
            LoadMode::Rate {
                rate,
                max_concurrency,
                ..
            },
            None,
        ) => LoadMode::Rate {
            rate,
            pattern,
            max_concurrency: concurrency.or(max_concurrency),
        },
        (LoadMode::Concurrency(own), None) => LoadMode::Concurrency(concurrency.unwrap_or(own)),
    }))
}

/// `artifacts/<model>-<endpoint type>-concurrency<N>` (or `-request_rate<R>`), AIPerf's naming
/// (with several models, the first and `_multi`).
fn default_artifact_dir(args: &ProfileArgs, models: &[String], load: &LoadMode) -> PathBuf {
    let named = match models {
        [one] => one.clone(),
        [first, ..] => format!("{first}_multi"),
        [] => String::new(),
    };
    let model: String = named
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let load = match load {
        LoadMode::Concurrency(n) => format!("concurrency{n}"),
        LoadMode::Rate { rate, .. } => format!("request_rate{rate}"),
        LoadMode::FixedSchedule { .. } => "fixed_schedule".to_owned(),
    };
    PathBuf::from("artifacts").join(format!("{model}-openai-{}-{load}", args.endpoint_type))
}

/// A trace whose first request is due this far into the run is refused: no benchmark waits a
/// day for its first request, and timestamps that large are absolute times.
const FIRST_DUE_REFUSED: Duration = Duration::from_secs(24 * 3600);

/// The turns of synthetic conversations and the delays between them, from the
/// `--conversation-turn-*` flags (validated), with the flags that differ from their defaults;
/// delays asked for conversations of one turn are left out, saying so.
fn synthetic_turns(args: &ProfileArgs) -> (LengthDistribution, Option<TurnDelay>, Vec<&str>) {
    let turns =
        LengthDistribution::normal(args.conversation_turn_mean, args.conversation_turn_stddev);
    let delay_flags: Vec<&str> = [
        (
            "--conversation-turn-delay-mean",
            args.conversation_turn_delay_mean != 0.0,
        ),
        (
            "--conversation-turn-delay-stddev",
            args.conversation_turn_delay_stddev != 0.0,
        ),
        (
            "--conversation-turn-delay-ratio",
            args.conversation_turn_delay_ratio != 1.0,
        ),
    ]
    .into_iter()
    .filter_map(given_flag)
    .collect();
    let mut given: Vec<&str> = [
        ("--conversation-turn-mean", args.conversation_turn_mean != 1),
        (
            "--conversation-turn-stddev",
            args.conversation_turn_stddev != 0.0,
        ),
    ]
    .into_iter()
    .filter_map(given_flag)
    .collect();
    given.extend(&delay_flags);
    let single_turn = turns == LengthDistribution::fixed(1);
    if single_turn && args.input_file.is_none() && !delay_flags.is_empty() {
        say!(
            LogLevel::Warning,
            "aiperf: the wait between turns ({}) has no effect on conversations of one \
             turn: add --conversation-turn-mean",
            delay_flags.join(", ")
        );
    }
    // AIPerf draws delays only with a positive mean.
    let turn_delay =
        (!single_turn && args.conversation_turn_delay_mean > 0.0).then_some(TurnDelay {
            mean_ms: args.conversation_turn_delay_mean,
            stddev_ms: args.conversation_turn_delay_stddev,
            ratio: args.conversation_turn_delay_ratio,
        });
    (turns, turn_delay, given)
}

/// The most distinct conversations a synthetic dataset gets from `--conversation-num` or
/// `--request-count` alone: building them takes time and memory (10,000 prompts of 550 tokens:
/// about 0.6 s and 140 MiB here), and a longer run reuses them in turn.
const ENTRIES_FROM_REQUEST_COUNT_MAX: usize = 10_000;

/// The tokenizer and its one-token prompt words: the `--tokenizer` asked for (a Hub model id
/// at its `--tokenizer-revision`); without one, the first `--model`'s own (`model`) when it can
/// be found here, as AIPerf takes the model's (AIPerf downloads it; aiperf does not, and says
/// so), else the builtin.
fn tokenizer_and_words(
    args: &ProfileArgs,
    model: &str,
) -> anyhow::Result<(Tokenizer, PromptWords)> {
    let cache = HubCache::from_env();
    let revision = args.tokenizer_revision.as_deref();
    let Some(spec) = &args.tokenizer else {
        let builtin = (Tokenizer::builtin(), PromptWords::builtin());
        let Some(own) = model_tokenizer(args, model, revision, cache.as_ref())? else {
            return Ok(builtin);
        };
        return match PromptWords::for_tokenizer(&own) {
            Ok(words) => Ok((own, words)),
            Err(err) => {
                say!(
                    LogLevel::Warning,
                    "aiperf: tokenizer: {model}'s cannot build prompts ({err}), so the builtin \
                     tiktoken o200k_base does; give --tokenizer to choose"
                );
                Ok(builtin)
            }
        };
    };
    if spec.trim().is_empty() {
        bail!("--tokenizer is empty: give `builtin`, a tokenizer.json path, or a model id");
    }
    if revision.is_some() && !hub_cache::names_hub_model(spec) {
        bail!(
            "--tokenizer-revision picks a revision of a HuggingFace model id, and --tokenizer \
             {spec} is not one: drop the revision"
        );
    }
    let revision = revision.unwrap_or(hub_cache::DEFAULT_REVISION);
    let tokenizer =
        Tokenizer::from_spec_at(spec, revision, cache.as_ref()).context("invalid --tokenizer")?;
    let words = PromptWords::for_tokenizer(&tokenizer).context("invalid --tokenizer")?;
    Ok((tokenizer, words))
}

/// With no `--tokenizer`, against a `--url`: `model`'s own tokenizer when `model` is a local
/// model directory (as vLLM serves them) or in `cache`, saying which; `None` for the builtin
/// (the simulated engine's model has no tokenizer of its own). A tokenizer found but unreadable
/// is said and passed over; one asked for at `revision` and missing is an error.
fn model_tokenizer(
    args: &ProfileArgs,
    model: &str,
    revision: Option<&str>,
    cache: Option<&HubCache>,
) -> anyhow::Result<Option<Tokenizer>> {
    let found = |origin: &str, loaded: Result<Tokenizer, TokenizerError>| match loaded {
        Ok(tokenizer) => {
            say!(
                LogLevel::Info,
                "aiperf: tokenizer: {model}'s, from {origin}; --tokenizer builtin counts with \
                 tiktoken o200k_base instead"
            );
            Some(tokenizer)
        }
        Err(err) => {
            say!(
                LogLevel::Warning,
                "aiperf: tokenizer: {model}'s, from {origin}, cannot be read ({err}): the builtin \
                 tiktoken o200k_base counts instead"
            );
            None
        }
    };
    let local = std::path::Path::new(model);
    if args.url.is_empty() || !(hub_cache::is_repo_id(model) || local.exists()) {
        if revision.is_some() {
            bail!(
                "--tokenizer-revision picks a revision of a HuggingFace model id: give one as \
                 --tokenizer (or --model), or drop the revision"
            );
        }
        return Ok(None);
    }
    if local.exists() {
        return Ok(found("its directory", Tokenizer::from_path(local)));
    }
    if let Some(revision) = revision {
        let tokenizer = Tokenizer::from_spec_at(model, revision, cache)
            .with_context(|| format!("no tokenizer for --model {model} at --tokenizer-revision"))?;
        return Ok(Some(tokenizer));
    }
    match cache.and_then(|cache| cache.tokenizer_file(model, hub_cache::DEFAULT_REVISION)) {
        Some(file) => Ok(found(
            &format!("the HuggingFace cache ({})", file.display()),
            Tokenizer::from_path(&file),
        )),
        // A name like `test` is no Hub model; an `org/name` one is worth a word.
        None if model.contains('/') => {
            say!(
                LogLevel::Warning,
                "aiperf: tokenizer: {model}'s is not in the HuggingFace cache{}, so prompts are \
                 sized and counted with the builtin tiktoken o200k_base (AIPerf would download \
                 it; `hf download {model} tokenizer.json` puts it there)",
                cache
                    .map(|cache| format!(" ({})", cache.root().display()))
                    .unwrap_or_default()
            );
            Ok(None)
        }
        None => Ok(None),
    }
}

/// Refuses a prefill limit aiperf could not keep: without streaming no first token is seen
/// before a request ends, and a limit above its phase's concurrency never binds (AIPerf
/// refuses both).
fn prefill_limits_fit(args: &ProfileArgs) -> anyhow::Result<()> {
    // The warm-up takes the profiling phase's limit unless it has its own.
    let (warmup_flag, warmup_limit) = match args.warmup_prefill_concurrency {
        Some(limit) => ("--warmup-prefill-concurrency", Some(limit)),
        None => (
            "--prefill-concurrency (the warm-up's too)",
            args.prefill_concurrency.filter(|_| has_warmup(args)),
        ),
    };
    for (flag, limit, concurrency, concurrency_flag) in [
        (
            "--prefill-concurrency",
            args.prefill_concurrency,
            args.concurrency,
            "--concurrency",
        ),
        (
            warmup_flag,
            warmup_limit,
            args.warmup_concurrency.or(args.concurrency),
            "the warm-up's concurrency",
        ),
    ] {
        let Some(limit) = limit else { continue };
        if !args.streaming {
            bail!(
                "{flag} limits requests waiting for their first token, which only streamed \
                 responses show: add --streaming"
            );
        }
        if let Some(concurrency) = concurrency
            && limit > concurrency
        {
            bail!("{flag} {limit} is more than {concurrency_flag} ({concurrency}): lower it");
        }
    }
    Ok(())
}

/// The prompt and output lengths synthetic turns draw (`--isl`, `--osl`, with their stddevs
/// or `--random-range-ratio`'s windows), the output's `None` when the server decides.
fn sequence_lengths(
    args: &ProfileArgs,
) -> anyhow::Result<(LengthDistribution, Option<LengthDistribution>)> {
    let normal = |mean, stddev| LengthDistribution::normal(mean, stddev);
    let Some(text) = &args.random_range_ratio else {
        if args.random_corpus_style != WindowStyleArg::Vllm {
            bail!(
                "--random-corpus-style sets the window of --random-range-ratio (aiperf has no \
                 random-token corpus): add a ratio, or leave the style out"
            );
        }
        let output = args.osl.map(|mean| normal(mean, args.osl_stddev));
        return Ok((normal(args.isl, args.isl_stddev), output));
    };
    let style = match args.random_corpus_style {
        WindowStyleArg::Vllm => WindowStyle::Vllm,
        WindowStyleArg::Sglang => WindowStyle::Sglang,
    };
    let ratio = RangeRatio::parse(text, style).context("invalid --random-range-ratio")?;
    if args.input_file.is_some() {
        bail!(
            "--random-range-ratio draws synthetic prompt lengths; an --input-file gives its own: \
             drop one of them"
        );
    }
    let Some(osl) = args.osl else {
        bail!("--random-range-ratio draws around --osl, as in AIPerf: give --osl too");
    };
    if args.isl_stddev != 0.0 || args.osl_stddev != 0.0 {
        bail!("--random-range-ratio sets how lengths spread: drop --isl-stddev and --osl-stddev");
    }
    let input = ratio.input_window(args.isl);
    let prefix = if args.num_prefix_prompts > 0 {
        args.prefix_prompt_length
    } else {
        0
    };
    if let LengthDistribution::Uniform { low: 0, .. } = input
        && prefix == 0
    {
        bail!(
            "--random-range-ratio {text} with --isl {} makes prompts of 0 tokens at the least: \
             raise --isl, lower the ratio, or add prefix prompts, as vLLM and AIPerf ask",
            args.isl
        );
    }
    Ok((input, Some(ratio.output_window(osl))))
}

/// The verbatim system prompt (`--system-prompt`, or `--system-prompt-file` read now, so that
/// a file that cannot be read stops the run before it starts), counted by `tokenizer`.
fn system_prompt(
    args: &ProfileArgs,
    tokenizer: &Tokenizer,
) -> anyhow::Result<Option<SystemPrompt>> {
    let (flag, text) = match (&args.system_prompt, &args.system_prompt_file) {
        (Some(text), _) => ("--system-prompt", text.clone()),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!(
                    "--system-prompt-file {}: cannot read it as UTF-8 text (give a readable \
                     text file, saved as UTF-8)",
                    path.display()
                )
            })?;
            ("--system-prompt-file", text)
        }
        (None, None) => return Ok(None),
    };
    if args.shared_system_prompt_length > 0 {
        bail!(
            "{flag} and --shared-system-prompt-length both fill the system message: give the \
             first for your own text, the second for generated text of a token length"
        );
    }
    if args.num_prefix_prompts > 0 || args.prefix_prompt_length > 0 {
        bail!(
            "{flag} cannot go with --num-prefix-prompts/--prefix-prompt-length, as in AIPerf: \
             drop one of them"
        );
    }
    let prompt = SystemPrompt::new(text, tokenizer).with_context(|| format!("invalid {flag}"))?;
    Ok(Some(prompt))
}

/// How many distinct conversations a synthetic dataset holds, as AIPerf 0.13 sizes it:
/// `--num-dataset-entries` when given, else `--conversation-num`, else `--request-count`, else
/// 100. The prompts are built in memory before the run, so their tokens are bounded
/// ([`MAX_SYNTHETIC_PROMPT_TOKENS`], counting each conversation at its mean number of turns): a
/// size given is refused beyond that bound, a size taken from `--conversation-num` or
/// `--request-count` is capped by it and by [`ENTRIES_FROM_REQUEST_COUNT_MAX`], saying so.
/// `system_tokens` are the system prompt's, shared or verbatim, which each conversation holds.
fn dataset_entries(args: &ProfileArgs, system_tokens: u32) -> anyhow::Result<usize> {
    if args.num_dataset_entries == Some(0) {
        bail!("--num-dataset-entries must be at least 1");
    }
    if args.input_file.is_some() {
        return Ok(args.num_dataset_entries.unwrap_or(DEFAULT_DATASET_ENTRIES));
    }
    // Each conversation opens with the system prompt and, when there are prefix
    // prompts, one of them; the prefix prompts are also built once on their own.
    let prefix_length = if args.num_prefix_prompts > 0 {
        u64::from(args.prefix_prompt_length)
    } else {
        0
    };
    // A conversation's turns at three standard deviations above their mean, so that a wide
    // spread cannot build far more than the bound.
    let turns_bound = f64::from(args.conversation_turn_mean.max(1))
        + 3.0 * args.conversation_turn_stddev.max(0.0);
    let turns = turns_bound.ceil().min(u64::MAX as f64) as u64;
    let per_entry =
        (u64::from(args.isl).saturating_mul(turns) + u64::from(system_tokens) + prefix_length)
            .max(1);
    let prefixes = (args.num_prefix_prompts as u64).saturating_mul(prefix_length);
    let fitting = MAX_SYNTHETIC_PROMPT_TOKENS.saturating_sub(prefixes) / per_entry;
    let fitting = usize::try_from(fitting).unwrap_or(usize::MAX);
    let (entry, entries_of) = match turns {
        1 => ("prompt", "prompts"),
        _ => ("conversation", "conversations"),
    };
    let too_large = |entries: usize, source: &str| {
        let what = match entries {
            1 => format!("one {entry}"),
            n => format!("{n} {entries_of}"),
        };
        let sum = match turns {
            1 => "--isl".to_owned(),
            _ => "--isl x (--conversation-turn-mean + 3 x --conversation-turn-stddev)".to_owned(),
        };
        anyhow!(
            "the synthetic dataset would hold {what} ({source}) of {per_entry} tokens each \
             ({sum} + the system prompt's + --prefix-prompt-length), plus the prefix \
             prompts themselves, more than the {MAX_SYNTHETIC_PROMPT_TOKENS} tokens aiperf \
             builds in memory: lower them"
        )
    };
    let wanted = match (args.conversation_num, args.request_count) {
        (Some(sessions), _) => Some((sessions, "conversations")),
        (None, Some(count)) => Some((count, "requests")),
        (None, None) => None,
    };
    match (args.num_dataset_entries, wanted) {
        (Some(entries), _) if entries > fitting => Err(too_large(entries, "--num-dataset-entries")),
        (Some(entries), _) => Ok(entries),
        (None, Some((count, what))) if count > 0 => {
            let cap = ENTRIES_FROM_REQUEST_COUNT_MAX.min(fitting);
            if cap == 0 {
                return Err(too_large(1, "at the least"));
            }
            if count > cap {
                say!(
                    LogLevel::Warning,
                    "aiperf: the synthetic dataset holds {cap} distinct {entries_of}, which the \
                     {count} {what} reuse in turn (AIPerf would build one each): \
                     --num-dataset-entries sets how many"
                );
            }
            Ok(count.min(cap))
        }
        (None, _) if DEFAULT_DATASET_ENTRIES > fitting => {
            Err(too_large(DEFAULT_DATASET_ENTRIES, "the default"))
        }
        (None, _) => Ok(DEFAULT_DATASET_ENTRIES),
    }
}

/// The synthetic dataset's size when neither its size nor a request count is given (AIPerf's).
const DEFAULT_DATASET_ENTRIES: usize = 100;

/// Checks `--profile-export-prefix`: as in AIPerf, a relative path is taken from
/// `--artifact-dir` (`sub/run1` writes `sub/run1.json` there), an absolute one gives only its
/// file name (the exports stay in `--artifact-dir`), and the base must name a file other than
/// `inputs.json` (and `outputs.json` when it is written, `with_outputs`).
fn export_prefix(given: &str, with_outputs: bool) -> anyhow::Result<String> {
    let path = std::path::Path::new(given);
    let prefix = if path.is_absolute() {
        path.file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default()
    } else {
        given
    };
    let base = ArtifactDir::base_name(prefix);
    let file = std::path::Path::new(base).file_name();
    if file.is_none_or(|name| name.is_empty()) {
        bail!("--profile-export-prefix `{given}` names no file: give a name, e.g. run1");
    }
    let written = lexically_normal(base);
    if written == std::path::Path::new("inputs") {
        bail!("--profile-export-prefix `{given}` would write over inputs.json: give another name");
    }
    if with_outputs && written == std::path::Path::new("outputs") {
        bail!(
            "--profile-export-prefix `{given}` would write over --export-outputs-json's \
             outputs.json: give another name"
        );
    }
    Ok(prefix.to_owned())
}

/// `path` with its `.` parts left out and each `..` taking the part before it away, as the
/// file system would resolve it (`sub/../inputs` is `inputs`).
fn lexically_normal(path: &str) -> std::path::PathBuf {
    use std::path::Component;
    let mut normal = std::path::PathBuf::new();
    for part in std::path::Path::new(path).components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(normal.components().next_back(), Some(Component::Normal(_))) =>
            {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    normal
}

/// Parses `--extra-inputs` (see [`super::pairs`]).
fn parse_extra_inputs(items: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut extra = Map::new();
    for item in items {
        let parsed = pairs(item, PairsOf::Payload)
            .map_err(|error| anyhow!("--extra-inputs {error}: give key:value"))?;
        extra.extend(parsed);
    }
    Ok(extra)
}

/// Settles what depends on the dataset: a file is sent once through by default (unless a count
/// or duration is given), and a dataset with timestamps is replayed on a fixed schedule unless
/// a rate or a concurrency is asked for (`--fixed-schedule` replays it whatever is asked for),
/// within the `--fixed-schedule-*-offset` window.
pub(crate) fn fit_plan_to_dataset(
    args: &ProfileArgs,
    profile: &mut Profile,
    conversations: &mut Vec<Conversation>,
) -> anyhow::Result<()> {
    let has_timestamps = conversations
        .iter()
        .any(|c| c.turns.iter().any(|t| t.timestamp.is_some()));
    if args.fixed_schedule && !has_timestamps {
        bail!(
            "--fixed-schedule needs a dataset with timestamps (e.g. a mooncake_trace --input-file)"
        );
    }
    // As in AIPerf: timestamps set the pace unless a rate or a concurrency is asked for.
    let fixed = args.fixed_schedule
        || (has_timestamps && args.request_rate.is_none() && args.concurrency.is_none());
    if fixed {
        let untimed = conversations
            .iter()
            .filter(|c| c.turns.first().is_some_and(|t| t.timestamp.is_none()))
            .count();
        if untimed > 0 {
            bail!(
                "{untimed} of the dataset's {} sessions have no timestamp, and a fixed schedule \
                 sends each at its own: give every line a timestamp, or none (then \
                 --request-rate or --concurrency sets the pace)",
                conversations.len()
            );
        }
        let window = ScheduleWindow {
            start: args.fixed_schedule_start_offset.map(Duration::from_millis),
            end: args.fixed_schedule_end_offset.map(Duration::from_millis),
            auto_offset: args.fixed_schedule_auto_offset,
        };
        if window.apply(conversations) == 0 {
            bail!(
                "no request of the dataset falls within --fixed-schedule-start-offset and --fixed-schedule-end-offset"
            );
        }
        let first_due = conversations
            .iter()
            .filter_map(|c| c.turns.first()?.timestamp)
            .min()
            .unwrap_or_default();
        if first_due >= FIRST_DUE_REFUSED {
            bail!(
                "the dataset's first request is due {:.0} s into the run (its timestamp): its \
                 timestamps look like absolute times (Unix milliseconds), not offsets from the \
                 run's start; give --fixed-schedule-auto-offset to send the first at once and the \
                 others at their distance from it",
                first_due.as_secs_f64()
            );
        }
        if first_due >= Duration::from_secs(1) {
            say!(
                LogLevel::Warning,
                "aiperf: the dataset's first request is due {:.1} s into the run (its timestamp); \
                 --fixed-schedule-auto-offset would send it at once",
                first_due.as_secs_f64()
            );
        }
        if profile.plan.warmup_load.is_some() {
            bail!(
                "--warmup-concurrency and --warmup-request-rate apply to a run at a concurrency \
                 or a request rate, not to a fixed schedule, whose requests go at their \
                 timestamps: drop them"
            );
        }
        profile.plan.load = LoadMode::FixedSchedule {
            max_concurrency: args.concurrency,
        };
    } else if args.fixed_schedule_auto_offset
        || args.fixed_schedule_start_offset.is_some()
        || args.fixed_schedule_end_offset.is_some()
    {
        bail!(
            "the --fixed-schedule-* options apply only to a fixed schedule: add --fixed-schedule"
        );
    }
    let explicit_stop = args.request_count.is_some()
        || args.benchmark_duration.is_some()
        || args.conversation_num.is_some();
    let turns: usize = conversations.iter().map(|c| c.turns.len()).sum();
    if !explicit_stop && (fixed || matches!(profile.dataset, DatasetSource::File(_))) {
        // Once through: every conversation started once, each to its last turn.
        profile.plan.stop = StopCondition::Count(turns);
        profile.plan.sessions = Some(conversations.len());
    }
    if let (true, Some(count)) = (fixed, args.request_count)
        && count > turns
    {
        say!(
            LogLevel::Warning,
            "aiperf: the schedule holds {turns} requests, each sent once at its time: \
             --request-count {count} asks for more than that"
        );
        profile.plan.stop = StopCondition::Count(turns);
    }
    profile.transport_ctx.max_in_flight = profile.plan.max_in_flight();
    Ok(())
}
