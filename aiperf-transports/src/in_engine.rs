//! The `in_engine` transport: the simulated engine ([`aiperf_core::engine`]) run inside the
//! process, so `aiperf profile` with no `--url` benchmarks something real (DESIGN.md §6).
//!
//! In the data flow (DESIGN.md §4) it stands where the http transport stands, and fills the
//! [`ResponseSink`] exactly as that transport would for an OpenAI server: for a streamed request
//! one chunk per SSE event (each chunk JSON, the usage chunk, then `[DONE]`), otherwise one
//! chunk holding the whole body. Each chunk is stamped with [`clock::now_ns`] the moment the
//! engine produces it; errors come back as the status errors an HTTP server would answer with,
//! and `--request-timeout-seconds` ends a request still running, as it would over the wire.

use aiperf_core::clock;
use aiperf_core::endpoint::WireFormat;
use aiperf_core::engine::{Engine, Route};
use aiperf_core::registry::CreateError;
use aiperf_core::transport::{
    ResponseSink, TimedChunk, Transport, TransportContext, TransportError, TransportErrorKind,
    TransportMetadata, TransportRequest,
};
use bytes::BytesMut;
use std::time::Duration;

use crate::request_timeout;

/// Serves every request from one simulated engine (built from `TransportContext::engine`),
/// shared by all workers: its batch limit applies across them, as a real server's would.
#[derive(Debug)]
pub struct InEngineTransport {
    engine: Engine,
    /// `--request-timeout-seconds`.
    timeout: Option<Duration>,
}

aiperf_core::register!(
    transport "in_engine" => InEngineTransport,
    "the simulated LLM engine inside the process (used when no --url is given)"
);

/// Room for a few chunks before the buffer grows; chunks are split off it without copying.
const BUFFER_CAPACITY: usize = 4096;

#[async_trait::async_trait]
impl Transport for InEngineTransport {
    fn create(ctx: &TransportContext) -> Result<Self, CreateError> {
        let timeout = request_timeout::limit(ctx)?;
        // The engine needs the builtin tokenizer only for prompts that are not made of the
        // vocabulary's words; `aiperf profile` warms it up at launch for its own counting.
        let engine =
            Engine::new(ctx.engine.clone()).map_err(|error| CreateError::new(error.to_string()))?;
        Ok(Self { engine, timeout })
    }

    fn metadata(&self) -> TransportMetadata {
        // The engine answers the OpenAI routes of an HTTP server.
        TransportMetadata {
            url_schemes: &[],
            wire_formats: &[WireFormat::Http],
        }
    }

    /// The engine is always there, but serves only the OpenAI routes: any other endpoint path
    /// (Triton's generate routes, say) is refused before the run rather than request by request.
    async fn probe(&self, path: &str) -> Result<(), TransportError> {
        Route::from_path(path)
            .map(drop)
            .map_err(|error| TransportError {
                kind: TransportErrorKind::Status,
                code: Some(error.status()),
                message: format!("{error}: give the --url of a server that serves `{path}`"),
            })
    }

    async fn send(
        &self,
        request: TransportRequest<'_>,
        sink: &mut ResponseSink,
    ) -> Result<(), TransportError> {
        request_timeout::within(self.timeout, sink, async |sink| {
            self.answer(request, sink).await
        })
        .await
    }
}

impl InEngineTransport {
    /// Runs `request` through the engine into `sink`, unbounded ([`Transport::send`] bounds it
    /// by the request timeout). Dropped mid-answer, the request gives its batch slot back.
    async fn answer(
        &self,
        request: TransportRequest<'_>,
        sink: &mut ResponseSink,
    ) -> Result<(), TransportError> {
        let arrival = clock::now_ns();
        if Route::from_path(request.path).is_ok_and(|route| route == Route::Models) {
            sink.ack_ns = Some(clock::now_ns());
            sink.status = Some(200);
            sink.push(TimedChunk {
                received_ns: clock::now_ns(),
                data: self.engine.models_body(),
            });
            return Ok(());
        }
        let started = self.engine.start(
            request.path,
            &request.payload,
            Some(request.request_id),
            arrival,
        );
        let mut generation = match started {
            Ok(generation) => generation,
            Err(error) => {
                let status = error.status();
                sink.ack_ns = Some(clock::now_ns());
                sink.status = Some(status);
                return Err(TransportError {
                    kind: TransportErrorKind::Status,
                    code: Some(status),
                    message: String::from_utf8_lossy(&error.openai_body()).into_owned(),
                });
            }
        };
        let mut buffer = BytesMut::with_capacity(BUFFER_CAPACITY);
        if generation.is_streaming() {
            // An HTTP server sends a stream's headers at once; a whole body's with the body.
            sink.ack_ns = Some(clock::now_ns());
            sink.status = Some(200);
        }
        while let Some(produced_ns) = generation.next(&mut buffer).await {
            if sink.ack_ns.is_none() {
                sink.ack_ns = Some(produced_ns);
                sink.status = Some(200);
            }
            sink.push(TimedChunk {
                received_ns: produced_ns,
                data: buffer.split().freeze(),
            });
            if buffer.capacity() < BUFFER_CAPACITY / 4 {
                buffer.reserve(BUFFER_CAPACITY);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aiperf_core::engine::EngineConfig;
    use aiperf_core::registries::{PluginTable, Registries};
    use aiperf_core::tokenizer::Tokenizer;
    use aiperf_core::transport::TransportCategory;
    use bytes::Bytes;
    use serde_json::Value;
    use std::sync::Arc;

    fn transport(engine: EngineConfig) -> InEngineTransport {
        InEngineTransport::create(&TransportContext {
            engine,
            ..TransportContext::default()
        })
        .unwrap()
    }

    async fn send(
        transport: &InEngineTransport,
        path: &str,
        body: &str,
    ) -> (ResponseSink, Result<(), TransportError>) {
        let mut sink = ResponseSink::default();
        let result = transport
            .send(
                TransportRequest {
                    correlation_id: "conv-1",
                    path,
                    payload: Bytes::copy_from_slice(body.as_bytes()),
                    request_id: "test-request",
                    streaming: body.contains("\"stream\":true"),
                },
                &mut sink,
            )
            .await;
        (sink, result)
    }

    fn json(chunk: &TimedChunk) -> Value {
        serde_json::from_slice(&chunk.data).unwrap()
    }

    fn chat(max_tokens: u32, stream: bool) -> String {
        format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"hello world"}}],"max_tokens":{max_tokens},"stream":{stream},"stream_options":{{"include_usage":true}}}}"#
        )
    }

    #[test]
    fn is_registered_for_use_without_a_url() {
        let registries = Registries::discover(&PluginTable::EMPTY).unwrap();
        let transport = registries
            .transport
            .create_instance("in_engine", &TransportContext::default())
            .unwrap();
        assert!(transport.metadata().url_schemes.is_empty());
        let listed = aiperf_core::registry::Registry::<TransportCategory>::builtins();
        assert!(listed.names().any(|name| name == "in_engine"));
    }

    #[test]
    fn refuses_an_engine_that_cannot_run() {
        let error = InEngineTransport::create(&TransportContext {
            engine: EngineConfig {
                max_batch: 0,
                ..EngineConfig::default()
            },
            ..TransportContext::default()
        })
        .unwrap_err();
        assert!(error.message.contains("max batch"), "{}", error.message);
    }

    #[tokio::test]
    async fn streamed_chat_gives_one_chunk_per_token_then_usage_and_done() {
        let itl = Duration::from_millis(3);
        let transport = transport(EngineConfig {
            ttft: Duration::from_millis(10),
            itl,
            ..EngineConfig::default()
        });
        let started = clock::now_ns();
        let (sink, result) = send(&transport, "/v1/chat/completions", &chat(16, true)).await;
        result.unwrap();
        assert_eq!(sink.status, Some(200));
        let ack = sink.ack_ns.unwrap();
        assert_eq!(sink.chunks.len(), 16 + 2);
        let content: Vec<&TimedChunk> = sink.chunks[..16].iter().collect();
        for chunk in &content {
            let delta = &json(chunk)["choices"][0]["delta"];
            assert!(!delta["content"].as_str().unwrap().is_empty());
        }
        assert_eq!(json(&sink.chunks[16])["usage"]["completion_tokens"], 16);
        assert_eq!(&sink.chunks[17].data[..], b"[DONE]");
        // Loose bounds: timers never fire early, and a busy machine may be slow.
        assert!(ack >= started && content[0].received_ns >= ack);
        assert!(content[0].received_ns - started >= 10_000_000, "TTFT");
        let gaps: Vec<u64> = content
            .windows(2)
            .map(|w| w[1].received_ns - w[0].received_ns)
            .collect();
        // The first token may be late, so only TTFT + 15 ITLs from the start is a lower bound.
        let last = content[15].received_ns - started;
        assert!(last >= 10_000_000 + 15 * itl.as_nanos() as u64, "{gaps:?}");
        assert!(last < 2_000_000_000, "{gaps:?}");
    }

    #[tokio::test]
    async fn non_streamed_answers_are_one_body_of_exactly_max_tokens() {
        let transport = transport(EngineConfig {
            ttft: Duration::ZERO,
            itl: Duration::ZERO,
            ..EngineConfig::default()
        });
        for max_tokens in [1, 7, 300] {
            let (sink, result) =
                send(&transport, "/v1/chat/completions", &chat(max_tokens, false)).await;
            result.unwrap();
            assert_eq!(sink.chunks.len(), 1);
            let body = json(&sink.chunks[0]);
            assert_eq!(body["object"], "chat.completion");
            assert_eq!(body["usage"]["completion_tokens"], max_tokens);
            let text = body["choices"][0]["message"]["content"].as_str().unwrap();
            assert_eq!(Tokenizer::builtin().count(text), u64::from(max_tokens));
            assert_eq!(sink.ack_ns, Some(sink.chunks[0].received_ns));
        }
        let (sink, result) = send(
            &transport,
            "/v1/completions",
            r#"{"model":"m","prompt":"hi","max_tokens":5,"stream":true}"#,
        )
        .await;
        result.unwrap();
        assert_eq!(sink.chunks.len(), 5 + 1, "no usage chunk unless asked");
        let (sink, result) = send(
            &transport,
            "/v1/embeddings",
            r#"{"model":"m","input":["a","b"]}"#,
        )
        .await;
        result.unwrap();
        assert_eq!(json(&sink.chunks[0])["data"].as_array().unwrap().len(), 2);
        let (sink, result) = send(&transport, "/v1/models", "").await;
        result.unwrap();
        assert_eq!(json(&sink.chunks[0])["object"], "list");
    }

    #[tokio::test]
    async fn errors_are_status_errors_with_openai_bodies() {
        let failing = transport(EngineConfig {
            error_rate: 1.0,
            ..EngineConfig::default()
        });
        let (sink, result) = send(&failing, "/v1/chat/completions", &chat(4, true)).await;
        let error = result.unwrap_err();
        assert_eq!(
            (error.kind, error.code),
            (TransportErrorKind::Status, Some(500))
        );
        assert_eq!(sink.status, Some(500));
        let body: Value = serde_json::from_str(&error.message).unwrap();
        assert_eq!(body["error"]["code"], 500);
        assert!(sink.chunks.is_empty());

        let healthy = transport(EngineConfig::default());
        let (_, result) = send(&healthy, "/v1/chat/completions", "{not json").await;
        let error = result.unwrap_err();
        assert_eq!(error.code, Some(400));
        assert!(
            error
                .message
                .contains("invalid chat completions request body"),
            "{}",
            error.message
        );
    }

    #[tokio::test]
    async fn the_request_timeout_ends_an_answer_keeping_its_chunks_and_frees_its_slot() {
        let timed = |timeout| {
            InEngineTransport::create(&TransportContext {
                engine: EngineConfig {
                    ttft: Duration::ZERO,
                    itl: Duration::from_millis(100),
                    max_batch: 1,
                    ..EngineConfig::default()
                },
                request_timeout: Some(timeout),
                ..TransportContext::default()
            })
        };
        let zero = timed(Duration::ZERO).unwrap_err();
        assert!(zero.message.contains("--request-timeout-seconds"), "{zero}");

        let transport = timed(Duration::from_millis(150)).unwrap();
        let (sink, result) = send(&transport, "/v1/chat/completions", &chat(20, true)).await;
        let error = result.unwrap_err();
        assert_eq!(error.kind, TransportErrorKind::Timeout);
        assert!(error.message.contains("(mid-stream)"), "{error}");
        // The first token comes at once, the second 100 ms later; the 21st would be 2 s in.
        assert!(
            (1..=2).contains(&sink.chunks.len()),
            "{}",
            sink.chunks.len()
        );
        // The batch of one is free again: the next request is answered from the start.
        let (sink, result) = send(&transport, "/v1/chat/completions", &chat(1, true)).await;
        result.unwrap();
        assert_eq!(sink.status, Some(200));
    }

    #[tokio::test]
    async fn requests_beyond_max_batch_wait_for_a_slot() {
        let ttft = Duration::from_millis(25);
        let transport = Arc::new(transport(EngineConfig {
            ttft,
            itl: Duration::ZERO,
            max_batch: 2,
            ..EngineConfig::default()
        }));
        let started = clock::now_ns();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let transport = transport.clone();
            tasks.push(tokio::spawn(async move {
                let (sink, result) = send(&transport, "/v1/chat/completions", &chat(2, true)).await;
                result.unwrap();
                sink.chunks[0].received_ns - started
            }));
        }
        let mut ttfts = Vec::new();
        for task in tasks {
            ttfts.push(task.await.unwrap());
        }
        ttfts.sort_unstable();
        let ttft_ns = ttft.as_nanos() as u64;
        assert!(ttfts[0] >= ttft_ns);
        assert!(
            ttfts[2] >= 2 * ttft_ns,
            "the third and fourth queued behind a full batch: {ttfts:?}"
        );
    }
}
