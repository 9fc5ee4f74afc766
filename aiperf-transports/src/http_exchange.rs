//! One HTTP request and its response over reqwest: every request of the `http2` transport, and
//! those of the `http` transport to `https://` URLs (its `http://` requests go over the lean
//! client of `http1`).
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
//! The messages are `http_common`'s, shared with `http1`, and the request timeout's
//! (`request_timeout`, shared with every transport).
//!
//! `https://` URLs need the crate's `tls` feature (rustls); without it they are rejected when the
//! transport is created, with a message saying so.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aiperf_core::clock::now_ns;
use aiperf_core::registry::CreateError;
use aiperf_core::sse::SseParser;
use aiperf_core::transport::{
    ResponseSink, TimedChunk, TransportError, TransportErrorKind, TransportRequest,
};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{ClientBuilder, Response, StatusCode, Url};

use crate::connect_failure::causes;
use crate::http_common::{
    self, ERROR_BODY_KEPT, ERROR_BODY_READ, EventStore, HttpTarget, PROBE_PATH, PROBE_TIMEOUT,
};
use crate::request_timeout;

/// How long [`HttpExchange::open_connections`] lets its connections go back to the pool: the
/// pool takes a connection back from a task of its own once the answer is read, and a request
/// that comes before would open another connection.
const POOL_SETTLE: Duration = Duration::from_millis(20);

/// Requests to one server through one or more reqwest clients, shared by every worker.
#[derive(Debug)]
pub(crate) struct HttpExchange {
    /// One client per connection pool; requests take them in turn.
    clients: Box<[reqwest::Client]>,
    /// The next client to use.
    next: AtomicUsize,
    /// The server, the run's headers, the timeout.
    target: HttpTarget,
    /// The first request's path and its URL, parsed once: every request of a run goes to the
    /// endpoint's path, and parsing its URL each time cost more than the rest of building the
    /// request.
    parsed_url: OnceLock<(Box<str>, Url)>,
}

/// The HTTP version an [`HttpExchange`]'s clients speak: it sets their builder and, for an
/// `https://` target, the one protocol their TLS offers (ALPN), so the two always agree.
#[derive(Debug, Clone, Copy)]
pub(crate) enum HttpVersion {
    /// HTTP/1.1, keeping up to this many idle connections to the server.
    #[cfg(feature = "http")]
    Http1 {
        /// Idle connections kept for reuse.
        idle_connections: usize,
    },
    /// HTTP/2 (h2c with prior knowledge on `http://`), with adaptive flow-control windows.
    #[cfg(feature = "http2")]
    Http2,
}

impl HttpVersion {
    /// The ALPN protocol id offered over TLS.
    #[cfg(feature = "tls")]
    fn alpn(self) -> &'static [u8] {
        match self {
            Self::Http1 { .. } => b"http/1.1",
            #[cfg(feature = "http2")]
            Self::Http2 => b"h2",
        }
    }

    /// `builder`, set to speak this version.
    fn configure(self, builder: ClientBuilder) -> ClientBuilder {
        match self {
            #[cfg(feature = "http")]
            Self::Http1 { idle_connections } => builder
                .http1_only()
                .pool_max_idle_per_host(idle_connections),
            #[cfg(feature = "http2")]
            Self::Http2 => builder.http2_prior_knowledge().http2_adaptive_window(true),
        }
    }
}

impl HttpExchange {
    /// Builds `clients` clients for `target` speaking `version`, each with the run's headers,
    /// `TCP_NODELAY`, no proxy and, for an `https://` target, TLS. The TLS is a whole rustls
    /// configuration (`tls_roots`): the builder's own TLS settings would be ignored, and none
    /// is set.
    pub(crate) fn for_target(
        target: HttpTarget,
        clients: usize,
        version: HttpVersion,
    ) -> Result<Self, CreateError> {
        let clients = (0..clients.max(1))
            .map(|_| {
                let builder = reqwest::Client::builder()
                    .tcp_nodelay(true)
                    .no_proxy()
                    .default_headers(target.headers.clone());
                #[cfg(feature = "tls")]
                let builder = if target.is_tls() {
                    builder.use_preconfigured_tls(crate::tls_roots::client_config(version.alpn()))
                } else {
                    builder
                };
                version.configure(builder).build().map_err(|error| {
                    CreateError::new(format!("cannot build the HTTP client: {}", causes(&error)))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            clients,
            next: AtomicUsize::new(0),
            target,
            parsed_url: OnceLock::new(),
        })
    }

    /// The client for the next request: each in turn.
    fn client(&self) -> &reqwest::Client {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        &self.clients[turn % self.clients.len()]
    }

    /// The parsed URL of a request to `path` ([`HttpTarget::url_for`]), parsed only the first
    /// time (later paths, if they differ, each time).
    fn parsed_url_for(&self, path: &str) -> Result<Url, TransportError> {
        if let Some((parsed_path, url)) = self.parsed_url.get()
            && **parsed_path == *path
        {
            return Ok(url.clone());
        }
        let text = self.target.url_for(path);
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
        let url = self.target.url_for(PROBE_PATH);
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
        let url = self.target.url_for(PROBE_PATH);
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
        let exchange = async |sink: &mut ResponseSink| self.exchange(request, sink).await;
        request_timeout::within(self.target.timeout, sink, exchange).await
    }
    /// Everything after the request is built; [`HttpExchange::send`] bounds it by the timeout.
    async fn exchange(
        &self,
        request: TransportRequest<'_>,
        sink: &mut ResponseSink,
    ) -> Result<(), TransportError> {
        let request_id = HeaderValue::from_str(request.request_id)
            .map_err(|_| http_common::request_id_error(request.request_id))?;
        let url = self.parsed_url_for(request.path)?;
        let mut builder = self
            .client()
            .post(url)
            .header(&X_REQUEST_ID, request_id)
            .body(request.payload);
        if request.streaming && self.target.accept_event_stream {
            builder = builder.header(ACCEPT, HeaderValue::from_static("text/event-stream"));
        }
        if let Ok(correlation) = HeaderValue::from_str(request.correlation_id) {
            for name in &self.target.session_headers {
                builder = builder.header(name, correlation.clone());
            }
        }
        let sent = builder.send().await;
        let ack_ns = now_ns();
        let response =
            sent.map_err(|error| self.request_error(&self.target.url_for(request.path), &error))?;
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
            http_common::connect_error(&self.target.base, &cause)
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

fn is_event_stream(response: &Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|value| http_common::is_event_stream(value.as_bytes()))
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
                    let data = store.for_sink(sink, event.data);
                    sink.push(TimedChunk { received_ns, data });
                }
            }
            None => break,
            Some(Err(error)) => {
                return Err(http_common::broken_body(
                    &causes(&error),
                    request_timeout::stage(sink),
                ));
            }
        }
    }
    parser.finish().map_err(|incomplete| {
        TransportError::new(TransportErrorKind::Protocol, incomplete.to_string())
    })
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
            Err(error) => return Err(http_common::broken_body(&causes(&error), "mid-body")),
        }
    }
}

/// A non-2xx response: its body's start and its `retry-after` ([`http_common::status_error`]).
async fn status_error(status: StatusCode, mut response: Response) -> TransportError {
    let retry_after = response.headers().get(RETRY_AFTER).cloned();
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
    http_common::status_error(
        status.as_u16(),
        retry_after.as_ref().map(|value| value.as_bytes()),
        &kept,
        truncated,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aiperf_core::transport::TransportContext;

    /// A version every feature set has.
    #[cfg(feature = "http")]
    const VERSION: HttpVersion = HttpVersion::Http1 {
        idle_connections: 1,
    };
    #[cfg(not(feature = "http"))]
    const VERSION: HttpVersion = HttpVersion::Http2;

    fn exchange_for(url: &str, clients: usize) -> Result<HttpExchange, CreateError> {
        let target = HttpTarget::new(&TransportContext::for_url(url), "http")?;
        HttpExchange::for_target(target, clients, VERSION)
    }

    #[cfg(feature = "tls")]
    #[test]
    fn https_clients_take_the_shared_rustls_configuration() {
        // reqwest refuses (when the client is built) a configuration of another rustls
        // version than its own.
        let exchange = exchange_for("https://127.0.0.1:1", 2).unwrap();
        assert_eq!(exchange.clients.len(), 2);
    }

    fn exchange(ctx: &TransportContext) -> Result<HttpExchange, CreateError> {
        exchange_for(ctx.url.as_deref().unwrap_or_default(), 1)
    }

    #[test]
    fn request_urls_are_parsed_once_and_match_the_joined_text() {
        let exchange = exchange(&TransportContext::for_url(
            "http://h:1/prefix?api-version=2",
        ))
        .unwrap();
        for path in [
            "/v1/chat/completions",
            "/v1/embeddings",
            "/v1/chat/completions",
        ] {
            let parsed = exchange.parsed_url_for(path).unwrap();
            assert_eq!(
                parsed,
                Url::parse(&exchange.target.url_for(path)).unwrap(),
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
    fn requests_take_the_clients_in_turn() {
        let exchange = exchange_for("http://h:1", 3).unwrap();
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
        let at_least_one = exchange_for("http://h:1", 0).unwrap();
        assert_eq!(at_least_one.clients.len(), 1);
    }
}
