//! The `input_config` and `run_info` of `profile_export_aiperf.json`, in AIPerf 0.13's shape,
//! so that scripts that read AIPerf's read ours. `input_config` is AIPerf's resolved benchmark
//! configuration with only what the command line set (its `exclude_unset`), each flag where
//! AIPerf keeps it (`models.items[].name`, `endpoint.urls`, `datasets[0]`, `phases[]` with the
//! timing mode AIPerf derives), secrets redacted as AIPerf redacts them. AIPerf's sections
//! for features aiperf does not have (GPU telemetry, server metrics, plots) are left out;
//! the flags AIPerf lacks go under `beyond_aiperf`, by their own names. `run_info` holds the
//! benchmark id, the seed when given, and the redacted command line.

use serde_json::{Map, Value, json};

use super::args::ProfileArgs;
use super::models::model_names;
use super::plan::parse_extra_inputs;

/// What AIPerf writes in place of a secret.
const REDACTED: &str = "<redacted>";

/// The flags whose values AIPerf redacts on the command line: those whose name has one of
/// these.
const SECRET_FLAGS: &[&str] = &["api-key", "auth-token", "authorization"];

/// Header names AIPerf redacts, name and value, in the command line.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "cookie",
];

/// Fragments of a header name whose value AIPerf also redacts in `input_config`.
const SECRET_HEADER_FRAGMENTS: &[&str] = &["auth", "token", "secret", "session"];

/// The flags of `ProfileArgs` that AIPerf has, by argument id: the others go under
/// `beyond_aiperf`.
const AIPERF_FLAGS: &[&str] = &[
    "model",
    "model_selection_strategy",
    "url",
    "endpoint_type",
    "custom_endpoint",
    "streaming",
    "request_timeout_seconds",
    "api_key",
    "headers",
    "extra_inputs",
    "concurrency",
    "request_rate",
    "arrival_pattern",
    "request_count",
    "benchmark_duration",
    "benchmark_grace_period",
    "warmup_request_count",
    "request_cancellation_rate",
    "request_cancellation_delay",
    "isl",
    "isl_stddev",
    "isl_block_size",
    "osl",
    "osl_stddev",
    "num_prefix_prompts",
    "prefix_prompt_length",
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
    "artifact_dir",
    "ui",
];

/// A run's `input_config`: `args`, `given` the ids of the flags the command line set.
pub(crate) fn input_config(args: &ProfileArgs, given: &[String]) -> anyhow::Result<Value> {
    let set = |id: &str| given.iter().any(|flag| flag == id);
    let mut config = Map::new();

    let mut models = Map::new();
    if set("model_selection_strategy") {
        models.insert(
            "strategy".into(),
            serde_json::to_value(args.model_selection_strategy)?,
        );
    }
    let names = model_names(&args.model)?;
    models.insert(
        "items".into(),
        names.iter().map(|name| json!({"name": name})).collect(),
    );
    config.insert("models".into(), Value::Object(models));

    let mut endpoint = Map::new();
    if let Some(url) = &args.url {
        let url = if url.contains("://") {
            url.clone()
        } else {
            format!("http://{url}")
        };
        endpoint.insert("urls".into(), json!([url]));
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
    if set("api_key") {
        endpoint.insert("api_key".into(), json!(REDACTED));
    }
    if set("headers") {
        let headers = args.headers.iter().map(|header| {
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            let lowercase = name.trim().to_ascii_lowercase();
            let secret = SECRET_HEADERS.contains(&lowercase.as_str())
                || SECRET_HEADER_FRAGMENTS
                    .iter()
                    .any(|fragment| lowercase.contains(fragment));
            let value = if secret { REDACTED } else { value.trim() };
            (name.trim().to_owned(), json!(value))
        });
        endpoint.insert("headers".into(), Value::Object(headers.collect()));
    }
    if set("extra_inputs") {
        endpoint.insert(
            "extra".into(),
            Value::Object(parse_extra_inputs(&args.extra_inputs)?),
        );
    }
    config.insert("endpoint".into(), Value::Object(endpoint));

    config.insert("datasets".into(), json!([dataset(args, &set)]));
    config.insert("phases".into(), Value::Array(phases(args, &set)));
    if let Some(dir) = &args.artifact_dir {
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
        config.insert("artifacts".into(), json!({"dir": dir}));
    }
    if let Some(slos) = args.goodput.as_deref().filter(|_| set("goodput")) {
        let objectives = slos.split_whitespace().filter_map(|slo| {
            let (metric, threshold) = slo.split_once(':')?;
            Some((metric.to_owned(), json!(threshold.parse::<f64>().ok()?)))
        });
        config.insert("slos".into(), Value::Object(objectives.collect()));
    }
    let mut tokenizer = Map::new();
    if set("tokenizer") {
        tokenizer.insert("name".into(), json!(args.tokenizer));
    }
    config.insert("tokenizer".into(), Value::Object(tokenizer));

    let values = serde_json::to_value(args)?;
    let beyond: Map<String, Value> = given
        .iter()
        .filter(|id| !AIPERF_FLAGS.contains(&id.as_str()))
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
        config.insert("beyond_aiperf".into(), Value::Object(beyond));
    }
    Ok(Value::Object(config))
}

/// AIPerf's one dataset, `main`: synthetic prompts or a file.
fn dataset(args: &ProfileArgs, set: &impl Fn(&str) -> bool) -> Value {
    let mut dataset = Map::new();
    dataset.insert("name".into(), json!("main"));
    match &args.input_file {
        Some(path) => {
            dataset.insert("type".into(), json!("file"));
            dataset.insert("path".into(), json!(path));
            if set("custom_dataset_type") {
                dataset.insert("format".into(), json!(args.custom_dataset_type));
            }
            if set("isl_block_size") {
                dataset.insert("block_size".into(), json!(args.isl_block_size));
            }
        }
        None => {
            dataset.insert("type".into(), json!("synthetic"));
            // AIPerf sizes a synthetic dataset by the request count when no size is given.
            if set("num_dataset_entries") {
                dataset.insert("entries".into(), json!(args.num_dataset_entries));
            } else if let Some(count) = args.request_count.filter(|_| set("request_count")) {
                dataset.insert("entries".into(), json!(count));
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
            dataset.insert("prompts".into(), Value::Object(prompts));
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
    if let Some(sampling) = args
        .dataset_sampling_strategy
        .as_ref()
        .filter(|_| set("dataset_sampling_strategy"))
    {
        dataset.insert("sampling".into(), json!(sampling));
    }
    Value::Object(dataset)
}

/// AIPerf's phases: a warm-up when asked for, then profiling, each with the timing mode AIPerf
/// derives (`concurrency`, `poisson`, `constant`, `gamma`, `fixed_schedule`).
fn phases(args: &ProfileArgs, set: &impl Fn(&str) -> bool) -> Vec<Value> {
    let timing = if args.fixed_schedule {
        json!("fixed_schedule")
    } else if args.request_rate.is_some() {
        serde_json::to_value(args.arrival_pattern).unwrap_or(Value::Null)
    } else {
        json!("concurrency")
    };
    let load = |phase: &mut Map<String, Value>| {
        if let Some(concurrency) = args.concurrency.filter(|_| set("concurrency")) {
            phase.insert("concurrency".into(), json!(concurrency));
        }
        if let Some(rate) = args.request_rate {
            phase.insert("rate".into(), json!(rate));
        }
    };
    let mut phases = Vec::new();
    if args.warmup_request_count > 0 {
        let mut warmup = Map::new();
        warmup.insert("name".into(), json!("warmup"));
        warmup.insert("kind".into(), json!("warmup"));
        warmup.insert("type".into(), timing.clone());
        warmup.insert("exclude_from_results".into(), json!(true));
        warmup.insert("requests".into(), json!(args.warmup_request_count));
        load(&mut warmup);
        phases.push(Value::Object(warmup));
    }
    let mut profiling = Map::new();
    profiling.insert("name".into(), json!("profiling"));
    profiling.insert("kind".into(), json!("profiling"));
    profiling.insert("type".into(), timing);
    if let Some(count) = args.request_count.filter(|_| set("request_count")) {
        profiling.insert("requests".into(), json!(count));
    }
    if let Some(duration) = args.benchmark_duration {
        profiling.insert("duration".into(), json!(duration));
        profiling.insert("grace_period".into(), json!(args.benchmark_grace_period));
    }
    load(&mut profiling);
    if set("request_cancellation_rate") {
        let mut cancellation = Map::new();
        cancellation.insert("rate".into(), json!(args.request_cancellation_rate));
        if set("request_cancellation_delay") {
            cancellation.insert("delay".into(), json!(args.request_cancellation_delay));
        }
        profiling.insert("cancellation".into(), Value::Object(cancellation));
    }
    if args.fixed_schedule {
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

/// The command line as AIPerf writes it: `aiperf` and the arguments, values that are not
/// flags or numbers in single quotes, secrets (API keys, authorization headers) redacted.
fn cli_command(command_line: &[String]) -> String {
    let mut words = vec!["aiperf".to_owned()];
    let mut previous: Option<&str> = None;
    for word in command_line {
        let flag = previous
            .unwrap_or_default()
            .trim_start_matches('-')
            .to_ascii_lowercase();
        let header = matches!(previous, Some("-H" | "--header"));
        let secret = SECRET_FLAGS.iter().any(|name| flag.contains(name))
            || header && {
                let name = word.split(':').next().unwrap_or_default().trim();
                SECRET_HEADERS.contains(&name.to_ascii_lowercase().as_str())
            };
        let word = if secret { REDACTED } else { word.as_str() };
        let bare = word.starts_with('-') || word == "profile" || word.parse::<f64>().is_ok();
        words.push(if bare {
            word.to_owned()
        } else {
            format!("'{word}'")
        });
        previous = Some(word);
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let config = input_config(&cli.args, &given).unwrap();
        (config, run_info("id", &cli.args, &given, &command_line))
    }

    #[test]
    fn a_closed_loop_comes_out_as_aiperf_writes_it() {
        let (config, info) = exports_of(&[
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
    fn an_open_loop_with_secrets_comes_out_as_aiperf_writes_it() {
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
            "-H",
            "Authorization:Bearer x",
            "--extra-inputs",
            "temperature:0.5",
            "--api-key",
            "sk-secret",
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
            json!({"urls": ["http://localhost:8000"], "api_key": "<redacted>",
                "headers": {"X-Key": "abc", "Authorization": "<redacted>"},
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
        assert_eq!(config["beyond_aiperf"], json!({"transport": "http"}));
        assert_eq!(info["random_seed"], 7);
        let command = info["cli_command"].as_str().unwrap();
        assert!(command.contains("--api-key '<redacted>'"), "{command}");
        assert!(command.contains("-H '<redacted>'"), "{command}");
        assert!(command.contains("-H 'X-Key:abc'"), "{command}");
        assert!(
            !command.contains("sk-secret") && !command.contains("Bearer"),
            "{command}"
        );
    }
}
