//! Integration tests of `aiperf mock-server`: the real binary on a random 127.0.0.1 port, spoken
//! to with a plain hyper client (HTTP/1.1, and h2c with prior knowledge).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aiperf_core::tokenizer::Tokenizer;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpStream;

/// A running `aiperf mock-server`, killed when dropped.
struct MockServer {
    child: Child,
    port: u16,
}

impl MockServer {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_aiperf"))
            .args(["mock-server", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the aiperf binary starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(port) = line
            .trim_end()
            .strip_prefix("aiperf mock-server listening on http://127.0.0.1:")
        else {
            let _ = child.kill();
            let mut stderr = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
            panic!("unexpected first line {line:?}; stderr: {stderr}");
        };
        let port = port.parse().unwrap();
        Self { child, port }
    }

    /// Sends SIGTERM and waits for a clean exit; returns what it printed on stderr.
    fn terminate(mut self) -> String {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert!(exit.success(), "{exit}: {stderr}");
        stderr
    }

    async fn http1(&self) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(connection);
        sender
    }

    async fn get(&self, path: &str) -> Reply {
        let request = Request::get(path)
            .header("host", "127.0.0.1")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let started = Instant::now();
        Reply::read(
            started,
            self.http1().await.send_request(request).await.unwrap(),
        )
        .await
    }

    async fn post(&self, path: &str, body: &str, request_id: Option<&str>) -> Reply {
        let mut sender = self.http1().await;
        let started = Instant::now();
        let response = sender
            .send_request(post(path, body, request_id))
            .await
            .unwrap();
        Reply::read(started, response).await
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn post(path: &str, body: &str, request_id: Option<&str>) -> Request<Full<Bytes>> {
    let mut request = Request::post(path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json");
    if let Some(id) = request_id {
        request = request.header("x-request-id", id);
    }
    request
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

/// A response: status, headers, the SSE events' data (each with the time since the request was
/// sent at which it was complete) or the whole body.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    events: Vec<(Duration, String)>,
}

impl Reply {
    async fn read(started: Instant, response: hyper::Response<hyper::body::Incoming>) -> Self {
        let (parts, mut body) = response.into_parts();
        let mut all = Vec::new();
        let mut pending = Vec::new();
        let mut events = Vec::new();
        while let Some(frame) = body.frame().await {
            let at = started.elapsed();
            let Ok(data) = frame.unwrap().into_data() else {
                continue;
            };
            all.extend_from_slice(&data);
            pending.extend_from_slice(&data);
            while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = pending.drain(..end + 2).collect();
                let text = String::from_utf8(event).unwrap();
                let data = text.trim_end().strip_prefix("data: ").expect("a data line");
                events.push((at, data.to_owned()));
            }
        }
        Self {
            status: parts.status,
            headers: parts.headers,
            body: Bytes::from(all),
            events,
        }
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    fn content_type(&self) -> &str {
        self.headers["content-type"].to_str().unwrap()
    }
}

fn chat(max_tokens: u32, stream: bool) -> String {
    format!(
        r#"{{"model":"test","messages":[{{"role":"user","content":"hello world"}}],"max_tokens":{max_tokens},"stream":{stream},"stream_options":{{"include_usage":true}}}}"#
    )
}

fn content_of(events: &[(Duration, String)]) -> (String, usize) {
    let mut text = String::new();
    let mut chunks = 0;
    for (_, data) in events {
        if data == "[DONE]" {
            continue;
        }
        let chunk: Value = serde_json::from_str(data).unwrap();
        if let Some(content) = chunk["choices"][0]["delta"]["content"].as_str() {
            text += content;
            chunks += 1;
        }
    }
    (text, chunks)
}

#[tokio::test]
async fn streaming_chat_sends_exactly_max_tokens_then_usage_and_done() {
    let server = MockServer::start(&["--ttft-ms", "0", "--itl-ms", "0"]);
    let reply = server
        .post("/v1/chat/completions", &chat(16, true), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type(), "text/event-stream");
    assert_eq!(reply.events.len(), 16 + 2);
    let (text, chunks) = content_of(&reply.events);
    assert_eq!(chunks, 16);
    assert_eq!(Tokenizer::builtin().count(&text), 16);
    let last: Value = serde_json::from_str(&reply.events[15].1).unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "length");
    let usage: Value = serde_json::from_str(&reply.events[16].1).unwrap();
    assert_eq!(usage["choices"], serde_json::json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 16);
    assert_eq!(usage["usage"]["prompt_tokens"], 2);
    assert_eq!(reply.events[17].1, "[DONE]");
    assert!(reply.body.ends_with(b"data: [DONE]\n\n"));
}

#[tokio::test]
async fn non_streaming_completions_embeddings_and_models() {
    let server = MockServer::start(&["--ttft-ms", "0", "--itl-ms", "0", "--model", "served"]);
    let reply = server
        .post(
            "/v1/completions",
            r#"{"model":"any","prompt":"hello world","max_tokens":9}"#,
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type(), "application/json");
    let body = reply.json();
    assert_eq!(body["object"], "text_completion");
    assert_eq!(body["model"], "any", "responses echo the requested model");
    let text = body["choices"][0]["text"].as_str().unwrap();
    assert_eq!(Tokenizer::builtin().count(text), 9);
    assert_eq!(body["usage"]["completion_tokens"], 9);

    let reply = server
        .post("/v1/chat/completions", &chat(5, false), None)
        .await;
    assert_eq!(reply.json()["choices"][0]["message"]["role"], "assistant");

    let reply = server
        .post(
            "/v1/embeddings",
            r#"{"model":"e","input":["a","b","c"]}"#,
            None,
        )
        .await;
    let body = reply.json();
    assert_eq!(body["data"].as_array().unwrap().len(), 3);
    assert!(body["data"][0]["embedding"].as_array().unwrap().len() >= 8);

    let models = server.get("/v1/models").await.json();
    assert_eq!(models["data"][0]["id"], "served");
    assert_eq!(server.get("/health").await.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_routes_and_bad_requests_get_openai_error_bodies() {
    let server = MockServer::start(&[]);
    let reply = server.post("/v1/nothing", "{}", None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["error"]["code"], 404);
    let reply = server.get("/v1/chat/completions").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    let reply = server
        .post("/v1/chat/completions", "{\"model\":", None)
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let body = reply.json();
    assert_eq!(body["error"]["type"], "BadRequestError");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid chat completions")
    );
}

#[tokio::test]
async fn error_rate_one_fails_every_request_with_500() {
    let server = MockServer::start(&["--error-rate", "1.0"]);
    for stream in [true, false] {
        let reply = server
            .post("/v1/chat/completions", &chat(4, stream), None)
            .await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        let body = reply.json();
        assert_eq!(body["error"]["code"], 500);
        assert_eq!(body["error"]["type"], "InternalServerError");
    }
}

#[tokio::test]
async fn ttft_and_itl_follow_the_flags() {
    let server = MockServer::start(&["--ttft-ms", "50", "--itl-ms", "10"]);
    let reply = server
        .post("/v1/chat/completions", &chat(8, true), None)
        .await;
    let content: Vec<Duration> = reply.events[..8].iter().map(|(at, _)| *at).collect();
    let (ttft, last) = (content[0], content[7]);
    // Loose bounds: the server never sends early (its deadlines count from after our start);
    // a busy machine may make it late. The first token may be late, so the last one is bounded
    // from the start (TTFT + 7 ITLs), not from the first.
    assert!(ttft >= Duration::from_millis(50), "TTFT {ttft:?}");
    assert!(ttft < Duration::from_secs(2), "TTFT {ttft:?}");
    assert!(
        last >= Duration::from_millis(50 + 70),
        "last token at {last:?}"
    );
    assert!(last < Duration::from_secs(3), "last token at {last:?}");
}

#[tokio::test]
async fn truth_log_has_one_line_per_request_named_by_its_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("truth.jsonl");
    let server = MockServer::start(&[
        "--ttft-ms",
        "5",
        "--itl-ms",
        "1",
        "--truth-log",
        log.to_str().unwrap(),
    ]);
    let mut ids = Vec::new();
    for i in 0..4 {
        let id = format!("req-{i}");
        let reply = server
            .post("/v1/chat/completions", &chat(3, i % 2 == 0), Some(&id))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.headers["x-request-id"], id.as_str(), "echoed");
        ids.push(id);
    }
    let reply = server
        .post("/v1/chat/completions", "nope", Some("bad-1"))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let stderr = server.terminate();
    assert!(
        stderr.contains("5 requests written to the truth log"),
        "{stderr}"
    );

    let records = read_jsonl(&log);
    assert_eq!(records.len(), 5);
    for (record, id) in records.iter().zip(&ids) {
        assert_eq!(record["request_id"], id.as_str());
        assert_eq!(record["status"], 200);
        assert_eq!(record["output_tokens"], 3);
        assert_eq!(record["input_tokens"], 2);
        assert_eq!(record["cancelled"], false);
        let at = |key: &str| {
            record[key]
                .as_u64()
                .unwrap_or_else(|| panic!("{key}: {record}"))
        };
        assert!(at("arrival_ns") <= at("admitted_ns"));
        assert!(
            at("admitted_ns") + 5_000_000 <= at("first_token_ns"),
            "TTFT 5 ms"
        );
        // The first token may be late, so the last is bounded from admission.
        assert!(
            at("admitted_ns") + 7_000_000 <= at("last_token_ns"),
            "TTFT 5 ms + 2 ITLs of 1 ms"
        );
    }
    assert_eq!(records[4]["request_id"], "bad-1");
    assert_eq!(records[4]["status"], 400);
    // Unix-epoch nanoseconds, comparable across processes.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let arrival = records[0]["arrival_ns"].as_u64().unwrap();
    assert!(now - arrival < 60_000_000_000);
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test]
async fn keep_alive_serves_many_requests_on_one_connection() {
    let server = MockServer::start(&["--ttft-ms", "0", "--itl-ms", "0"]);
    let mut sender = server.http1().await;
    for i in 0..20 {
        sender.ready().await.unwrap();
        let response = sender
            .send_request(post(
                "/v1/completions",
                r#"{"model":"m","prompt":"x","max_tokens":2}"#,
                None,
            ))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "request {i}");
        response.into_body().collect().await.unwrap();
    }
}

#[tokio::test]
async fn h2c_with_prior_knowledge_streams_on_the_same_port() {
    let server = MockServer::start(&["--ttft-ms", "0", "--itl-ms", "0"]);
    let tcp = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    // Several streams multiplexed over the one connection.
    let mut streams = Vec::new();
    for _ in 0..8 {
        let mut sender = sender.clone();
        streams.push(tokio::spawn(async move {
            let request = Request::post("http://127.0.0.1/v1/chat/completions")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(chat(6, true))))
                .unwrap();
            let response = sender.send_request(request).await.unwrap();
            assert_eq!(response.version(), hyper::Version::HTTP_2);
            Reply::read(Instant::now(), response).await
        }));
    }
    for stream in streams {
        let reply = stream.await.unwrap();
        assert_eq!(reply.status, StatusCode::OK);
        let (_, chunks) = content_of(&reply.events);
        assert_eq!(chunks, 6);
        assert_eq!(reply.events.last().unwrap().1, "[DONE]");
    }
}
