//! Every builtin transport end to end: the real `aiperf profile` against the real
//! `aiperf mock-server` on 127.0.0.1 over HTTP/1.1, h2c and KServe v2 gRPC (unary and
//! streamed), and against the embedded engine; the endpoint-transport fit; and the transport
//! listing of `aiperf plugins`.
//!
//! Tests of the `http2` and `grpc` transports need aiperf-cli's features of those names (on by
//! default). Timing checks use loose bounds around the server's configured TTFT and ITL: timers never
//! fire early, and a busy machine may be late.

mod support;

use support::mock::MockServer;
use support::run::Run;

const TTFT_MS: f64 = 40.0;
const ITL_MS: f64 = 4.0;
const OSL: u64 = 24;
const REQUESTS: usize = 48;

/// The mock server's flags for the timings checked.
fn timed() -> [&'static str; 4] {
    ["--ttft-ms", "40", "--itl-ms", "4"]
}

/// `aiperf profile` of `REQUESTS` requests of `OSL` tokens at concurrency 8, plus `extra`.
fn profile(url: Option<&str>, endpoint_type: &str, extra: &[&str]) -> Run {
    let osl = OSL.to_string();
    let requests = REQUESTS.to_string();
    let mut args = vec![
        "-m",
        "ensemble",
        "--endpoint-type",
        endpoint_type,
        "--concurrency",
        "8",
        "--request-count",
        &requests,
        "--osl",
        &osl,
    ];
    if let Some(url) = url {
        args.extend(["--url", url]);
    }
    args.extend(extra);
    let run = Run::profile(&args);
    run.assert_success();
    run
}

/// Every request succeeded with exactly `OSL` output tokens, over the named transport.
fn assert_exact(run: &Run, transport: &str) {
    assert!(
        run.stderr().contains(&format!("over `{transport}`"))
            || run.stderr().contains(&format!("(transport `{transport}`)")),
        "{}",
        run.stderr()
    );
    let records = run.records();
    assert_eq!(records.len(), REQUESTS);
    for record in &records {
        assert!(record["error"].is_null(), "{record}");
        assert_eq!(
            record["metrics"]["output_sequence_length"]["value"], OSL,
            "{record}"
        );
    }
}

/// TTFT at least the server's and not far above; ITL close to the server's.
fn assert_streamed_timings(run: &Run) {
    let ttft = run.stat("time_to_first_token", "p50");
    assert!(
        (TTFT_MS..TTFT_MS + 40.0).contains(&ttft),
        "TTFT p50 {ttft} ms vs the server's {TTFT_MS} ms"
    );
    let itl = run.stat("inter_token_latency", "p50");
    assert!(
        (ITL_MS - 1.0..ITL_MS + 3.0).contains(&itl),
        "ITL p50 {itl} ms vs the server's {ITL_MS} ms"
    );
}

/// A whole answer comes after TTFT and every ITL.
#[cfg_attr(not(any(feature = "http2", feature = "grpc")), allow(dead_code))]
fn assert_whole_latency(run: &Run) {
    let latency = run.stat("request_latency", "p50");
    let expected = TTFT_MS + (OSL - 1) as f64 * ITL_MS;
    assert!(
        (expected..expected + 60.0).contains(&latency),
        "request latency p50 {latency} ms vs the server's {expected} ms"
    );
}

#[test]
fn http_carries_openai_and_triton_generate_streams() {
    let server = MockServer::start(&timed());
    let chat = profile(Some(&server.url), "chat", &["--streaming"]);
    assert_exact(&chat, "http");
    assert_streamed_timings(&chat);

    let generate = profile(Some(&server.url), "triton_generate", &["--streaming"]);
    assert_exact(&generate, "http");
    assert_streamed_timings(&generate);
    let inputs = support::run::read_json(&generate.dir.join("inputs.json"));
    let payload = &inputs["data"][0]["payloads"][0];
    assert_eq!(payload["max_tokens"], OSL, "{payload}");
    assert_eq!(payload["stream"], true, "{payload}");
}

#[cfg(feature = "http2")]
#[test]
fn http2_multiplexes_requests_over_h2c() {
    let server = MockServer::start(&timed());
    let chat = profile(
        Some(&server.url),
        "chat",
        &["--streaming", "--transport", "http2"],
    );
    assert_exact(&chat, "http2");
    assert_streamed_timings(&chat);

    let generate = profile(
        Some(&server.url),
        "triton_generate",
        &["--transport", "http2"],
    );
    assert_exact(&generate, "http2");
    assert_whole_latency(&generate);
}

#[cfg(feature = "grpc")]
#[test]
fn grpc_streams_kserve_responses_as_they_arrive() {
    let server = MockServer::start_with_grpc(&timed());
    let grpc_url = server.grpc_url.as_deref().expect("a gRPC address");
    let run = profile(Some(grpc_url), "kserve", &["--streaming"]);
    assert_exact(&run, "grpc");
    assert_streamed_timings(&run);
}

#[cfg(feature = "grpc")]
#[test]
fn grpc_unary_kserve_answers_whole() {
    let server = MockServer::start_with_grpc(&timed());
    let grpc_url = server.grpc_url.as_deref().expect("a gRPC address");
    let run = profile(Some(grpc_url), "kserve", &[]);
    assert_exact(&run, "grpc");
    assert_whole_latency(&run);
    assert_eq!(
        run.summary()["time_to_first_token"],
        serde_json::Value::Null
    );
}

#[test]
fn in_engine_serves_without_a_url() {
    let run = profile(
        None,
        "chat",
        &["--streaming", "--ttft-ms", "40", "--itl-ms", "4"],
    );
    assert_exact(&run, "in_engine");
    assert_streamed_timings(&run);
}

#[cfg(feature = "grpc")]
#[test]
fn grpc_status_errors_are_recorded_with_their_code() {
    let server = MockServer::start_with_grpc(&["--error-rate", "1", "--ttft-ms", "0"]);
    let grpc_url = server.grpc_url.as_deref().expect("a gRPC address");
    let run = Run::profile(&[
        "--url",
        grpc_url,
        "-m",
        "m",
        "--endpoint-type",
        "kserve",
        "--request-count",
        "4",
    ]);
    assert_eq!(run.output.status.code(), Some(1), "{}", run.stderr());
    for record in run.records() {
        let error = &record["error"];
        assert_eq!(error["type"], "GRPCStatusError", "{record}");
        assert_eq!(error["code"], 13, "INTERNAL: {record}");
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| m.contains("simulated server error")),
            "{record}"
        );
    }

    let streamed = Run::profile(&[
        "--url",
        grpc_url,
        "-m",
        "m",
        "--endpoint-type",
        "kserve",
        "--streaming",
        "--request-count",
        "4",
    ]);
    assert_eq!(streamed.output.status.code(), Some(1));
    for record in streamed.records() {
        let message = record["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("the server returned an error: simulated server error"),
            "in-stream error_message: {record}"
        );
        assert_eq!(
            record["error"]["type"], "ServerError",
            "not a client parse error"
        );
    }
}

/// Runs `aiperf profile <args>`, checks that it is refused (exit 2) with `message` on stderr,
/// and returns its stderr.
#[cfg(all(feature = "grpc", feature = "http2"))]
fn refused(args: &[&str], message: &str) -> String {
    let run = Run::profile(args);
    let stderr = run.stderr();
    assert_eq!(run.output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(message), "{stderr}");
    stderr
}

#[cfg(all(feature = "grpc", feature = "http2"))]
#[test]
fn an_endpoint_and_transport_that_do_not_fit_are_refused_with_what_fits() {
    refused(
        &["--url", "grpc://127.0.0.1:1", "--endpoint-type", "chat"],
        "error: endpoint `chat` sends http requests, which transport `grpc` cannot carry: \
         endpoint types that fit `grpc` are kserve; transports that carry `chat` are \
         http (--url http:// or https://), http2 (--url http:// or https://), \
         in_engine (no --url)",
    );
    refused(
        &[
            "--url",
            "http://127.0.0.1:1",
            "-m",
            "m",
            "--endpoint-type",
            "kserve",
        ],
        "error: endpoint `kserve` sends grpc requests, which the transports serving this \
         URL (http, http2) cannot carry: endpoint types that fit them are chat, \
         completions, embeddings, triton_generate; transports that carry `kserve` are \
         grpc (--url grpc:// or grpcs://)",
    );

    // Settings the transport for the URL refuses are named, not taken for a scheme nobody serves.
    let framing_header = refused(
        &[
            "--url",
            "http://127.0.0.1:1",
            "--endpoint-type",
            "chat",
            "-H",
            "Content-Length: 5",
        ],
        "error: cannot create transport `http` (HttpTransport from aiperf-transports): \
         `Content-Length` frames each request's body, which aiperf sets itself: remove -H \
         'Content-Length: ...'",
    );
    assert_eq!(
        framing_header.matches("frames each request's body").count(),
        1,
        "the reason is said once: {framing_header}"
    );

    refused(
        &[
            "--url",
            "http://127.0.0.1:1",
            "--endpoint-type",
            "chat",
            "--transport",
            "grpc",
        ],
        "which transport `grpc` cannot carry",
    );
}

#[cfg(all(feature = "grpc", feature = "http2"))]
#[test]
fn plugins_lists_every_transport_with_its_url_schemes() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_aiperf"))
        .args(["plugins", "transport"])
        .output()
        .expect("the aiperf binary runs");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(2)
        .take_while(|line| !line.is_empty())
        .map(|line| line.split_whitespace().collect())
        .collect();
    let by_name = |name: &str| {
        rows.iter()
            .find(|row| row[0] == name)
            .unwrap_or_else(|| panic!("no row for {name} in:\n{text}"))
            .clone()
    };
    for (name, schemes, carries) in [
        ("grpc", "grpc://,grpcs://", "grpc"),
        ("http", "http://,https://", "http"),
        ("http2", "http://,https://", "http"),
        ("in_engine", "-", "http"),
    ] {
        let row = by_name(name);
        assert_eq!(row[row.len() - 2], schemes, "{name}: {text}");
        assert_eq!(row[row.len() - 1], carries, "{name}: {text}");
    }
    assert_eq!(rows.len(), 4, "{text}");
}

#[cfg(feature = "grpc")]
#[test]
fn an_unreachable_grpc_server_is_one_clear_error_before_the_run() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let url = format!("grpc://127.0.0.1:{closed}");
    let run = Run::profile(&["--url", &url, "-m", "m", "--endpoint-type", "kserve"]);
    assert_eq!(run.output.status.code(), Some(2), "{}", run.stderr());
    let stderr = run.stderr();
    assert!(
        stderr.contains(&format!("the gRPC server at {url} is not reachable")),
        "{stderr}"
    );
    assert!(
        !run.dir.join("profile_export.jsonl").exists(),
        "nothing ran"
    );
}
