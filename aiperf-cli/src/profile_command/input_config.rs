//! The `input_config` and `run_info` of `profile_export_aiperf.json`, in AIPerf 0.13's shape,
//! so that scripts that read AIPerf's read ours. `input_config` is AIPerf's resolved benchmark
//! configuration with only what the command line set (its `exclude_unset`), each flag where
//! AIPerf keeps it (`models.items[].name`, `endpoint.urls`, `datasets[0]`, `phases[]` with the
//! timing mode the run uses), secrets redacted as AIPerf redacts them. AIPerf's sections for
//! features aiperf does not have (GPU telemetry, server metrics) are left out; the flags
//! whose place in AIPerf's layout is not reproduced go under `other_flags`, by their own
//! names. `run_info` holds the benchmark id, the seed when given, and the redacted command
//! line.

use std::time::Duration;

use serde_json::{Map, Value, json};

use aiperf_core::runner::StopCondition;
use aiperf_core::schedule::{ArrivalPattern, LoadMode};

use super::args::{ExportLevelArg, ProfileArgs};
use super::plan::{DatasetSource, Profile};
use super::redaction::{REDACTED, is_secret_header, redact_url, redact_value};

/// The flags whose place in AIPerf's layout this module writes, by argument id: the others
/// go under `other_flags`, by their own names.
const PLACED_FLAGS: &[&str] = &[
    "model",
    "model_selection_strategy",
    "url",
    "url_strategy",
    "warmup_duration",
    "profile_export_prefix",
    "export_outputs_json",
    "export_level",
    "endpoint_type",
    "custom_endpoint",
    "use_legacy_max_tokens",
    "streaming",
    "request_timeout_seconds",
    "api_key",
    "headers",
    "session_header",
    "extra_inputs",
    "concurrency",
    "concurrency_ramp_duration",
    "request_rate_ramp_duration",
    "request_rate",
    "arrival_pattern",
    "request_count",
    "conversation_num",
    "num_warmup_sessions",
    "conversation_turn_mean",
    "conversation_turn_stddev",
    "conversation_turn_delay_mean",
    "conversation_turn_delay_stddev",
    "conversation_turn_delay_ratio",
    "benchmark_duration",
    "benchmark_grace_period",
    "warmup_request_count",
    "prefill_concurrency",
    "warmup_prefill_concurrency",
    "warmup_arrival_pattern",
    "warmup_concurrency_ramp_duration",
    "warmup_request_rate_ramp_duration",
    "request_cancellation_rate",
    "request_cancellation_delay",
    "isl",
    "isl_stddev",
    "isl_block_size",
    "osl",
    "osl_stddev",
    "random_range_ratio",
    "random_corpus_style",
    "num_prefix_prompts",
    "prefix_prompt_length",
    "system_prompt",
    "system_prompt_file",
    "num_dataset_entries",
    "random_seed",
    "input_file",
    "custom_dataset_type",
    "dataset_sampling_strategy",
    "fixed_schedule",
    "fixed_schedule_auto_offset",
    "fixed_schedule_start_offset",
    "fixed_schedule_end_offset",
    "goodput",
    "tokenizer",
    "tokenizer_revision",
    "tokenizer_trust_remote_code",
    "artifact_dir",
    "ui",
];

/// The `input_config` of a run of `args` (`given`: the ids of the flags the command line
/// set), resolved into `profile`.
pub(crate) fn input_config(
    args: &ProfileArgs,
    given: &[String],
    profile: &Profile,
) -> anyhow::Result<Value> {
    let set = |id: &str| given.iter().any(|flag| flag == id);
    let mut config = Map::new();

    let mut models = Map::new();
    if set("model_selection_strategy") {
        models.insert(
            "strategy".into(),
            serde_json::to_value(args.model_selection_strategy)?,
        );
    }
    let items = profile.models.iter().map(|name| json!({"name": name}));
    models.insert("items".into(), items.collect());
    config.insert("models".into(), Value::Object(models));

    let mut endpoint = Map::new();
    if !profile.urls.is_empty() {
        let urls: Vec<String> = profile.urls.iter().map(|url| redact_url(url)).collect();
        endpoint.insert("urls".into(), json!(urls));
    }
    if set("url_strategy") {
        endpoint.insert("url_strategy".into(), json!("round_robin"));
    }
    if set("endpoint_type") {
        endpoint.insert("type".into(), json!(args.endpoint_type));
    }
    if set("streaming") {
        endpoint.insert("streaming".into(), json!(args.streaming));
    }
    if set("custom_endpoint")
        && let Some(path) = &args.custom_endpoint
    {
        let path = format!("/{}", path.trim_start_matches('/'));
        endpoint.insert("path".into(), json!(path));
    }
    if set("request_timeout_seconds") {
        endpoint.insert("timeout".into(), json!(args.request_timeout_seconds));
    }
    if set("use_legacy_max_tokens") {
        endpoint.insert("use_legacy_max_tokens".into(), json!(true));
    }
    if set("api_key") {
        endpoint.insert("api_key".into(), json!(REDACTED));
    }
    if set("headers") {
        // The transport's headers are the -H ones, parsed, in order, then the API key's
        // Authorization.
        let all = &profile.transport_ctx.headers;
        let given = &all[..all.len() - usize::from(args.api_key.is_some())];
        let headers = given.iter().map(|(name, value)| {
            let value = if is_secret_header(name) {
                REDACTED
            } else {
                value
            };
            (name.clone(), json!(value))
        });
        endpoint.insert("headers".into(), Value::Object(headers.collect()));
    }
    if let Some(name) = args
        .session_header
        .as_ref()
        .filter(|_| set("session_header"))
    {
        endpoint.insert("session_header".into(), json!(name));
    }
    if set("extra_inputs") {
        let extra = profile.endpoint_ctx.extra_inputs.clone();
        endpoint.insert("extra".into(), Value::Object(extra));
    }
    config.insert("endpoint".into(), Value::Object(endpoint));

    config.insert("datasets".into(), json!([dataset(args, &set, profile)]));
    config.insert("phases".into(), Value::Array(phases(args, &set, profile)));
    let dir =
        std::path::absolute(&profile.artifact_dir).unwrap_or_else(|_| profile.artifact_dir.clone());
    let mut artifacts = json!({
        "dir": dir.display().to_string(),
        "auto_plot": false,
        "plot_required": false,
    });
    if let Some(prefix) = &profile.export_prefix {
        artifacts["prefix"] = json!(prefix);
    }
    if set("export_outputs_json") {
        artifacts["export_outputs_json"] = json!(true);
    }
    if set("export_level") {
        artifacts["records"] = match args.export_level {
            ExportLevelArg::Summary => json!(false),
            ExportLevelArg::Records | ExportLevelArg::Raw => json!(["jsonl"]),
        };
        artifacts["raw"] = json!(false);
    }
    config.insert("artifacts".into(), artifacts);
    if set("goodput") {
        let slos = profile.metric_options.goodput.iter();
        let objectives = slos.map(|slo| (slo.metric.tag().to_owned(), json!(slo.threshold)));
        config.insert("slos".into(), Value::Object(objectives.collect()));
    }
    let mut tokenizer = Map::new();
    if let Some(name) = &args.tokenizer {
        tokenizer.insert("name".into(), json!(name));
    }
    if let Some(revision) = &args.tokenizer_revision {
        tokenizer.insert("revision".into(), json!(revision));
    }
    if set("tokenizer_trust_remote_code") {
        tokenizer.insert("trust_remote_code".into(), json!(true));
    }
    config.insert("tokenizer".into(), Value::Object(tokenizer));

    let values = serde_json::to_value(args)?;
    let beyond: Map<String, Value> = given
        .iter()
        .filter(|id| !PLACED_FLAGS.contains(&id.as_str()))
        .map(|id| {
            let value = values
                .get(id)
                .or_else(|| values.get("engine").and_then(|engine| engine.get(id)))
                .cloned()
                .unwrap_or(Value::Null);
            (id.clone(), value)
        })
        .collect();
    if !beyond.is_empty() {
        config.insert("other_flags".into(), Value::Object(beyond));
    }
    Ok(Value::Object(config))
}

/// AIPerf's one dataset, `main`: synthetic prompts or a file.
fn dataset(args: &ProfileArgs, set: &impl Fn(&str) -> bool, profile: &Profile) -> Value {
    let mut dataset = Map::new();
    dataset.insert("name".into(), json!("main"));
    match &args.input_file {
        Some(path) => {
            dataset.insert("type".into(), json!("file"));
            dataset.insert("path".into(), json!(path.display().to_string()));
            if set("custom_dataset_type") {
                dataset.insert("format".into(), json!(args.custom_dataset_type));
            }
            if set("isl_block_size") {
                dataset.insert("block_size".into(), json!(args.isl_block_size));
            }
            if let Some(entries) = args.num_dataset_entries.or(args.conversation_num) {
                dataset.insert("entries".into(), json!(entries));
            }
        }
        None => {
            dataset.insert("type".into(), json!("synthetic"));
            // AIPerf sizes a synthetic dataset by the conversations or the request count when
            // no size is given.
            if let DatasetSource::Synthetic(synthetic) = &profile.dataset
                && (set("num_dataset_entries") || set("conversation_num") || set("request_count"))
            {
                dataset.insert("entries".into(), json!(synthetic.entries));
            }
            let mut prompts = Map::new();
            let mut isl = Map::new();
            isl.insert("mean".into(), json!(f64::from(args.isl)));
            if set("isl_stddev") {
                isl.insert("stddev".into(), json!(args.isl_stddev));
            }
            prompts.insert("isl".into(), Value::Object(isl));
            if let Some(osl) = args.osl {
                let mut lengths = Map::new();
                lengths.insert("mean".into(), json!(f64::from(osl)));
                if set("osl_stddev") {
                    lengths.insert("stddev".into(), json!(args.osl_stddev));
                }
                prompts.insert("osl".into(), Value::Object(lengths));
            }
            if set("random_corpus_style") {
                prompts.insert(
                    "random_corpus_style".into(),
                    json!(args.random_corpus_style),
                );
            }
            if let Some(ratio) = &args.random_range_ratio {
                prompts.insert("random_range_ratio".into(), json!(ratio));
            }
            dataset.insert("prompts".into(), Value::Object(prompts));
            // A pair's companion goes with the one given, as AIPerf writes it.
            if set("conversation_turn_mean") || set("conversation_turn_stddev") {
                let turns = json!({
                    "mean": f64::from(args.conversation_turn_mean),
                    "stddev": args.conversation_turn_stddev,
                });
                dataset.insert("turns".into(), turns);
            }
            if set("conversation_turn_delay_mean") || set("conversation_turn_delay_stddev") {
                let delay = json!({
                    "mean": args.conversation_turn_delay_mean,
                    "stddev": args.conversation_turn_delay_stddev,
                });
                dataset.insert("turn_delay".into(), delay);
            }
            if set("conversation_turn_delay_ratio") {
                let ratio = json!(args.conversation_turn_delay_ratio);
                dataset.insert("turn_delay_ratio".into(), ratio);
            }
            if set("num_prefix_prompts") || set("prefix_prompt_length") {
                let prefix = json!({
                    "pool_size": args.num_prefix_prompts,
                    "length": args.prefix_prompt_length,
                });
                dataset.insert("prefix_prompts".into(), prefix);
            }
        }
    }
    if set("random_seed") {
        dataset.insert("random_seed".into(), json!(args.random_seed));
    }
    // Every kind of dataset takes the verbatim system prompt, as in AIPerf.
    if let Some(text) = &args.system_prompt {
        dataset.insert("system_prompt".into(), json!(text));
    }
    if let Some(path) = &args.system_prompt_file {
        dataset.insert("system_prompt_file".into(), json!(path));
    }
    if let Some(sampling) = args
        .dataset_sampling_strategy
        .as_ref()
        .filter(|_| set("dataset_sampling_strategy"))
    {
        dataset.insert("sampling".into(), json!(sampling));
    }
    Value::Object(dataset)
}

/// AIPerf's phases: a warm-up when asked for, then profiling, each with the timing mode the
/// run uses (`concurrency`, `poisson`, `constant`, `gamma`, `fixed_schedule`: a trace with
/// timestamps is replayed on its schedule without `--fixed-schedule` unless a rate or a
/// concurrency is given, as in AIPerf).
fn phases(args: &ProfileArgs, set: &impl Fn(&str) -> bool, profile: &Profile) -> Vec<Value> {
    let fixed_schedule = matches!(profile.plan.load, LoadMode::FixedSchedule { .. });
    let timing_of = |load: LoadMode| {
        json!(match load {
            LoadMode::Concurrency(_) => "concurrency",
            LoadMode::Rate { pattern, .. } => match pattern {
                ArrivalPattern::Constant => "constant",
                ArrivalPattern::Poisson => "poisson",
                ArrivalPattern::Gamma { .. } => "gamma",
            },
            LoadMode::FixedSchedule { .. } => "fixed_schedule",
        })
    };
    let timing = timing_of(profile.plan.load);
    // A phase's concurrency and rate as given, its concurrency ramp, its rate's ramp, and a
    // gamma's smoothness.
    let load = |phase: &mut Map<String, Value>,
                (concurrency, concurrency_ramp): (Option<usize>, Option<Duration>),
                prefill_concurrency: Option<usize>,
                (rate, rate_ramp): (Option<f64>, Option<Duration>),
                mode: LoadMode| {
        if let Some(concurrency) = concurrency {
            phase.insert("concurrency".into(), json!(concurrency));
        }
        if let Some(ramp) = concurrency_ramp {
            let ramp = json!({ "duration": ramp.as_secs_f64() });
            phase.insert("concurrency_ramp".into(), ramp);
        }
        if let Some(prefill) = prefill_concurrency {
            phase.insert("prefill_concurrency".into(), json!(prefill));
        }
        if let Some(rate) = rate {
            phase.insert("rate".into(), json!(rate));
            if let Some(ramp) = rate_ramp {
                phase.insert(
                    "rate_ramp".into(),
                    json!({ "duration": ramp.as_secs_f64() }),
                );
            }
        }
        if let LoadMode::Rate {
            pattern: ArrivalPattern::Gamma { smoothness },
            ..
        } = mode
        {
            phase.insert("smoothness".into(), json!(smoothness));
        }
    };
    let concurrency = args.concurrency.filter(|_| set("concurrency"));
    let mut phases = Vec::new();
    if profile.plan.has_warmup() {
        let mut warmup = Map::new();
        warmup.insert("name".into(), json!("warmup"));
        warmup.insert("kind".into(), json!("warmup"));
        let warmup_load = profile.plan.warmup_load();
        warmup.insert("type".into(), timing_of(warmup_load));
        warmup.insert("exclude_from_results".into(), json!(true));
        if args.warmup_request_count > 0 {
            warmup.insert("requests".into(), json!(args.warmup_request_count));
        }
        if let Some(sessions) = args.num_warmup_sessions {
            warmup.insert("sessions".into(), json!(sessions));
        }
        if let Some(duration) = args.warmup_duration {
            warmup.insert("duration".into(), json!(duration));
        }
        // Its own concurrency, rate and ramps, where they replace the profiling phase's.
        let ramps = profile.plan.warmup_ramps();
        load(
            &mut warmup,
            (args.warmup_concurrency.or(concurrency), ramps.concurrency),
            profile.plan.warmup_prefill_limit(),
            (args.warmup_request_rate.or(args.request_rate), ramps.rate),
            warmup_load,
        );
        phases.push(Value::Object(warmup));
    }
    let mut profiling = Map::new();
    profiling.insert("name".into(), json!("profiling"));
    profiling.insert("kind".into(), json!("profiling"));
    profiling.insert("type".into(), timing);
    match profile.plan.stop {
        // The count given; else the default of 10, which AIPerf writes too, or a file's requests
        // sent once through (a replayed trace among them). Conversations alone bound no count.
        StopCondition::Count(count) if set("request_count") || !set("conversation_num") => {
            profiling.insert("requests".into(), json!(count));
        }
        _ => {}
    }
    if let Some(sessions) = args.conversation_num {
        profiling.insert("sessions".into(), json!(sessions));
    }
    if let Some(duration) = args.benchmark_duration {
        profiling.insert("duration".into(), json!(duration));
        profiling.insert("grace_period".into(), json!(args.benchmark_grace_period));
    }
    load(
        &mut profiling,
        (concurrency, profile.plan.profiling_ramps().concurrency),
        profile.plan.prefill_concurrency,
        (args.request_rate, profile.plan.profiling_ramps().rate),
        profile.plan.load,
    );
    if set("request_cancellation_rate") {
        let mut cancellation = Map::new();
        cancellation.insert("rate".into(), json!(args.request_cancellation_rate));
        if set("request_cancellation_delay") {
            cancellation.insert("delay".into(), json!(args.request_cancellation_delay));
        }
        profiling.insert("cancellation".into(), Value::Object(cancellation));
    }
    if fixed_schedule {
        if set("fixed_schedule_auto_offset") {
            profiling.insert("auto_offset".into(), json!(args.fixed_schedule_auto_offset));
        } else if set("fixed_schedule_start_offset") {
            profiling.insert("auto_offset".into(), json!(false));
        }
        if let Some(start) = args.fixed_schedule_start_offset {
            profiling.insert("start_offset".into(), json!(start));
        }
        if let Some(end) = args.fixed_schedule_end_offset {
            profiling.insert("end_offset".into(), json!(end));
        }
    }
    phases.push(Value::Object(profiling));
    phases
}

/// A run's `run_info`: its id, the seed when given, the first trial, and `command_line` (the
/// arguments after the program's name) as AIPerf writes it.
pub(crate) fn run_info(
    benchmark_id: &str,
    args: &ProfileArgs,
    given: &[String],
    command_line: &[String],
) -> Value {
    let mut info = Map::new();
    info.insert("benchmark_id".into(), json!(benchmark_id));
    if given.iter().any(|flag| flag == "random_seed") {
        info.insert("random_seed".into(), json!(args.random_seed));
    }
    info.insert("trial".into(), json!(0));
    info.insert("cli_command".into(), json!(cli_command(command_line)));
    Value::Object(info)
}

/// The flags (lowercase, without dashes) that take every value up to the next flag.
const TAKES_SEVERAL: &[&str] = &["h", "header", "extra-inputs"];

/// The command line as AIPerf writes it: `aiperf` and the arguments, each value that is not
/// a flag or a plain number in single quotes, secrets redacted: the values of flags named like
/// API keys and tokens, headers that carry credentials (name and value), and the credentials
/// a URL holds; whether a value follows its flag or is attached (`--api-key=...`, `-H...`).
fn cli_command(command_line: &[String]) -> String {
    let mut words = vec!["aiperf".to_owned()];
    // The flag whose value may come next, lowercase, without its dashes.
    let mut flag: Option<String> = None;
    for word in command_line {
        let is_flag = word.starts_with('-') && !is_plain_number(word);
        if !is_flag {
            let value = match &flag {
                Some(name) => redact_value(name, word),
                None => word.clone(),
            };
            words.push(quote(&value));
            // -H and --extra-inputs take every value up to the next flag.
            flag = flag.filter(|name| TAKES_SEVERAL.contains(&name.as_str()));
            continue;
        }
        if let Some(header) = word.strip_prefix("-H").filter(|rest| !rest.is_empty()) {
            words.push(format!("-H{}", quote(&redact_value("header", header))));
            flag = Some("header".to_owned());
        } else if let Some((name, value)) = word.split_once('=') {
            let key = name.trim_start_matches('-').to_ascii_lowercase();
            words.push(format!("{name}={}", quote(&redact_value(&key, value))));
            flag = Some(key).filter(|key| TAKES_SEVERAL.contains(&key.as_str()));
        } else {
            flag = Some(word.trim_start_matches('-').to_ascii_lowercase());
            words.push(word.clone());
        }
    }
    words.join(" ")
}

/// `word` bare when it is `profile` or a plain number, else in single quotes (a quote inside
/// written as `'\''`), so that the command can be pasted into a shell.
fn quote(word: &str) -> String {
    if word == "profile" || is_plain_number(word) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Whether `word` is a plain decimal number (`10`, `-1`, `0.5`): no exponent, no leading
/// zero, no `inf` or `NaN`.
fn is_plain_number(word: &str) -> bool {
    let digits = word.strip_prefix('-').unwrap_or(word);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    all_digits(whole) && all_digits(fraction) && (whole == "0" || !whole.starts_with('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile_command::plan::{DatasetSource, fit_plan_to_dataset, validate};
    use aiperf_core::dataset::{custom, synthetic};
    use clap::Parser;

    /// `aiperf profile <words>`: its `input_config` and `run_info`.
    fn exports_of(words: &[&str]) -> (Value, Value) {
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: ProfileArgs,
        }
        let command_line: Vec<String> = std::iter::once("profile")
            .chain(words.iter().copied())
            .map(str::to_owned)
            .collect();
        let matches = <Cli as clap::CommandFactory>::command()
            .get_matches_from(std::iter::once("aiperf").chain(words.iter().copied()));
        let cli = <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap();
        let given = crate::given_on_the_command_line(&matches);
        let mut profile = validate(&cli.args).unwrap();
        let mut conversations = match &profile.dataset {
            DatasetSource::Synthetic(config) => synthetic::generate(config),
            DatasetSource::File(config) => custom::load(config).unwrap(),
        };
        fit_plan_to_dataset(&cli.args, &mut profile, &mut conversations).unwrap();
        let config = input_config(&cli.args, &given, &profile).unwrap();
        (config, run_info("id", &cli.args, &given, &command_line))
    }

    #[test]
    fn a_closed_loop_comes_out_as_aiperf_writes_it() {
        let (mut config, info) = exports_of(&[
            "-m",
            "openai/gpt-oss-20b",
            "--url",
            "localhost:9000",
            "--streaming",
            "--num-requests",
            "100",
            "--concurrency",
            "100",
            "--endpoint-type",
            "chat",
            "--osl",
            "250",
            "--request-cancellation-rate",
            "10",
        ]);
        let artifacts = config.as_object_mut().unwrap().remove("artifacts").unwrap();
        let dir = artifacts["dir"].as_str().unwrap();
        assert!(
            dir.ends_with("artifacts/openai_gpt-oss-20b-openai-chat-concurrency100")
                && std::path::Path::new(dir).is_absolute(),
            "{artifacts}"
        );
        assert_eq!(artifacts["auto_plot"], false);
        assert_eq!(
            config,
            json!({
                "models": {"items": [{"name": "openai/gpt-oss-20b"}]},
                "endpoint": {"urls": ["http://localhost:9000"], "type": "chat", "streaming": true},
                "datasets": [{"name": "main", "type": "synthetic", "entries": 100,
                    "prompts": {"isl": {"mean": 550.0}, "osl": {"mean": 250.0}}}],
                "phases": [{"name": "profiling", "kind": "profiling", "type": "concurrency",
                    "requests": 100, "concurrency": 100, "cancellation": {"rate": 10.0}}],
                "tokenizer": {}
            })
        );
        assert_eq!(
            info,
            json!({"benchmark_id": "id", "trial": 0, "cli_command": "aiperf profile -m \
                'openai/gpt-oss-20b' --url 'localhost:9000' --streaming --num-requests 100 \
                --concurrency 100 --endpoint-type 'chat' --osl 250 --request-cancellation-rate 10"})
        );
    }

    #[test]
    fn an_open_loop_comes_out_as_aiperf_writes_it() {
        let (config, info) = exports_of(&[
            "-m",
            "a,b",
            "--model-selection-strategy",
            "random",
            "--url",
            "http://localhost:8000",
            "--request-rate",
            "5",
            "--isl",
            "100",
            "--isl-stddev",
            "5",
            "--num-dataset-entries",
            "50",
            "--random-seed",
            "7",
            "--warmup-request-count",
            "3",
            "--benchmark-duration",
            "30",
            "--benchmark-grace-period",
            "5",
            "-H",
            "X-Key:abc",
            "--extra-inputs",
            "temperature:0.5",
            "--goodput",
            "time_to_first_token:100",
            "--transport",
            "http",
        ]);
        assert_eq!(
            config["models"],
            json!({"strategy": "random", "items": [{"name": "a"}, {"name": "b"}]})
        );
        assert_eq!(
            config["endpoint"],
            json!({"urls": ["http://localhost:8000"], "headers": {"X-Key": "abc"},
                "extra": {"temperature": 0.5}})
        );
        assert_eq!(
            config["datasets"],
            json!([{"name": "main", "type": "synthetic", "entries": 50,
                "prompts": {"isl": {"mean": 100.0, "stddev": 5.0}}, "random_seed": 7}])
        );
        assert_eq!(
            config["phases"],
            json!([
                {"name": "warmup", "kind": "warmup", "type": "poisson",
                    "exclude_from_results": true, "requests": 3, "rate": 5.0},
                {"name": "profiling", "kind": "profiling", "type": "poisson", "duration": 30.0,
                    "grace_period": 5.0, "rate": 5.0}
            ])
        );
        assert_eq!(config["slos"], json!({"time_to_first_token": 100.0}));
        assert_eq!(config["other_flags"], json!({"transport": "http"}));
        assert_eq!(info["random_seed"], 7);
    }

    #[test]
    fn the_default_count_is_written_as_aiperf_writes_it_but_not_under_a_conversation_count() {
        let (config, _) = exports_of(&["--concurrency", "2"]);
        assert_eq!(config["phases"][0]["requests"], 10, "{config}");
        let (config, _) = exports_of(&["--conversation-num", "3"]);
        assert_eq!(config["phases"][0].get("requests"), None, "{config}");
        assert_eq!(config["phases"][0]["sessions"], 3, "{config}");
    }

    #[test]
    fn a_trace_with_timestamps_is_a_fixed_schedule_of_its_requests() {
        let dir = tempfile::tempdir().unwrap();
        let trace = dir.path().join("trace.jsonl");
        let lines = [0, 500, 1000].map(|at| {
            format!("{{\"timestamp\": {at}, \"input_length\": 10, \"output_length\": 2}}\n")
        });
        std::fs::write(&trace, lines.concat()).unwrap();
        let (config, _) = exports_of(&[
            "--url",
            "localhost:8000",
            "--input-file",
            trace.to_str().unwrap(),
            "--custom-dataset-type",
            "mooncake_trace",
            "--fixed-schedule-start-offset",
            "100",
        ]);
        assert_eq!(
            config["phases"],
            json!([{"name": "profiling", "kind": "profiling", "type": "fixed_schedule",
                "requests": 2, "auto_offset": false, "start_offset": 100}])
        );
        assert_eq!(config["datasets"][0]["format"], "mooncake_trace");
    }

    #[test]
    fn a_system_prompt_goes_with_its_dataset() {
        let dir = tempfile::tempdir().unwrap();
        let prompt = dir.path().join("system.txt");
        std::fs::write(&prompt, "Be brief.").unwrap();
        let (config, _) = exports_of(&[
            "--url",
            "localhost:8000",
            "--system-prompt-file",
            prompt.to_str().unwrap(),
        ]);
        assert_eq!(config["datasets"][0]["system_prompt_file"], json!(prompt));
        assert_eq!(config.get("other_flags"), None);
        let (config, _) = exports_of(&["--url", "localhost:8000", "--system-prompt", "Be brief."]);
        assert_eq!(config["datasets"][0]["system_prompt"], "Be brief.");
    }

    #[test]
    fn a_range_ratio_goes_with_the_prompts() {
        let (config, _) = exports_of(&[
            "--url",
            "localhost:8000",
            "--isl",
            "100",
            "--osl",
            "20",
            "--random-range-ratio",
            "0.5",
            "--random-corpus-style",
            "sglang",
        ]);
        assert_eq!(
            config["datasets"][0]["prompts"],
            json!({"isl": {"mean": 100.0}, "osl": {"mean": 20.0},
                "random_corpus_style": "sglang", "random_range_ratio": "0.5"})
        );
    }

    #[test]
    fn prefill_limits_go_with_their_phases() {
        let (config, _) = exports_of(&[
            "--url",
            "localhost:8000",
            "--streaming",
            "--concurrency",
            "8",
            "--prefill-concurrency",
            "2",
            "--warmup-request-count",
            "4",
            "--warmup-prefill-concurrency",
            "1",
        ]);
        assert_eq!(config["phases"][0]["prefill_concurrency"], 1);
        assert_eq!(config["phases"][1]["prefill_concurrency"], 2);
        assert_eq!(config.get("other_flags"), None);
    }

    #[test]
    fn the_warm_up_s_own_pattern_and_ramps_go_with_it() {
        let (config, _) = exports_of(&[
            "--url",
            "localhost:8000",
            "--request-rate",
            "20",
            "--concurrency",
            "8",
            "--concurrency-ramp-duration",
            "4",
            "--warmup-request-count",
            "6",
            "--warmup-arrival-pattern",
            "constant",
            "--warmup-request-rate-ramp-duration",
            "2",
        ]);
        assert_eq!(
            config["phases"][0],
            json!({"name": "warmup", "kind": "warmup", "type": "constant",
                "exclude_from_results": true, "requests": 6, "concurrency": 8,
                "concurrency_ramp": {"duration": 4.0}, "rate": 20.0,
                "rate_ramp": {"duration": 2.0}})
        );
        assert_eq!(config["phases"][1]["type"], "poisson");
        assert_eq!(config["phases"][1].get("rate_ramp"), None);
        assert_eq!(config.get("other_flags"), None);
    }

    #[test]
    fn the_legacy_output_length_name_goes_with_the_endpoint() {
        let (config, _) = exports_of(&["--url", "localhost:8000", "--use-legacy-max-tokens"]);
        assert_eq!(config["endpoint"]["use_legacy_max_tokens"], true);
    }

    #[test]
    fn secrets_are_redacted_however_they_are_given() {
        // Secrets unlike anything else in the exports (the artifact directory's absolute path
        // is there too, wherever the tests run).
        let (config, info) = exports_of(&[
            "--url",
            "http://user:pw-q7x@localhost:8000/v1?api_key=key-q7x&x=1",
            "--streaming",
            "--api-key=sk-q7x",
            "-H",
            "Proxy-Authorization:Bearer tok-q7x-b",
            "-HX-Goog-Api-Key:tok-q7x-g",
            "--header=X-Tenant-Secret:tok-q7x-t",
            "-H",
            "X-Plain:visible",
            "-H",
            "X-Trace:1,X-Auth-Token:Bearer tok-q7x-c",
            "-H",
            "X-Other:2",
            "X-Api-Key:tok-q7x-d",
            "-H",
            r#"{"Cookie": "tok-q7x-e", "X-Json": "shown"}"#,
        ]);
        let text = format!("{config} {info}");
        assert!(!text.contains("q7x"), "a secret leaked: {text}");
        assert!(
            !text.contains("Bearer"),
            "a credential header leaked: {text}"
        );
        assert_eq!(
            config["endpoint"]["urls"],
            json!(["http://<redacted>@localhost:8000/v1?api_key=<redacted>&x=1"])
        );
        assert_eq!(config["endpoint"]["api_key"], "<redacted>");
        let headers = &config["endpoint"]["headers"];
        assert_eq!(headers["X-Plain"], "visible");
        assert_eq!(headers["X-Trace"], "1", "a comma separates two headers");
        assert_eq!(headers["X-Auth-Token"], "<redacted>");
        assert_eq!(headers["Proxy-Authorization"], "<redacted>");
        assert_eq!(headers["X-Other"], "2");
        assert_eq!(headers["X-Json"], "shown");
        let command = info["cli_command"].as_str().unwrap();
        assert!(command.contains("--api-key='<redacted>'"), "{command}");
        assert!(
            command.contains("-H '<redacted>' -H'<redacted>'"),
            "{command}"
        );
        assert!(command.contains("--header='<redacted>'"), "{command}");
        assert!(command.contains("-H 'X-Plain:visible'"), "{command}");
        // A flag's value after a flag without one is still its value.
        let words = [
            "profile",
            "--streaming",
            "--api-key",
            "sk-one",
            "--concurrency",
            "4",
        ];
        let words: Vec<String> = words.map(str::to_owned).to_vec();
        assert_eq!(
            cli_command(&words),
            "aiperf profile --streaming --api-key '<redacted>' --concurrency 4"
        );
    }

    #[test]
    fn every_placed_flag_is_an_argument() {
        let command = <ProfileArgs as clap::Args>::augment_args(clap::Command::new("profile"));
        let ids: Vec<&str> = command
            .get_arguments()
            .map(|arg| arg.get_id().as_str())
            .collect();
        for flag in PLACED_FLAGS {
            assert!(
                ids.contains(flag),
                "{flag} is not an argument of aiperf profile"
            );
        }
    }

    #[test]
    fn only_plain_numbers_go_unquoted() {
        for bare in ["0", "10", "-1", "0.5", "profile"] {
            assert_eq!(quote(bare), bare);
        }
        for quoted in ["007", "1e5", "inf", "NaN", "1.", ".5", "a b"] {
            assert_eq!(quote(quoted), format!("'{quoted}'"));
        }
        assert_eq!(quote("it's"), "'it'\\''s'");
    }
}
