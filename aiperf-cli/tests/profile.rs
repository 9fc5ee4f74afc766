//! `aiperf profile` end to end: the real binary against the real mock server on 127.0.0.1 (or
//! the embedded engine), checked from the export files it writes.

mod support;

use aiperf_core::tokenizer::Tokenizer;
use support::mock::MockServer;
use support::run::{Run, read_json};

/// Every stat key AIPerf writes for a record metric.
const STAT_KEYS: [&str; 16] = [
    "unit", "avg", "p1", "p5", "p10", "p25", "p50", "p75", "p90", "p95", "p99", "min", "max",
    "std", "count", "sum",
];

fn assert_near(what: &str, value: f64, expected: f64, tolerance: f64) {
    assert!(
        (value - expected).abs() <= tolerance,
        "{what} = {value}, expected {expected} ± {tolerance}"
    );
}

#[test]
fn embedded_default_needs_no_server_and_writes_the_four_exports() {
    let run = Run::profile(&[]);
    run.assert_success();
    run.assert_said("simulated engine");
    for file in [
        "profile_export_aiperf.json",
        "profile_export_aiperf.csv",
        "profile_export.jsonl",
        "inputs.json",
    ] {
        assert!(run.dir.join(file).is_file(), "{file} missing");
    }
    assert_eq!(run.records().len(), 10);
    assert!(run.stdout().contains("Request Latency"), "{}", run.stdout());
}

#[test]
fn streaming_chat_against_the_mock_server_measures_its_ttft_and_itl() {
    let server = MockServer::start(&["--ttft-ms", "50", "--itl-ms", "10"]);
    let run = Run::profile(&[
        "--url",
        &server.url,
        "-m",
        "test",
        "--endpoint-type",
        "chat",
        "--streaming",
        "--concurrency",
        "32",
        "--request-count",
        "300",
        "--osl",
        "64",
    ]);
    run.assert_success();
    assert!(!run.stderr().contains("came in more than one chunk"));
    let records = run.records();
    assert_eq!(records.len(), 300);
    for record in &records {
        assert_eq!(
            record["metrics"]["output_sequence_length"]["value"], 64,
            "{record}"
        );
        assert!(record["error"].is_null(), "{record}");
    }
    let ttft_p50 = run.stat("time_to_first_token", "p50");
    assert!(
        ttft_p50 >= 50.0,
        "TTFT p50 {ttft_p50} ms is below the server's 50 ms"
    );
    assert!(
        ttft_p50 < 50.0 + 40.0,
        "TTFT p50 {ttft_p50} ms is far above the server's 50 ms"
    );
    assert_near(
        "ITL p50 (ms)",
        run.stat("inter_token_latency", "p50"),
        10.0,
        3.0,
    );
    // Little's law: throughput = concurrency / latency, within a loose bound.
    let latency_s = run.stat("request_latency", "avg") / 1000.0;
    let throughput = run.stat("request_throughput", "avg");
    let expected = 32.0 / latency_s;
    assert!(
        throughput <= expected * 1.05 && throughput >= expected * 0.6,
        "request throughput {throughput}/s vs 32 / {latency_s} s = {expected}/s"
    );
    // The http:// client's trace (AIPerf's http_req_* metrics): the connections were opened
    // before the run, so every request reused one, and waited for its first event (the first
    // token) about as long as its TTFT, less the writing of the request.
    let summary = run.summary();
    assert_eq!(summary["http_req_connection_reused"]["avg"], 1.0);
    assert_eq!(summary["http_req_connecting"]["max"], 0.0);
    assert_eq!(summary["http_req_data_sent"]["unit"], "KB");
    assert!(run.stat("http_req_data_sent", "min") > 0.1);
    let waiting_p50 = run.stat("http_req_waiting", "p50");
    assert!(
        waiting_p50 <= ttft_p50 && waiting_p50 >= ttft_p50 - 5.0,
        "waiting p50 {waiting_p50} ms vs TTFT p50 {ttft_p50} ms"
    );
    // 64 tokens, 10 ms apart, nearly each read as it comes.
    assert!(run.stat("http_req_chunks_received", "p50") >= 48.0);
    assert_near(
        "receiving p50 (ms)",
        run.stat("http_req_receiving", "p50"),
        630.0,
        100.0,
    );
    let record = &records[0]["metrics"];
    assert_eq!(record["http_req_chunks_sent"]["unit"], "count", "{record}");
    // AIPerf's time-weighted metrics. Requests in flight over the window: by Little's law,
    // the throughput times the mean latency, up to the rounding of the figures; at most 32.
    let in_flight = run.stat("effective_concurrency", "avg");
    assert_near(
        "effective concurrency",
        in_flight,
        throughput * latency_s,
        0.01 * in_flight,
    );
    assert!(in_flight <= 32.0 && run.stat("effective_concurrency", "max") == 32.0);
    // 63 tokens after each first token, over the window: the run's output tokens per second,
    // less the first tokens'.
    let decode = run.stat("effective_decode_throughput", "avg");
    let expected_decode = run.stat("output_token_throughput", "avg") * 63.0 / 64.0;
    assert_near("decode throughput", decode, expected_decode, 0.01 * decode);
    // Each stream makes 63 tokens over about 630 ms: about 100 tokens/s while it decodes.
    assert_near(
        "decode throughput per user p50",
        run.stat("active_decode_throughput_per_user", "p50"),
        100.0,
        20.0,
    );
    // Input and output tokens held: at most 32 requests' worth.
    let held = run.stat("tokens_in_flight", "max");
    let per_request = run.stat("input_sequence_length", "avg") + 64.0;
    assert!(
        held > 0.0 && held <= 32.0 * per_request,
        "tokens in flight {held}"
    );
    assert_eq!(summary["tokens_in_flight"]["unit"], "tokens");
    assert_eq!(
        summary["effective_concurrency"].get("p25"),
        None,
        "AIPerf's keys only"
    );
}

#[test]
fn several_models_are_named_by_the_turns_in_turn_or_at_random() {
    let models_sent = |strategy: &str| {
        let run = Run::profile(&[
            "-m",
            "alpha, beta",
            "--model-selection-strategy",
            strategy,
            "--num-dataset-entries",
            "40",
            "--request-count",
            "40",
            "--concurrency",
            "8",
        ]);
        run.assert_success();
        let inputs = read_json(&run.dir.join("inputs.json"));
        inputs["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|session| session["payloads"][0]["model"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let in_turn = models_sent("round_robin");
    assert_eq!(in_turn.len(), 40);
    for (i, model) in in_turn.iter().enumerate() {
        assert_eq!(model, ["alpha", "beta"][i % 2], "{in_turn:?}");
    }
    let drawn = models_sent("random");
    let alphas = drawn.iter().filter(|m| *m == "alpha").count();
    assert!((8..=32).contains(&alphas), "{drawn:?}");
    assert_ne!(drawn, in_turn, "random is not the round robin");
}

#[test]
fn session_numbers_count_each_phase_from_zero_as_aiperf_does() {
    let run = Run::profile(&["--warmup-request-count", "2", "--request-count", "3"]);
    run.assert_success();
    let sessions = |phase: &str| {
        let mut numbers: Vec<u64> = run
            .records_of(phase)
            .iter()
            .map(|r| r["metadata"]["session_num"].as_u64().unwrap())
            .collect();
        numbers.sort_unstable();
        numbers
    };
    assert_eq!(sessions("warmup"), [0, 1], "written, as AIPerf writes them");
    assert_eq!(sessions("profiling"), [0, 1, 2], "each phase counts from 0");
}

#[test]
fn purposeful_cancellations_are_reported_as_aiperf_reports_them() {
    let run = Run::profile(&[
        "--streaming",
        "--ttft-ms",
        "200",
        "--request-cancellation-rate",
        "100",
        "--request-cancellation-delay",
        "0.01",
        "--request-count",
        "3",
    ]);
    for record in run.records() {
        assert_eq!(
            record["error"],
            serde_json::json!({"code": 499, "type": "RequestCancellationError",
                "message": "Request cancelled 0.010s after being sent"}),
            "{record}"
        );
        assert!(
            record["metadata"]["cancellation_time_ns"].is_u64(),
            "{record}"
        );
    }
    let summary = run.summary();
    assert_eq!(summary["error_summary"][0]["count"], 3, "{summary}");
}

#[test]
fn a_server_that_does_not_stream_is_pointed_out() {
    let server = MockServer::start(&["--ttft-ms", "0", "--itl-ms", "1", "--output-tokens", "8"]);
    let run = Run::profile(&[
        "--url",
        &server.url,
        "-m",
        "test",
        "--streaming",
        "--extra-inputs",
        "stream:false",
        "--request-count",
        "3",
    ]);
    run.assert_success();
    run.assert_said(
        "--streaming was asked, but no answer of several tokens came in more than one chunk",
    );
}

#[test]
fn completions_streaming_and_not_and_embeddings_against_the_mock_server() {
    let server = MockServer::start(&["--ttft-ms", "20", "--itl-ms", "5"]);
    let common = [
        "--url",
        &server.url,
        "-m",
        "test",
        "--concurrency",
        "8",
        "--request-count",
        "40",
    ];

    let streaming = Run::profile(
        &[
            &common[..],
            &[
                "--endpoint-type",
                "completions",
                "--streaming",
                "--osl",
                "32",
            ],
        ]
        .concat(),
    );
    streaming.assert_success();
    assert_eq!(streaming.records().len(), 40);
    assert_eq!(streaming.stat("output_sequence_length", "min"), 32.0);
    assert_eq!(streaming.stat("output_sequence_length", "max"), 32.0);
    assert!(streaming.stat("time_to_first_token", "p50") >= 20.0);
    assert_near(
        "ITL p50 (ms)",
        streaming.stat("inter_token_latency", "p50"),
        5.0,
        2.5,
    );

    let whole = Run::profile(
        &[
            &common[..],
            &["--endpoint-type", "completions", "--osl", "32"],
        ]
        .concat(),
    );
    whole.assert_success();
    assert_eq!(whole.stat("output_sequence_length", "avg"), 32.0);
    // 20 ms to the first token + 31 gaps of 5 ms, all before the body is sent.
    assert!(whole.stat("request_latency", "p50") >= 20.0 + 31.0 * 5.0);

    let embeddings = Run::profile(&[&common[..], &["--endpoint-type", "embeddings"]].concat());
    embeddings.assert_success();
    let records = embeddings.records();
    assert_eq!(records.len(), 40);
    assert!(records.iter().all(|r| r["error"].is_null()));
    assert!(embeddings.stat("request_latency", "p50") > 0.0);
}

#[test]
fn poisson_rate_is_met_and_dispatch_lag_is_recorded() {
    let server = MockServer::start(&["--ttft-ms", "5", "--itl-ms", "1"]);
    let run = Run::profile(&[
        "--url",
        &server.url,
        "-m",
        "test",
        "--streaming",
        "--request-rate",
        "200",
        "--arrival-pattern",
        "poisson",
        "--request-count",
        "600",
        "--osl",
        "4",
        "--isl",
        "32",
        "--random-seed",
        "1",
    ]);
    run.assert_success();
    let records = run.records();
    assert_eq!(records.len(), 600);
    let starts = run.start_times_s();
    let span_s = starts[starts.len() - 1] - starts[0];
    let rate = (starts.len() - 1) as f64 / span_s;
    assert!(
        (rate - 200.0).abs() / 200.0 < 0.08,
        "achieved send rate {rate}/s, asked 200/s"
    );
    for record in &records {
        // AIPerf's name for the dispatch lag: intended to actual send time.
        let lag = &record["metrics"]["credit_to_start_latency"];
        assert!(
            lag["value"].as_f64().is_some_and(|v| v >= 0.0),
            "no dispatch lag in {record}"
        );
    }
}

#[test]
fn export_files_have_aiperf_shapes() {
    let run = Run::profile(&[
        "--streaming",
        "--request-count",
        "4",
        "--osl",
        "8",
        "--isl",
        "16",
    ]);
    run.assert_success();
    let summary = run.summary();
    for key in [
        "schema_version",
        "aiperf_version",
        "benchmark_id",
        "input_config",
        "was_cancelled",
        "error_summary",
        "start_time",
        "end_time",
    ] {
        assert!(summary.get(key).is_some(), "summary lacks {key}");
    }
    // AIPerf 0.13's layout: what the command line set, where AIPerf keeps it.
    let config = &summary["input_config"];
    assert_eq!(config["endpoint"]["streaming"], true, "{config}");
    assert_eq!(config["phases"][0]["requests"], 4, "{config}");
    assert_eq!(config["phases"][0]["type"], "concurrency", "{config}");
    assert_eq!(config["datasets"][0]["prompts"]["isl"]["mean"], 16.0);
    let run_info = &summary["run_info"];
    assert_eq!(run_info["benchmark_id"], summary["benchmark_id"]);
    assert!(
        run_info["cli_command"]
            .as_str()
            .unwrap()
            .ends_with("--streaming --request-count 4 --osl 8 --isl 16"),
        "{run_info}"
    );
    for metric in [
        "time_to_first_token",
        "inter_token_latency",
        "request_latency",
        "output_sequence_length",
        "input_sequence_length",
    ] {
        let keys: Vec<&str> = summary[metric]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for key in STAT_KEYS {
            assert!(keys.contains(&key), "{metric} lacks {key}: {keys:?}");
        }
    }
    for derived in [
        "request_throughput",
        "output_token_throughput",
        "benchmark_duration",
    ] {
        assert!(
            summary[derived]["unit"].is_string() && summary[derived]["avg"].is_number(),
            "{derived}: {}",
            summary[derived]
        );
    }
    let records = run.records();
    // Every field AIPerf's record model requires, and session numbers: for a single-turn
    // dataset, each request's own.
    let mut sessions: Vec<u64> = records
        .iter()
        .map(|r| r["metadata"]["session_num"].as_u64().unwrap())
        .collect();
    sessions.sort_unstable();
    assert_eq!(sessions, (0..records.len() as u64).collect::<Vec<_>>());
    let record = &records[0];
    for key in [
        "session_num",
        "x_request_id",
        "x_correlation_id",
        "conversation_id",
        "turn_index",
        "request_start_ns",
        "request_ack_ns",
        "request_end_ns",
        "worker_id",
        "record_processor_id",
        "benchmark_phase",
        "was_cancelled",
    ] {
        assert!(
            record["metadata"].get(key).is_some(),
            "record metadata lacks {key}: {record}"
        );
    }
    assert_eq!(record["metadata"]["benchmark_phase"], "profiling");
    assert_eq!(record["metrics"]["time_to_first_token"]["unit"], "ms");
    // The in-process engine has no HTTP exchange to trace.
    assert!(summary.get("http_req_waiting").is_none());
    assert!(
        record["metrics"].get("http_req_waiting").is_none(),
        "{record}"
    );
    assert!(record["error"].is_null());
    let inputs = read_json(&run.dir.join("inputs.json"));
    let payload = &inputs["data"][0]["payloads"][0];
    assert!(
        payload["messages"].is_array() && payload["stream"] == true,
        "{payload}"
    );
    // AIPerf's CSV comes from Python's csv module: CRLF line ends.
    let csv = std::fs::read_to_string(run.dir.join("profile_export_aiperf.csv"))
        .unwrap()
        .replace("\r\n", "\n");
    assert!(
        csv.starts_with("Metric,avg,min,max,sum,p1,p5,p10,p25,p50,p75,p90,p95,p99,std\n"),
        "{csv}"
    );
    assert!(csv.contains("\n\nMetric,Value\n"), "{csv}");
    assert!(csv.contains("Time to First Token (ms),"), "{csv}");
}

#[test]
fn every_aiperf_flag_is_in_the_help() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_aiperf"))
        .args(["profile", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--concurrency",
        "--request-rate",
        "--arrival-pattern",
        "--arrival-smoothness",
        "--request-count",
        "--num-requests",
        "--benchmark-duration",
        "--benchmark-grace-period",
        "--warmup-request-count",
        "--request-cancellation-rate",
        "--request-cancellation-delay",
        "--isl",
        "--synthetic-input-tokens-mean",
        "--isl-stddev",
        "--osl",
        "--output-tokens-mean",
        "--osl-stddev",
        "--random-seed",
        "--artifact-dir",
        "--ui",
        "--request-timeout-seconds",
        "--header",
        "--api-key",
        "--url",
        "--model",
        "--endpoint-type",
        "--endpoint",
        "--streaming",
        "--extra-inputs",
        "--failed-request-threshold",
        "--model-names",
        "--transport",
        "--use-implementation",
        // AIPerf 0.13's newer spellings of the same flags.
        "--request-rate-mode",
        "--vllm-burstiness",
        "--num-sessions",
        "--num-conversations",
        "--conversation-num",
        "--num-warmup-sessions",
        "--session-header",
        "--conversation-turn-mean",
        "--session-turns-mean",
        "--conversation-turn-stddev",
        "--session-turns-stddev",
        "--conversation-turn-delay-mean",
        "--session-turn-delay-mean",
        "--conversation-turn-delay-stddev",
        "--session-turn-delay-stddev",
        "--conversation-turn-delay-ratio",
        "--session-delay-ratio",
        "--prompt-input-tokens-mean",
        "--prompt-input-tokens-stddev",
        "--prompt-input-tokens-block-size",
        "--synthetic-input-tokens-block-size",
        "--prompt-output-tokens-mean",
        "--prompt-output-tokens-stddev",
        "--prompt-prefix-pool-size",
        "--prefix-prompt-pool-size",
        "--prompt-prefix-length",
        "--profile-export-level",
        "--no-gpu-telemetry",
        "--no-server-metrics",
    ] {
        assert!(help.contains(flag), "{flag} missing from profile --help");
    }
}

#[test]
fn a_concurrency_above_the_request_count_opens_only_the_connections_it_uses() {
    let server = MockServer::start(&["--ttft-ms", "0", "--itl-ms", "0", "--output-tokens", "2"]);
    let run = Run::profile(&[
        "--url",
        &server.url,
        "-m",
        "test",
        "--concurrency",
        "1000000",
        "--request-count",
        "3",
    ]);
    run.assert_success();
    run.assert_said("opened 3 connections before the run");
    assert!(
        run.stdout().contains("3 sent = 3 succeeded"),
        "{}",
        run.stdout()
    );
}

#[test]
fn invalid_flag_combinations_are_refused_before_anything_runs() {
    for (args, message) in [
        (
            &["--request-count", "5", "--benchmark-duration", "3"][..],
            "give only one",
        ),
        (
            &["--concurrency", "0"][..],
            "--concurrency must be at least 1",
        ),
        (
            &["--concurrency", "-1"][..],
            "a whole number of 0 or more is expected, got -1",
        ),
        (
            &["--benchmark-duration", "0"][..],
            "--benchmark-duration must be a positive number of seconds, got 0",
        ),
        (
            &["--osl-stddev", "5"][..],
            "--output-tokens-stddev needs a mean",
        ),
        (
            &["--request-cancellation-delay", "2"][..],
            "--request-cancellation-delay applies to the requests",
        ),
        (
            &["--num-dataset-entries", "1000000000"][..],
            "more than the 268435456 tokens aiperf builds in memory",
        ),
        (
            &["--request-count", "5", "--isl", "300000000"][..],
            "would hold one prompt (at the least)",
        ),
        (
            &["--concurrency", "1000001"][..],
            "--concurrency 1000001 is more than the 1000000 requests in flight",
        ),
        (
            &["--arrival-pattern", "gamma"][..],
            "--arrival-pattern applies only with --request-rate",
        ),
        (
            &[
                "--request-rate",
                "5",
                "--arrival-pattern",
                "constant",
                "--arrival-smoothness",
                "2",
            ][..],
            "only to --arrival-pattern gamma",
        ),
        (
            &["--request-cancellation-rate", "150"][..],
            "percentage from 0 to 100",
        ),
        (&["-H", "no-colon"][..], "Name:Value"),
        (
            &["--warmup-duration", "-1"][..],
            "--warmup-duration must be a positive number of seconds",
        ),
        (
            &["--profile-export-prefix", "inputs.json"][..],
            "would write over inputs.json",
        ),
        (
            &["--profile-export-prefix", "./sub/../inputs"][..],
            "would write over inputs.json",
        ),
        (
            &["--request-rate-ramp-duration", "5"][..],
            "raises the rate to --request-rate: give one",
        ),
        (
            &["--export-level", "raw"][..],
            "which aiperf does not write",
        ),
        (&["--profile-export-prefix", ".json"][..], "names no file"),
        (
            &[
                "--export-outputs-json",
                "--profile-export-prefix",
                "outputs",
            ][..],
            "would write over --export-outputs-json's outputs.json",
        ),
        (
            &["--concurrency", "4", "--concurrency-ramp-duration", "0"][..],
            "--concurrency-ramp-duration must be a positive number of seconds",
        ),
        (&["--extra-inputs", "{not json"][..], "not a JSON object"),
        (&["--endpoint-type", "chta"][..], "known endpoints are"),
        (
            &["--url", "ftp://127.0.0.1:1"][..],
            "no transport serves ftp://",
        ),
        (&["--transport", "nope"][..], "unknown transport `nope`"),
        (
            &["--endpoint-type", "triton_generate"][..],
            "give the --url of a server that serves",
        ),
        (
            &["--url", "http://127.0.0.1:9", "--ttft-ms", "5"][..],
            "simulated-engine flags (--ttft-ms) have no effect with --url",
        ),
        (
            &["--endpoint-type", "embeddings", "--streaming"][..],
            "--streaming",
        ),
        (
            &["--warmup-request-count", "2", "--warmup-concurrency", "0"][..],
            "--warmup-concurrency must be at least 1",
        ),
        (
            &["--warmup-request-count", "2", "--warmup-request-rate", "-3"][..],
            "--warmup-request-rate must be a positive number",
        ),
        (
            &[
                "--input-file",
                "sessions.jsonl",
                "--session-turns-mean",
                "3",
            ][..],
            "--conversation-turn-mean shape synthetic conversations; an --input-file gives its own",
        ),
        (
            &["--session-header", "X Session"][..],
            "--session-header `X Session` is not a header name",
        ),
        (
            &["--session-header", "Content-Length"][..],
            "is a header HTTP or aiperf sets for each request",
        ),
        (
            &["--conversation-num", "0"][..],
            "--conversation-num must be at least 1",
        ),
        (
            &["--num-warmup-sessions", "0"][..],
            "--num-warmup-sessions must be at least 1",
        ),
        (
            &["--conversation-turn-mean", "0"][..],
            "--conversation-turn-mean must be at least 1",
        ),
        (
            &["--session-turns-stddev", "-1"][..],
            "--conversation-turn-stddev must be a non-negative number, got -1",
        ),
        (
            &["--conversation-turn-delay-ratio", "NaN"][..],
            "--conversation-turn-delay-ratio must be a non-negative number, got NaN",
        ),
        (
            &["--gpu-telemetry", "pynvml"][..],
            "which aiperf does not collect: leave it out",
        ),
        (
            &["--server-metrics"][..],
            "which aiperf does not do: leave it out",
        ),
        (
            &["--tokenizer", "builtin", "--tokenizer-revision", "v1"][..],
            "--tokenizer-revision picks a revision of a HuggingFace model id, and --tokenizer \
             builtin is not one",
        ),
        (
            &["--tokenizer-revision", "v1"][..],
            "--tokenizer-revision picks a revision of a HuggingFace model id: give one as \
             --tokenizer (or --model)",
        ),
        (
            &[
                "--warmup-request-count",
                "2",
                "--warmup-request-rate-ramp-duration",
                "3",
            ][..],
            "--warmup-request-rate-ramp-duration raises the warm-up's rate",
        ),
        (
            &[
                "--warmup-request-count",
                "2",
                "--warmup-concurrency-ramp-duration",
                "-1",
            ][..],
            "--warmup-concurrency-ramp-duration must be a positive number of seconds",
        ),
        (
            &["--prefill-concurrency", "2"][..],
            "only streamed responses show: add --streaming",
        ),
        (
            &[
                "--streaming",
                "--concurrency",
                "2",
                "--prefill-concurrency",
                "3",
            ][..],
            "--prefill-concurrency 3 is more than --concurrency (2)",
        ),
        (
            &[
                "--streaming",
                "--concurrency",
                "8",
                "--prefill-concurrency",
                "8",
                "--warmup-concurrency",
                "2",
                "--warmup-request-count",
                "4",
            ][..],
            "--prefill-concurrency (the warm-up's too) 8 is more than the warm-up's concurrency (2)",
        ),
        (
            &["--streaming", "--warmup-prefill-concurrency", "0"][..],
            "--warmup-prefill-concurrency must be at least 1",
        ),
        (
            &["--random-range-ratio", "0.3"][..],
            "--random-range-ratio draws around --osl",
        ),
        (
            &["--random-range-ratio", "1", "--osl", "5"][..],
            "the input ratio must be from 0 to 1 (not included), got 1",
        ),
        (
            &[
                "--random-range-ratio",
                "0.3",
                "--osl",
                "5",
                "--isl-stddev",
                "2",
            ][..],
            "drop --isl-stddev and --osl-stddev",
        ),
        (
            &["--random-range-ratio", "0.9", "--isl", "1", "--osl", "5"][..],
            "makes prompts of 0 tokens at the least",
        ),
        (
            &["--random-corpus-style", "sglang"][..],
            "--random-corpus-style sets the window of --random-range-ratio",
        ),
        (
            &["--system-prompt", " "][..],
            "the system prompt is empty or only whitespace",
        ),
        (
            &["--system-prompt", "a", "--system-prompt-file", "b"][..],
            "cannot be used with",
        ),
        (
            &["--system-prompt-file", "no-such-prompt.txt"][..],
            "--system-prompt-file no-such-prompt.txt: cannot read it",
        ),
        (
            &["--system-prompt", "a", "--shared-system-prompt-length", "9"][..],
            "both fill the system message",
        ),
        (
            &[
                "--system-prompt",
                "a",
                "--num-prefix-prompts",
                "2",
                "--prefix-prompt-length",
                "9",
            ][..],
            "cannot go with --num-prefix-prompts",
        ),
        (
            &["--system-prompt", "a", "--endpoint-type", "embeddings"][..],
            "endpoint `embeddings` sends no system message",
        ),
    ] {
        let run = Run::profile(args);
        assert_eq!(
            run.output.status.code(),
            Some(2),
            "{args:?}: {}",
            run.stderr()
        );
        assert!(
            run.stderr().contains(message),
            "{args:?}: expected {message:?} in:\n{}",
            run.stderr()
        );
        assert!(
            !run.dir.join("profile_export.jsonl").exists(),
            "{args:?} ran anyway"
        );
    }
}

#[test]
fn headers_and_extra_inputs_are_read_as_aiperf_reads_them() {
    // AIPerf's forms: commas between pairs, several values after one flag, JSON objects,
    // values typed (True is a boolean, 0.7 a number).
    let run = Run::profile(&[
        "--request-count",
        "1",
        "--extra-inputs",
        "temperature:0.7,ignore_eos:True",
        "top_p:0.9",
        r#"{"stop": ["a", "b"]}"#,
        "-H",
        "X-A:1,X-B:2",
        "X-C:3",
    ]);
    run.assert_success();
    let inputs = read_json(&run.dir.join("inputs.json"));
    let payload = &inputs["data"][0]["payloads"][0];
    assert_eq!(payload["temperature"], 0.7, "{payload}");
    assert_eq!(payload["ignore_eos"], true, "{payload}");
    assert_eq!(payload["top_p"], 0.9, "{payload}");
    assert_eq!(payload["stop"], serde_json::json!(["a", "b"]), "{payload}");
    let headers = &run.summary()["input_config"]["endpoint"]["headers"];
    assert_eq!(
        *headers,
        serde_json::json!({"X-A": "1", "X-B": "2", "X-C": "3"}),
        "the headers the transport sends"
    );
}

#[test]
fn a_system_prompt_is_sent_verbatim_and_counted_in_the_input_length() {
    let prompt = "You are \"terse\".\nAnswer in one line.";
    let plain = Run::profile(&["--request-count", "2", "--isl", "40"]);
    plain.assert_success();
    let with_prompt = Run::profile(&[
        "--request-count",
        "2",
        "--isl",
        "40",
        "--system-prompt",
        prompt,
    ]);
    with_prompt.assert_success();
    let inputs = read_json(&with_prompt.dir.join("inputs.json"));
    for entry in inputs["data"].as_array().unwrap() {
        let messages = &entry["payloads"][0]["messages"];
        assert_eq!(
            messages[0],
            serde_json::json!({"role": "system", "content": prompt})
        );
        assert_eq!(messages[1]["role"], "user", "{messages}");
    }
    let system_tokens = Tokenizer::builtin().count(prompt) as f64;
    assert_eq!(
        with_prompt.stat("input_sequence_length", "avg"),
        plain.stat("input_sequence_length", "avg") + system_tokens
    );
}

#[test]
fn a_range_ratio_draws_lengths_across_its_window() {
    let range = |style: &str| {
        let run = Run::profile(&[
            "--request-count",
            "60",
            "--concurrency",
            "30",
            "--streaming",
            "--isl",
            "100",
            "--osl",
            "20",
            "--random-range-ratio",
            "0.5",
            "--random-corpus-style",
            style,
        ]);
        run.assert_success();
        let stat = |metric, key| run.stat(metric, key);
        [
            stat("input_sequence_length", "min"),
            stat("input_sequence_length", "max"),
            stat("output_sequence_length", "min"),
            stat("output_sequence_length", "max"),
        ]
    };
    // vLLM's window: [50, 150] and [10, 30]; 60 uniform draws fall within 15 of each end.
    let [isl_min, isl_max, osl_min, osl_max] = range("vllm");
    assert!((50.0..65.0).contains(&isl_min) && (135.0..=150.0).contains(&isl_max));
    assert!((10.0..14.0).contains(&osl_min) && (26.0..=30.0).contains(&osl_max));
    // SGLang's: [50, 100] and [10, 20].
    let [isl_min, isl_max, osl_min, osl_max] = range("sglang");
    assert!((50.0..60.0).contains(&isl_min) && (90.0..=100.0).contains(&isl_max));
    assert!((10.0..13.0).contains(&osl_min) && (17.0..=20.0).contains(&osl_max));
}

#[test]
fn the_log_level_sets_what_is_said_on_stderr() {
    let said = |args: &[&str]| {
        let run = Run::profile(
            &[
                &[
                    "--request-count",
                    "1",
                    "--endpoint-type",
                    "embeddings",
                    "--osl",
                    "4",
                ],
                args,
            ]
            .concat(),
        );
        run.assert_success();
        run.stderr()
    };
    // Info (the default): what the run does and the notes, no plan.
    let info = said(&[]);
    assert!(
        info.contains("benchmarking the built-in simulated engine"),
        "{info}"
    );
    assert!(info.contains("--osl has no effect"), "{info}");
    assert!(!info.contains("aiperf: debug:"), "{info}");
    // -v, -vv, --extra-verbose: the plan the flags resolved to, as well, whatever the level.
    for verbose in [
        &["-v"][..],
        &["-vv"],
        &["--extra-verbose", "--log-level", "error"],
    ] {
        let debug = said(verbose);
        let plan = "aiperf: debug: profiling: 1 at a time (closed loop); 1 request;";
        assert!(debug.contains(plan), "{verbose:?}: {debug}");
        assert!(
            debug.contains("aiperf: debug: dataset: 1 conversation of 1 turn"),
            "{debug}"
        );
    }
    // Warning: the notes only; error (in AIPerf's capitals too): neither.
    let warning = said(&["--log-level", "warning"]);
    assert!(!warning.contains("benchmarking the built-in"), "{warning}");
    assert!(warning.contains("--osl has no effect"), "{warning}");
    let error = said(&["--log-level", "ERROR"]);
    assert!(!error.contains("--osl has no effect"), "{error}");
    // The run's failure is said at every level.
    let failed = Run::profile(&[
        "--request-count",
        "2",
        "--error-rate",
        "1",
        "--log-level",
        "critical",
    ]);
    assert_eq!(failed.output.status.code(), Some(1));
    failed.assert_said("every request failed");
}

#[test]
fn export_outputs_json_writes_each_profiling_answer() {
    let run = Run::profile(&[
        "--export-outputs-json",
        "--streaming",
        "--request-count",
        "4",
        "--warmup-request-count",
        "2",
        "--osl",
        "5",
    ]);
    run.assert_success();
    let outputs = read_json(&run.dir.join("outputs.json"));
    assert_eq!(outputs["schema_version"], "1.0");
    let data = outputs["data"].as_array().unwrap();
    let mut ids: Vec<&str> = data
        .iter()
        .map(|e| e["x_request_id"].as_str().unwrap())
        .collect();
    let profiling = run.records_of("profiling");
    let mut sent: Vec<&str> = profiling
        .iter()
        .map(|r| r["metadata"]["x_request_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    sent.sort_unstable();
    assert_eq!(
        ids, sent,
        "one entry per profiling request, none for the warm-up"
    );
    for entry in data {
        let text = entry["response_text"].as_str().unwrap();
        assert_eq!(text.split_whitespace().count(), 5, "{entry}");
        assert_eq!(entry["metrics"]["output_sequence_length"], 5, "{entry}");
        assert!(entry["metrics"]["time_to_first_token"].as_f64().unwrap() > 0.0);
    }
    let sessions: Vec<u64> = data
        .iter()
        .map(|e| e["session_num"].as_u64().unwrap())
        .collect();
    assert!(sessions.is_sorted(), "{sessions:?}");
    let files: Vec<String> = std::fs::read_dir(&run.dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!files.iter().any(|f| f.contains("fragments")), "{files:?}");
    assert_eq!(
        run.summary()["input_config"]["artifacts"]["export_outputs_json"],
        true
    );
    let without = Run::profile(&["--request-count", "1"]);
    assert!(!without.dir.join("outputs.json").exists());
}

#[test]
fn headers_aiperf_sets_itself_take_aiperf_s_precedence() {
    // AIPerf runs these: so does aiperf, saying what it does with them.
    let run = Run::profile(&[
        "--request-count",
        "1",
        "-H",
        "X-Request-ID: mine",
        "-H",
        "Authorization: Bearer from-h",
        "X-Kept: 1",
        "--api-key",
        "from-key",
    ]);
    run.assert_success();
    let stderr = run.stderr();
    assert!(stderr.contains("-H X-Request-ID is not sent"), "{stderr}");
    assert!(
        stderr.contains("replaces the -H Authorization header"),
        "{stderr}"
    );
    let headers = &run.summary()["input_config"]["endpoint"]["headers"];
    assert_eq!(
        *headers,
        serde_json::json!({"X-Kept": "1"}),
        "the -H headers sent"
    );
}

#[test]
fn the_request_count_sizes_the_synthetic_dataset_as_in_aiperf() {
    let run = Run::profile(&["--request-count", "20", "--concurrency", "1"]);
    run.assert_success();
    let inputs = read_json(&run.dir.join("inputs.json"));
    assert_eq!(
        inputs["data"].as_array().unwrap().len(),
        20,
        "one prompt per request"
    );
    let mut records = run.records();
    records.sort_by_key(|r| r["metadata"]["request_start_ns"].as_u64());
    let used: Vec<&str> = records
        .iter()
        .map(|r| r["metadata"]["conversation_id"].as_str().unwrap())
        .collect();
    let in_order: Vec<String> = (0..20).map(|i| format!("synthetic-{i}")).collect();
    assert_eq!(used, in_order, "each prompt once, in order");
}

#[test]
fn a_request_count_beyond_what_is_built_reuses_the_prompts_and_says_so() {
    let run = Run::profile(&[
        "--request-count",
        "10001",
        "--concurrency",
        "500",
        "--isl",
        "4",
        "--osl",
        "1",
        "--ttft-ms",
        "0",
        "--itl-ms",
        "0",
    ]);
    run.assert_success();
    run.assert_said(
        "the synthetic dataset holds 10000 distinct prompts, which the 10001 requests reuse",
    );
    assert_eq!(
        run.summary()["input_config"]["datasets"][0]["entries"],
        10000
    );
}

#[test]
fn a_tiny_rate_waits_instead_of_firing_every_request() {
    // The second request would be due after centuries: the offset saturates instead of wrapping
    // into the past, and the run ends with its duration.
    let run = Run::profile(&[
        "--request-rate",
        "1e-300",
        "--arrival-pattern",
        "constant",
        "--benchmark-duration",
        "0.5",
    ]);
    run.assert_success();
    assert!(run.records().len() <= 1, "{} requests", run.records().len());
}

#[test]
fn no_request_leaves_after_the_duration_even_with_a_backlog() {
    // 200 requests/s asked for, one at a time of about 60 ms each: a backlog builds, and the
    // requests it holds when the second is over must not be sent (nor recorded).
    let run = Run::profile(&[
        "--request-rate",
        "200",
        "--arrival-pattern",
        "constant",
        "--concurrency",
        "1",
        "--benchmark-duration",
        "1",
        "--benchmark-grace-period",
        "0",
        "--ttft-ms",
        "50",
        "--osl",
        "5",
    ]);
    run.assert_success();
    let records = run.records();
    let starts: Vec<u64> = records
        .iter()
        .map(|r| r["metadata"]["request_start_ns"].as_u64().unwrap())
        .collect();
    let first = *starts.iter().min().unwrap();
    let late: Vec<f64> = starts
        .iter()
        .filter(|&&start| start > first + 1_000_000_000)
        .map(|&start| (start - first) as f64 / 1e9)
        .collect();
    assert!(late.is_empty(), "sent after the duration: {late:?} s");
    let cancelled = records
        .iter()
        .filter(|r| r["metadata"]["was_cancelled"] == true)
        .count();
    assert!(
        cancelled <= 1,
        "only the request in flight at the end: {cancelled}"
    );
    assert!(records.len() < 40, "{} records", records.len());
}

#[test]
fn the_concurrency_ramps_up_one_request_at_a_time() {
    // Four slots over 0.3 s, each request 0.4 s long: the four requests start at about 0,
    // 0.1, 0.2 and 0.3 s, one per slot, whether a closed loop's workers or an open loop's cap.
    let common = [
        "--request-count",
        "4",
        "--concurrency",
        "4",
        "--concurrency-ramp-duration",
        "0.3",
        "--ttft-ms",
        "400",
        "--osl",
        "1",
    ];
    for load in [&[][..], &["--request-rate", "100"][..]] {
        let run = Run::profile(&[&common[..], load].concat());
        run.assert_success();
        let starts = run.start_times_s();
        let gaps: Vec<f64> = starts.windows(2).map(|w| (w[1] - w[0]) * 1e3).collect();
        assert!(
            gaps.iter().all(|&gap| gap >= 50.0),
            "{load:?}: one more request every 100 ms, not all at once: gaps {gaps:?} ms"
        );
    }
}

#[test]
fn a_prefix_names_the_export_files() {
    let run = Run::profile(&[
        "--request-count",
        "2",
        "--profile-export-prefix",
        "run1.json",
    ]);
    run.assert_success();
    for file in ["run1.json", "run1.csv", "run1.jsonl", "inputs.json"] {
        assert!(run.dir.join(file).is_file(), "{file} missing");
    }
    assert!(!run.dir.join("profile_export_aiperf.json").exists());
    let summary = read_json(&run.dir.join("run1.json"));
    assert_eq!(summary["input_config"]["artifacts"]["prefix"], "run1.json");
    let lines = std::fs::read_to_string(run.dir.join("run1.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 2);
    // A relative path is taken from the artifact directory, as in AIPerf.
    let nested = Run::profile(&[
        "--request-count",
        "1",
        "--profile-export-prefix",
        "sub/run2",
    ]);
    nested.assert_success();
    for file in ["sub/run2.json", "sub/run2.csv", "sub/run2.jsonl"] {
        assert!(nested.dir.join(file).is_file(), "{file} missing");
    }
}

#[test]
fn a_warm_up_by_duration_sends_until_its_end() {
    // Requests of about 20 ms one at a time for 0.3 s of warm-up: the profiling phase then goes
    // on through the dataset from where the warm-up left it.
    let run = Run::profile(&[
        "--warmup-duration",
        "0.3",
        "--request-count",
        "3",
        "--num-dataset-entries",
        "1000",
        "--ttft-ms",
        "20",
        "--osl",
        "1",
    ]);
    run.assert_success();
    let profiling = run.records_of("profiling");
    assert_eq!(profiling.len(), 3);
    let warmup = run.records_of("warmup").len();
    assert!(
        (3..=20).contains(&warmup),
        "about 15 warm-up requests in 0.3 s: {warmup}"
    );
    let first: usize = profiling
        .iter()
        .map(|r| {
            let id = r["metadata"]["conversation_id"].as_str().unwrap();
            id.trim_start_matches("synthetic-")
                .parse::<usize>()
                .unwrap()
        })
        .min()
        .unwrap();
    assert!(
        (3..=20).contains(&first),
        "about 15 warm-up requests in 0.3 s, then it stopped: {first}"
    );
}

#[test]
fn a_short_phase_ramps_towards_the_concurrency_asked_for() {
    // Two requests, a ramp to 64 over 30 s: the second worker starts at 30/63 s, as the limit
    // rises towards 64, so the run ends long before the ramp would.
    let started = std::time::Instant::now();
    let run = Run::profile(&[
        "--request-count",
        "2",
        "--concurrency",
        "64",
        "--concurrency-ramp-duration",
        "30",
        "--ttft-ms",
        "0",
        "--itl-ms",
        "0",
    ]);
    run.assert_success();
    assert_eq!(run.records().len(), 2);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn the_request_rate_ramps_up() {
    // 100 requests/s, reached over 1 s: the first 30 take about 0.76 s instead of 0.29 s, and
    // come closer and closer together.
    let run = Run::profile(&[
        "--request-rate",
        "100",
        "--arrival-pattern",
        "constant",
        "--request-rate-ramp-duration",
        "1",
        "--request-count",
        "30",
        "--ttft-ms",
        "0",
        "--itl-ms",
        "0",
    ]);
    run.assert_success();
    let starts = run.start_times_s();
    let span = starts[29] - starts[0];
    assert!(span > 0.6, "the ramp spreads the first requests: {span} s");
    let early = starts[2] - starts[1];
    let late = starts[29] - starts[28];
    assert!(early > late, "closer and closer: {early} s then {late} s");

    // A ramp of the warm-up's own leaves the profiling phase at its rate from the start.
    let run = Run::profile(&[
        "--request-rate",
        "100",
        "--arrival-pattern",
        "constant",
        "--warmup-request-count",
        "30",
        "--warmup-request-rate-ramp-duration",
        "1",
        "--request-count",
        "30",
        "--ttft-ms",
        "0",
        "--itl-ms",
        "0",
    ]);
    run.assert_success();
    let span = |phase| {
        let spans = spans_s(&run, phase);
        spans[29].0 - spans[0].0
    };
    let (warmup, profiling) = (span("warmup"), span("profiling"));
    assert!(warmup > 0.6, "the warm-up ramps: {warmup} s");
    assert!(profiling < warmup, "not the profiling phase: {profiling} s");
}

#[test]
fn the_summary_export_level_leaves_out_the_per_request_file() {
    // With the flags that turn off what aiperf never collects, as AIPerf command lines have.
    let run = Run::profile(&[
        "--request-count",
        "2",
        "--profile-export-level",
        "summary",
        "--no-gpu-telemetry",
        "--no-server-metrics",
    ]);
    run.assert_success();
    assert!(!run.dir.join("profile_export.jsonl").exists());
    for file in [
        "profile_export_aiperf.json",
        "profile_export_aiperf.csv",
        "inputs.json",
    ] {
        assert!(run.dir.join(file).is_file(), "{file} missing");
    }
    let summary = run.summary();
    assert_eq!(
        summary["request_count"]["avg"], 2.0,
        "the metrics take every record"
    );
    assert_eq!(summary["input_config"]["artifacts"]["records"], false);
}

/// The `(start, end)` of each of a run's records of `phase`, in seconds, earliest first.
fn spans_s(run: &Run, phase: &str) -> Vec<(f64, f64)> {
    let mut spans: Vec<(f64, f64)> = run
        .records_of(phase)
        .iter()
        .map(|r| {
            let ns = |key: &str| r["metadata"][key].as_f64().unwrap() / 1e9;
            (ns("request_start_ns"), ns("request_end_ns"))
        })
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    spans
}

#[test]
fn the_warm_up_runs_at_its_own_concurrency_and_rate() {
    // Requests of about 20 ms: one at a time in the warm-up, four at a time after it.
    let run = Run::profile(&[
        "--concurrency",
        "4",
        "--warmup-concurrency",
        "1",
        "--warmup-request-count",
        "4",
        "--request-count",
        "8",
        "--ttft-ms",
        "20",
        "--osl",
        "1",
    ]);
    run.assert_success();
    let warmup = spans_s(&run, "warmup");
    assert_eq!(warmup.len(), 4);
    for pair in warmup.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "one at a time: {warmup:?}");
    }
    let profiling = spans_s(&run, "profiling");
    assert!(
        profiling[1].0 < profiling[0].1,
        "the profiling phase keeps --concurrency 4: {profiling:?}"
    );
    let phases = &run.summary()["input_config"]["phases"];
    assert_eq!(phases[0]["concurrency"], 1, "{phases}");
    assert_eq!(phases[1]["concurrency"], 4, "{phases}");

    // A warm-up at 20 requests a second, evenly spaced as the profiling rate's pattern says.
    let run = Run::profile(&[
        "--request-rate",
        "1000",
        "--arrival-pattern",
        "constant",
        "--warmup-request-rate",
        "20",
        "--warmup-request-count",
        "4",
        "--request-count",
        "4",
    ]);
    run.assert_success();
    let warmup = spans_s(&run, "warmup");
    for pair in warmup.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap >= 0.045, "50 ms apart at 20/s: {warmup:?}");
    }
    let phases = &run.summary()["input_config"]["phases"];
    assert_eq!(phases[0]["rate"], 20.0, "{phases}");
    assert_eq!(phases[0]["type"], "constant", "{phases}");

    // A warm-up rate under a profiling concurrency takes --arrival-pattern too, and a
    // smoothness alone picks gamma, as AIPerf's --vllm-burstiness does.
    let run = Run::profile(&[
        "--concurrency",
        "2",
        "--warmup-request-rate",
        "50",
        "--vllm-burstiness",
        "3",
        "--warmup-request-count",
        "2",
        "--request-count",
        "2",
    ]);
    run.assert_success();
    let phases = &run.summary()["input_config"]["phases"];
    assert_eq!(phases[0]["type"], "gamma", "{phases}");
    assert_eq!(phases[0]["smoothness"], 3.0, "{phases}");
    assert_eq!(phases[1]["type"], "concurrency", "{phases}");
    assert!(phases[1].get("smoothness").is_none(), "{phases}");

    // A warm-up pattern of its own: evenly spaced, where the profiling phase's is Poisson
    // (whose gaps at this seed include one of 5 ms, and one of 23).
    let run = Run::profile(&[
        "--request-rate",
        "1000",
        "--warmup-request-rate",
        "20",
        "--warmup-arrival-pattern",
        "constant",
        "--warmup-request-count",
        "8",
        "--request-count",
        "4",
    ]);
    run.assert_success();
    let warmup = spans_s(&run, "warmup");
    for pair in warmup.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap >= 0.025, "50 ms apart at 20/s: {warmup:?}");
    }
    let phases = &run.summary()["input_config"]["phases"];
    assert_eq!(phases[0]["type"], "constant", "{phases}");
    assert_eq!(phases[1]["type"], "poisson", "{phases}");
}
