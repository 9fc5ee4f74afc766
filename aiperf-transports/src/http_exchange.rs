//! One HTTP request and its response over reqwest, shared by the `http` (HTTP/1.1) and `http2`
//! transports, which differ only in how their clients connect.
//!
//! In the data flow of DESIGN.md §4 a transport's `send` lands in [`HttpExchange::send`]: it
//! POSTs the endpoint's payload, stamps `ack_ns` when the response headers arrive, and then
//! stamps every body read with [`aiperf_core::clock::now_ns`] before anything parses it: a
//! `text/event-stream` response goes through [`aiperf_core::sse::SseParser`] and each event's
//! data becomes one [`TimedChunk`] (handed to the sink's consumer, or copied out of the read);
//! any other response becomes one chunk holding the whole body, stamped when its last bytes
//! arrived.
//!
//! Failures keep what was measured: a non-2xx status becomes a [`TransportErrorKind::Status`]
//! error carrying the start of the body (and any `retry-after`); a broken or cut-off stream a
//! [`TransportErrorKind::Protocol`] error with the events received so far left in the sink; the
//! request timeout (connect, first byte and the whole stream) a
//! [`TransportErrorKind::Timeout`] error. A stream that ends cleanly after its last complete
//! event is complete, `[DONE]` or not, as for AIPerf's reader (the endpoint judges its content).
//!
//! Messages name the kind of failure and where it happened (before the headers, before the
//! first event, mid-stream), never per-request figures, so that the error summary, which groups
//! by code, type and message, has one row per way of failing.
//!
//! `https://` URLs need the crate's `tls` feature (rustls); without it they are rejected when the
//! transport is created, with a message saying so.

use std::borrow::Cow;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aiperf_core::clock::now_ns;
use aiperf_core::registry::CreateError;
use aiperf_core::sse::SseParser;
use aiperf_core::transport::{
    ResponseSink, TimedChunk, TransportContext, TransportError, TransportErrorKind,
    TransportRequest,
};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER,
};
use reqwest::{ClientBuilder, Response, StatusCode, Url};

/// How much of an error response's body its message keeps.
const ERROR_BODY_KEPT: usize = 4 * 1024;
/// How much of an error response's body is read (the rest is dropped with the connection).
const ERROR_BODY_READ: usize = 64 * 1024;
/// How long one readiness probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long [`HttpExchange::open_connections`] lets its connections go back to the pool: the
/// pool takes a connection back from a task of its own once the answer is read, and a request
/// that comes before would open another connection.
const POOL_SETTLE: Duration = Duration::from_millis(20);
/// The media type of server-sent events.
const EVENT_STREAM: &[u8] = b"text/event-stream";

/// Requests to one server through one or more reqwest clients, shared by every worker.
#[derive(Debug)]
pub(crate) struct HttpExchange {
    /// One client per connection pool; requests take them in turn.
    clients: Box<[reqwest::Client]>,
    /// The next client to use.
    next: AtomicUsize,
    /// The base URL without its query and trailing slash: `http://host:8000` or
    /// `http://host/prefix`.
    base: String,
    /// The base URL's query (without `?`), appended to every request's URL.
    query: Option<String>,
    /// Whether to ask for `text/event-stream` on streaming requests (the user did not set
    /// `Accept` themselves).
    accept_event_stream: bool,
    timeout: Option<Duration>,
    /// The first request's path and its URL, parsed once: every request of a run goes to the
    /// endpoint's path, and parsing its URL each time cost more than the rest of building the
    /// request.
    parsed_url: OnceLock<(Box<str>, Url)>,
}

impl HttpExchange {
    /// Checks the context and builds `clients` clients, each from `configure` applied to a
    /// builder that already has the run's headers, `TCP_NODELAY` and no proxy. `name` is the
    /// transport's, for messages.
    pub(crate) fn new(
        ctx: &TransportContext,
        name: &str,
        clients: usize,
        configure: impl Fn(ClientBuilder) -> ClientBuilder,
    ) -> Result<Self, CreateError> {
        let (base, query) = base_url(ctx.url.as_deref(), name)?;
        let headers = default_headers(&ctx.headers)?;
        if ctx.request_timeout == Some(Duration::ZERO) {
            return Err(CreateError::new(
                "the request timeout is zero: pass a positive --request-timeout-seconds",
            ));
        }
        let accept_event_stream = !headers.contains_key(ACCEPT);
        let clients = (0..clients.max(1))
            .map(|_| {
                let builder = reqwest::Client::builder()
                    .tcp_nodelay(true)
                    .no_proxy()
                    .default_headers(headers.clone());
                configure(builder).build().map_err(|error| {
                    CreateError::new(format!("cannot build the HTTP client: {}", causes(&error)))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            clients,
            next: AtomicUsize::new(0),
            base,
            query,
            accept_event_stream,
            timeout: ctx.request_timeout,
            parsed_url: OnceLock::new(),
        })
    }

    /// The client for the next request: each in turn.
    fn client(&self) -> &reqwest::Client {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        &self.clients[turn % self.clients.len()]
    }

    /// The URL of a request to `path`: the base URL, one `/`, the path, then the base URL's
    /// query.
    fn url_for(&self, path: &str) -> String {
        let query_len = self.query.as_ref().map_or(0, |query| query.len() + 1);
        let mut url = String::with_capacity(self.base.len() + 1 + path.len() + query_len);
        url.push_str(&self.base);
        if !path.is_empty() && !path.starts_with('/') {
            url.push('/');
        }
        url.push_str(path);
        if let Some(query) = &self.query {
            url.push(if path.contains('?') { '&' } else { '?' });
            url.push_str(query);
        }
        url
    }

    /// The parsed URL of a request to `path` ([`HttpExchange::url_for`]), parsed only the first
    /// time (later paths, if they differ, each time).
    fn parsed_url_for(&self, path: &str) -> Result<Url, TransportError> {
        if let Some((parsed_path, url)) = self.parsed_url.get()
            && **parsed_path == *path
        {
            return Ok(url.clone());
        }
        let text = self.url_for(path);
        let url = Url::parse(&text).map_err(|error| {
            TransportError::new(
                TransportErrorKind::Protocol,
                format!("`{text}` is not a valid URL ({error}): check --url and --endpoint"),
            )
        })?;
        let _ = self.parsed_url.set((path.into(), url.clone()));
        Ok(url)
    }

    /// `GET /v1/models` (OpenAI's model list): any HTTP answer, even 404 from a server that
    /// has no such route, shows the server is there.
    pub(crate) async fn probe(&self) -> Result<(), TransportError> {
        let url = self.url_for("/v1/models");
        let probe = self.client().get(&url).timeout(PROBE_TIMEOUT).send().await;
        probe
            .map(drop)
            .map_err(|error| self.request_error(&url, &error))
    }

    /// Opens `count` connections by sending that many `GET /v1/models` at once (each reading
    /// its whole answer, so that its connection goes back to the pool, idle): requests take
    /// the clients in turn, as the run's will. Returns how many answered, after
    /// [`POOL_SETTLE`].
    ///
    /// Each request is a task of its own, on the runtime's workers, where the run's requests
    /// will be: the memory they leave behind is then reused by the run rather than kept beside
    /// it (allocators keep memory per thread).
    pub(crate) async fn open_connections(&self, count: usize) -> usize {
        let url = self.url_for("/v1/models");
        let mut opening = tokio::task::JoinSet::new();
        for _ in 0..count {
            let request = self.client().get(&url).timeout(PROBE_TIMEOUT);
            opening.spawn(async move {
                let response = request.send().await.ok()?;
                response.bytes().await.ok().map(drop)
            });
        }
        let mut answered = 0;
        while let Some(ended) = opening.join_next().await {
            answered += usize::from(matches!(ended, Ok(Some(()))));
        }
        tokio::time::sleep(POOL_SETTLE).await;
        answered
    }

    /// Sends one request and records its response (`Transport::send`), bounded by the request
    /// timeout.
    pub(crate) async fn send(
        &self,
        request: TransportRequest<'_>,
        sink: &mut ResponseSink,
    ) -> Result<(), TransportError> {
        let Some(limit) = self.timeout else {
            return self.exchange(request, sink).await;
        };
        match tokio::time::timeout(limit, self.exchange(request, sink)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(TransportError::new(
                TransportErrorKind::Timeout,
                format!(
                    "no complete response within the request timeout of {:.3} s ({}): raise \
                     --request-timeout-seconds or check the server's load",
                    limit.as_secs_f64(),
                    stage(sink)
                ),
            )),
        }
    }
    /// Everything after the request is built; [`HttpExchange::send`] bounds it by the timeout.
    async fn exchange(
        &self,
        request: TransportRequest<'_>,
        sink: &mut ResponseSink,
    ) -> Result<(), TransportError> {
        let request_id = HeaderValue::from_str(request.request_id).map_err(|_| {
            TransportError::new(
                TransportErrorKind::Protocol,
                format!(
                    "request id `{}` cannot be sent as an X-Request-ID header: use visible ASCII",
                    request.request_id
                ),
            )
        })?;
        let url = self.parsed_url_for(request.path)?;
        let mut builder = self
            .client()
            .post(url)
            .header(&X_REQUEST_ID, request_id)
            .body(request.payload);
        if request.streaming && self.accept_event_stream {
            builder = builder.header(ACCEPT, HeaderValue::from_static("text/event-stream"));
        }
        let sent = builder.send().await;
        let ack_ns = now_ns();
        let response =
            sent.map_err(|error| self.request_error(&self.url_for(request.path), &error))?;
        sink.ack_ns = Some(ack_ns);
        let status = response.status();
        sink.status = Some(status.as_u16());
        if !status.is_success() {
            return Err(status_error(status, response).await);
        }
        if is_event_stream(&response) {
            read_events(response, sink).await
        } else {
            read_body(response, sink).await
        }
    }

    /// Classifies a failure that happened before the response headers arrived.
    fn request_error(&self, url: &str, error: &reqwest::Error) -> TransportError {
        let cause = causes(error);
        if error.is_connect() {
            TransportError::new(
                TransportErrorKind::Connect,
                format!(
                    "the server at {} is not reachable ({cause}): check --url and that the \
                     server is running",
                    self.base
                ),
            )
        } else if error.is_timeout() {
            TransportError::new(
                TransportErrorKind::Timeout,
                format!("the request to {url} timed out ({cause})"),
            )
        } else {
            TransportError::new(
                TransportErrorKind::Protocol,
                format!("the request to {url} failed before a response arrived ({cause})"),
            )
        }
    }
}

/// `X-Request-ID`, the header that lets server logs be matched to `profile_export.jsonl`.
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Checks `--url` and splits it into the base (no trailing slash) and its query.
fn base_url(url: Option<&str>, name: &str) -> Result<(String, Option<String>), CreateError> {
    let Some(url) = url else {
        return Err(CreateError::new(format!(
            "the {name} transport needs the server's URL: pass --url http://HOST:PORT"
        )));
    };
    if !url.contains("://") {
        return Err(CreateError::new(format!(
            "`{url}` has no scheme: pass --url http://{url} (or https://)"
        )));
    }
    let mut parsed = Url::parse(url).map_err(|error| {
        CreateError::new(format!(
            "`{url}` is not a valid URL ({error}): pass --url http://HOST:PORT"
        ))
    })?;
    match parsed.scheme() {
        "http" => {}
        "https" if cfg!(feature = "tls") => {}
        "https" => {
            return Err(CreateError::new(format!(
                "`{url}` needs TLS, which this build lacks: rebuild with the `tls` feature of \
                 aiperf-transports, or use an http:// URL"
            )));
        }
        scheme => {
            return Err(CreateError::new(format!(
                "the {name} transport serves http:// and https:// URLs, not `{scheme}://`: pass \
                 --url http://HOST:PORT, or choose another transport with --transport"
            )));
        }
    }
    let query = parsed.query().filter(|q| !q.is_empty()).map(str::to_owned);
    parsed.set_query(None);
    parsed.set_fragment(None);
    Ok((parsed.as_str().trim_end_matches('/').to_owned(), query))
}

/// The run's headers (`-H`, `--api-key`) plus `Content-Type: application/json` unless given.
fn default_headers(headers: &[(String, String)]) -> Result<HeaderMap, CreateError> {
    let mut map = HeaderMap::with_capacity(headers.len() + 1);
    for (name, value) in headers {
        let header = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
            CreateError::new(format!(
                "`{name}` is not a valid HTTP header name: pass -H 'Name: value' with a name of \
                 letters, digits and hyphens"
            ))
        })?;
        let mut value = HeaderValue::from_str(value.trim()).map_err(|_| {
            CreateError::new(format!(
                "the value of header `{name}` is not a valid HTTP header value: remove control \
                 characters and non-ASCII text from it"
            ))
        })?;
        if header == AUTHORIZATION || header.as_str().contains("key") {
            value.set_sensitive(true);
        }
        map.append(header, value);
    }
    if !map.contains_key(CONTENT_TYPE) {
        map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    Ok(map)
}

fn is_event_stream(response: &Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.as_bytes().get(..EVENT_STREAM.len()))
        .is_some_and(|media_type| media_type.eq_ignore_ascii_case(EVENT_STREAM))
}

/// Reads a server-sent-events body: each read is stamped, then parsed; each event is one chunk,
/// handed to the sink's consumer at once or, without one, copied into the request's
/// [`EventStore`].
///
/// The response's head is dropped first: its header values are slices of the connection's read
/// buffer, and kept for the whole stream they would make the connection allocate a second one.
async fn read_events(response: Response, sink: &mut ResponseSink) -> Result<(), TransportError> {
    let mut body = std::pin::pin!(response.bytes_stream());
    let mut parser = SseParser::new();
    let mut store = EventStore::default();
    loop {
        let read = body.next().await;
        let received_ns = now_ns();
        match read {
            Some(Ok(bytes)) => {
                for event in parser.feed(bytes) {
                    // A consuming sink parses the event now and keeps none of it.
                    let data = if sink.consumes() {
                        event.data
                    } else {
                        store.keep(&event.data)
                    };
                    sink.push(TimedChunk { received_ns, data });
                }
            }
            None => break,
            Some(Err(error)) => return Err(broken_body(&error, stage(sink))),
        }
    }
    parser.finish().map_err(|incomplete| {
        TransportError::new(TransportErrorKind::Protocol, incomplete.to_string())
    })
}

/// Where a streamed request keeps its events' data until the request ends and they are parsed.
///
/// An event's data arrives as a slice of the connection's read buffer (8 KiB or more). Kept as
/// it is, each event would hold its whole read buffer alive until the request ends, and the
/// connection would allocate a fresh buffer for every read: hundreds of KiB per stream, and a
/// large allocation per event. Copying the few hundred bytes into blocks of the request's own
/// (growing with the stream, so a short stream stays small) costs a `memcpy` and lets the
/// connection reuse its buffer.
#[derive(Default)]
struct EventStore {
    block: BytesMut,
    kept: usize,
}

impl EventStore {
    /// The smallest block: a few typical chat chunks.
    const MIN_BLOCK: usize = 1024;
    /// The largest block.
    const MAX_BLOCK: usize = 16 * 1024;

    /// A copy of `data` in the store.
    fn keep(&mut self, data: &[u8]) -> Bytes {
        if self.block.capacity() < data.len() {
            let block = self.kept.clamp(Self::MIN_BLOCK, Self::MAX_BLOCK);
            self.block.reserve(block.max(data.len()));
        }
        self.block.extend_from_slice(data);
        self.kept += data.len();
        self.block.split().freeze()
    }
}

/// Reads a whole body into one chunk stamped when its last bytes arrived.
async fn read_body(mut response: Response, sink: &mut ResponseSink) -> Result<(), TransportError> {
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut last_ns = None;
    loop {
        let read = response.chunk().await;
        let received_ns = now_ns();
        match read {
            Ok(Some(bytes)) => {
                last_ns = Some(received_ns);
                if let Some(joined) = &mut joined {
                    joined.extend_from_slice(&bytes);
                } else if let Some(first) = first.take() {
                    let mut both = BytesMut::with_capacity(first.len() + bytes.len());
                    both.extend_from_slice(&first);
                    both.extend_from_slice(&bytes);
                    joined = Some(both);
                } else {
                    first = Some(bytes);
                }
            }
            Ok(None) => {
                let data = match joined {
                    Some(joined) => joined.freeze(),
                    None => first.unwrap_or_default(),
                };
                sink.push(TimedChunk {
                    received_ns: last_ns.unwrap_or(received_ns),
                    data,
                });
                return Ok(());
            }
            Err(error) => return Err(broken_body(&error, "mid-body")),
        }
    }
}

/// A non-2xx response: `"<code> <reason> (retry-after: <value>): <start of the body>"`.
async fn status_error(status: StatusCode, mut response: Response) -> TransportError {
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .map(|value| utf8_prefix(value.as_bytes()).into_owned());
    let mut kept = Vec::new();
    let mut read = 0;
    while read < ERROR_BODY_READ {
        let Ok(Some(bytes)) = response.chunk().await else {
            break;
        };
        read += bytes.len();
        let room = ERROR_BODY_KEPT - kept.len();
        kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
    let truncated = read > kept.len();
    let body = utf8_prefix(&kept);
    let body = body.trim();
    let mut message = status.as_u16().to_string();
    if let Some(reason) = status.canonical_reason() {
        message.push(' ');
        message.push_str(reason);
    }
    if let Some(retry_after) = retry_after {
        message.push_str(" (retry-after: ");
        message.push_str(retry_after.trim());
        message.push(')');
    }
    if !body.is_empty() {
        message.push_str(": ");
        message.push_str(body);
        if truncated {
            message.push_str("...");
        }
    }
    TransportError {
        kind: TransportErrorKind::Status,
        code: Some(status.as_u16()),
        message,
    }
}

/// The text of `bytes`, dropping a character cut at the end and replacing invalid UTF-8.
fn utf8_prefix(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(error) if error.error_len().is_none() => {
            String::from_utf8_lossy(&bytes[..error.valid_up_to()])
        }
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Where a response was when it failed: what arrived of it, for messages.
fn stage(sink: &ResponseSink) -> &'static str {
    match (sink.ack_ns, sink.chunks.is_empty()) {
        (None, _) => "before the response headers",
        (Some(_), true) => "before the first event",
        (Some(_), false) => "mid-stream",
    }
}

/// A body that failed `stage` (see [`stage`]).
fn broken_body(error: &reqwest::Error, stage: &str) -> TransportError {
    TransportError::new(
        TransportErrorKind::Protocol,
        format!(
            "the response broke off {stage} ({}): the server closed the connection or sent a \
             malformed body",
            causes(error)
        ),
    )
}

/// The error's causes, innermost last: reqwest's own message names only the URL.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    let mut source = error.source();
    while let Some(cause) = source {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if text.is_empty() {
        text = error.to_string();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(url: &str) -> TransportContext {
        TransportContext {
            url: Some(url.to_owned()),
            ..TransportContext::default()
        }
    }

    fn exchange(ctx: &TransportContext) -> Result<HttpExchange, CreateError> {
        HttpExchange::new(ctx, "http", 1, |builder| builder)
    }

    fn create_error(ctx: &TransportContext) -> String {
        exchange(ctx).unwrap_err().message
    }

    #[test]
    fn request_urls_are_parsed_once_and_match_the_joined_text() {
        let exchange = exchange(&context("http://h:1/prefix?api-version=2")).unwrap();
        for path in [
            "/v1/chat/completions",
            "/v1/embeddings",
            "/v1/chat/completions",
        ] {
            let parsed = exchange.parsed_url_for(path).unwrap();
            assert_eq!(
                parsed,
                Url::parse(&exchange.url_for(path)).unwrap(),
                "{path}"
            );
        }
        let (path, _) = exchange.parsed_url.get().unwrap();
        assert_eq!(
            &**path, "/v1/chat/completions",
            "the first path is the one kept"
        );
    }

    #[test]
    fn kept_events_are_copies_in_blocks_of_the_request() {
        let read = Bytes::from(vec![b'x'; 8192]);
        let mut store = EventStore::default();
        let kept: Vec<Bytes> = (0..40)
            .map(|i| store.keep(&read[i * 200..i * 200 + 150]))
            .collect();
        assert!(read.is_unique(), "no kept event refers to the read");
        assert!(
            kept.iter()
                .all(|data| data.len() == 150 && data.iter().all(|&b| b == b'x'))
        );
        // 6000 bytes kept in blocks that grew from 1 KiB: far less than a read buffer each.
        assert!(store.kept == 6000 && store.block.capacity() <= EventStore::MAX_BLOCK);
        let big = vec![b'y'; 3 * EventStore::MAX_BLOCK];
        assert_eq!(
            store.keep(&big),
            big,
            "an event larger than a block is kept whole"
        );
    }

    #[test]
    fn joins_base_url_and_path_with_one_slash() {
        for (base, path, expected) in [
            ("http://h:1", "/v1/chat", "http://h:1/v1/chat"),
            ("http://h:1/", "/v1/chat", "http://h:1/v1/chat"),
            ("http://h:1/", "v1/chat", "http://h:1/v1/chat"),
            (
                "http://h:1/prefix/",
                "/v1/chat",
                "http://h:1/prefix/v1/chat",
            ),
            ("http://h:1/prefix", "/v1/chat", "http://h:1/prefix/v1/chat"),
            (
                "http://h:1/p?api-version=2",
                "/v1/x",
                "http://h:1/p/v1/x?api-version=2",
            ),
            ("http://h:1?a=1", "/v1/x?b=2", "http://h:1/v1/x?b=2&a=1"),
            ("http://h:1/#frag", "/v1/x", "http://h:1/v1/x"),
        ] {
            let transport = exchange(&context(base)).unwrap();
            assert_eq!(transport.url_for(path), expected, "{base} + {path}");
        }
    }

    #[test]
    fn a_missing_or_wrong_url_says_what_to_pass() {
        let missing = create_error(&TransportContext::default());
        assert!(missing.contains("pass --url http://"), "{missing}");
        let no_scheme = create_error(&context("localhost:8000"));
        assert!(
            no_scheme.contains("pass --url http://localhost:8000"),
            "{no_scheme}"
        );
        let scheme = create_error(&context("grpc://localhost:8000"));
        assert!(scheme.contains("not `grpc://`"), "{scheme}");
        let named = HttpExchange::new(&TransportContext::default(), "http2", 1, |b| b);
        let named = named.unwrap_err().message;
        assert!(named.starts_with("the http2 transport needs"), "{named}");
        let invalid = create_error(&context("http://"));
        assert!(invalid.contains("not a valid URL"), "{invalid}");
    }

    #[test]
    fn https_is_accepted_exactly_when_tls_is_built_in() {
        let result = exchange(&context("https://example.com"));
        if cfg!(feature = "tls") {
            assert!(result.is_ok());
        } else {
            let message = result.unwrap_err().message;
            assert!(message.contains("`tls` feature"), "{message}");
        }
    }

    #[test]
    fn invalid_headers_are_named() {
        let mut ctx = context("http://h:1");
        ctx.headers = vec![("Bad Name".into(), "v".into())];
        assert!(create_error(&ctx).contains("`Bad Name` is not a valid HTTP header name"));
        ctx.headers = vec![("X-Ok".into(), "line\nbreak".into())];
        assert!(create_error(&ctx).contains("value of header `X-Ok`"));
    }

    #[test]
    fn content_type_and_accept_defer_to_the_users_headers() {
        let transport = exchange(&context("http://h:1")).unwrap();
        assert!(transport.accept_event_stream);
        let headers = default_headers(&[]).unwrap();
        assert_eq!(headers[CONTENT_TYPE], "application/json");

        let user = [
            ("content-type".to_owned(), "application/x-ndjson".to_owned()),
            ("Accept".to_owned(), "*/*".to_owned()),
        ];
        let headers = default_headers(&user).unwrap();
        assert_eq!(headers[CONTENT_TYPE], "application/x-ndjson");
        let mut ctx = context("http://h:1");
        ctx.headers = user.to_vec();
        assert!(!exchange(&ctx).unwrap().accept_event_stream);
    }

    #[test]
    fn requests_take_the_clients_in_turn() {
        let exchange = HttpExchange::new(&context("http://h:1"), "http2", 3, |b| b).unwrap();
        assert_eq!(exchange.clients.len(), 3);
        let turns: Vec<usize> = (0..4)
            .map(|_| {
                let client = exchange.client() as *const reqwest::Client;
                exchange
                    .clients
                    .iter()
                    .position(|c| std::ptr::eq(c, client))
                    .unwrap()
            })
            .collect();
        assert_eq!(turns, [0, 1, 2, 0]);
        let at_least_one = HttpExchange::new(&context("http://h:1"), "http", 0, |b| b).unwrap();
        assert_eq!(at_least_one.clients.len(), 1);
    }

    #[test]
    fn a_zero_timeout_is_rejected() {
        let mut ctx = context("http://h:1");
        ctx.request_timeout = Some(Duration::ZERO);
        assert!(create_error(&ctx).contains("--request-timeout-seconds"));
    }

    #[test]
    fn a_cut_character_is_dropped_from_the_error_body() {
        assert_eq!(utf8_prefix("né".as_bytes()), "né");
        assert_eq!(utf8_prefix(&"né".as_bytes()[..2]), "n");
        assert_eq!(utf8_prefix(b"a\xFFb"), "a\u{FFFD}b");
    }
}
