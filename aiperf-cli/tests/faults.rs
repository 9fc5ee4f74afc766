//! The client under every fault the mock server injects: `aiperf profile` against `aiperf
//! mock-server --<fault>-rate`, checked from the exports. Every request sent is exactly one
//! record and the counts reconcile; a failed request carries its type, its code when the server
//! sent one, a message, and its real latency (never 0); the error summary groups failures by
//! code, type and message; the exit status follows `--failed-request-threshold`.
//!
//! Faults that fail requests strike half of them (the client's request ids are random, so which
//! half varies): the run must go on past them, and with a threshold of 0 it must exit 1.
//! Faults a request survives strike every request, and the run must exit 0 with a threshold of
//! 0.
//!
//! With the `grpc` feature the same holds over KServe v2 gRPC: a status error, and a stream
//! broken before its end.

mod support;

use serde_json::Value;
use support::mock::MockServer;
use support::run::Run;

/// Requests per run where half of them fail: enough that some fail and some succeed (all or
/// none failing has a chance of 2 in 2^32, where 16 requests left it at 2 in 65,536, which
/// the file's eight such checks met about once in 4,000 runs).
const MIXED_REQUESTS: usize = 32;
/// Output tokens asked for: a streamed answer has 10 chunks, and a mid-stream fault hits the
/// sixth (after 5 chunks).
const OSL: &str = "10";

/// A mock server answering at once (1 ms to the first token and between tokens) with `faults`.
fn server(faults: &[&str]) -> MockServer {
    let mut args = vec!["--ttft-ms", "1", "--itl-ms", "1", "--seed", "7"];
    args.extend_from_slice(faults);
    MockServer::start(&args)
}

/// `aiperf profile` of `requests` chats against `server`, 4 at a time, failing the run when
/// any request fails (`--failed-request-threshold 0`).
fn profile(server: &MockServer, requests: usize, extra: &[&str]) -> Run {
    profile_url(&server.url, requests, extra)
}

/// [`profile`] against `url`.
fn profile_url(url: &str, requests: usize, extra: &[&str]) -> Run {
    let requests = requests.to_string();
    let mut args = vec![
        "--url",
        url,
        "-m",
        "test",
        "--request-count",
        &requests,
        "--concurrency",
        "4",
        "--isl",
        "16",
        "--osl",
        OSL,
        "--failed-request-threshold",
        "0",
    ];
    args.extend_from_slice(extra);
    Run::profile(&args)
}

/// What a run's exports say, checked for consistency on the way.
struct Outcome {
    records: Vec<Value>,
    succeeded: usize,
    errored: usize,
}

impl Outcome {
    /// Reads the exports and checks what must hold under any fault: one record per request,
    /// none cancelled, the reconciliation line, the error summary counting every failure, real
    /// latencies, and the exit status `--failed-request-threshold 0` calls for.
    fn of(run: &Run, sent: usize) -> Self {
        let records = run.records();
        assert_eq!(
            records.len(),
            sent,
            "one record per request\n{}",
            run.stderr()
        );
        let errored = records.iter().filter(|r| !r["error"].is_null()).count();
        let succeeded = sent - errored;
        for record in &records {
            assert_eq!(record["metadata"]["was_cancelled"], false, "{record}");
            let start = record["metadata"]["request_start_ns"].as_u64().unwrap();
            let end = record["metadata"]["request_end_ns"].as_u64().unwrap();
            assert!(end > start, "a request ends after it starts: {record}");
            let latency = record["metrics"]["request_latency"]["value"].as_f64();
            assert!(
                latency.is_some_and(|ms| ms > 0.0),
                "every record has a real latency: {record}"
            );
            if !record["error"].is_null() {
                let error = &record["error"];
                assert!(error["type"].is_string(), "{record}");
                assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
            }
        }
        let line = format!("{sent} sent = {succeeded} succeeded + {errored} errored + 0 cancelled");
        assert!(run.stdout().contains(&line), "{line}\n{}", run.stdout());
        let summary = run.summary();
        let summarized: u64 = summary["error_summary"]
            .as_array()
            .expect("the summary has an error_summary")
            .iter()
            .map(|row| row["count"].as_u64().unwrap())
            .sum();
        assert_eq!(summarized, errored as u64, "{}", summary["error_summary"]);
        let expected_exit = if errored > 0 { 1 } else { 0 };
        assert_eq!(
            run.output.status.code(),
            Some(expected_exit),
            "{errored} failed with --failed-request-threshold 0\n{}",
            run.stderr()
        );
        Self {
            records,
            succeeded,
            errored,
        }
    }

    /// The errors of the failed records.
    fn errors(&self) -> impl Iterator<Item = &Value> {
        self.records
            .iter()
            .map(|r| &r["error"])
            .filter(|e| !e.is_null())
    }

    /// Checks that some but not all requests failed, each with `kind` and `code`, and that
    /// they are one row of the error summary; returns that row's message.
    fn mixed_failures(&self, run: &Run, kind: &str, code: Value) -> String {
        assert!(
            self.errored > 0 && self.succeeded > 0,
            "{} failed, {} succeeded",
            self.errored,
            self.succeeded
        );
        for error in self.errors() {
            assert_eq!(error["type"], kind, "{error}");
            assert_eq!(error["code"], code, "{error}");
        }
        let summary = run.summary();
        let rows = summary["error_summary"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "one way of failing, one row: {rows:?}");
        assert_eq!(rows[0]["count"], self.errored);
        assert_eq!(rows[0]["error_details"]["type"], kind);
        rows[0]["error_details"]["message"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The successful records.
    fn successes(&self) -> impl Iterator<Item = &Value> {
        self.records.iter().filter(|r| r["error"].is_null())
    }
}

/// A per-request metric of a record, in its export unit.
fn metric(record: &Value, tag: &str) -> f64 {
    record["metrics"][tag]["value"]
        .as_f64()
        .unwrap_or_else(|| panic!("{tag} missing: {record}"))
}

#[test]
fn a_5xx_answer_is_an_http_status_error_with_its_code() {
    let server = server(&["--error-rate", "0.5", "--error-status", "503"]);
    let run = profile(&server, MIXED_REQUESTS, &["--streaming"]);
    let outcome = Outcome::of(&run, MIXED_REQUESTS);
    // As AIPerf reports it: the reason phrase as the type, the body as the message.
    let message = outcome.mixed_failures(&run, "Service Unavailable", 503.into());
    let body: Value = serde_json::from_str(&message).expect("the body, whole");
    assert_eq!(body["error"]["code"], 503, "{message}");
    // The HTTP trace's metrics are the successful requests', as AIPerf computes them.
    for record in run.records() {
        let traced = record["metrics"].get("http_req_waiting").is_some();
        assert_eq!(traced, record["error"].is_null(), "{record}");
    }
}

#[test]
fn a_429_is_an_http_status_error_that_keeps_its_retry_after() {
    let server = server(&["--rate-limit-rate", "0.5", "--retry-after-seconds", "7"]);
    let run = profile(&server, MIXED_REQUESTS, &["--streaming"]);
    let outcome = Outcome::of(&run, MIXED_REQUESTS);
    let message = outcome.mixed_failures(&run, "Too Many Requests", 429.into());
    assert!(
        message.starts_with('{') && message.ends_with("} (retry-after: 7)"),
        "{message}"
    );
}

#[test]
fn a_reset_before_the_headers_is_a_protocol_error_without_a_response() {
    let server = server(&["--reset-before-headers-rate", "0.5"]);
    let run = profile(&server, MIXED_REQUESTS, &["--streaming"]);
    let outcome = Outcome::of(&run, MIXED_REQUESTS);
    let message = outcome.mixed_failures(&run, "ProtocolError", Value::Null);
    assert!(message.contains("before a response arrived"), "{message}");
    for record in outcome.records.iter().filter(|r| !r["error"].is_null()) {
        assert!(record["metadata"]["request_ack_ns"].is_null(), "{record}");
    }
}

#[test]
fn a_reset_mid_stream_is_a_protocol_error_after_the_chunks_it_let_through() {
    // 20 ms between tokens: the reset comes after 5 chunks, at least 100 ms into the stream.
    let server = MockServer::start(&[
        "--ttft-ms",
        "1",
        "--itl-ms",
        "20",
        "--reset-mid-stream-rate",
        "0.5",
    ]);
    let run = profile(&server, MIXED_REQUESTS, &["--streaming"]);
    let outcome = Outcome::of(&run, MIXED_REQUESTS);
    let message = outcome.mixed_failures(&run, "ProtocolError", Value::Null);
    // "Mid-stream": the client had received events when the connection broke.
    assert!(message.contains("broke off mid-stream"), "{message}");
    for record in outcome.records.iter().filter(|r| !r["error"].is_null()) {
        assert!(record["metadata"]["request_ack_ns"].is_u64(), "{record}");
        assert!(metric(record, "request_latency") >= 100.0, "{record}");
    }

    // A whole body is cut halfway through.
    let whole = profile(&server, MIXED_REQUESTS, &[]);
    let outcome = Outcome::of(&whole, MIXED_REQUESTS);
    let message = outcome.mixed_failures(&whole, "ProtocolError", Value::Null);
    assert!(message.contains("broke off mid-body"), "{message}");
}

#[test]
fn a_stall_before_the_first_token_shows_in_the_time_to_first_token() {
    let server = server(&["--stall-before-first-token-rate", "1", "--stall-ms", "300"]);
    let run = profile(&server, 4, &["--streaming"]);
    let outcome = Outcome::of(&run, 4);
    for record in outcome.successes() {
        assert!(metric(record, "time_to_first_token") >= 300.0, "{record}");
    }
}

#[test]
fn a_stall_between_tokens_shows_in_one_inter_chunk_gap() {
    let server = server(&["--stall-between-tokens-rate", "1", "--stall-ms", "300"]);
    let run = profile(&server, 4, &["--streaming"]);
    let outcome = Outcome::of(&run, 4);
    for record in outcome.successes() {
        assert!(metric(record, "time_to_first_token") < 300.0, "{record}");
        let gaps = record["metrics"]["inter_chunk_latency"]["value"]
            .as_array()
            .unwrap();
        // The chunk before the stall may itself be late, so the gap can be a little short.
        let stalled = gaps.iter().filter(|gap| gap.as_f64().unwrap() >= 250.0);
        assert_eq!(stalled.count(), 1, "{record}");
        assert!(metric(record, "request_latency") >= 300.0, "{record}");
    }
}

#[test]
fn slow_headers_delay_the_acknowledgement_and_the_first_token() {
    let server = server(&["--slow-headers-rate", "1", "--stall-ms", "300"]);
    let run = profile(&server, 4, &["--streaming"]);
    let outcome = Outcome::of(&run, 4);
    for record in outcome.successes() {
        let start = record["metadata"]["request_start_ns"].as_u64().unwrap();
        let ack = record["metadata"]["request_ack_ns"].as_u64().unwrap();
        assert!(ack - start >= 300_000_000, "{record}");
        assert!(metric(record, "time_to_first_token") >= 300.0, "{record}");
    }
}

#[test]
fn a_stall_longer_than_the_request_timeout_is_a_timeout_error_where_it_stalled() {
    let server = server(&[
        "--slow-headers-rate",
        "0.34",
        "--stall-before-first-token-rate",
        "0.33",
        "--stall-between-tokens-rate",
        "0.33",
        "--stall-ms",
        "10000",
    ]);
    let requests = 12;
    let run = profile(
        &server,
        requests,
        &["--streaming", "--request-timeout-seconds", "0.4"],
    );
    let outcome = Outcome::of(&run, requests);
    assert_eq!(outcome.errored, requests, "every request stalls");
    for record in &outcome.records {
        assert_eq!(record["error"]["type"], "TimeoutError", "{record}");
        assert!(record["error"]["code"].is_null(), "{record}");
        // Ended by the 0.4 s timeout, not by the 10 s stall.
        let latency = metric(record, "request_latency");
        assert!((400.0..5000.0).contains(&latency), "{record}");
    }
    let summary = run.summary();
    let rows = summary["error_summary"].as_array().unwrap();
    for row in rows {
        let message = row["error_details"]["message"].as_str().unwrap();
        let stages = [
            "before the response headers",
            "before the first event",
            "mid-stream",
        ];
        assert!(
            stages.iter().any(|stage| message.contains(stage)),
            "{message}"
        );
        assert!(message.contains("--request-timeout-seconds"), "{message}");
    }
    assert!(rows.len() <= 3, "one row per stage: {rows:?}");
}

#[test]
fn malformed_sse_loses_the_malformed_event_and_the_request_succeeds() {
    let server = server(&["--malformed-sse-rate", "1"]);
    let run = profile(&server, 4, &["--streaming"]);
    let outcome = Outcome::of(&run, 4);
    for record in outcome.successes() {
        // A line that is no SSE field is ignored (WHATWG): 9 of the 10 chunks count, while
        // the server's usage still counts 10 tokens.
        let gaps = record["metrics"]["inter_chunk_latency"]["value"]
            .as_array()
            .unwrap();
        assert_eq!(gaps.len(), 8, "{record}");
        assert_eq!(metric(record, "client_completion_tokens"), 9.0, "{record}");
        assert_eq!(metric(record, "usage_completion_tokens"), 10.0, "{record}");
    }
}

#[test]
fn invalid_json_in_a_chunk_is_a_response_parse_error() {
    let server = server(&["--invalid-json-rate", "0.5"]);
    let run = profile(&server, MIXED_REQUESTS, &["--streaming"]);
    let outcome = Outcome::of(&run, MIXED_REQUESTS);
    // The stream itself was whole (status 200): the endpoint could not read one chunk.
    let message = outcome.mixed_failures(&run, "ResponseParseError", 200.into());
    assert!(
        message.contains("could not parse a response chunk"),
        "{message}"
    );
    for record in outcome.records.iter().filter(|r| !r["error"].is_null()) {
        assert!(record["metadata"]["request_ack_ns"].is_u64(), "{record}");
    }
}

#[test]
fn a_stream_without_done_is_complete() {
    let server = server(&["--no-done-rate", "1"]);
    let run = profile(&server, 4, &["--streaming"]);
    let outcome = Outcome::of(&run, 4);
    for record in outcome.successes() {
        assert_eq!(metric(record, "output_sequence_length"), 10.0, "{record}");
        assert_eq!(metric(record, "usage_completion_tokens"), 10.0, "{record}");
    }
}

#[test]
fn a_stream_without_usage_counts_its_tokens_with_the_client_tokenizer() {
    let server = server(&["--no-usage-rate", "1"]);
    let run = profile(&server, 4, &["--streaming"]);
    let outcome = Outcome::of(&run, 4);
    for record in outcome.successes() {
        assert!(
            record["metrics"]["usage_completion_tokens"].is_null(),
            "{record}"
        );
        assert_eq!(metric(record, "output_sequence_length"), 10.0, "{record}");
        assert_eq!(metric(record, "client_completion_tokens"), 10.0, "{record}");
    }
}

/// A mock server also serving KServe v2 gRPC, with `faults`.
#[cfg(feature = "grpc")]
fn grpc_server(faults: &[&str]) -> (MockServer, String) {
    let mut args = vec!["--ttft-ms", "1", "--itl-ms", "1", "--seed", "7"];
    args.extend_from_slice(faults);
    let server = MockServer::start_with_grpc(&args);
    let url = server.grpc_url.clone().expect("a gRPC address");
    (server, url)
}

#[cfg(feature = "grpc")]
#[test]
fn a_stalled_grpc_stream_ends_at_the_request_timeout_in_one_summary_row() {
    let (_server, url) = grpc_server(&["--stall-between-tokens-rate", "1", "--stall-ms", "10000"]);
    let requests = 4;
    let run = profile_url(
        &url,
        requests,
        &[
            "--endpoint-type",
            "kserve",
            "--streaming",
            "--request-timeout-seconds",
            "0.4",
        ],
    );
    let outcome = Outcome::of(&run, requests);
    assert_eq!(outcome.errored, requests, "every stream stalls");
    for record in &outcome.records {
        assert_eq!(record["error"]["type"], "TimeoutError", "{record}");
        // Ended by the 0.4 s timeout, not by the 10 s stall.
        let latency = metric(record, "request_latency");
        assert!((400.0..5000.0).contains(&latency), "{record}");
    }
    let summary = run.summary();
    let rows = summary["error_summary"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let message = rows[0]["error_details"]["message"].as_str().unwrap();
    assert!(
        message.contains("request timeout of 0.400 s (mid-stream)"),
        "{message}"
    );
}

#[cfg(feature = "grpc")]
#[test]
fn a_grpc_status_error_is_recorded_with_its_grpc_code() {
    let (_server, url) = grpc_server(&["--rate-limit-rate", "0.5"]);
    let run = profile_url(&url, MIXED_REQUESTS, &["--endpoint-type", "kserve"]);
    let outcome = Outcome::of(&run, MIXED_REQUESTS);
    // RESOURCE_EXHAUSTED, gRPC's 429.
    let message = outcome.mixed_failures(&run, "GRPCStatusError", 8.into());
    assert!(
        message.starts_with("gRPC status ResourceExhausted (8): simulated rate limit"),
        "{message}"
    );
}

#[cfg(feature = "grpc")]
#[test]
fn a_broken_grpc_stream_is_a_grpc_status_error_mid_stream() {
    let (_server, url) = grpc_server(&["--reset-mid-stream-rate", "0.5"]);
    let run = profile_url(
        &url,
        MIXED_REQUESTS,
        &["--endpoint-type", "kserve", "--streaming"],
    );
    let outcome = Outcome::of(&run, MIXED_REQUESTS);
    let message = outcome.mixed_failures(&run, "GRPCStatusError", 13.into());
    assert!(message.contains("the stream broke"), "{message}");
    assert!(message.contains("(mid-stream)"), "{message}");
}
