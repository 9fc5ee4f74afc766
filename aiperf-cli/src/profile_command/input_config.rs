//! The `input_config` of `profile_export_aiperf.json`, in AIPerf's shape, so that scripts that
//! read AIPerf's (`input_config["endpoint"]["model_names"]`, `["loadgen"]["concurrency"]`)
//! read ours: AIPerf's user configuration with only what the user set (its
//! `exclude_unset`), each flag where AIPerf keeps it (AIPerf 0.2's layout), plus the
//! `cli_command`. The flags AIPerf lacks go under `beyond_aiperf`, by their own names.

use serde_json::{Map, Value, json};

use super::args::ProfileArgs;
use super::models::model_names;
use super::plan::parse_extra_inputs;

/// Where AIPerf keeps each flag it has, by our argument's id.
const AIPERF_PATHS: &[(&str, &[&str])] = &[
    ("model", &["endpoint", "model_names"]),
    (
        "model_selection_strategy",
        &["endpoint", "model_selection_strategy"],
    ),
    ("url", &["endpoint", "url"]),
    ("endpoint_type", &["endpoint", "type"]),
    ("custom_endpoint", &["endpoint", "custom_endpoint"]),
    ("streaming", &["endpoint", "streaming"]),
    ("request_timeout_seconds", &["endpoint", "timeout_seconds"]),
    ("api_key", &["endpoint", "api_key"]),
    ("headers", &["input", "headers"]),
    ("extra_inputs", &["input", "extra"]),
    ("concurrency", &["loadgen", "concurrency"]),
    ("request_rate", &["loadgen", "request_rate"]),
    ("arrival_pattern", &["loadgen", "request_rate_mode"]),
    ("request_count", &["loadgen", "request_count"]),
    ("benchmark_duration", &["loadgen", "benchmark_duration"]),
    (
        "benchmark_grace_period",
        &["loadgen", "benchmark_grace_period"],
    ),
    ("warmup_request_count", &["loadgen", "warmup_request_count"]),
    (
        "request_cancellation_rate",
        &["loadgen", "request_cancellation_rate"],
    ),
    (
        "request_cancellation_delay",
        &["loadgen", "request_cancellation_delay"],
    ),
    ("isl", &["input", "prompt", "input_tokens", "mean"]),
    ("isl_stddev", &["input", "prompt", "input_tokens", "stddev"]),
    (
        "isl_block_size",
        &["input", "prompt", "input_tokens", "block_size"],
    ),
    ("osl", &["input", "prompt", "output_tokens", "mean"]),
    (
        "osl_stddev",
        &["input", "prompt", "output_tokens", "stddev"],
    ),
    (
        "num_prefix_prompts",
        &["input", "prompt", "prefix_prompt", "pool_size"],
    ),
    (
        "prefix_prompt_length",
        &["input", "prompt", "prefix_prompt", "length"],
    ),
    ("num_dataset_entries", &["input", "conversation", "num"]),
    ("random_seed", &["input", "random_seed"]),
    ("input_file", &["input", "file"]),
    ("custom_dataset_type", &["input", "custom_dataset_type"]),
    (
        "dataset_sampling_strategy",
        &["input", "dataset_sampling_strategy"],
    ),
    ("fixed_schedule", &["input", "fixed_schedule"]),
    (
        "fixed_schedule_auto_offset",
        &["input", "fixed_schedule_auto_offset"],
    ),
    (
        "fixed_schedule_start_offset",
        &["input", "fixed_schedule_start_offset"],
    ),
    (
        "fixed_schedule_end_offset",
        &["input", "fixed_schedule_end_offset"],
    ),
    ("goodput", &["input", "goodput"]),
    ("tokenizer", &["tokenizer", "name"]),
    ("artifact_dir", &["output", "artifact_directory"]),
];

/// The `input_config` of a run of `args`, `given` the ids of the flags the command line set,
/// `command_line` its arguments after the program's name.
pub(crate) fn input_config(
    args: &ProfileArgs,
    given: &[String],
    command_line: &[String],
) -> anyhow::Result<Value> {
    let values = serde_json::to_value(args)?;
    let mut config = Map::new();
    let mut beyond = Map::new();
    for id in given {
        let value = flag_value(args, &values, id)?;
        match AIPERF_PATHS.iter().find(|(flag, _)| flag == id) {
            Some((_, path)) => insert(&mut config, path, value),
            None => {
                beyond.insert(id.clone(), value);
            }
        }
    }
    // AIPerf fills in the load mode whenever a load flag was given (a closed loop's
    // concurrency defaults to 1 there).
    if config.contains_key("loadgen") {
        if args.fixed_schedule {
            insert(
                &mut config,
                &["loadgen", "request_rate_mode"],
                json!("fixed_schedule"),
            );
        } else if args.request_rate.is_none() {
            let concurrency = json!(args.concurrency.unwrap_or(1));
            insert(&mut config, &["loadgen", "concurrency"], concurrency);
            insert(
                &mut config,
                &["loadgen", "request_rate_mode"],
                json!("concurrency_burst"),
            );
        }
    }
    if !beyond.is_empty() {
        config.insert("beyond_aiperf".to_owned(), Value::Object(beyond));
    }
    config.insert("cli_command".to_owned(), json!(cli_command(command_line)));
    Ok(Value::Object(config))
}

/// The value of flag `id` as AIPerf writes it: lists of names and of key-value pairs where
/// AIPerf keeps lists, else as `values` (the arguments serialized) has it.
fn flag_value(args: &ProfileArgs, values: &Value, id: &str) -> anyhow::Result<Value> {
    Ok(match id {
        "model" => json!(model_names(&args.model)?),
        "headers" => Value::Array(
            args.headers
                .iter()
                .map(|header| match header.split_once(':') {
                    Some((name, value)) => json!([name.trim(), value.trim()]),
                    None => json!([header, ""]),
                })
                .collect(),
        ),
        "extra_inputs" => Value::Array(
            parse_extra_inputs(&args.extra_inputs)?
                .into_iter()
                .map(|(key, value)| json!([key, value]))
                .collect(),
        ),
        "goodput" => {
            let slos = args
                .goodput
                .as_deref()
                .unwrap_or_default()
                .split_whitespace();
            let objectives = slos.filter_map(|slo| {
                let (metric, threshold) = slo.split_once(':')?;
                Some((metric.to_owned(), json!(threshold.parse::<f64>().ok()?)))
            });
            Value::Object(objectives.collect())
        }
        _ => values
            .get(id)
            .or_else(|| values.get("engine").and_then(|engine| engine.get(id)))
            .cloned()
            .unwrap_or(Value::Null),
    })
}

/// Sets `path` (sections, then the key) in `config` to `value`.
fn insert(config: &mut Map<String, Value>, path: &[&str], value: Value) {
    let (key, sections) = path.split_last().expect("paths are not empty");
    let mut section = config;
    for name in sections {
        section = section
            .entry((*name).to_owned())
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .expect("sections are objects");
    }
    section.insert((*key).to_owned(), value);
}

/// The command line as AIPerf writes it: `aiperf` and the arguments, values that are not
/// flags, numbers or booleans in double quotes.
fn cli_command(command_line: &[String]) -> String {
    let words = command_line.iter().map(|word| {
        let bare = word.starts_with('-')
            || word == "profile"
            || word.parse::<f64>().is_ok()
            || ["true", "false", "none", "null"].contains(&word.to_ascii_lowercase().as_str());
        if bare {
            word.clone()
        } else {
            format!("\"{word}\"")
        }
    });
    std::iter::once("aiperf".to_owned())
        .chain(words)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// `aiperf profile <words>` parsed, with the flags it set.
    fn config_of(words: &[&str]) -> Value {
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
        input_config(&cli.args, &given, &command_line).unwrap()
    }

    #[test]
    fn aiperfs_own_example_comes_out_in_its_shape() {
        let config = config_of(&[
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
                "endpoint": {
                    "model_names": ["openai/gpt-oss-20b"],
                    "type": "chat",
                    "streaming": true,
                    "url": "localhost:9000"
                },
                "input": {"prompt": {"output_tokens": {"mean": 250}}},
                "loadgen": {
                    "concurrency": 100,
                    "request_rate_mode": "concurrency_burst",
                    "request_count": 100,
                    "request_cancellation_rate": 10.0
                },
                "cli_command": "aiperf profile -m \"openai/gpt-oss-20b\" --url \"localhost:9000\" \
                    --streaming --num-requests 100 --concurrency 100 --endpoint-type \"chat\" \
                    --osl 250 --request-cancellation-rate 10"
            })
        );
    }

    #[test]
    fn lists_pairs_and_flags_aiperf_lacks_have_their_places() {
        let config = config_of(&[
            "-m",
            "a,b",
            "-H",
            "X-Key: k",
            "--extra-inputs",
            "temperature:0.5",
            "--goodput",
            "time_to_first_token:100",
            "--request-rate",
            "5",
            "--transport",
            "http",
        ]);
        assert_eq!(config["endpoint"]["model_names"], json!(["a", "b"]));
        assert_eq!(config["input"]["headers"], json!([["X-Key", "k"]]));
        assert_eq!(config["input"]["extra"], json!([["temperature", 0.5]]));
        assert_eq!(
            config["input"]["goodput"],
            json!({"time_to_first_token": 100.0})
        );
        assert_eq!(config["loadgen"], json!({"request_rate": 5.0}));
        assert_eq!(config["beyond_aiperf"], json!({"transport": "http"}));
        assert!(config.get("output").is_none(), "nothing set there");
    }
}
