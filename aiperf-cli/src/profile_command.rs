//! `aiperf profile`: the benchmark. Parses AIPerf's flags (same spellings and aliases), checks
//! their combinations before anything runs, builds the endpoint and transport from the
//! registry, runs the schedule, and hands the records to metrics and exports.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aiperf_core::dataset::custom::{self, CustomDatasetConfig, CustomDatasetType};
use aiperf_core::dataset::synthetic::{self, LengthDistribution, SyntheticConfig};
use aiperf_core::dataset::{
    Conversation, PrefixConfig, PromptWords, SamplingOrder, SamplingStrategy, ScheduleWindow,
};
use aiperf_core::endpoint::{Endpoint, EndpointCategory, EndpointContext, WireFormat};
use aiperf_core::export::{ArtifactDir, SessionPayloads, console};
use aiperf_core::metrics::{MetricOptions, RunFacts, TokenSource, analyze, parse_goodput};
use aiperf_core::registries::Registries;
use aiperf_core::registry::Category;
use aiperf_core::runner::{
    self, CancellationPolicy, PreparedConversation, RunControl, RunOutput, RunPlan, StopCondition,
};
use aiperf_core::schedule::{ArrivalPattern, LoadMode};
use aiperf_core::tokenizer::Tokenizer;
use aiperf_core::transport::{Transport, TransportCategory, TransportContext, TransportMetadata};
use anyhow::{Context, bail};
use clap::ValueEnum;

use crate::engine_args::EngineArgs;
use crate::exit;

/// Flags of `aiperf profile`, with AIPerf's spellings and aliases.
#[derive(Debug, Clone, clap::Args, serde::Serialize)]
#[command(
    after_help = "With no --url, aiperf benchmarks its built-in simulated engine (the in_engine transport), so a first run needs no server."
)]
pub(crate) struct ProfileArgs {
    // ---- Endpoint ----
    /// Model name sent in every request.
    #[arg(short = 'm', long = "model", visible_aliases = ["model-names"], default_value = "aiperf-simulated", help_heading = "Endpoint")]
    pub model: String,

    /// Server URL, e.g. http://localhost:8000 (no URL: the built-in simulated engine).
    #[arg(short = 'u', long, help_heading = "Endpoint")]
    pub url: Option<String>,

    /// Endpoint type: a registered endpoint name (see `aiperf plugins endpoint`).
    #[arg(long, default_value = "chat", help_heading = "Endpoint")]
    pub endpoint_type: String,

    /// A URL path that replaces the endpoint type's default path.
    #[arg(long = "endpoint", visible_aliases = ["custom-endpoint"], help_heading = "Endpoint")]
    pub custom_endpoint: Option<String>,

    /// Ask for streamed responses (needed for TTFT and inter-token latency).
    #[arg(long, help_heading = "Endpoint")]
    pub streaming: bool,

    /// Transport: a registered transport name; inferred from the URL scheme when omitted.
    #[arg(long, visible_aliases = ["transport-type"], help_heading = "Endpoint")]
    pub transport: Option<String>,

    /// Seconds to wait for the server to answer before the run starts (0: one check).
    #[arg(long, default_value_t = 0.0, help_heading = "Endpoint")]
    pub wait_for_model_timeout: f64,

    /// Longest a request may take (connect, first byte and whole stream), in seconds.
    #[arg(long, default_value_t = 600.0, help_heading = "Endpoint")]
    pub request_timeout_seconds: f64,

    /// API key, sent as `Authorization: Bearer <key>`.
    #[arg(long, help_heading = "Endpoint")]
    #[serde(skip)]
    pub api_key: Option<String>,

    /// Extra header `Name:Value` sent with every request (repeatable).
    #[arg(
        short = 'H',
        long = "header",
        value_name = "NAME:VALUE",
        help_heading = "Endpoint"
    )]
    #[serde(skip)]
    pub headers: Vec<String>,

    /// Extra payload field `key:value` (value parsed as JSON when it is JSON), or a JSON object
    /// (repeatable).
    #[arg(
        long = "extra-inputs",
        value_name = "KEY:VALUE|JSON",
        help_heading = "Endpoint"
    )]
    pub extra_inputs: Vec<String>,

    // ---- Load ----
    /// Requests in flight at once (closed loop), or the cap in flight with --request-rate.
    #[arg(long, help_heading = "Load generator")]
    pub concurrency: Option<usize>,

    /// Requests per second (open loop).
    #[arg(long, help_heading = "Load generator")]
    pub request_rate: Option<f64>,

    /// How gaps between requests are drawn with --request-rate.
    #[arg(long, value_enum, default_value_t = ArrivalPatternArg::Poisson, help_heading = "Load generator")]
    pub arrival_pattern: ArrivalPatternArg,

    /// Gamma shape for --arrival-pattern gamma (1 = Poisson, higher = smoother).
    #[arg(long, help_heading = "Load generator")]
    pub arrival_smoothness: Option<f64>,

    /// Requests to send in the profiling phase (default 10 unless --benchmark-duration is given).
    #[arg(long, visible_aliases = ["num-requests"], help_heading = "Load generator")]
    pub request_count: Option<usize>,

    /// Send requests for this many seconds instead of a count.
    #[arg(long, help_heading = "Load generator")]
    pub benchmark_duration: Option<f64>,

    /// With --benchmark-duration: seconds in-flight requests may still take before they are
    /// cancelled.
    #[arg(long, default_value_t = 30.0, help_heading = "Load generator")]
    pub benchmark_grace_period: f64,

    /// Requests sent before profiling, excluded from the metrics.
    #[arg(long, visible_aliases = ["num-warmup-requests"], default_value_t = 0, help_heading = "Load generator")]
    pub warmup_request_count: usize,

    /// Percentage (0-100) of requests cancelled on purpose.
    #[arg(long, default_value_t = 0.0, help_heading = "Request cancellation")]
    pub request_cancellation_rate: f64,

    /// Seconds after sending that those requests are cancelled.
    #[arg(long, default_value_t = 0.0, help_heading = "Request cancellation")]
    pub request_cancellation_delay: f64,

    // ---- Input ----
    /// Mean prompt length in tokens.
    #[arg(long = "synthetic-input-tokens-mean", visible_aliases = ["isl"], default_value_t = 550, help_heading = "Input")]
    pub isl: u32,

    /// Standard deviation of prompt lengths.
    #[arg(long = "synthetic-input-tokens-stddev", visible_aliases = ["isl-stddev"], default_value_t = 0.0, help_heading = "Input")]
    pub isl_stddev: f64,

    /// Mean output length asked for (max tokens); unset lets the server decide.
    #[arg(long = "output-tokens-mean", visible_aliases = ["osl"], help_heading = "Input")]
    pub osl: Option<u32>,

    /// Standard deviation of output lengths.
    #[arg(long = "output-tokens-stddev", visible_aliases = ["osl-stddev"], default_value_t = 0.0, help_heading = "Input")]
    pub osl_stddev: f64,

    /// Distinct prompts generated (requests cycle over them).
    #[arg(long, visible_aliases = ["num-prompts", "conversation-num", "num-conversations"], default_value_t = 100, help_heading = "Input")]
    pub num_dataset_entries: usize,

    /// Seed for prompts, arrivals and cancellations.
    #[arg(long, default_value_t = 0, help_heading = "Input")]
    pub random_seed: u64,

    /// Tokenizer for prompts and client-side counts: `builtin` (tiktoken o200k_base, offline) or
    /// a HuggingFace tokenizer.json (a file, or a directory holding one).
    #[arg(long, default_value = "builtin", help_heading = "Input")]
    pub tokenizer: String,

    /// A JSONL dataset file to send instead of synthetic prompts.
    #[arg(long, help_heading = "Input")]
    pub input_file: Option<PathBuf>,

    /// The format of --input-file: single_turn, multi_turn or mooncake_trace.
    #[arg(long, default_value = "single_turn", help_heading = "Input")]
    pub custom_dataset_type: String,

    /// Tokens per `hash_ids` block of a mooncake trace.
    #[arg(long, default_value_t = 512, help_heading = "Input")]
    pub isl_block_size: u32,

    /// The order conversations are used in: random, sequential or shuffle (default: shuffle for
    /// synthetic prompts, sequential for files).
    #[arg(long, help_heading = "Input")]
    pub dataset_sampling_strategy: Option<String>,

    /// Distinct prefix prompts; each request starts with one of them (prefix-cache benchmarks).
    #[arg(long, default_value_t = 0, help_heading = "Prefix prompt")]
    pub num_prefix_prompts: usize,

    /// Tokens of each prefix prompt.
    #[arg(long, default_value_t = 0, help_heading = "Prefix prompt")]
    pub prefix_prompt_length: u32,

    /// Tokens of a system prompt shared by every conversation.
    #[arg(long, default_value_t = 0, help_heading = "Prefix prompt")]
    pub shared_system_prompt_length: u32,

    // ---- Fixed schedule ----
    /// Replay the dataset's timestamps (the default for datasets with timestamps and no
    /// --request-rate).
    #[arg(long, help_heading = "Fixed schedule")]
    pub fixed_schedule: bool,

    /// Shift timestamps so that the first one is sent at once.
    #[arg(long, help_heading = "Fixed schedule")]
    pub fixed_schedule_auto_offset: bool,

    /// Skip requests timestamped before this many milliseconds.
    #[arg(long, help_heading = "Fixed schedule")]
    pub fixed_schedule_start_offset: Option<u64>,

    /// Skip requests timestamped after this many milliseconds.
    #[arg(long, help_heading = "Fixed schedule")]
    pub fixed_schedule_end_offset: Option<u64>,

    // ---- Output ----
    /// Directory for the export files (default artifacts/<model>-<endpoint type>-<load>).
    #[arg(long, visible_aliases = ["output-artifact-dir"], help_heading = "Output")]
    pub artifact_dir: Option<PathBuf>,

    /// Progress display: `simple` (progress bar on a terminal), `dashboard` (same) or `none`.
    #[arg(long = "ui-type", visible_aliases = ["ui"], value_enum, default_value_t = UiArg::Simple, help_heading = "Output")]
    pub ui: UiArg,

    /// Exit non-zero when more than this many requests failed.
    #[arg(long, help_heading = "Output")]
    pub failed_request_threshold: Option<u64>,

    /// SLOs for goodput, e.g. "time_to_first_token:100 inter_token_latency:10" (display units).
    #[arg(long, help_heading = "Goodput")]
    pub goodput: Option<String>,

    /// Use the server's usage for token metrics instead of the client tokenizer's counts.
    #[arg(long, help_heading = "Goodput")]
    pub use_server_token_count: bool,

    /// The built-in simulated engine, benchmarked when no --url is given.
    #[command(flatten)]
    pub engine: EngineArgs,

    /// Select an implementation: CATEGORY.NAME=TYPE_OR_CRATE (repeatable).
    #[arg(
        long = "use-implementation",
        value_name = "CATEGORY.NAME=WHICH",
        help_heading = "Registry"
    )]
    pub use_implementation: Vec<String>,
}

/// `--arrival-pattern` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ArrivalPatternArg {
    /// Evenly spaced.
    Constant,
    /// Exponential gaps.
    Poisson,
    /// Gamma gaps with --arrival-smoothness.
    Gamma,
}

/// `--ui-type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum UiArg {
    /// A progress bar when stderr is a terminal.
    Simple,
    /// Accepted for AIPerf compatibility: shown as the progress bar.
    Dashboard,
    /// Nothing but the final report.
    None,
}

/// The validated form of [`ProfileArgs`]: every combination checked, every string parsed.
#[derive(Debug)]
struct Profile {
    plan: RunPlan,
    metric_options: MetricOptions,
    endpoint_ctx: EndpointContext,
    transport_ctx: TransportContext,
    dataset: DatasetSource,
    sampling: SamplingStrategy,
    tokenizer: Tokenizer,
    artifact_dir: PathBuf,
}

/// Where the conversations come from.
#[derive(Debug)]
enum DatasetSource {
    /// Synthetic prompts of exact lengths.
    Synthetic(SyntheticConfig),
    /// A dataset file.
    File(CustomDatasetConfig),
}

/// Checks the flags and their combinations; every error says what to change.
fn validate(args: &ProfileArgs) -> anyhow::Result<Profile> {
    if args.request_count.is_some() && args.benchmark_duration.is_some() {
        bail!("--request-count and --benchmark-duration both say when to stop: give only one");
    }
    if args.concurrency == Some(0) {
        bail!("--concurrency must be at least 1");
    }
    if args.request_count == Some(0) {
        bail!("--request-count must be at least 1");
    }
    if let Some(rate) = args.request_rate
        && !(rate.is_finite() && rate > 0.0)
    {
        bail!("--request-rate must be a positive number of requests per second, got {rate}");
    }
    if args.request_rate.is_none() && args.arrival_pattern != ArrivalPatternArg::Poisson {
        bail!(
            "--arrival-pattern applies only with --request-rate: add --request-rate or drop --arrival-pattern"
        );
    }
    let pattern = match (args.arrival_pattern, args.arrival_smoothness) {
        (ArrivalPatternArg::Gamma, smoothness) => {
            let smoothness = smoothness.unwrap_or(1.0);
            if !(smoothness.is_finite() && smoothness > 0.0) {
                bail!(
                    "--arrival-smoothness must be a positive number (1 is Poisson), got {smoothness}"
                );
            }
            ArrivalPattern::Gamma { smoothness }
        }
        (_, Some(_)) => bail!("--arrival-smoothness applies only to --arrival-pattern gamma"),
        (ArrivalPatternArg::Constant, None) => ArrivalPattern::Constant,
        (ArrivalPatternArg::Poisson, None) => ArrivalPattern::Poisson,
    };
    let seconds = |flag: &str, value: f64| -> anyhow::Result<Duration> {
        Duration::try_from_secs_f64(value).map_err(|_| {
            anyhow::anyhow!("{flag} must be a non-negative number of seconds, got {value}")
        })
    };
    let stop = match args.benchmark_duration {
        Some(duration) => {
            let duration = seconds("--benchmark-duration", duration)?;
            if duration.is_zero() {
                bail!("--benchmark-duration must be more than 0 seconds");
            }
            StopCondition::Duration {
                duration,
                grace: seconds("--benchmark-grace-period", args.benchmark_grace_period)?,
            }
        }
        None => StopCondition::Count(args.request_count.unwrap_or(10)),
    };
    let load = match args.request_rate {
        Some(rate) => LoadMode::Rate {
            rate,
            pattern,
            max_concurrency: args.concurrency,
        },
        None => LoadMode::Concurrency(args.concurrency.unwrap_or(1)),
    };
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
    let request_timeout = seconds("--request-timeout-seconds", args.request_timeout_seconds)?;
    if request_timeout.is_zero() {
        bail!("--request-timeout-seconds must be more than 0");
    }
    if args.isl == 0 {
        bail!("--synthetic-input-tokens-mean (--isl) must be at least 1");
    }
    if args.osl == Some(0) {
        bail!("--output-tokens-mean (--osl) must be at least 1");
    }
    for (flag, stddev) in [
        ("--isl-stddev", args.isl_stddev),
        ("--osl-stddev", args.osl_stddev),
    ] {
        if !(stddev.is_finite() && stddev >= 0.0) {
            bail!("{flag} must be a non-negative number, got {stddev}");
        }
    }
    if args.num_dataset_entries == 0 {
        bail!("--num-dataset-entries must be at least 1");
    }
    let tokenizer = Tokenizer::from_spec(&args.tokenizer).context("invalid --tokenizer")?;
    let prompt_words = PromptWords::for_tokenizer(&tokenizer).context("invalid --tokenizer")?;
    let prefix = PrefixConfig {
        num_prefix_prompts: args.num_prefix_prompts,
        prefix_prompt_length: args.prefix_prompt_length,
        shared_system_prompt_length: args.shared_system_prompt_length,
    };
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
    let dataset = match &args.input_file {
        Some(path) => {
            let kind: CustomDatasetType = args
                .custom_dataset_type
                .parse()
                .map_err(|err| anyhow::anyhow!("invalid --custom-dataset-type: {err}"))?;
            let mut config = CustomDatasetConfig::new(path.clone(), kind, tokenizer.clone())?;
            config.prompt_words = prompt_words.clone();
            config.prefix = prefix;
            config.isl_block_size = isl_block_size;
            config.seed = args.random_seed;
            DatasetSource::File(config)
        }
        None => DatasetSource::Synthetic(SyntheticConfig {
            input_tokens: LengthDistribution {
                mean: args.isl,
                stddev: args.isl_stddev,
            },
            output_tokens: args.osl.map(|mean| LengthDistribution {
                mean,
                stddev: args.osl_stddev,
            }),
            entries: args.num_dataset_entries,
            seed: args.random_seed,
            prompt_words: prompt_words.clone(),
            prefix,
        }),
    };
    let sampling = match &args.dataset_sampling_strategy {
        Some(strategy) => strategy
            .parse()
            .map_err(|err| anyhow::anyhow!("invalid --dataset-sampling-strategy: {err}"))?,
        None => match &dataset {
            DatasetSource::Synthetic(_) => SamplingStrategy::Shuffle,
            DatasetSource::File(config) => config.kind.preferred_sampling(),
        },
    };

    let url = args.url.as_deref().map(normalize_url);
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
        let Some((name, value)) = header.split_once(':') else {
            bail!("-H/--header `{header}` is not of the form Name:Value");
        };
        if name.trim().is_empty() {
            bail!("-H/--header `{header}` has an empty name");
        }
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    if let Some(key) = &args.api_key {
        headers.push(("Authorization".to_owned(), format!("Bearer {key}")));
    }

    let artifact_dir = args
        .artifact_dir
        .clone()
        .unwrap_or_else(|| default_artifact_dir(args, &load));
    let goodput = match &args.goodput {
        Some(slos) => parse_goodput(slos).context("invalid --goodput")?,
        None => Vec::new(),
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
        plan: RunPlan {
            load,
            stop,
            warmup_requests: args.warmup_request_count,
            cancellation,
            streaming: args.streaming,
            seed: args.random_seed,
        },
        endpoint_ctx: EndpointContext {
            model: args.model.clone(),
            streaming: args.streaming,
            extra_inputs: parse_extra_inputs(&args.extra_inputs)?,
            custom_path: args.custom_endpoint.clone(),
        },
        transport_ctx: TransportContext {
            url,
            headers,
            request_timeout: Some(request_timeout),
            max_in_flight: load.max_in_flight(),
            engine,
            ..TransportContext::default()
        },
        dataset,
        sampling,
        tokenizer,
        artifact_dir,
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

/// `artifacts/<model>-<endpoint type>-concurrency<N>` (or `-request_rate<R>`), AIPerf's naming.
fn default_artifact_dir(args: &ProfileArgs, load: &LoadMode) -> PathBuf {
    let model: String = args
        .model
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

/// Parses `--extra-inputs`: `key:value` pairs (the value read as JSON when it parses, else
/// as a string) or whole JSON objects.
fn parse_extra_inputs(
    items: &[String],
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let mut extra = serde_json::Map::new();
    for item in items {
        let trimmed = item.trim();
        if trimmed.starts_with('{') {
            let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(trimmed)
                .with_context(|| {
                    format!("--extra-inputs `{item}` looks like JSON but is not a JSON object")
                })?;
            extra.extend(object);
            continue;
        }
        let Some((key, value)) = trimmed.split_once(':') else {
            bail!("--extra-inputs `{item}` is not of the form key:value or a JSON object");
        };
        let key = key.trim();
        if key.is_empty() {
            bail!("--extra-inputs `{item}` has an empty key");
        }
        let value = value.trim();
        let value = serde_json::from_str(value)
            .unwrap_or_else(|_| serde_json::Value::String(value.to_owned()));
        extra.insert(key.to_owned(), value);
    }
    Ok(extra)
}

/// The transport for this run: `--transport`, else inferred from the URL's scheme (no URL: the
/// in-process simulated engine) among the transports that carry the endpoint's wire format,
/// preferring the one named like the scheme (`http://` keeps choosing `http` over `http2`).
/// A transport that cannot serve the URL, or cannot carry the endpoint's requests (chat over
/// grpc), is an error listing what fits.
fn choose_transport(
    registries: &Registries,
    requested: Option<&str>,
    ctx: &TransportContext,
    endpoint_type: &str,
    wire_format: WireFormat,
) -> anyhow::Result<(String, Box<dyn Transport>)> {
    let scheme = ctx
        .url
        .as_deref()
        .and_then(|url| url.split_once("://"))
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    let known: Vec<&str> = registries.transport.names().collect();
    if let Some(requested) = requested {
        if !known.contains(&requested) {
            bail!(
                "unknown transport `{requested}`: known transports are {}",
                known.join(", ")
            );
        }
        let transport = registries.transport.create_instance(requested, ctx)?;
        let metadata = transport.metadata();
        // A network transport that accepted the URL when created serves it, even under a
        // scheme it is not chosen for by default (grpc takes http://HOST:PORT).
        let serves = match &scheme {
            Some(_) => !metadata.url_schemes.is_empty(),
            None => metadata.url_schemes.is_empty(),
        };
        if !serves {
            match &scheme {
                Some(scheme) => bail!(
                    "transport `{requested}` cannot serve {scheme}:// URLs: pick another --transport or --url"
                ),
                None => bail!("transport `{requested}` needs a --url"),
            }
        }
        if !metadata.wire_formats.contains(&wire_format) {
            return Err(wire_mismatch(
                registries,
                endpoint_type,
                wire_format,
                &[requested],
                ctx,
            ));
        }
        return Ok((requested.to_owned(), transport));
    }

    let mut serving = Vec::new();
    let mut candidates = Vec::new();
    for name in registries.transport.names() {
        let Ok(transport) = registries.transport.create_instance(name, ctx) else {
            continue;
        };
        let metadata = transport.metadata();
        let fits = match &scheme {
            Some(scheme) => metadata.url_schemes.contains(&scheme.as_str()),
            None => metadata.url_schemes.is_empty(),
        };
        if fits {
            serving.push(name);
            if metadata.wire_formats.contains(&wire_format) {
                candidates.push((name, transport));
            }
        }
    }
    if serving.is_empty() {
        match scheme {
            Some(scheme) => bail!(
                "no transport serves {scheme}:// URLs: use an http://, https:// or grpc:// --url, or one of the transports {}",
                known.join(", ")
            ),
            None => bail!("no in-process transport is built in: give a --url"),
        }
    }
    if candidates.is_empty() {
        return Err(wire_mismatch(
            registries,
            endpoint_type,
            wire_format,
            &serving,
            ctx,
        ));
    }
    let preferred = candidates
        .iter()
        .position(|(name, _)| Some(*name) == scheme.as_deref())
        .unwrap_or(0);
    let (name, transport) = candidates.swap_remove(preferred);
    Ok((name.to_owned(), transport))
}

/// The error for an endpoint whose requests none of `transports` (those serving the URL, or the
/// one asked for) can carry: the endpoint types that fit them, and the transports that fit the
/// endpoint, with the URLs that select each.
fn wire_mismatch(
    registries: &Registries,
    endpoint_type: &str,
    wire_format: WireFormat,
    transports: &[&str],
    ctx: &TransportContext,
) -> anyhow::Error {
    // What each transport carries and serves: built with this run's context, or else with the
    // validation context (a transport refuses URLs it does not serve).
    let validation = TransportCategory::validation_context();
    let facts: Vec<(&str, TransportMetadata)> = registries
        .transport
        .names()
        .filter_map(|name| {
            let transport = registries
                .transport
                .create_instance(name, ctx)
                .or_else(|_| registries.transport.create_instance(name, &validation))
                .ok()?;
            Some((name, transport.metadata()))
        })
        .collect();
    let carried: Vec<WireFormat> = facts
        .iter()
        .filter(|(name, _)| transports.contains(name))
        .flat_map(|(_, metadata)| metadata.wire_formats.iter().copied())
        .collect();
    let endpoint_validation = EndpointCategory::validation_context();
    let fitting_endpoints: Vec<&str> = registries
        .endpoint
        .names()
        .filter(|name| {
            registries
                .endpoint
                .create_instance(name, &endpoint_validation)
                .is_ok_and(|endpoint| carried.contains(&endpoint.metadata().wire_format))
        })
        .collect();
    let fitting_transports: Vec<String> = facts
        .iter()
        .filter(|(_, metadata)| metadata.wire_formats.contains(&wire_format))
        .map(|(name, metadata)| match metadata.url_schemes {
            [] => format!("{name} (no --url)"),
            schemes => {
                let urls: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
                format!("{name} (--url {})", urls.join(" or "))
            }
        })
        .collect();
    let (which, fit) = match transports {
        [one] => (format!("transport `{one}`"), format!("`{one}`")),
        several => (
            format!("the transports serving this URL ({})", several.join(", ")),
            "them".to_owned(),
        ),
    };
    let endpoints = match fitting_endpoints.as_slice() {
        [] => "none".to_owned(),
        names => names.join(", "),
    };
    let transports = match fitting_transports.as_slice() {
        [] => "none in this build".to_owned(),
        names => names.join(", "),
    };
    anyhow::anyhow!(
        "endpoint `{endpoint_type}` sends {wire_format} requests, which {which} cannot carry: \
         endpoint types that fit {fit} are {endpoints}; transports that carry \
         `{endpoint_type}` are {transports}"
    )
}

/// Runs `aiperf profile`.
pub(crate) fn run(args: ProfileArgs) -> anyhow::Result<u8> {
    // Build the builtin tokenizer while everything else is set up: it is needed only after
    // the run, for the client-side output counts.
    if args.tokenizer == "builtin" {
        Tokenizer::warm_up_in_background();
    }
    let mut profile = validate(&args)?;
    let registries = crate::registries(&args.use_implementation)?;
    let endpoint: Arc<dyn Endpoint> = registries
        .endpoint
        .create_instance(&args.endpoint_type, &profile.endpoint_ctx)?
        .into();
    if args.streaming && !endpoint.metadata().supports_streaming {
        bail!(
            "endpoint `{}` cannot stream: drop --streaming",
            args.endpoint_type
        );
    }
    profile.metric_options.produces_tokens = endpoint.metadata().produces_tokens;
    let mut conversations = match &profile.dataset {
        DatasetSource::Synthetic(config) => synthetic::generate(config),
        DatasetSource::File(config) => custom::load(config)?,
    };
    fit_plan_to_dataset(&args, &mut profile, &mut conversations)?;
    let (transport_name, transport) = choose_transport(
        &registries,
        args.transport.as_deref(),
        &profile.transport_ctx,
        &args.endpoint_type,
        endpoint.metadata().wire_format,
    )?;
    let transport: Arc<dyn Transport> = transport.into();
    match &profile.transport_ctx.url {
        Some(url) => eprintln!(
            "aiperf: profiling {url} with endpoint `{}` over `{transport_name}`",
            args.endpoint_type
        ),
        None => eprintln!(
            "aiperf: no --url given: benchmarking the built-in simulated engine (transport `{transport_name}`)"
        ),
    }

    let conversations: Vec<PreparedConversation> = conversations
        .iter()
        .map(|conversation| PreparedConversation::prepare(conversation, endpoint.as_ref()))
        .collect();
    let order = Box::new(SamplingOrder::new(
        profile.sampling,
        conversations.len(),
        args.random_seed,
    ));

    // Checked now, not after the run: a run whose results cannot be written is wasted.
    let artifacts = ArtifactDir::prepare(&profile.artifact_dir)?;
    let control = Arc::new(RunControl::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let output = runtime.block_on(run_with_progress(
        &args,
        Arc::clone(&endpoint),
        transport,
        conversations,
        order,
        profile.plan.clone(),
        Arc::clone(&control),
    ))?;
    let mut output = output;
    count_client_tokens(
        &mut output,
        &profile.tokenizer,
        endpoint.metadata().produces_tokens,
    );
    report(&args, &profile, &artifacts, &output)
}

/// Runs the benchmark with a progress bar (when asked and on a terminal) and Ctrl-C / SIGTERM
/// handling: the first signal stops scheduling and gives in-flight requests the grace period,
/// the second cancels them at once.
async fn run_with_progress(
    args: &ProfileArgs,
    endpoint: Arc<dyn Endpoint>,
    transport: Arc<dyn Transport>,
    conversations: Vec<PreparedConversation>,
    order: Box<dyn Iterator<Item = usize> + Send>,
    plan: RunPlan,
    control: Arc<RunControl>,
) -> anyhow::Result<RunOutput> {
    let wait = Duration::try_from_secs_f64(args.wait_for_model_timeout).unwrap_or(Duration::ZERO);
    wait_for_server(transport.as_ref(), wait).await?;
    let grace = Duration::try_from_secs_f64(args.benchmark_grace_period).unwrap_or(Duration::ZERO);
    let signals = tokio::spawn(watch_signals(Arc::clone(&control), grace));
    let progress =
        crate::progress::Progress::start(args.ui != UiArg::None, &plan, Arc::clone(&control));
    let output = runner::run(endpoint, transport, conversations, order, plan, control).await;
    progress.finish();
    signals.abort();
    Ok(output?)
}

/// Probes the server until it answers or `wait` has passed: an unreachable server is one
/// clear error before the run, not thousands of failed records.
async fn wait_for_server(transport: &dyn Transport, wait: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match transport.probe().await {
            Ok(()) => return Ok(()),
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(err) if wait.is_zero() => {
                bail!("{err}; or give --wait-for-model-timeout SECONDS to wait for it")
            }
            Err(err) => bail!(
                "{err} (waited {:.0} s, --wait-for-model-timeout)",
                wait.as_secs_f64()
            ),
        }
    }
}

async fn watch_signals(control: Arc<RunControl>, grace: Duration) {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    next_signal(&mut terminate).await;
    eprintln!(
        "\naiperf: interrupted: no new requests; in-flight ones get {:.0} s to finish (interrupt again to stop now)",
        grace.as_secs_f64()
    );
    control.interrupt(grace);
    next_signal(&mut terminate).await;
    eprintln!("aiperf: stopping now; writing what was measured");
    control.interrupt(Duration::ZERO);
}

/// Resolves on the next Ctrl-C or SIGTERM.
async fn next_signal(terminate: &mut Option<tokio::signal::unix::Signal>) {
    match terminate {
        Some(terminate) => tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        },
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Settles what depends on the dataset: a file is sent once through by default (unless a count
/// or duration is given), and a dataset with timestamps is replayed on a fixed schedule unless
/// a rate is asked for, within the `--fixed-schedule-*-offset` window.
fn fit_plan_to_dataset(
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
    let fixed = args.fixed_schedule || (has_timestamps && args.request_rate.is_none());
    if fixed {
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
        profile.plan.load = LoadMode::FixedSchedule {
            max_concurrency: args.concurrency,
        };
        profile.transport_ctx.max_in_flight = profile.plan.load.max_in_flight();
    } else if args.fixed_schedule_auto_offset
        || args.fixed_schedule_start_offset.is_some()
        || args.fixed_schedule_end_offset.is_some()
    {
        bail!(
            "the --fixed-schedule-* options apply only to a fixed schedule: add --fixed-schedule"
        );
    }
    let explicit_stop = args.request_count.is_some() || args.benchmark_duration.is_some();
    if !explicit_stop && (fixed || matches!(profile.dataset, DatasetSource::File(_))) {
        let turns = conversations.iter().map(|c| c.turns.len()).sum();
        profile.plan.stop = StopCondition::Count(turns);
    }
    Ok(())
}

/// Counts output and reasoning tokens with the client tokenizer, after the run (off the
/// measured path), spread over the machine's cores.
fn count_client_tokens(output: &mut RunOutput, tokenizer: &Tokenizer, produces_tokens: bool) {
    if !produces_tokens {
        return;
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = output.records.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        for records in output.records.chunks_mut(chunk) {
            scope.spawn(move || {
                for record in records {
                    record.client_tokens.output = Some(tokenizer.count(&record.text.content));
                    record.client_tokens.reasoning = Some(tokenizer.count(&record.text.reasoning));
                }
            });
        }
    });
}

/// Metrics, exports and the console report; the exit status.
fn report(
    args: &ProfileArgs,
    profile: &Profile,
    artifacts: &ArtifactDir,
    output: &RunOutput,
) -> anyhow::Result<u8> {
    let facts = RunFacts {
        benchmark_id: runner::random_uuid(),
        was_cancelled: output.was_interrupted,
        profiling_start_ns: Some(output.profiling_start_ns),
        profiling_end_ns: Some(output.profiling_end_ns),
        requests_sent: None,
    };
    let report = analyze(&output.records, &facts, &profile.metric_options);
    // The per-request file first: it holds everything measured, whatever fails after it.
    artifacts.write_records_jsonl(&report, &output.records)?;
    let input_config =
        serde_json::to_value(args).context("failed to describe the run's configuration")?;
    artifacts.write_profile_json(&report, &input_config)?;
    artifacts.write_profile_csv(&report)?;
    artifacts.write_inputs_json(&SessionPayloads::group(output.payloads.iter().flat_map(
        |sent| {
            sent.payloads
                .iter()
                .map(move |payload| (&*sent.session_id, &payload[..]))
        },
    )))?;

    print!("{}", console::render(&report));
    if !args.streaming && profile.transport_ctx.url.is_none() {
        println!("(add --streaming to measure time to first token and inter-token latency)");
    }
    let counts = report.counts;
    println!(
        "requests: {} sent = {} succeeded + {} errored + {} cancelled{}",
        counts.sent,
        counts.succeeded,
        counts.errored,
        counts.cancelled,
        if counts.is_reconciled() {
            ""
        } else {
            "  (DOES NOT RECONCILE: please report this)"
        }
    );
    println!("exports written to {}", artifacts.path().display());

    if output.was_interrupted {
        return Ok(exit::INTERRUPTED);
    }
    if counts.sent > 0 && counts.succeeded == 0 {
        eprintln!("aiperf: every request failed: see the error summary above");
        return Ok(exit::RUN_FAILED);
    }
    if let Some(threshold) = args.failed_request_threshold
        && counts.errored > threshold
    {
        eprintln!(
            "aiperf: {} requests failed, more than --failed-request-threshold {threshold}",
            counts.errored
        );
        return Ok(exit::RUN_FAILED);
    }
    Ok(exit::SUCCESS)
}
