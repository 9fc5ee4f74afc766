//! The flags of `aiperf profile`, with AIPerf's spellings and aliases: one struct that clap
//! derives the parser and `--help` from, and that the JSON export's `input_config` is made
//! from (`input_config`).

use std::path::PathBuf;

use clap::ValueEnum;

use crate::flag_values::whole_number;
use crate::verbosity::LogLevel;

use crate::engine_args::EngineArgs;

/// Flags of `aiperf profile`, with AIPerf's spellings and aliases.
#[derive(Debug, Clone, clap::Args, serde::Serialize)]
#[group(skip)]
#[command(
    allow_negative_numbers = true,
    after_help = "With no --url, aiperf benchmarks its built-in simulated engine (the in_engine transport), so a first run needs no server."
)]
pub(crate) struct ProfileArgs {
    // ---- Endpoint ----
    /// Model name sent in the requests; several, separated by commas, are each named by a
    /// share of the dataset's turns (see --model-selection-strategy).
    #[arg(short = 'm', long = "model", visible_aliases = ["model-names"], default_value = DEFAULT_MODEL, help_heading = "Endpoint")]
    pub model: String,

    /// With several --model names: which one each turn of the dataset names, in turn
    /// (round_robin) or at random (random, by --random-seed).
    #[arg(long, value_enum, default_value_t = ModelSelectionArg::RoundRobin, help_heading = "Endpoint")]
    pub model_selection_strategy: ModelSelectionArg,

    /// Server URL, e.g. http://localhost:8000 (no URL: the built-in simulated engine). The
    /// endpoint's path is appended, as AIPerf appends it: not at all to a URL that already
    /// ends with it, and without its v1/ to a URL ending with /v1. Several (`--url A --url B`,
    /// `--url A B` or `--url A,B`) share the load, as in AIPerf: each conversation goes to the
    /// next in turn, all its turns to the same server.
    #[arg(short = 'u', long, num_args = 1.., help_heading = "Endpoint")]
    pub url: Vec<String>,

    /// How several --url share the conversations.
    #[arg(long, value_enum, default_value_t = UrlStrategyArg::RoundRobin, help_heading = "Endpoint")]
    pub url_strategy: UrlStrategyArg,

    /// Endpoint type: a registered endpoint name (see `aiperf plugins endpoint`).
    #[arg(long, default_value = "chat", help_heading = "Endpoint")]
    pub endpoint_type: String,

    /// A URL path that replaces the endpoint type's default path.
    #[arg(long = "endpoint", visible_aliases = ["custom-endpoint"], help_heading = "Endpoint")]
    pub custom_endpoint: Option<String>,

    /// Name the output length `max_tokens` instead of `max_completion_tokens` (chat), for
    /// servers that require the older name.
    #[arg(long, help_heading = "Endpoint")]
    pub use_legacy_max_tokens: bool,

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

    /// Extra headers sent with every request: `Name:Value`, several separated by commas, or a
    /// JSON object (repeatable, and several may follow one flag, as in AIPerf).
    #[arg(
        short = 'H',
        long = "header",
        num_args = 1..,
        value_name = "NAME:VALUE",
        help_heading = "Endpoint"
    )]
    #[serde(skip)]
    pub headers: Vec<String>,

    /// The header that carries each request's conversation id, instead of X-Correlation-ID
    /// (a router's session-affinity key, e.g. X-Session-ID), as AIPerf's.
    #[arg(long, value_name = "NAME", help_heading = "Endpoint")]
    pub session_header: Option<String>,

    /// Extra payload fields: `key:value`, several separated by commas, or a JSON object
    /// (repeatable, and several may follow one flag, as in AIPerf). Values are typed as AIPerf
    /// types them: true/false, null, whole numbers, decimals, else strings; a JSON list or
    /// object is that value.
    #[arg(
        long = "extra-inputs",
        num_args = 1..,
        value_name = "KEY:VALUE|JSON",
        help_heading = "Endpoint"
    )]
    pub extra_inputs: Vec<String>,

    // ---- Load ----
    /// Requests in flight at once (closed loop), or the cap in flight with --request-rate.
    #[arg(value_parser = whole_number::<usize>, long, help_heading = "Load generator")]
    pub concurrency: Option<usize>,

    /// Seconds over which the concurrency (the warm-up's too, unless it has its own, as in
    /// AIPerf) rises from 1 to --concurrency, one request at a time at even intervals, for a
    /// gradual warm-up of the server.
    #[arg(long, help_heading = "Load generator")]
    pub concurrency_ramp_duration: Option<f64>,

    /// Requests per second (open loop).
    #[arg(long, help_heading = "Load generator")]
    pub request_rate: Option<f64>,

    /// Seconds over which the request rate (the warm-up's too, unless it has its own) rises
    /// linearly from 0 to --request-rate, as AIPerf ramps it.
    #[arg(long, help_heading = "Load generator")]
    pub request_rate_ramp_duration: Option<f64>,

    /// How gaps between requests are drawn with --request-rate (and --warmup-request-rate):
    /// poisson when not given, gamma when only --arrival-smoothness is.
    #[arg(long, visible_aliases = ["request-rate-mode"], value_enum, help_heading = "Load generator")]
    pub arrival_pattern: Option<ArrivalPatternArg>,

    /// Gamma shape for --arrival-pattern gamma (1 = Poisson, higher = smoother); given alone,
    /// it picks gamma, as AIPerf's --vllm-burstiness does.
    #[arg(long, visible_aliases = ["vllm-burstiness"], help_heading = "Load generator")]
    pub arrival_smoothness: Option<f64>,

    /// Requests to send in the profiling phase (default 10 unless --benchmark-duration or
    /// --conversation-num is given).
    #[arg(value_parser = whole_number::<usize>, long, visible_aliases = ["num-requests"], help_heading = "Load generator")]
    pub request_count: Option<usize>,

    /// Conversations the profiling phase starts, each sent to its last turn (with
    /// --request-count or --benchmark-duration too, whichever ends first); also the number of
    /// synthetic conversations generated unless --num-dataset-entries is given, as in AIPerf.
    #[arg(value_parser = whole_number::<usize>, long, visible_aliases = ["num-conversations", "num-sessions"], help_heading = "Load generator")]
    pub conversation_num: Option<usize>,

    /// Send requests for this many seconds instead of a count.
    #[arg(long, help_heading = "Load generator")]
    pub benchmark_duration: Option<f64>,

    /// With --benchmark-duration, or after Ctrl-C: seconds in-flight requests may still take
    /// before they are cancelled (SIGTERM cancels them at once).
    #[arg(long, default_value_t = 30.0, help_heading = "Load generator")]
    pub benchmark_grace_period: f64,

    /// Requests sent before profiling, excluded from the metrics.
    #[arg(value_parser = whole_number::<usize>, long, visible_aliases = ["num-warmup-requests"], default_value_t = 0, help_heading = "Load generator")]
    pub warmup_request_count: usize,

    /// Conversations the warm-up starts (alone, or with --warmup-request-count or
    /// --warmup-duration, whichever ends first).
    #[arg(value_parser = whole_number::<usize>, long, help_heading = "Load generator")]
    pub num_warmup_sessions: Option<usize>,

    /// The longest the warm-up sends, in seconds: alone, the warm-up sends until then; with
    /// --warmup-request-count, until the first of the two (its requests are waited for).
    #[arg(long, help_heading = "Load generator")]
    pub warmup_duration: Option<f64>,

    /// The warm-up's concurrency, instead of --concurrency (its cap on requests in flight with
    /// a request rate), as in AIPerf.
    #[arg(value_parser = whole_number::<usize>, long, help_heading = "Load generator")]
    pub warmup_concurrency: Option<usize>,

    /// The warm-up's --arrival-pattern, instead of the profiling phase's.
    #[arg(long, value_enum, help_heading = "Load generator")]
    pub warmup_arrival_pattern: Option<ArrivalPatternArg>,

    /// The warm-up's --concurrency-ramp-duration, instead of the profiling phase's.
    #[arg(long, help_heading = "Load generator")]
    pub warmup_concurrency_ramp_duration: Option<f64>,

    /// The warm-up's --request-rate-ramp-duration, instead of the profiling phase's.
    #[arg(long, help_heading = "Load generator")]
    pub warmup_request_rate_ramp_duration: Option<f64>,

    /// The most requests waiting for their first token at once (prefill), each given back
    /// with its first response; needs --streaming.
    #[arg(value_parser = whole_number::<usize>, long, help_heading = "Load generator")]
    pub prefill_concurrency: Option<usize>,

    /// The warm-up's --prefill-concurrency, instead of the profiling phase's.
    #[arg(value_parser = whole_number::<usize>, long, help_heading = "Load generator")]
    pub warmup_prefill_concurrency: Option<usize>,

    /// The warm-up's requests per second, instead of --request-rate (open loop, with
    /// --arrival-pattern), as in AIPerf.
    #[arg(long, help_heading = "Load generator")]
    pub warmup_request_rate: Option<f64>,

    /// Percentage (0-100) of requests cancelled on purpose.
    #[arg(long, default_value_t = 0.0, help_heading = "Request cancellation")]
    pub request_cancellation_rate: f64,

    /// Seconds after sending that those requests are cancelled.
    #[arg(long, default_value_t = 0.0, help_heading = "Request cancellation")]
    pub request_cancellation_delay: f64,

    // ---- Input ----
    /// Mean prompt length in tokens.
    #[arg(value_parser = whole_number::<u32>, long = "synthetic-input-tokens-mean", visible_aliases = ["isl", "prompt-input-tokens-mean"], default_value_t = 550, help_heading = "Input")]
    pub isl: u32,

    /// Standard deviation of prompt lengths.
    #[arg(long = "synthetic-input-tokens-stddev", visible_aliases = ["isl-stddev", "prompt-input-tokens-stddev"], default_value_t = 0.0, help_heading = "Input")]
    pub isl_stddev: f64,

    /// Mean output length asked for (max tokens); unset lets the server decide.
    #[arg(value_parser = whole_number::<u32>, long = "output-tokens-mean", visible_aliases = ["osl", "prompt-output-tokens-mean"], help_heading = "Input")]
    pub osl: Option<u32>,

    /// Standard deviation of output lengths.
    #[arg(long = "output-tokens-stddev", visible_aliases = ["osl-stddev", "prompt-output-tokens-stddev"], default_value_t = 0.0, help_heading = "Input")]
    pub osl_stddev: f64,

    /// Draw each prompt's and output's length uniformly from a window around --isl and --osl,
    /// as `vllm bench serve` does: one ratio R for both, or {"input": R, "output": R}.
    #[arg(long, value_name = "R|JSON", help_heading = "Input")]
    pub random_range_ratio: Option<String>,

    /// The window --random-range-ratio draws from.
    #[arg(long, value_enum, default_value_t = WindowStyleArg::Vllm, help_heading = "Input")]
    pub random_corpus_style: WindowStyleArg,

    /// Distinct synthetic conversations generated (requests cycle over them) [default:
    /// --conversation-num, else --request-count's, up to 10000, as AIPerf sizes it; else 100].
    #[arg(value_parser = whole_number::<usize>, long, visible_aliases = ["num-prompts"], help_heading = "Input")]
    pub num_dataset_entries: Option<usize>,

    /// Mean turns per synthetic conversation: each turn is sent with the conversation so far
    /// (earlier prompts and the server's answers), after the previous turn's answer.
    #[arg(value_parser = whole_number::<u32>, long, visible_aliases = ["session-turns-mean"], default_value_t = 1, help_heading = "Input")]
    pub conversation_turn_mean: u32,

    /// Standard deviation of turns per synthetic conversation (at least 1 each).
    #[arg(long, visible_aliases = ["session-turns-stddev"], default_value_t = 0.0, help_heading = "Input")]
    pub conversation_turn_stddev: f64,

    /// Mean wait in milliseconds before each turn after a synthetic conversation's first,
    /// from the previous turn's answer (a user's think time).
    #[arg(long, visible_aliases = ["session-turn-delay-mean"], default_value_t = 0.0, help_heading = "Input")]
    pub conversation_turn_delay_mean: f64,

    /// Standard deviation of those waits, in milliseconds (each at least 0).
    #[arg(long, visible_aliases = ["session-turn-delay-stddev"], default_value_t = 0.0, help_heading = "Input")]
    pub conversation_turn_delay_stddev: f64,

    /// What every wait between turns is multiplied by (0 removes them).
    #[arg(long, visible_aliases = ["session-delay-ratio"], default_value_t = 1.0, help_heading = "Input")]
    pub conversation_turn_delay_ratio: f64,

    /// Seed for prompts, arrivals and cancellations.
    #[arg(value_parser = whole_number::<u64>, long, default_value_t = 0, help_heading = "Input")]
    pub random_seed: u64,

    /// Tokenizer for prompts and client-side counts: `builtin` (tiktoken o200k_base, offline), a
    /// HuggingFace tokenizer.json (a file, or a directory holding one), or a Hub model id
    /// (org/name) in the local HuggingFace cache (nothing is downloaded) [default: the first
    /// --model's own when the cache holds it, as AIPerf takes the model's; else builtin].
    #[arg(long, help_heading = "Input")]
    pub tokenizer: Option<String>,

    /// The revision of a Hub model id --tokenizer: a branch or tag the cache has, or a commit.
    #[arg(long, help_heading = "Input")]
    pub tokenizer_revision: Option<String>,

    /// Accepted for AIPerf compatibility: aiperf reads tokenizer.json and runs no tokenizer
    /// code, so there is nothing to trust.
    #[arg(long, help_heading = "Input")]
    pub tokenizer_trust_remote_code: bool,

    /// A JSONL dataset file to send instead of synthetic prompts.
    #[arg(long, help_heading = "Input")]
    pub input_file: Option<PathBuf>,

    /// The format of --input-file: single_turn, multi_turn or mooncake_trace.
    #[arg(long, default_value = "single_turn", help_heading = "Input")]
    pub custom_dataset_type: String,

    /// Tokens per `hash_ids` block of a mooncake trace.
    #[arg(value_parser = whole_number::<u32>, long, visible_aliases = ["prompt-input-tokens-block-size", "synthetic-input-tokens-block-size"], default_value_t = 512, help_heading = "Input")]
    pub isl_block_size: u32,

    /// The order conversations are used in: random, sequential or shuffle (default: shuffle for
    /// synthetic prompts, sequential for files).
    #[arg(long, help_heading = "Input")]
    pub dataset_sampling_strategy: Option<String>,

    /// Distinct prefix prompts; each request starts with one of them (prefix-cache benchmarks).
    #[arg(value_parser = whole_number::<usize>, long, visible_aliases = ["prompt-prefix-pool-size", "prefix-prompt-pool-size"], default_value_t = 0, help_heading = "Prefix prompt")]
    pub num_prefix_prompts: usize,

    /// Tokens of each prefix prompt.
    #[arg(value_parser = whole_number::<u32>, long, visible_aliases = ["prompt-prefix-length"], default_value_t = 0, help_heading = "Prefix prompt")]
    pub prefix_prompt_length: u32,

    /// Tokens of a system prompt shared by every conversation.
    #[arg(value_parser = whole_number::<u32>, long, default_value_t = 0, help_heading = "Prefix prompt")]
    pub shared_system_prompt_length: u32,

    /// A system prompt, sent verbatim at the head of every conversation (before a dataset's
    /// own system message, in the same message).
    #[arg(
        long,
        value_name = "TEXT",
        conflicts_with = "system_prompt_file",
        help_heading = "Prefix prompt"
    )]
    pub system_prompt: Option<String>,

    /// A UTF-8 text file holding the system prompt (--system-prompt, for prompts too long to
    /// quote); read once, before the run.
    #[arg(long, value_name = "PATH", help_heading = "Prefix prompt")]
    pub system_prompt_file: Option<PathBuf>,

    // ---- Fixed schedule ----
    /// Replay the dataset's timestamps (the default for datasets with timestamps and no
    /// --request-rate).
    #[arg(long, help_heading = "Fixed schedule")]
    pub fixed_schedule: bool,

    /// Shift timestamps so that the first one is sent at once.
    #[arg(long, help_heading = "Fixed schedule")]
    pub fixed_schedule_auto_offset: bool,

    /// Skip requests timestamped before this many milliseconds.
    #[arg(value_parser = whole_number::<u64>, long, help_heading = "Fixed schedule")]
    pub fixed_schedule_start_offset: Option<u64>,

    /// Skip requests timestamped after this many milliseconds.
    #[arg(value_parser = whole_number::<u64>, long, help_heading = "Fixed schedule")]
    pub fixed_schedule_end_offset: Option<u64>,

    // ---- Output ----
    /// Directory for the export files (default `artifacts/<model>-<endpoint type>-<load>`).
    #[arg(long, visible_aliases = ["output-artifact-dir"], help_heading = "Output")]
    pub artifact_dir: Option<PathBuf>,

    /// How much aiperf says on stderr, AIPerf's levels: `warning` leaves out what the run is
    /// doing, `error` the notes too, `debug` adds the plan the flags resolved to.
    #[arg(long, value_enum, ignore_case = true, default_value_t = LogLevel::Info, help_heading = "Output")]
    pub log_level: LogLevel,

    /// --log-level debug (-vv: trace).
    #[arg(short = 'v', long, action = clap::ArgAction::Count, help_heading = "Output")]
    pub verbose: u8,

    /// --log-level trace.
    #[arg(long, help_heading = "Output")]
    pub extra_verbose: bool,

    /// Progress display: `simple` (progress bar on a terminal), `dashboard` (same) or `none`.
    #[arg(long = "ui-type", visible_aliases = ["ui"], value_enum, default_value_t = UiArg::Simple, help_heading = "Output")]
    pub ui: UiArg,

    /// Exit non-zero when more than this many requests failed.
    #[arg(value_parser = whole_number::<u64>, long, help_heading = "Output")]
    pub failed_request_threshold: Option<u64>,

    /// Which files to write: `records` (the default) writes every export, `summary` leaves out
    /// the per-request `profile_export.jsonl`, as in AIPerf. AIPerf's `raw` (the raw request
    /// and response bodies) is refused: aiperf does not write them.
    #[arg(long, visible_aliases = ["profile-export-level"], value_enum, default_value_t = ExportLevelArg::Records, help_heading = "Output")]
    pub export_level: ExportLevelArg,

    /// The base name of the export files: `<name>.json`, `<name>.csv` and `<name>.jsonl`
    /// instead of `profile_export_aiperf.json`, `profile_export_aiperf.csv` and
    /// `profile_export.jsonl` (a file name given, `run1.json`, names `run1`, as in AIPerf).
    #[arg(long, visible_alias = "profile-export-file", help_heading = "Output")]
    pub profile_export_prefix: Option<String>,

    /// Write outputs.json: each profiling request's generated text, with its ids, times and
    /// main metrics, as AIPerf does.
    #[arg(long, help_heading = "Output")]
    pub export_outputs_json: bool,

    /// Accepted so that AIPerf command lines run unchanged: aiperf collects no GPU telemetry,
    /// so there is nothing to turn off.
    #[arg(long, help_heading = "Telemetry")]
    pub no_gpu_telemetry: bool,

    /// AIPerf's GPU telemetry (DCGM, pynvml, amdsmi), which aiperf does not collect: refused,
    /// saying so.
    #[arg(long, num_args = 0.., value_name = "SOURCE", help_heading = "Telemetry")]
    pub gpu_telemetry: Option<Vec<String>>,

    /// Accepted so that AIPerf command lines run unchanged: aiperf does not scrape the
    /// server's metrics, so there is nothing to turn off.
    #[arg(long, help_heading = "Telemetry")]
    pub no_server_metrics: bool,

    /// AIPerf's scrape of the server's Prometheus metrics, which aiperf does not do: refused,
    /// saying so.
    #[arg(long, num_args = 0.., value_name = "URL", help_heading = "Telemetry")]
    pub server_metrics: Option<Vec<String>>,

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

/// The model the requests name without `--model`: the built-in simulated engine's.
pub(crate) const DEFAULT_MODEL: &str = "aiperf-simulated";

/// `--model-selection-strategy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ModelSelectionArg {
    /// The names in turn, one turn after another.
    #[value(name = "round_robin")]
    RoundRobin,
    /// A name drawn for each turn.
    Random,
}

/// `--export-level` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ExportLevelArg {
    /// The summary files only (JSON, CSV, inputs).
    Summary,
    /// The summary files and the per-request JSONL.
    Records,
    /// AIPerf's raw request and response bodies, which aiperf does not write (refused).
    Raw,
}

/// `--url-strategy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
pub(crate) enum UrlStrategyArg {
    /// Each conversation to the next URL, in turn (AIPerf's only strategy).
    #[value(name = "round_robin", alias = "round-robin")]
    RoundRobin,
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

/// `--random-corpus-style` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum WindowStyleArg {
    /// `vllm bench serve`'s: [floor(mean x (1 - R)), ceil(mean x (1 + R))]
    Vllm,
    /// SGLang's: [max(1, int(mean x R)), mean]
    Sglang,
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
