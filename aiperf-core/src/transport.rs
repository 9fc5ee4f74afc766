//! The `transport` category: how a payload reaches a server and how its response comes back,
//! chunk by chunk, each chunk stamped with its arrival time before anything parses it.
//!
//! In the data flow (DESIGN.md §4) a worker hands [`Transport::send`] the payload an
//! [`crate::endpoint::Endpoint`] wrote; the transport fills a [`ResponseSink`] as bytes arrive.
//! On an error the sink keeps what had arrived, so nothing measured is lost.

use std::time::Duration;

use bytes::Bytes;

use crate::endpoint::WireFormat;
use crate::engine::EngineConfig;
use crate::http_trace::HttpTrace;
use crate::registry::CreateError;

crate::define_category! {
    /// The transport category: implementations of [`Transport`].
    pub struct TransportCategory {
        name: "transport",
        description: "wire protocols: how payloads reach the server and responses come back",
        trait: Transport,
        context: TransportContext,
        validation_context: TransportContext {
            url: Some("http://127.0.0.1:8000".into()),
            ..Default::default()
        },
        slice: AIPERF_TRANSPORTS,
    }
}

/// What every transport is created from.
#[derive(Debug, Clone)]
pub struct TransportContext {
    /// The server's base URL (`--url`), e.g. `http://127.0.0.1:8000`; `None` for in-process
    /// transports.
    pub url: Option<String>,
    /// Headers sent with every request (`-H`, `--api-key` as `Authorization: Bearer ...`).
    pub headers: Vec<(String, String)>,
    /// The longest a request may take, covering connect, first byte and the whole stream.
    pub request_timeout: Option<Duration>,
    /// How many requests may be in flight at once: connection pools are sized to it.
    pub max_in_flight: usize,
    /// The simulated engine served by in-process transports.
    pub engine: EngineConfig,
    /// The header that carries each request's conversation id instead of `X-Correlation-ID`
    /// (`--session-header`, for a router that keys its session affinity on another name);
    /// `None` keeps `X-Correlation-ID`.
    pub session_header: Option<String>,
}

impl Default for TransportContext {
    fn default() -> Self {
        Self {
            url: None,
            headers: Vec::new(),
            request_timeout: None,
            max_in_flight: 1,
            engine: EngineConfig::default(),
            session_header: None,
        }
    }
}

/// Checks a `--session-header` name: a header name ([`http::HeaderName`]'s rules) and none of
/// the headers HTTP or aiperf set themselves (framing, host, content type, request id,
/// credentials), which it would replace. Gives the name (lowercase); the error says what to
/// give.
pub fn check_session_header(name: &str) -> Result<http::HeaderName, String> {
    use http::header;
    let taken = [
        header::ACCEPT,
        header::AUTHORIZATION,
        header::CONNECTION,
        header::CONTENT_LENGTH,
        header::CONTENT_TYPE,
        header::HOST,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        http::HeaderName::from_static("keep-alive"),
        http::HeaderName::from_static("x-request-id"),
    ];
    let header = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        format!(
            "--session-header `{name}` is not a header name: give letters, digits and dashes, \
             e.g. X-Session-ID"
        )
    })?;
    if taken.contains(&header) {
        return Err(format!(
            "--session-header `{name}` is a header HTTP or aiperf sets for each request: give \
             another name, e.g. X-Session-ID"
        ));
    }
    Ok(header)
}

impl TransportContext {
    /// A context for the server at `url`, everything else at its default.
    pub fn for_url(url: impl Into<String>) -> Self {
        Self {
            url: Some(url.into()),
            ..Self::default()
        }
    }
}

/// One request as a transport sends it.
#[derive(Debug, Clone)]
pub struct TransportRequest<'a> {
    /// The URL path (`/v1/chat/completions`), appended to the base URL.
    pub path: &'a str,
    /// The body, as the endpoint wrote it.
    pub payload: Bytes,
    /// The unique id sent as `X-Request-ID`.
    pub request_id: &'a str,
    /// The id of this run of the request's conversation (its records' `x_correlation_id`),
    /// which network transports send as `X-Correlation-ID` and `X-Session-Affinity`, as AIPerf
    /// does, so that a router can keep a conversation's turns on one server.
    pub correlation_id: &'a str,
    /// Whether a streamed response was asked for.
    pub streaming: bool,
}

/// One piece of a response: the data of one server-sent event, or a whole body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedChunk {
    /// When the bytes that completed it arrived ([`crate::clock::now_ns`]).
    pub received_ns: u64,
    /// The event's data (or the body).
    pub data: Bytes,
}

/// Where a transport writes what it receives for one request.
///
/// A transport records each chunk with [`ResponseSink::push`] once it has stamped it. When the
/// sink has a [`ChunkConsumer`] (the runner's parser), the chunk is handed to it at once and only
/// its timestamp is kept: the cost of parsing is then spread over the stream instead of falling
/// on the moment it ends, and no chunk data outlives its parse. A transport that pushes onto
/// [`ResponseSink::chunks`] directly still works, but its chunks are parsed when the request
/// ends, so its requests' first tokens are seen only then (a `--prefill-concurrency` slot is
/// held until the end).
#[derive(Debug, Default)]
pub struct ResponseSink {
    /// When the request went to the server, for a transport that knows: just before its
    /// connection was opened, or before its bytes were written to a connection already open.
    /// The record's `request_start_ns` is then this, not the runner's stamp before
    /// [`Transport::send`], so that time the client spent on its own before sending (a task
    /// waiting for the core, a pool handing out a connection) is not counted as the server's.
    pub sent_ns: Option<u64>,
    /// When the response headers arrived (`request_ack_ns`).
    pub ack_ns: Option<u64>,
    /// The HTTP (or equivalent) status.
    pub status: Option<u16>,
    /// The chunks, in arrival order (with empty data when they were consumed).
    pub chunks: Vec<TimedChunk>,
    /// What an HTTP transport saw of the exchange on the wire, when it sees it (the
    /// `http_req_*` metrics).
    pub http_trace: Option<HttpTrace>,
    /// Takes each pushed chunk as it arrives.
    consumer: Option<Box<dyn ChunkConsumer>>,
}

/// Takes a sink's chunks as they are pushed, after the transport stamped them (the runner
/// parses them with the endpoint).
pub trait ChunkConsumer: std::any::Any + Send + std::fmt::Debug {
    /// Takes one chunk, in arrival order.
    fn consume(&mut self, chunk: &TimedChunk);
}

impl ResponseSink {
    /// An empty sink that hands each pushed chunk to `consumer` instead of keeping its data.
    pub fn with_consumer(consumer: Box<dyn ChunkConsumer>) -> Self {
        Self {
            consumer: Some(consumer),
            ..Self::default()
        }
    }

    /// Whether pushed chunks are consumed as they come: a transport then need not copy their
    /// data out of its read buffers, as nothing keeps it.
    pub fn consumes(&self) -> bool {
        self.consumer.is_some()
    }

    /// Records a chunk the transport has stamped: handed to the consumer (and its data dropped)
    /// when there is one, else kept in [`ResponseSink::chunks`].
    pub fn push(&mut self, chunk: TimedChunk) {
        match &mut self.consumer {
            Some(consumer) => {
                consumer.consume(&chunk);
                self.chunks.push(TimedChunk {
                    received_ns: chunk.received_ns,
                    data: Bytes::new(),
                });
            }
            None => self.chunks.push(chunk),
        }
    }

    /// Takes the consumer back (to read what it gathered).
    pub fn take_consumer(&mut self) -> Option<Box<dyn ChunkConsumer>> {
        self.consumer.take()
    }
}

/// The kinds of transport failure, as the error summary groups them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransportErrorKind {
    /// The server answered with a non-success status.
    Status,
    /// The connection could not be made.
    Connect,
    /// The request took longer than `--request-timeout-seconds`.
    Timeout,
    /// The connection broke or the response was malformed.
    Protocol,
    /// A gRPC server answered with a non-OK status; the error's code is the gRPC status code.
    GrpcStatus,
}

impl TransportErrorKind {
    /// The name shown in the error summary and exports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Status => "HTTPStatusError",
            Self::Connect => "ConnectionError",
            Self::Timeout => "TimeoutError",
            Self::Protocol => "ProtocolError",
            Self::GrpcStatus => "GRPCStatusError",
        }
    }
}

/// A request that did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TransportError {
    /// What kind of failure.
    pub kind: TransportErrorKind,
    /// The status code, when the server sent one.
    pub code: Option<u16>,
    /// What happened (for a status error, the start of the body, as AIPerf reports it).
    pub message: String,
}

impl TransportError {
    /// The error's type in the error summary and the exports: an HTTP status error by its
    /// status's standard reason phrase (`Internal Server Error`; AIPerf takes the phrase the
    /// server sent, which is that one from every common server), any other, and a status
    /// without a standard phrase (499, 520), by its kind ([`TransportErrorKind::as_str`]).
    pub fn summary_type(&self) -> &'static str {
        let reason = match (self.kind, self.code) {
            (TransportErrorKind::Status, Some(code)) => http::StatusCode::from_u16(code)
                .ok()
                .and_then(|status| status.canonical_reason()),
            _ => None,
        };
        reason.unwrap_or(self.kind.as_str())
    }

    /// A failure of this kind with no status code.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            code: None,
            message: message.into(),
        }
    }
}

/// Facts about a transport that `aiperf plugins` and URL inference need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportMetadata {
    /// The URL schemes it serves (`http`, `https`); empty for in-process transports, which are
    /// used when no `--url` is given.
    pub url_schemes: &'static [&'static str],
    /// The wire formats it carries: it serves the endpoints whose
    /// [`EndpointMetadata::wire_format`](crate::endpoint::EndpointMetadata::wire_format) is
    /// one of them.
    pub wire_formats: &'static [WireFormat],
}

/// A wire protocol. Implementations are created once per run and shared by all workers.
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    /// Builds the transport (connection pools, clients) from the run's settings.
    fn create(ctx: &TransportContext) -> Result<Self, CreateError>
    where
        Self: Sized;

    /// Facts about this transport.
    fn metadata(&self) -> TransportMetadata;

    /// Checks, before the run, that the server answers (e.g. `GET /v1/models`, gRPC health),
    /// so that an unreachable server is one clear error rather than a run of failed records.
    /// Any answer counts: the run itself judges the responses. `path` is the endpoint's path,
    /// for transports that can tell whether it is served (the in-process engine). The default
    /// is always ready.
    async fn probe(&self, path: &str) -> Result<(), TransportError> {
        let _ = path;
        Ok(())
    }

    /// Opens, before the run and after [`Transport::probe`], the connections the run will use
    /// (as many as its concurrency needs under the transport's connection policy), so that
    /// the first requests' latencies do not include connection setup, which the server's own
    /// timings never see. Returns how many were opened. Best effort: a connection that cannot
    /// be opened now is opened by the request that needs it, as without this step. The
    /// default opens none (transports without connections, or that connect when created).
    async fn open_connections(&self) -> usize {
        0
    }

    /// Sends one request and records its response into `sink` as it arrives: `ack_ns` when the
    /// headers arrive, then each chunk stamped on arrival before any parsing. On failure the
    /// sink keeps whatever had arrived.
    async fn send(
        &self,
        request: TransportRequest<'_>,
        sink: &mut ResponseSink,
    ) -> Result<(), TransportError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default)]
    struct Collect(Vec<(u64, Bytes)>);

    impl ChunkConsumer for Collect {
        fn consume(&mut self, chunk: &TimedChunk) {
            self.0.push((chunk.received_ns, chunk.data.clone()));
        }
    }

    fn chunk(received_ns: u64, data: &'static str) -> TimedChunk {
        TimedChunk {
            received_ns,
            data: Bytes::from_static(data.as_bytes()),
        }
    }

    #[test]
    fn without_a_consumer_chunks_are_kept_whole() {
        let mut sink = ResponseSink::default();
        assert!(!sink.consumes());
        sink.push(chunk(1, "a"));
        assert_eq!(sink.chunks, [chunk(1, "a")]);
    }

    #[test]
    fn a_consumer_takes_each_chunk_and_only_its_time_is_kept() {
        let mut sink = ResponseSink::with_consumer(Box::<Collect>::default());
        assert!(sink.consumes());
        sink.push(chunk(1, "a"));
        sink.push(chunk(2, "b"));
        assert_eq!(sink.chunks, [chunk(1, ""), chunk(2, "")]);
        let consumer: Box<dyn std::any::Any> = sink.take_consumer().unwrap();
        let collected = consumer.downcast::<Collect>().unwrap();
        assert_eq!(
            collected.0,
            [(1, Bytes::from_static(b"a")), (2, Bytes::from_static(b"b"))]
        );
        assert!(!sink.consumes());
    }
}
