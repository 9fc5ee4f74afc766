//! The `http` transport, created through the registry, against a real hyper server on a random
//! 127.0.0.1 port: streamed events split awkwardly and spaced in time, whole bodies, error
//! statuses, refused connections, stalls, broken streams, headers and connection reuse.
#![cfg(feature = "http")]

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aiperf_core::clock::now_ns;
use aiperf_core::registry::Registry;
use aiperf_core::transport::{
    ResponseSink, Transport, TransportCategory, TransportContext, TransportError,
    TransportErrorKind, TransportRequest,
};
use aiperf_transports as _;
use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderMap};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Gap between events of the streamed response.
const EVENT_GAP: Duration = Duration::from_millis(40);
/// Gap between the pieces of one event.
const SPLIT_GAP: Duration = Duration::from_millis(5);

/// The streamed response: pieces (written after a delay) that split events awkwardly, including
/// between the `\r` and `\n` of a line ending, with comments and a multi-line event.
const STREAM: &[(Duration, &[u8])] = &[
    (EVENT_GAP, b"da"),
    (SPLIT_GAP, b"ta: {\"i\":0}\r"),
    (SPLIT_GAP, b"\n\r\n"),
    (EVENT_GAP, b"data: {\"i\":1}\n\ndata: {\"i\""),
    (SPLIT_GAP, b":2}\n"),
    (SPLIT_GAP, b"\n: keep-alive\n\n"),
    (EVENT_GAP, b"data: {\"i\":\ndata: 3}\r\n\r\n"),
    (EVENT_GAP, b"data: [DONE]\n\n"),
];
/// The events of [`STREAM`] and the index of the piece completing each.
const EVENTS: &[(&str, usize)] = &[
    ("{\"i\":0}", 2),
    ("{\"i\":1}", 3),
    ("{\"i\":2}", 5),
    ("{\"i\":\n3}", 6),
    ("[DONE]", 7),
];

/// What the server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Debug, Default)]
struct State {
    connections: AtomicUsize,
    requests: Mutex<Vec<Seen>>,
    /// [`now_ns`] just before each piece of a scripted body was written.
    written_ns: Mutex<Vec<u64>>,
}

type Body = UnsyncBoxBody<Bytes, io::Error>;
type Pieces = Pin<Box<dyn Stream<Item = Result<Frame<Bytes>, io::Error>> + Send>>;

struct Server {
    addr: SocketAddr,
    state: Arc<State>,
}

impl Server {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let accepted = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((connection, _)) = listener.accept().await {
                accepted.connections.fetch_add(1, Ordering::SeqCst);
                let state = Arc::clone(&accepted);
                tokio::spawn(async move {
                    let service = service_fn(move |request| respond(Arc::clone(&state), request));
                    // Connections end when the client drops them or a body fails on purpose.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(connection), service)
                        .await;
                });
            }
        });
        Self { addr, state }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    fn requests(&self) -> Vec<Seen> {
        self.state.requests.lock().unwrap().clone()
    }

    fn written_ns(&self) -> Vec<u64> {
        self.state.written_ns.lock().unwrap().clone()
    }
}

/// Writes `script`'s pieces, each after its delay, stamping each write.
fn scripted(state: Arc<State>, script: &'static [(Duration, &'static [u8])]) -> Pieces {
    Box::pin(stream::iter(script).then(move |&(delay, piece)| {
        let state = Arc::clone(&state);
        async move {
            tokio::time::sleep(delay).await;
            state.written_ns.lock().unwrap().push(now_ns());
            Ok(Frame::data(Bytes::from_static(piece)))
        }
    }))
}

fn response(status: StatusCode, content_type: &str, body: Body) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, content_type)
        .body(body)
        .unwrap()
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

async fn respond(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path().to_owned();
    let headers = request.headers().clone();
    let body = request.into_body().collect().await.unwrap().to_bytes();
    state.requests.lock().unwrap().push(Seen {
        path: path.clone(),
        headers,
        body,
    });
    let sse = "text/event-stream";
    let route = path.rsplit('/').next().unwrap_or_default();
    Ok(match route {
        "stream" => response(
            StatusCode::OK,
            sse,
            StreamBody::new(scripted(state, STREAM)).boxed_unsync(),
        ),
        "json" => {
            const PIECES: &[(Duration, &[u8])] =
                &[(Duration::ZERO, b"{\"ok\""), (EVENT_GAP, b":true}")];
            let body = StreamBody::new(scripted(state, PIECES)).boxed_unsync();
            response(StatusCode::OK, "application/json", body)
        }
        "small" => response(StatusCode::OK, "application/json", full("{}")),
        "error500" => response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "application/json",
            full("{\"error\":{\"message\":\"boom\"}}"),
        ),
        "busy" => response(
            StatusCode::TOO_MANY_REQUESTS,
            "text/plain",
            full(format!("rate limited {}", "x".repeat(10_000))),
        ),
        "stall" => {
            const PIECES: &[(Duration, &[u8])] = &[
                (Duration::ZERO, b"data: 1\n\n"),
                (SPLIT_GAP, b"data: 2\n\n"),
            ];
            let body = scripted(state, PIECES).chain(stream::pending());
            response(StatusCode::OK, sse, StreamBody::new(body).boxed_unsync())
        }
        "silent" => {
            let never: Infallible = std::future::pending().await;
            match never {}
        }
        "broken" => {
            const PIECES: &[(Duration, &[u8])] = &[(Duration::ZERO, b"data: 1\n\ndata: 2")];
            let body = scripted(state, PIECES).chain(stream::once(async {
                // Let the first piece be flushed before the connection breaks.
                tokio::time::sleep(SPLIT_GAP).await;
                Err(io::Error::other("dropped on purpose"))
            }));
            response(StatusCode::OK, sse, StreamBody::new(body).boxed_unsync())
        }
        "cut" => response(StatusCode::OK, sse, full("data: 1\n\ndata: 2\n")),
        _ => response(StatusCode::NOT_FOUND, "text/plain", full("no such route")),
    })
}

fn http_transport(ctx: &TransportContext) -> Box<dyn Transport> {
    Registry::<TransportCategory>::builtins()
        .create_instance("http", ctx)
        .unwrap()
}

fn context(url: String) -> TransportContext {
    TransportContext {
        url: Some(url),
        request_timeout: Some(Duration::from_secs(30)),
        ..TransportContext::default()
    }
}

async fn send(
    transport: &dyn Transport,
    path: &str,
    streaming: bool,
) -> (ResponseSink, Result<(), TransportError>) {
    let mut sink = ResponseSink::default();
    let request = TransportRequest {
        correlation_id: "conv-1",
        path,
        payload: Bytes::from_static(b"{\"model\":\"m\"}"),
        request_id: "req-1",
        streaming,
    };
    let result = transport.send(request, &mut sink).await;
    (sink, result)
}

#[test]
fn http_is_registered_by_this_crate() {
    let registry = Registry::<TransportCategory>::builtins();
    let infos = registry.list_implementations("http").unwrap();
    assert_eq!(infos.len(), 1, "{infos:?}");
    assert_eq!(infos[0].crate_name, "aiperf-transports");
    assert_eq!(infos[0].type_name, "HttpTransport");
    assert!(!infos[0].is_plugin);
    let transport = http_transport(&context("http://127.0.0.1:1".into()));
    assert_eq!(transport.metadata().url_schemes, ["http", "https"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_events_are_stamped_as_they_arrive() {
    let server = Server::start().await;
    let transport = http_transport(&context(server.url()));
    let start_ns = now_ns();
    let (sink, result) = send(&*transport, "/v1/stream", true).await;
    result.unwrap();

    assert_eq!(sink.status, Some(200));
    let data: Vec<&[u8]> = sink.chunks.iter().map(|c| &c.data[..]).collect();
    let expected: Vec<&[u8]> = EVENTS.iter().map(|(data, _)| data.as_bytes()).collect();
    assert_eq!(data, expected);

    let written = server.written_ns();
    assert_eq!(written.len(), STREAM.len());
    let ack_ns = sink.ack_ns.expect("ack stamped");
    assert!(start_ns <= ack_ns && ack_ns <= sink.chunks[0].received_ns);
    for (chunk, &(_, completed_by)) in sink.chunks.iter().zip(EVENTS) {
        // Causality: an event is stamped after the piece completing it was written...
        assert!(chunk.received_ns >= written[completed_by], "{chunk:?}");
    }
    // ...and stamped on arrival, not at the end of the stream: the first event arrived well
    // before the last piece was written (4 event gaps later).
    assert!(sink.chunks[0].received_ns < written[STREAM.len() - 1]);
    let span = sink.chunks[4].received_ns - start_ns;
    assert!(span >= 4 * EVENT_GAP.as_nanos() as u64, "{span} ns");
    assert!(sink.chunks.is_sorted_by_key(|c| c.received_ns));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_body_is_one_chunk_stamped_at_its_last_bytes() {
    let server = Server::start().await;
    let transport = http_transport(&context(server.url()));
    let (sink, result) = send(&*transport, "/v1/json", false).await;
    result.unwrap();

    assert_eq!(sink.status, Some(200));
    assert_eq!(sink.chunks.len(), 1);
    assert_eq!(sink.chunks[0].data, "{\"ok\":true}");
    let written = server.written_ns();
    assert!(sink.chunks[0].received_ns >= written[1]);
    assert!(
        sink.ack_ns.unwrap() < written[1],
        "headers came before the last bytes"
    );
    let seen = &server.requests()[0];
    assert_ne!(
        seen.headers.get("accept").map(|value| value.as_bytes()),
        Some(&b"text/event-stream"[..]),
        "no SSE asked for"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_error_keeps_status_body_and_timestamps() {
    let server = Server::start().await;
    let transport = http_transport(&context(server.url()));
    let (sink, result) = send(&*transport, "/v1/error500", true).await;
    let end_ns = now_ns();
    let error = result.unwrap_err();

    assert_eq!(error.kind, TransportErrorKind::Status);
    assert_eq!(error.code, Some(500));
    assert_eq!(error.message, "{\"error\":{\"message\":\"boom\"}}");
    assert_eq!(error.summary_type(), "Internal Server Error");
    assert_eq!(sink.status, Some(500));
    assert!(sink.ack_ns.is_some_and(|ack| ack <= end_ns));
    assert!(sink.chunks.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_keeps_the_start_of_a_long_body() {
    let server = Server::start().await;
    let transport = http_transport(&context(server.url()));
    let (sink, result) = send(&*transport, "/v1/busy", false).await;
    let error = result.unwrap_err();

    assert_eq!(error.kind, TransportErrorKind::Status);
    assert_eq!(error.code, Some(429));
    assert!(
        error.message.starts_with("rate limited xxx"),
        "{}",
        error.message
    );
    assert_eq!(error.summary_type(), "Too Many Requests");
    assert!(error.message.ends_with("..."));
    assert!(
        error.message.len() < 4200,
        "bounded: {}",
        error.message.len()
    );
    assert_eq!(sink.status, Some(429));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_a_connect_error() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // The listener is dropped: nothing listens on the port any more.
    let url = format!("http://{addr}");
    let transport = http_transport(&context(url.clone()));
    let (sink, result) = send(&*transport, "/v1/json", false).await;
    let error = result.unwrap_err();

    assert_eq!(error.kind, TransportErrorKind::Connect, "{error}");
    assert!(
        error
            .message
            .contains(&format!("the server at {url} is not reachable")),
        "{error}"
    );
    assert_eq!(sink.ack_ns, None);
    assert_eq!(sink.status, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_times_out_keeping_its_events() {
    let server = Server::start().await;
    let timeout = Duration::from_millis(300);
    let mut ctx = context(server.url());
    ctx.request_timeout = Some(timeout);
    let transport = http_transport(&ctx);
    let start_ns = now_ns();
    let (sink, result) = send(&*transport, "/v1/stall", true).await;
    let error = result.unwrap_err();

    assert_eq!(error.kind, TransportErrorKind::Timeout, "{error}");
    assert!(error.message.contains("(mid-stream)"), "{error}");
    assert!(now_ns() - start_ns >= timeout.as_nanos() as u64);
    assert_eq!(sink.status, Some(200));
    let data: Vec<_> = sink.chunks.iter().map(|c| c.data.clone()).collect();
    assert_eq!(data, ["1", "2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out() {
    let server = Server::start().await;
    let mut ctx = context(server.url());
    ctx.request_timeout = Some(Duration::from_millis(200));
    let transport = http_transport(&ctx);
    let (sink, result) = send(&*transport, "/v1/silent", true).await;

    let error = result.unwrap_err();
    assert_eq!(error.kind, TransportErrorKind::Timeout);
    assert!(
        error.message.contains("before the response headers"),
        "{error}"
    );
    assert_eq!(sink.ack_ns, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_stream_is_a_protocol_error_keeping_its_events() {
    let server = Server::start().await;
    let transport = http_transport(&context(server.url()));
    let (sink, result) = send(&*transport, "/v1/broken", true).await;
    let error = result.unwrap_err();

    assert_eq!(error.kind, TransportErrorKind::Protocol, "{error}");
    assert!(error.message.contains("broke off mid-stream"), "{error}");
    assert_eq!(sink.chunks.len(), 1);
    assert_eq!(sink.chunks[0].data, "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ending_inside_an_event_is_a_protocol_error() {
    let server = Server::start().await;
    let transport = http_transport(&context(server.url()));
    let (sink, result) = send(&*transport, "/v1/cut", true).await;
    let error = result.unwrap_err();

    assert_eq!(error.kind, TransportErrorKind::Protocol, "{error}");
    assert!(error.message.contains("ended inside an event"), "{error}");
    assert_eq!(sink.chunks.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_id_and_custom_headers_reach_the_server() {
    let server = Server::start().await;
    let mut ctx = context(format!("{}/prefix/", server.url()));
    ctx.headers = vec![
        ("Authorization".into(), "Bearer secret".into()),
        ("X-Custom".into(), " value ".into()),
    ];
    let transport = http_transport(&ctx);
    let mut sink = ResponseSink::default();
    let request = TransportRequest {
        correlation_id: "conv-1",
        path: "/v1/small",
        payload: Bytes::from_static(b"{\"stream\":true}"),
        request_id: "3f2c-42",
        streaming: true,
    };
    transport.send(request, &mut sink).await.unwrap();

    let seen = &server.requests()[0];
    assert_eq!(
        seen.path, "/prefix/v1/small",
        "one slash between base and path"
    );
    assert_eq!(seen.headers["x-request-id"], "3f2c-42");
    // The conversation's id, as AIPerf sends it, for routers' session affinity.
    assert_eq!(seen.headers["x-correlation-id"], "conv-1");
    assert_eq!(seen.headers["x-session-affinity"], "conv-1");
    assert_eq!(seen.headers["authorization"], "Bearer secret");
    assert_eq!(seen.headers["x-custom"], "value");
    assert_eq!(seen.headers["content-type"], "application/json");
    assert_eq!(seen.headers["accept"], "text/event-stream");
    assert_eq!(seen.body, "{\"stream\":true}");
    assert_eq!(sink.chunks[0].data, "{}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_header_carries_the_conversation_id_instead_of_x_correlation_id() {
    let server = Server::start().await;
    let mut ctx = context(server.url());
    ctx.session_header = Some("X-Session-ID".into());
    let transport = http_transport(&ctx);
    let request = TransportRequest {
        correlation_id: "conv-7",
        path: "/v1/small",
        payload: Bytes::from_static(b"{}"),
        request_id: "id-1",
        streaming: false,
    };
    transport
        .send(request, &mut ResponseSink::default())
        .await
        .unwrap();
    let seen = &server.requests()[0];
    assert_eq!(seen.headers["x-session-id"], "conv-7");
    assert_eq!(seen.headers["x-session-affinity"], "conv-7");
    assert!(!seen.headers.contains_key("x-correlation-id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_requests_reuse_kept_alive_connections() {
    let server = Server::start().await;
    let mut ctx = context(server.url());
    ctx.max_in_flight = 2;
    let transport = http_transport(&ctx);
    let requests = 30;
    for i in 0..requests {
        let (path, streaming) = match i % 3 {
            0 => ("/v1/small", false),
            1 => ("/v1/cut", true), // an error after a complete body still reuses
            _ => ("/v1/error500", false),
        };
        let (sink, _) = send(&*transport, path, streaming).await;
        assert!(sink.status.is_some(), "request {i} got a response");
    }
    assert_eq!(server.requests().len(), requests);
    // Without reuse every request opens a connection. With it, one is enough; a few more may
    // open when a new request races its predecessor's connection back to the pool (hyper
    // connects while it waits for an idle connection, and loopback connects fast).
    let connections = server.connections();
    assert!(
        connections <= requests / 5,
        "{requests} sequential requests opened {connections} connections"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_a_pool_sized_to_the_concurrency() {
    let server = Server::start().await;
    let mut ctx = context(server.url());
    ctx.max_in_flight = 4;
    let transport: Arc<dyn Transport> = http_transport(&ctx).into();
    let rounds = 10;
    for _round in 0..rounds {
        let batch: Vec<_> = (0..4)
            .map(|_| {
                let transport = Arc::clone(&transport);
                tokio::spawn(async move { send(&*transport, "/v1/small", false).await.1 })
            })
            .collect();
        for request in batch {
            request.await.unwrap().unwrap();
        }
    }
    // Each round needs at most 4 connections; a pool that did not keep them would open 40.
    // A few more may open when a round races the previous one's connections back to the pool.
    let connections = server.connections();
    assert!(
        (1..=3 * 4).contains(&connections),
        "{} requests opened {connections} connections",
        rounds * 4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_opened_before_the_run_serve_its_first_requests() {
    let server = Server::start().await;
    let mut ctx = context(server.url());
    ctx.max_in_flight = 6;
    let transport: Arc<dyn Transport> = http_transport(&ctx).into();
    assert_eq!(transport.open_connections().await, 6);
    assert_eq!(
        server.connections(),
        6,
        "one connection per request in flight"
    );
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/v1/models"; 6]);
    // The run's first requests, all at once, find the connections open.
    let first: Vec<_> = (0..6)
        .map(|_| {
            let transport = Arc::clone(&transport);
            tokio::spawn(async move { send(&*transport, "/v1/json", false).await.1 })
        })
        .collect();
    for request in first {
        request.await.unwrap().unwrap();
    }
    assert_eq!(
        server.connections(),
        6,
        "no connection opened during the run"
    );
}
