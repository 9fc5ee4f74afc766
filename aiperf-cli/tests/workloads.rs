//! Workloads users bring (issue 4), end to end: dataset files, multi-turn sessions, trace
//! replay at recorded times, shared prefixes, a HuggingFace tokenizer file and goodput, each
//! run by the real binary against the real mock server, with files the tests write.

mod support;

use std::path::Path;

use serde_json::{Value, json};
use support::mock::MockServer;
use support::run::{Run, read_json};

/// Writes `lines` as a JSONL file in `dir` and returns its path as a string.
fn write_jsonl(dir: &Path, name: &str, lines: &[Value]) -> String {
    let path = dir.join(name);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The `messages` of every payload in `inputs.json`, by session.
fn sent_messages(run: &Run) -> Vec<Vec<Value>> {
    let inputs = read_json(&run.dir.join("inputs.json"));
    inputs["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|session| session["payloads"].as_array().unwrap().clone())
        .map(|payload| payload["messages"].as_array().unwrap().clone())
        .collect()
}

#[test]
fn a_single_turn_file_is_sent_line_by_line() {
    let server = MockServer::start(&["--ttft-ms", "1", "--itl-ms", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let texts = [
        "first prompt here",
        "second prompt",
        "third and last prompt",
    ];
    let lines: Vec<Value> = texts
        .iter()
        .map(|t| json!({"text": t, "output_length": 3}))
        .collect();
    let file = write_jsonl(dir.path(), "prompts.jsonl", &lines);
    let run = Run::profile(&[
        "--url",
        &server.url,
        "-m",
        "test",
        "--input-file",
        &file,
        "--custom-dataset-type",
        "single_turn",
    ]);
    run.assert_success();
    assert_eq!(run.records().len(), 3, "one request per line by default");
    let sent: Vec<String> = sent_messages(&run)
        .iter()
        .map(|messages| {
            messages.last().unwrap()["content"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(sent, texts);
}

#[test]
fn osl_sets_the_output_length_of_the_lines_without_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        json!({"text": "a prompt with its own length", "output_length": 7}),
        json!({"text": "a prompt without"}),
    ];
    let file = write_jsonl(dir.path(), "prompts.jsonl", &lines);
    let run = Run::profile(&[
        "--input-file",
        &file,
        "--custom-dataset-type",
        "single_turn",
        "--osl",
        "3",
    ]);
    run.assert_success();
    let inputs = read_json(&run.dir.join("inputs.json"));
    let lengths: Vec<&Value> = inputs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|session| &session["payloads"][0]["max_completion_tokens"])
        .collect();
    assert_eq!(
        lengths,
        [&json!(7), &json!(3)],
        "the line's own length first, as in AIPerf"
    );
}

#[test]
fn a_multi_turn_session_sends_the_first_answer_with_the_second_turn() {
    let server = MockServer::start(&["--ttft-ms", "1", "--itl-ms", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let session = json!({"session_id": "s1", "turns": [
        {"text": "hello there", "output_length": 7},
        {"text": "and a follow-up", "output_length": 2, "delay": 20},
    ]});
    let file = write_jsonl(dir.path(), "sessions.jsonl", &[session]);
    // Two models in turn: the second turn, formatted during the run, names the second.
    let run = Run::profile(&[
        "--url",
        &server.url,
        "-m",
        "first,second",
        "--input-file",
        &file,
        "--custom-dataset-type",
        "multi_turn",
    ]);
    run.assert_success();
    let inputs = read_json(&run.dir.join("inputs.json"));
    let models: Vec<&str> = inputs["data"][0]["payloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|payload| payload["model"].as_str().unwrap())
        .collect();
    assert_eq!(models, ["first", "second"]);
    let records = run.records();
    assert_eq!(records.len(), 2);
    let turns: Vec<i64> = records
        .iter()
        .map(|r| r["metadata"]["turn_index"].as_i64().unwrap())
        .collect();
    assert_eq!(turns, [0, 1]);
    assert_eq!(
        records[0]["metadata"]["x_correlation_id"],
        records[1]["metadata"]["x_correlation_id"]
    );
    // AIPerf's session_num: each request's number within its phase.
    assert_eq!(records[0]["metadata"]["session_num"], 0);
    assert_eq!(records[1]["metadata"]["session_num"], 1);
    // The second turn waited for the first to end, plus its 20 ms delay.
    let first_end = records[0]["metadata"]["request_end_ns"].as_f64().unwrap();
    let second_start = records[1]["metadata"]["request_start_ns"].as_f64().unwrap();
    assert!(
        second_start - first_end >= 20e6,
        "the delay was not honoured"
    );

    let sent = sent_messages(&run);
    assert_eq!(sent.len(), 2);
    let second = &sent[1];
    assert_eq!(second.len(), 3, "user, assistant, user: {second:?}");
    assert_eq!(second[0]["content"], "hello there");
    assert_eq!(second[1]["role"], "assistant");
    // The answer the server gave: exactly the 7 tokens the first turn asked for.
    let answer = second[1]["content"].as_str().unwrap();
    assert_eq!(answer.split_whitespace().count(), 7, "{answer:?}");
    assert_eq!(second[2]["content"], "and a follow-up");
}

#[test]
fn a_multi_turn_file_is_sent_once_through_each_session_whole() {
    let server = MockServer::start(&["--ttft-ms", "1", "--itl-ms", "1", "--output-tokens", "2"]);
    let dir = tempfile::tempdir().unwrap();
    let sessions: Vec<Value> = (0..3)
        .map(|s| {
            let turns: Vec<Value> = (0..3)
                .map(|t| json!({"text": format!("s{s} t{t}")}))
                .collect();
            json!({"session_id": format!("s{s}"), "turns": turns})
        })
        .collect();
    let file = write_jsonl(dir.path(), "sessions.jsonl", &sessions);
    // Two at a time: the worker done first must not start a session again while the last one
    // is still to be sent.
    let run = Run::profile(&[
        "--url",
        &server.url,
        "-m",
        "test",
        "--concurrency",
        "2",
        "--input-file",
        &file,
        "--custom-dataset-type",
        "multi_turn",
    ]);
    run.assert_success();
    let mut sent: Vec<(String, u64)> = run
        .records()
        .iter()
        .map(|r| {
            let metadata = &r["metadata"];
            let session = metadata["conversation_id"].as_str().unwrap().to_owned();
            (session, metadata["turn_index"].as_u64().unwrap())
        })
        .collect();
    sent.sort();
    let expected: Vec<(String, u64)> = (0..3)
        .flat_map(|s| (0..3).map(move |t| (format!("s{s}"), t)))
        .collect();
    assert_eq!(sent, expected);
}

#[test]
fn synthetic_conversations_of_several_turns_run_as_sessions_of_their_own() {
    let server = MockServer::start(&["--ttft-ms", "1", "--itl-ms", "1"]);
    // Three conversations of three turns, 40 ms apart, two at a time, as AIPerf's
    // --conversation-num and --conversation-turn-* flags ask (its spellings, aliases of ours).
    let run = Run::profile(&[
        "--url",
        &server.url,
        "-m",
        "test",
        "--concurrency",
        "2",
        "--isl",
        "12",
        "--osl",
        "3",
        "--num-sessions",
        "3",
        "--session-turns-mean",
        "3",
        "--conversation-turn-delay-mean",
        "80",
        "--session-delay-ratio",
        "0.5",
    ]);
    run.assert_success();
    let records = run.records();
    assert_eq!(
        records.len(),
        9,
        "3 conversations of 3 turns, not 10 requests"
    );
    let mut sessions: std::collections::BTreeMap<&str, Vec<&Value>> = Default::default();
    for record in &records {
        let id = record["metadata"]["x_correlation_id"].as_str().unwrap();
        sessions.entry(id).or_default().push(record);
    }
    assert_eq!(sessions.len(), 3, "each conversation one session");
    for turns in sessions.values() {
        let at = |turn: &Value, key: &str| turn["metadata"][key].as_f64().unwrap();
        let indices: Vec<u64> = turns
            .iter()
            .map(|t| t["metadata"]["turn_index"].as_u64().unwrap())
            .collect();
        assert_eq!(indices, [0, 1, 2]);
        for pair in turns.windows(2) {
            let gap_ms = (at(pair[1], "request_start_ns") - at(pair[0], "request_end_ns")) / 1e6;
            assert!(gap_ms >= 40.0, "each turn waits 80 ms x 0.5: {gap_ms} ms");
        }
    }
    // Each turn goes with the conversation so far: 1, 3, then 5 messages.
    let mut lengths: Vec<usize> = sent_messages(&run).iter().map(Vec::len).collect();
    lengths.sort_unstable();
    assert_eq!(lengths, [1, 1, 1, 3, 3, 3, 5, 5, 5]);
    let config = &read_json(&run.dir.join("profile_export_aiperf.json"))["input_config"];
    assert_eq!(config["phases"][0]["sessions"], 3);
    assert_eq!(config["phases"][0].get("requests"), None);
    assert_eq!(config["datasets"][0]["entries"], 3);
    assert_eq!(
        config["datasets"][0]["turns"],
        json!({"mean": 3.0, "stddev": 0.0})
    );
    assert_eq!(
        config["datasets"][0]["turn_delay"],
        json!({"mean": 80.0, "stddev": 0.0})
    );
    assert_eq!(config["datasets"][0]["turn_delay_ratio"], 0.5);
}

#[test]
fn at_a_request_rate_every_turn_takes_a_tick_of_the_rate() {
    let server = MockServer::start(&["--ttft-ms", "1", "--itl-ms", "1", "--output-tokens", "2"]);
    let run_at = |extra: &[&str]| {
        let mut args = vec![
            "--url",
            &server.url,
            "-m",
            "test",
            "--isl",
            "8",
            "--request-rate",
            "20",
            "--arrival-pattern",
            "constant",
            "--conversation-num",
            "3",
            "--conversation-turn-mean",
            "3",
        ];
        args.extend_from_slice(extra);
        let run = Run::profile(&args);
        run.assert_success();
        assert_eq!(run.records().len(), 9, "{}", run.stderr());
        run.start_times_s()
    };
    // 20 ticks a second, one request each, later turns first: 9 requests over 8 ticks.
    let starts = run_at(&[]);
    for gap in starts.windows(2).map(|pair| pair[1] - pair[0]) {
        assert!(gap >= 0.035, "a request without its 50 ms tick: {starts:?}");
    }
    // Capped at one conversation at a time, its later turns still get ticks, and a tick that
    // finds the slot taken passes (no burst of the ticks missed meanwhile).
    let starts = run_at(&["--concurrency", "1"]);
    for gap in starts.windows(2).map(|pair| pair[1] - pair[0]) {
        assert!(gap >= 0.035, "a request without its 50 ms tick: {starts:?}");
    }
}

#[test]
fn a_phase_ends_when_its_last_request_is_sent_not_when_its_turns_delays_would() {
    let server = MockServer::start(&["--ttft-ms", "1", "--itl-ms", "1", "--output-tokens", "2"]);
    let timed = |extra: &[&str]| {
        let mut args = vec!["--url", &server.url, "-m", "test", "--isl", "8"];
        args.extend_from_slice(extra);
        let started = std::time::Instant::now();
        let run = Run::profile(&args);
        run.assert_success();
        (started.elapsed().as_secs_f64(), run.records().len())
    };
    // Three requests, the first turns: the second turns' 20 s delays are not waited out.
    let (wall, requests) = timed(&[
        "--concurrency",
        "3",
        "--request-count",
        "3",
        "--conversation-turn-mean",
        "2",
        "--conversation-turn-delay-mean",
        "20000",
    ]);
    assert_eq!(requests, 3);
    assert!(wall < 10.0, "{wall} s: the delays were waited out");
    // At a rate of 1/s, one conversation: done when it is, not a tick or two later.
    let rate = ["--request-rate", "1", "--arrival-pattern", "constant"];
    let (by_count, _) = timed(&[&rate[..], &["--request-count", "1"]].concat());
    let (by_conversation, _) = timed(&[&rate[..], &["--conversation-num", "1"]].concat());
    assert!(
        by_conversation < by_count + 0.6,
        "{by_conversation} s for one conversation, {by_count} s for one request"
    );
    // Two requests at 2/s, due at 0 and 0.5 s: done then, not at the next tick (a race, so
    // three tries).
    for _ in 0..3 {
        let (wall, _) = timed(&[
            "--request-rate",
            "2",
            "--arrival-pattern",
            "constant",
            "--request-count",
            "2",
        ]);
        assert!(wall < 0.85, "{wall} s for requests due at 0 and 0.5 s");
    }
    // A concurrency ramp's later slots, still closed when the count is done, are not waited
    // for (the 5th of 10 slots opens 13 s into a 30 s ramp).
    let (wall, requests) = timed(&[
        "--concurrency",
        "10",
        "--concurrency-ramp-duration",
        "30",
        "--request-count",
        "5",
    ]);
    assert_eq!(requests, 5);
    assert!(
        wall < 8.0,
        "{wall} s: the ramp's closed slots were waited for"
    );
}

#[test]
fn a_request_count_ends_the_conversations_before_their_last_turns() {
    let server = MockServer::start(&["--ttft-ms", "1", "--itl-ms", "1", "--output-tokens", "2"]);
    // Whichever ends first, as in AIPerf: here 5 requests, within the second conversation.
    let run = Run::profile(&[
        "--url",
        &server.url,
        "-m",
        "test",
        "--isl",
        "8",
        "--request-count",
        "5",
        "--conversation-num",
        "4",
        "--conversation-turn-mean",
        "3",
        "--num-warmup-sessions",
        "1",
    ]);
    run.assert_success();
    let turns = |phase: &str| -> Vec<u64> {
        run.records_of(phase)
            .iter()
            .map(|r| r["metadata"]["turn_index"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(turns("warmup"), [0, 1, 2], "one whole conversation");
    assert_eq!(turns("profiling"), [0, 1, 2, 0, 1]);
    // inputs.json lists every turn of every conversation: as sent, with the conversation so
    // far (1, 3, 5 messages), and the turns never sent each with its own message.
    let inputs = read_json(&run.dir.join("inputs.json"));
    let messages: Vec<Vec<usize>> = inputs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|session| {
            let payloads = session["payloads"].as_array().unwrap();
            payloads
                .iter()
                .map(|p| p["messages"].as_array().unwrap().len())
                .collect()
        })
        .collect();
    assert_eq!(messages, [[1, 3, 5], [1, 3, 5], [1, 3, 1], [1, 1, 1]]);
}

#[test]
fn a_mooncake_trace_is_replayed_at_its_timestamps_with_shared_prefixes() {
    let server = MockServer::start(&["--ttft-ms", "1", "--itl-ms", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        json!({"timestamp": 1000, "input_length": 40, "output_length": 2, "hash_ids": [1, 2, 3]}),
        json!({"timestamp": 1300, "input_length": 40, "output_length": 2, "hash_ids": [1, 2, 9]}),
        json!({"timestamp": 1700, "input_length": 24, "output_length": 2, "hash_ids": [5, 6]}),
    ];
    let file = write_jsonl(dir.path(), "trace.jsonl", &lines);
    let run = Run::profile(&[
        "--url",
        &server.url,
        "-m",
        "test",
        "--input-file",
        &file,
        "--custom-dataset-type",
        "mooncake_trace",
        "--isl-block-size",
        "16",
    ]);
    run.assert_success();
    // Without --fixed-schedule-auto-offset the trace's first second is waited out, and said.
    assert!(
        run.stderr().contains(
            "first request is due 1.0 s into the run (its timestamp); --fixed-schedule-auto-offset"
        ),
        "{}",
        run.stderr()
    );
    let mut records = run.records();
    assert_eq!(records.len(), 3);
    records.sort_by_key(|r| r["metadata"]["request_start_ns"].as_u64().unwrap());
    let starts: Vec<f64> = records
        .iter()
        .map(|r| r["metadata"]["request_start_ns"].as_f64().unwrap())
        .collect();
    for (i, expected_ms) in [(1, 300.0), (2, 700.0)] {
        let offset_ms = (starts[i] - starts[0]) / 1e6;
        assert!(
            (offset_ms - expected_ms).abs() < 25.0,
            "request {i} sent at +{offset_ms} ms, trace says +{expected_ms}"
        );
    }
    for record in &records {
        let lag = record["metrics"]["credit_to_start_latency"]["value"]
            .as_f64()
            .unwrap();
        assert!(lag < 25.0, "schedule lag {lag} ms");
    }
    // Lines 1 and 2 share hash ids 1 and 2: their prompts share exactly 2 blocks of 16 tokens.
    let prompts: Vec<String> = sent_messages(&run)
        .iter()
        .map(|messages| {
            messages.last().unwrap()["content"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let (a, b) = (words(&prompts[0]), words(&prompts[1]));
    assert_eq!(a.len(), 40);
    assert_eq!(a[..32], b[..32], "shared blocks differ");
    assert_ne!(a[32..], b[32..], "unshared blocks are equal");
}

#[test]
fn a_huggingface_tokenizer_file_counts_the_prompts() {
    let server = MockServer::start(&["--ttft-ms", "1", "--itl-ms", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let vocab: serde_json::Map<String, Value> = [
        "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    ]
    .iter()
    .enumerate()
    .map(|(i, w)| ((*w).to_owned(), json!(i)))
    .collect();
    let tokenizer = json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}
    });
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, tokenizer.to_string()).unwrap();
    let file = write_jsonl(
        dir.path(),
        "prompts.jsonl",
        &[json!({"text": "alpha beta gamma delta", "output_length": 2})],
    );
    let run = Run::profile(&[
        "--url",
        &server.url,
        "-m",
        "test",
        "--input-file",
        &file,
        "--tokenizer",
        dir.path().to_str().unwrap(),
    ]);
    run.assert_success();
    let record = &run.records()[0];
    assert_eq!(
        record["metrics"]["client_prompt_tokens"]["value"], 4,
        "{record}"
    );

    let missing = Run::profile(&["--tokenizer", "/nonexistent/tokenizer.json"]);
    assert_eq!(missing.output.status.code(), Some(2));
    missing.assert_said("/nonexistent/tokenizer.json");

    // The same file as the HuggingFace cache keeps a model's, named by the model's id.
    let cache = tempfile::tempdir().unwrap();
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let model = cache.path().join("models--acme--greek-words");
    std::fs::create_dir_all(model.join("refs")).unwrap();
    std::fs::write(model.join("refs/v1"), commit).unwrap();
    std::fs::create_dir_all(model.join("snapshots").join(commit)).unwrap();
    std::fs::copy(
        &path,
        model.join("snapshots").join(commit).join("tokenizer.json"),
    )
    .unwrap();
    let env = [("HF_HUB_CACHE", cache.path().to_str().unwrap())];
    let by_id = |revision: &str| {
        Run::profile_with_env(
            &[
                "--url",
                &server.url,
                "-m",
                "test",
                "--input-file",
                &file,
                "--tokenizer",
                "acme/greek-words",
                "--tokenizer-revision",
                revision,
                "--tokenizer-trust-remote-code",
            ],
            &env,
        )
    };
    let run = by_id("v1");
    run.assert_success();
    assert_eq!(
        run.records()[0]["metrics"]["client_prompt_tokens"]["value"],
        4
    );
    let tokenizer = &run.summary()["input_config"]["tokenizer"];
    assert_eq!(
        *tokenizer,
        json!({"name": "acme/greek-words", "revision": "v1", "trust_remote_code": true})
    );
    let uncached = by_id("main");
    assert_eq!(uncached.output.status.code(), Some(2));
    uncached.assert_said("hf download acme/greek-words tokenizer.json --revision main");

    // With no --tokenizer, the model's own from the cache, as AIPerf takes the model's.
    std::fs::write(model.join("refs/main"), commit).unwrap();
    let by_model = |model: &str| {
        Run::profile_with_env(
            &["--url", &server.url, "-m", model, "--input-file", &file],
            &env,
        )
    };
    let run = by_model("acme/greek-words");
    run.assert_success();
    run.assert_said("tokenizer: acme/greek-words's, from the HuggingFace cache");
    assert!(!run.stderr().contains("cannot"), "{}", run.stderr());
    assert_eq!(
        run.records()[0]["metrics"]["client_prompt_tokens"]["value"],
        4
    );
    assert_eq!(run.summary()["input_config"]["tokenizer"], json!({}));
    // A model served from a local directory (as vLLM names it) has its tokenizer there.
    let local = dir.path().to_str().unwrap();
    let run = by_model(local);
    run.assert_success();
    run.assert_said(&format!("tokenizer: {local}'s, from its directory"));
    let run = by_model("acme/other-model");
    run.assert_success();
    run.assert_said("acme/other-model's is not in the HuggingFace cache");
    run.assert_said("hf download acme/other-model tokenizer.json");
}

#[test]
fn goodput_counts_the_requests_meeting_every_slo() {
    // Output lengths vary around 20 tokens, so request latency (10 ms + 5 ms per later token)
    // is below 107.5 ms for about half of the requests.
    let server = MockServer::start(&["--ttft-ms", "10", "--itl-ms", "5"]);
    let run = Run::profile(&[
        "--url",
        &server.url,
        "-m",
        "test",
        "--streaming",
        "--concurrency",
        "16",
        "--request-count",
        "160",
        "--osl",
        "20",
        "--osl-stddev",
        "8",
        "--isl",
        "16",
        "--goodput",
        "request_latency:107.5",
    ]);
    run.assert_success();
    let summary = run.summary();
    let good = summary["good_request_count"]["avg"]
        .as_f64()
        .expect("good_request_count in the summary");
    let share = good / 160.0;
    assert!(
        (0.25..=0.75).contains(&share),
        "{good} of 160 requests met the SLO"
    );
    let goodput = summary["goodput"]["avg"].as_f64().unwrap();
    let throughput = summary["request_throughput"]["avg"].as_f64().unwrap();
    assert!(
        (goodput / throughput - share).abs() < 0.02,
        "goodput {goodput} vs throughput {throughput}"
    );
    assert!(run.stdout().contains("Goodput"), "{}", run.stdout());
}

#[test]
fn malformed_dataset_lines_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(&path, "{\"text\": \"fine\"}\n\n{\"text\": 42}\n").unwrap();
    let run = Run::profile(&["--input-file", path.to_str().unwrap()]);
    assert_eq!(run.output.status.code(), Some(2), "{}", run.stderr());
    let expected = format!("{}:3:", path.display());
    assert!(
        run.stderr().contains(&expected),
        "expected {expected:?} in:\n{}",
        run.stderr()
    );

    let missing = Run::profile(&["--input-file", "/nonexistent/prompts.jsonl"]);
    assert_eq!(missing.output.status.code(), Some(2));
    missing.assert_said("/nonexistent/prompts.jsonl");
}

#[test]
fn a_trace_in_absolute_times_is_refused_unless_offset() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        json!({"timestamp": 1_732_700_000_000u64, "input_length": 10, "output_length": 2}),
        json!({"timestamp": 1_732_700_000_050u64, "input_length": 10, "output_length": 2}),
    ];
    let file = write_jsonl(dir.path(), "trace.jsonl", &lines);
    let trace = [
        "--input-file",
        &file,
        "--custom-dataset-type",
        "mooncake_trace",
    ];
    let refused = Run::profile(&trace);
    assert_eq!(
        refused.output.status.code(),
        Some(2),
        "{}",
        refused.stderr()
    );
    assert!(
        refused
            .stderr()
            .contains("give --fixed-schedule-auto-offset"),
        "{}",
        refused.stderr()
    );
    let offset = Run::profile(
        &[
            &trace[..],
            &["--fixed-schedule-auto-offset", "--request-count", "10"],
        ]
        .concat(),
    );
    offset.assert_success();
    assert_eq!(offset.records().len(), 2);
    offset.assert_said("the schedule holds 2 requests");
}

#[test]
fn a_schedule_with_some_lines_untimed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        json!({"text": "timed", "timestamp": 100}),
        json!({"text": "not timed"}),
    ];
    let file = write_jsonl(dir.path(), "mixed.jsonl", &lines);
    let run = Run::profile(&[
        "--input-file",
        &file,
        "--custom-dataset-type",
        "single_turn",
    ]);
    assert_eq!(run.output.status.code(), Some(2), "{}", run.stderr());
    assert!(
        run.stderr()
            .contains("1 of the dataset's 2 sessions have no timestamp"),
        "{}",
        run.stderr()
    );
}

#[test]
fn several_urls_share_the_conversations_each_kept_on_one_server() {
    // Told apart by their latency: the second server answers 150 ms later than the first.
    let fast = MockServer::start(&["--ttft-ms", "1", "--itl-ms", "1"]);
    let slow = MockServer::start(&["--ttft-ms", "150", "--itl-ms", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let sessions: Vec<Value> = (0..4)
        .map(|i| {
            json!({"session_id": format!("s{i}"), "turns": [
                {"text": "a first turn", "output_length": 2},
                {"text": "and a second", "output_length": 2},
            ]})
        })
        .collect();
    let file = write_jsonl(dir.path(), "sessions.jsonl", &sessions);
    let run = Run::profile(&[
        "--url",
        &fast.url,
        &slow.url,
        "-m",
        "test",
        "--input-file",
        &file,
        "--custom-dataset-type",
        "multi_turn",
    ]);
    run.assert_success();
    let mut slow_turns: std::collections::BTreeMap<String, Vec<bool>> = Default::default();
    for record in run.records() {
        let conversation = record["metadata"]["x_correlation_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let latency = record["metrics"]["request_latency"]["value"]
            .as_f64()
            .unwrap();
        slow_turns
            .entry(conversation)
            .or_default()
            .push(latency >= 140.0);
    }
    assert_eq!(slow_turns.len(), 4);
    let on_slow = slow_turns
        .values()
        .filter(|turns| {
            assert!(
                turns.iter().all(|&slow| slow == turns[0]),
                "a conversation's turns stay on one server: {slow_turns:?}"
            );
            turns[0]
        })
        .count();
    assert_eq!(
        on_slow, 2,
        "each server gets every other conversation: {slow_turns:?}"
    );
    assert_eq!(
        run.summary()["input_config"]["endpoint"]["urls"],
        json!([fast.url, slow.url])
    );
    // AIPerf's comma-separated spelling names the same two servers.
    let both = format!("{},{}", fast.url, slow.url);
    let run = Run::profile(&["-u", &both, "-m", "test", "--request-count", "2"]);
    run.assert_success();
    assert_eq!(
        run.summary()["input_config"]["endpoint"]["urls"],
        json!([fast.url, slow.url])
    );
}

#[test]
fn a_trace_run_at_a_concurrency_is_not_replayed_on_its_timestamps() {
    // As in AIPerf: --concurrency (or --request-rate) sets the pace; --fixed-schedule would
    // replay the timestamps, the last a second in.
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<Value> = (0..4)
        .map(|i| json!({"text": "a timed line", "timestamp": i * 330}))
        .collect();
    let file = write_jsonl(dir.path(), "timed.jsonl", &lines);
    let run = Run::profile(&[
        "--input-file",
        &file,
        "--custom-dataset-type",
        "single_turn",
        "--concurrency",
        "2",
        "--warmup-request-count",
        "2",
        "--warmup-concurrency",
        "1",
        "--ttft-ms",
        "5",
        "--osl",
        "2",
    ]);
    run.assert_success();
    let phases = &run.summary()["input_config"]["phases"];
    assert_eq!(phases[0]["type"], "concurrency", "{phases}");
    assert_eq!(phases[1]["type"], "concurrency", "{phases}");
    // A file is sent once through: its 4 lines, a count AIPerf writes.
    assert_eq!(phases[1]["requests"], 4, "{phases}");
    assert_eq!(run.records_of("profiling").len(), 4);
    let starts = run.start_times_s();
    let span = starts.last().unwrap() - starts.first().unwrap();
    assert!(
        span < 0.9,
        "not at the timestamps (0.99 s for the last): {starts:?}"
    );
}

#[test]
fn a_prefill_limit_holds_back_sends_until_a_first_token_not_a_last() {
    let timing = ["--ttft-ms", "40", "--itl-ms", "50"];
    let server = MockServer::start(&timing);
    let load = [
        "--streaming",
        "--concurrency",
        "4",
        "--prefill-concurrency",
        "1",
        "--request-count",
        "8",
        "--osl",
        "10",
    ];
    // Over HTTP to the mock server, and in process to the same engine.
    let over_http = [&["--url", server.url.as_str(), "-m", "test"][..], &load].concat();
    let in_process = [&timing[..], &load].concat();
    for args in [over_http, in_process] {
        let run = Run::profile(&args);
        run.assert_success();
        // Each request's send, its first token, its end, in ms, by send.
        let mut spans: Vec<(f64, f64, f64)> = run
            .records()
            .iter()
            .map(|record| {
                let start = record["metadata"]["request_start_ns"].as_f64().unwrap() / 1e6;
                let ttft = record["metrics"]["time_to_first_token"]["value"]
                    .as_f64()
                    .unwrap();
                let end = record["metadata"]["request_end_ns"].as_f64().unwrap() / 1e6;
                (start, start + ttft, end)
            })
            .collect();
        spans.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert_eq!(spans.len(), 8, "{args:?}");
        for pair in spans.windows(2) {
            let ((_, first_token, end), (next_start, _, _)) = (pair[0], pair[1]);
            // One request at a time waits for its first token: the next is sent after it...
            assert!(next_start >= first_token, "{args:?}: {spans:?}");
            // ... but while it is still streaming (its 9 later tokens take 450 ms at least).
            assert!(next_start < end, "{args:?}: {spans:?}");
        }
    }
}
