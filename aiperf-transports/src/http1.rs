//! A lean HTTP/1.1 client for `http://` URLs: the `http` transport's requests, written and read
//! on tokio TCP streams by this module alone, so that the client knows (and records) the moment
//! each request's bytes leave, and holds a few KiB per connection.
//!
//! In the data flow of DESIGN.md §4 the `http` transport's `send` lands in
//! [`Http1Client::send`]: it takes an idle kept-alive connection (or opens one), stamps
//! [`ResponseSink::sent_ns`] just before the request is written (before the connect, for a new
//! connection), writes the head and the payload in one vectored write, stamps `ack_ns` with the
//! arrival of the read that completed the response head, then stamps every read of the body
//! before anything parses it. Arrivals are the kernel's receive stamps of the bytes
//! ([`crate::receive_stamps`], Linux), so a client busy elsewhere when a token comes in still
//! times it when it came; without them, [`aiperf_core::clock::now_ns`] as the read returns.
//! The body's framing (`Content-Length`, chunked, or the connection's end: `body_framing`) is
//! taken off as zero-copy slices of the connection's read buffer; an event stream's slices go through
//! [`aiperf_core::sse::SseParser`] and each event is one [`TimedChunk`]; any other body is one
//! chunk stamped at its last bytes. Each exchange also fills the sink's [`HttpTrace`] (the
//! `http_req_*` metrics): whether its connection was already open, the opening's address lookup
//! and connect times, the write's start, end and count, and the reads that yielded the
//! response's body.
//!
//! Why not reqwest here: its request goes through several layers (a pool checkout task, a
//! dispatch channel, hyper's connection task) after the caller's last chance to stamp it, so
//! under a burst of hundreds of requests the stamp ran milliseconds ahead of the bytes; and
//! hyper keeps ~20 KiB per connection that cannot be sized. Here a connection is its socket and
//! one read buffer ([`READ_BUFFER`]), and a request's path from stamp to `write` is a few
//! microseconds of its own task.
//!
//! A connection goes back to the pool only after a complete response that allows it; any
//! failure or cancellation drops it. A kept-alive connection the server closed while it was
//! idle is noticed before the request is written (it reads as ended) and replaced; one that
//! fails the write itself is replaced and the request written again, once. A request once
//! written is never sent again: the server may have acted on it. The messages are
//! `http_common`'s, shared with the reqwest exchange, and the request timeout's
//! (`request_timeout`, shared with every transport).

mod body_framing;
mod response_head;

use std::sync::{Mutex, PoisonError};

use aiperf_core::clock::now_ns;
use aiperf_core::http_trace::HttpTrace;
use aiperf_core::registry::CreateError;
use aiperf_core::sse::SseParser;
use aiperf_core::transport::{
    ResponseSink, TimedChunk, TransportError, TransportErrorKind, TransportRequest,
};
use bytes::{Buf, Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use self::body_framing::BodyFraming;
use self::response_head::ResponseHead;
use crate::http_common::{
    self, ERROR_BODY_KEPT, ERROR_BODY_READ, EventStore, HttpTarget, PROBE_PATH, PROBE_TIMEOUT,
};
use crate::{receive_stamps, request_timeout};

/// The read buffer a connection starts with, and the room it makes before each read: a head
/// and a few events. Larger responses grow it; [`BytesMut::reserve`] reuses it in place once
/// the slices handed out of it are dropped.
pub(crate) const READ_BUFFER: usize = 4 * 1024;
/// The least free room worth a read; below it the buffer is reserved again first.
const MIN_READ_ROOM: usize = 1024;
/// How many connections [`Http1Client::open_connections`] opens at once: enough to be quick,
/// few enough that a server's listen backlog does not overflow.
const OPENING_AT_ONCE: usize = 256;

/// Requests over a pool of kept-alive HTTP/1.1 connections to one server.
#[derive(Debug)]
pub(crate) struct Http1Client {
    /// The server, the run's headers, the timeout.
    target: HttpTarget,
    /// `host:port`, for connecting.
    address: String,
    /// Its addresses, resolved on the first connection and reused by the next.
    resolved: tokio::sync::OnceCell<Box<[std::net::SocketAddr]>>,
    /// The head lines every request carries: `Host`, then the run's headers.
    fixed_headers: Vec<u8>,
    /// Connections waiting for a request.
    idle: Mutex<Vec<Connection>>,
    /// The most idle connections kept: one per request that may be in flight.
    max_idle: usize,
}

/// One TCP connection and what was read from it but not yet taken.
#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    read: BytesMut,
    /// For a connection opened for the request about to use it: how, and when the opening
    /// began, which is then when that request went to the server.
    opening: Option<Opening>,
    /// Whether the kernel stamps this socket's reads with their bytes' arrival.
    stamped: bool,
    /// When the request being answered was sent: no read is stamped before it.
    sent_ns: u64,
    /// What the reads of the exchange under way brought, for its [`HttpTrace`].
    received: Received,
}

/// How a connection was opened, kept until the request it was opened for is written.
#[derive(Debug, Clone, Copy)]
struct Opening {
    /// When the opening began.
    began_ns: u64,
    /// Time spent finding the server's address (waiting for another connection's lookup
    /// included; next to nothing once the address is known).
    dns_lookup_ns: u64,
    /// Time spent connecting, from the address known to the socket ready.
    connecting_ns: u64,
}

/// What one exchange's body brought, counted as AIPerf's trace counts it: the reads that
/// yielded body data (a read holding only a chunked body's last chunk yields none), and that
/// data's bytes, framing left out.
#[derive(Debug, Default)]
struct Received {
    /// Whether the response's head is complete, so that what is read next is its body.
    in_body: bool,
    /// The arrival of the last read of the body that no body data has come out of yet.
    uncounted_read_ns: Option<u64>,
    /// Reads that yielded body data.
    body_reads: u32,
    /// The body data's bytes.
    body_bytes: u64,
    /// The arrival of the first of those reads.
    body_first_ns: Option<u64>,
    /// The arrival of the last.
    body_last_ns: Option<u64>,
}

impl Received {
    /// A read of the body (or the read that completed the head, with body bytes after it)
    /// arrived at `at`.
    fn read_arrived(&mut self, at: u64) {
        self.uncounted_read_ns = Some(at);
    }

    /// `bytes` of body data came out of the reads so far: the read they came with counts, once.
    fn data(&mut self, bytes: usize) {
        self.body_bytes += bytes as u64;
        if let Some(at) = self.uncounted_read_ns.take() {
            self.body_reads += 1;
            self.body_first_ns.get_or_insert(at);
            self.body_last_ns = Some(at);
        }
    }

    /// Makes a body taken whole (not an event stream) one chunk arrived with its last read, as
    /// AIPerf's trace sees a body it reads at once.
    fn as_one_chunk(&mut self) {
        self.body_reads = self.body_reads.min(1);
        self.body_first_ns = self.body_last_ns;
    }
}

/// How an exchange on one connection ended, when it did not end with a response.
enum Failure {
    /// A kept-alive connection could not take the request's bytes (the server had closed it
    /// between the liveness check and the write): the request is sent again on a new
    /// connection. Once written, a request is never sent again: the server may have acted on
    /// it (RFC 9110 §9.2.2).
    Stale(String),
    /// Anything else: the request failed with this error.
    Error(TransportError),
}

impl From<TransportError> for Failure {
    fn from(error: TransportError) -> Self {
        Self::Error(error)
    }
}

/// A request as it goes on the wire.
struct Outgoing<'a> {
    head: Vec<u8>,
    body: &'a [u8],
}

impl Http1Client {
    /// A client for `target` (an `http://` URL) keeping up to `max_idle` idle connections.
    pub(crate) fn new(target: HttpTarget, max_idle: usize) -> Result<Self, CreateError> {
        let url = &target.url;
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return Err(CreateError::new(format!(
                "`{url}` names no host: pass --url http://HOST:PORT"
            )));
        };
        let address = format!("{host}:{port}");
        let mut fixed_headers = Vec::with_capacity(256);
        // A `-H 'Host: ...'` (a server behind an ingress reached by its IP) replaces the URL's.
        if !target.headers.contains_key(reqwest::header::HOST) {
            fixed_headers.extend_from_slice(b"Host: ");
            fixed_headers.extend_from_slice(host.as_bytes());
            if let Some(port) = url.port() {
                fixed_headers.push(b':');
                fixed_headers.extend_from_slice(port.to_string().as_bytes());
            }
            fixed_headers.extend_from_slice(b"\r\n");
        }
        for (name, value) in &target.headers {
            push_header(&mut fixed_headers, name.as_str(), value.as_bytes());
        }
        Ok(Self {
            target,
            address,
            resolved: tokio::sync::OnceCell::new(),
            fixed_headers,
            idle: Mutex::new(Vec::new()),
            max_idle: max_idle.max(1),
        })
    }

    /// Sends one request and records its response (`Transport::send`), bounded by the request
    /// timeout.
    pub(crate) async fn send(
        &self,
        request: TransportRequest<'_>,
        sink: &mut ResponseSink,
    ) -> Result<(), TransportError> {
        let post = async |sink: &mut ResponseSink| self.post(request, sink).await;
        request_timeout::within(self.target.timeout, sink, post).await
    }

    /// `GET /v1/models` (OpenAI's model list): any HTTP answer, even 404 from a server that
    /// has no such route, shows the server is there.
    pub(crate) async fn probe(&self) -> Result<(), TransportError> {
        let mut sink = ResponseSink::default();
        let probe = self.exchange(self.get(PROBE_PATH), self.checkout(), &mut sink);
        match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
            Err(_elapsed) => Err(TransportError::new(
                TransportErrorKind::Timeout,
                format!(
                    "no answer to GET {PROBE_PATH} within {} s ({}): check that the server at {} \
                     is up and not overloaded",
                    PROBE_TIMEOUT.as_secs(),
                    request_timeout::stage(&sink),
                    self.target.base
                ),
            )),
            Ok(Err(error)) if error.kind != TransportErrorKind::Status => Err(error),
            Ok(_answered) => Ok(()),
        }
    }

    /// Opens `count` connections before the run, each carrying one `GET /v1/models` (so that
    /// the server has accepted it, not just the kernel) and then kept idle for the run's
    /// requests. Returns how many answered.
    pub(crate) async fn open_connections(&self, count: usize) -> usize {
        let count = count.min(self.max_idle);
        let opened = futures_util::stream::iter(0..count)
            .map(|_| async {
                let mut sink = ResponseSink::default();
                let answered = async {
                    let connection = self.connect().await?;
                    self.exchange(self.get(PROBE_PATH), Some(connection), &mut sink)
                        .await
                };
                match tokio::time::timeout(PROBE_TIMEOUT, answered).await {
                    Ok(Ok(())) => Some(()),
                    Ok(Err(error)) if error.kind == TransportErrorKind::Status => Some(()),
                    _ => None,
                }
            })
            .buffer_unordered(OPENING_AT_ONCE);
        opened.filter_map(std::future::ready).count().await
    }

    /// A `POST` of the request's payload.
    async fn post(
        &self,
        request: TransportRequest<'_>,
        sink: &mut ResponseSink,
    ) -> Result<(), TransportError> {
        let id = request.request_id;
        if !http_common::is_header_safe(id) {
            return Err(http_common::request_id_error(id));
        }
        let accept_events = request.streaming && self.target.accept_event_stream;
        let mut head = self.head_start("POST", request.path, request.payload.len());
        push_header(&mut head, "x-request-id", id.as_bytes());
        if http_common::is_header_safe(request.correlation_id) {
            for name in &self.target.session_headers {
                push_header(&mut head, name.as_str(), request.correlation_id.as_bytes());
            }
        }
        if accept_events {
            push_header(&mut head, "accept", http_common::EVENT_STREAM);
        }
        head.extend_from_slice(b"\r\n");
        let outgoing = Outgoing {
            head,
            body: &request.payload,
        };
        self.exchange(outgoing, self.checkout(), sink).await
    }

    /// A `GET` of `path`, without a body.
    fn get(&self, path: &str) -> Outgoing<'static> {
        let mut head = self.head_start("GET", path, 0);
        head.extend_from_slice(b"\r\n");
        Outgoing { head, body: &[] }
    }

    /// The request line, the fixed headers and `Content-Length`, without the blank line that
    /// ends the head.
    fn head_start(&self, method: &str, path: &str, content_length: usize) -> Vec<u8> {
        let mut target = String::with_capacity(self.target.url.path().len() + path.len() + 1);
        target.push_str(self.target.url.path().trim_end_matches('/'));
        self.target.push_path(&mut target, path);
        if !target.starts_with('/') {
            target.insert(0, '/');
        }
        // Room for the per-request headers: content-length, x-request-id, the two conversation
        // headers (a UUID each) and accept.
        let mut head = Vec::with_capacity(target.len() + self.fixed_headers.len() + 256);
        head.extend_from_slice(method.as_bytes());
        head.push(b' ');
        push_request_target(&mut head, &target);
        head.extend_from_slice(b" HTTP/1.1\r\n");
        head.extend_from_slice(&self.fixed_headers);
        if method == "POST" || content_length > 0 {
            head.extend_from_slice(b"content-length: ");
            head.extend_from_slice(itoa::Buffer::new().format(content_length).as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head
    }

    /// Sends `outgoing` on `connection` (or, if the pool had none, a connection opened now)
    /// and reads its response into `sink`; a stale kept-alive connection is replaced once.
    async fn exchange(
        &self,
        outgoing: Outgoing<'_>,
        connection: Option<Connection>,
        sink: &mut ResponseSink,
    ) -> Result<(), TransportError> {
        let (mut connection, mut may_retry) = match connection {
            Some(pooled) => (pooled, true),
            None => (self.connect().await?, false),
        };
        loop {
            match connection.round_trip(&outgoing, sink).await {
                Ok(answer) => {
                    if answer.reusable {
                        self.checkin(connection);
                    }
                    return answer.outcome;
                }
                Err(Failure::Stale(_)) if may_retry => {
                    may_retry = false;
                    connection = self.connect().await?;
                }
                Err(Failure::Stale(cause)) => {
                    return Err(head_error(format!(
                        "the request could not be written ({cause})"
                    )));
                }
                Err(Failure::Error(error)) => return Err(error),
            }
        }
    }

    /// An idle connection that is still open, if the pool has one. A connection the server
    /// closed while it was idle (a keep-alive timeout) shows it by being readable (its end,
    /// or bytes nobody asked for): it is dropped before any request is written to it. The
    /// check goes by what the runtime has seen of the socket, so a close that arrived in the
    /// last moment before the write can still slip through (the request then fails as
    /// "closed before a response arrived", as with any HTTP/1.1 client).
    fn checkout(&self) -> Option<Connection> {
        loop {
            let connection = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()?;
            // Without a readiness event since its last read, tokio answers without a syscall.
            let mut probe = [0; 1];
            match connection.stream.try_read(&mut probe) {
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    return Some(connection);
                }
                _closed_or_unexpected => drop(connection),
            }
        }
    }

    /// Puts a connection that may carry another request back in the pool (unless it is full).
    fn checkin(&self, connection: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push(connection);
        }
    }

    /// Opens a new connection, remembering when the opening began and how long its steps took.
    async fn connect(&self) -> Result<Connection, TransportError> {
        let began_ns = now_ns();
        let unreachable = |error: std::io::Error| {
            http_common::connect_error(&self.target.base, &error.to_string())
        };
        let addresses = self
            .resolved
            .get_or_try_init(|| async {
                let found = tokio::net::lookup_host(&self.address).await?;
                Ok::<_, std::io::Error>(found.collect())
            })
            .await
            .map_err(unreachable)?;
        let addressed_ns = now_ns();
        let stream = TcpStream::connect(&addresses[..])
            .await
            .map_err(unreachable)?;
        stream.set_nodelay(true).map_err(unreachable)?;
        let stamped = receive_stamps::enable(&stream);
        let opening = Opening {
            began_ns,
            dns_lookup_ns: addressed_ns.saturating_sub(began_ns),
            connecting_ns: now_ns().saturating_sub(addressed_ns),
        };
        Ok(Connection {
            stream,
            read: BytesMut::with_capacity(READ_BUFFER),
            opening: Some(opening),
            stamped,
            sent_ns: began_ns,
            received: Received::default(),
        })
    }
}

/// A response that arrived: how the request ended, and whether its connection may carry
/// another.
struct Answer {
    outcome: Result<(), TransportError>,
    reusable: bool,
}

impl Connection {
    /// Writes the request and reads its response into `sink`.
    async fn round_trip(
        &mut self,
        outgoing: &Outgoing<'_>,
        sink: &mut ResponseSink,
    ) -> Result<Answer, Failure> {
        let opening = self.opening.take();
        let fresh = opening.is_some();
        let send_start_ns = now_ns();
        self.sent_ns = opening.map_or(send_start_ns, |opening| opening.began_ns);
        sink.sent_ns = Some(self.sent_ns);
        self.received = Received::default();
        let mut bytes = Buf::chain(outgoing.head.as_slice(), outgoing.body);
        let writes = match write_counted(&mut self.stream, &mut bytes).await {
            Ok(writes) => writes,
            // A kept-alive connection that failed the write carried nothing of the request
            // to a server that could act on it: it is sent again, on a new connection.
            Err(error) if fresh => {
                let cause = format!("the request could not be written ({error})");
                return Err(Failure::Error(head_error(cause)));
            }
            Err(error) => return Err(Failure::Stale(error.to_string())),
        };
        let send_end_ns = now_ns();
        let answer = self.read_response(sink).await?;
        sink.http_trace = Some(HttpTrace {
            connection_reused: !fresh,
            // A request never waits for the pool: without an idle connection it opens one.
            blocked_ns: 0,
            dns_lookup_ns: opening.map_or(0, |opening| opening.dns_lookup_ns),
            connecting_ns: opening.map_or(0, |opening| opening.connecting_ns),
            send_start_ns,
            send_end_ns,
            writes,
            body_bytes_sent: outgoing.body.len() as u64,
            body_first_ns: self.received.body_first_ns,
            body_last_ns: self.received.body_last_ns,
            body_reads: self.received.body_reads,
            body_bytes_received: self.received.body_bytes,
        });
        Ok(answer)
    }

    /// Reads the response to the request just written into `sink`.
    async fn read_response(&mut self, sink: &mut ResponseSink) -> Result<Answer, Failure> {
        let mut head_read_ns = None;
        let head = loop {
            match ResponseHead::take(&mut self.read) {
                Ok(Some(head)) => break head,
                Ok(None) => {}
                Err(malformed) => {
                    return Err(head_error(format!("the server sent {malformed}")).into());
                }
            }
            let cause = match self.fill().await {
                Ok((0, _)) if head_read_ns.is_none() => {
                    "the server closed the connection before a response arrived".to_owned()
                }
                Ok((0, _)) => {
                    "the server closed the connection inside the response head".to_owned()
                }
                Ok((_, received_ns)) => {
                    head_read_ns = Some(received_ns);
                    continue;
                }
                Err(error) => {
                    format!("the connection failed before a complete response head ({error})")
                }
            };
            return Err(head_error(cause).into());
        };
        sink.ack_ns = head_read_ns;
        sink.status = Some(head.status);
        self.received.in_body = true;
        if let Some(at) = head_read_ns.filter(|_| !self.read.is_empty()) {
            // Body bytes came in the read that completed the head.
            self.received.read_arrived(at);
        }
        let mut body = Body {
            framing: head.framing.clone(),
            connection: self,
        };
        if !(200..300).contains(&head.status) {
            let (kept, truncated) = body.read_error_start().await;
            let error = http_common::status_error(
                head.status,
                head.retry_after.as_deref(),
                &kept,
                truncated,
            );
            return Ok(Answer {
                outcome: Err(error),
                reusable: head.keep_alive && body.is_clean_end(),
            });
        }
        let outcome = if head.event_stream {
            body.read_events(sink).await
        } else {
            body.read_whole(sink).await
        };
        Ok(Answer {
            // An event stream cut inside an event still ended its body cleanly.
            reusable: head.keep_alive && body.is_clean_end(),
            outcome,
        })
    }

    /// Reads from the socket into the read buffer, making room first: how many bytes came
    /// (0 at the connection's end) and when they arrived, by the kernel's stamp
    /// ([`receive_stamps`]) or, without one, as the read returned. Counted in
    /// [`Connection::received`].
    async fn fill(&mut self) -> std::io::Result<(usize, u64)> {
        let (read, at) = self.read_more().await?;
        if read > 0 && self.received.in_body {
            self.received.read_arrived(at);
        }
        Ok((read, at))
    }

    /// [`Connection::fill`]'s read.
    async fn read_more(&mut self) -> std::io::Result<(usize, u64)> {
        if self.read.capacity() - self.read.len() < MIN_READ_ROOM {
            self.read.reserve(READ_BUFFER);
        }
        if !self.stamped {
            let read = self.stream.read_buf(&mut self.read).await?;
            return Ok((read, now_ns()));
        }
        loop {
            self.stream.readable().await?;
            let room = self.read.capacity() - self.read.len();
            let buffer = &mut self.read;
            let received = receive_stamps::try_receive_with(&self.stream, room, |bytes| {
                buffer.extend_from_slice(bytes);
            });
            match received {
                // Never before the request left: the two clocks' offset is read anew for
                // each stamp, and a wall-clock step could move one backwards.
                Ok((read, stamp)) => {
                    let stamp = stamp.unwrap_or_else(now_ns).max(self.sent_ns);
                    return Ok((read, stamp));
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
        }
    }
}

/// A response body being read off its connection.
struct Body<'a> {
    framing: BodyFraming,
    connection: &'a mut Connection,
}

impl Body<'_> {
    /// The next piece of the body: `Ok(Some((piece, received_ns)))`, stamped with the arrival
    /// of the read that brought it (`None` for bytes read before), or `Ok(None)` at its end.
    async fn next_piece(&mut self) -> Result<Option<(Bytes, Option<u64>)>, String> {
        let mut received_ns = None;
        loop {
            if let Some(piece) = self.framing.next_piece(&mut self.connection.read)? {
                self.connection.received.data(piece.len());
                return Ok(Some((piece, received_ns)));
            }
            if self.framing.is_done() {
                return Ok(None);
            }
            match self.connection.fill().await {
                Ok((0, _)) => {
                    self.framing.end_of_input()?;
                    return Ok(None);
                }
                Ok((_, read_ns)) => received_ns = Some(read_ns),
                Err(error) => return Err(error.to_string()),
            }
        }
    }

    /// Reads an event stream: each event is one chunk, stamped with the arrival of the read
    /// that completed it.
    async fn read_events(&mut self, sink: &mut ResponseSink) -> Result<(), TransportError> {
        let mut parser = SseParser::new();
        let mut store = EventStore::default();
        let mut received_ns = sink.ack_ns.unwrap_or_else(now_ns);
        loop {
            match self.next_piece().await {
                Ok(Some((piece, read_ns))) => {
                    received_ns = read_ns.unwrap_or(received_ns);
                    for event in parser.feed(piece) {
                        let data = store.for_sink(sink, event.data);
                        sink.push(TimedChunk { received_ns, data });
                    }
                }
                Ok(None) => break,
                Err(cause) => {
                    return Err(http_common::broken_body(
                        &cause,
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
    async fn read_whole(&mut self, sink: &mut ResponseSink) -> Result<(), TransportError> {
        let mut received_ns = sink.ack_ns.unwrap_or_else(now_ns);
        let mut first: Option<Bytes> = None;
        let mut joined: Option<BytesMut> = None;
        loop {
            match self.next_piece().await {
                Ok(Some((piece, read_ns))) => {
                    received_ns = read_ns.unwrap_or(received_ns);
                    match (&mut joined, first.take()) {
                        (Some(joined), _) => joined.extend_from_slice(&piece),
                        (None, Some(first)) => {
                            let mut both = BytesMut::with_capacity(first.len() + piece.len());
                            both.extend_from_slice(&first);
                            both.extend_from_slice(&piece);
                            joined = Some(both);
                        }
                        (None, None) => first = Some(piece),
                    }
                }
                Ok(None) => break,
                Err(cause) => return Err(http_common::broken_body(&cause, "mid-body")),
            }
        }
        let data = match joined {
            Some(joined) => joined.freeze(),
            None => first.unwrap_or_default(),
        };
        self.connection.received.as_one_chunk();
        sink.push(TimedChunk { received_ns, data });
        Ok(())
    }

    /// Reads up to [`ERROR_BODY_READ`] bytes of an error body; returns its first
    /// [`ERROR_BODY_KEPT`] bytes and whether more than those came.
    async fn read_error_start(&mut self) -> (Vec<u8>, bool) {
        let mut kept = Vec::new();
        let mut read = 0;
        while read < ERROR_BODY_READ {
            let Ok(Some((piece, _))) = self.next_piece().await else {
                break;
            };
            read += piece.len();
            let room = ERROR_BODY_KEPT - kept.len();
            kept.extend_from_slice(&piece[..piece.len().min(room)]);
        }
        let truncated = read > kept.len();
        (kept, truncated)
    }

    /// Whether the body was read to its end and nothing follows it (a server does not send
    /// before it is asked: bytes after the body mean the connection cannot be trusted).
    fn is_clean_end(&self) -> bool {
        self.framing.is_done() && self.connection.read.is_empty()
    }
}

/// Writes all of `bytes` to `stream` (vectored where the buffers allow); returns how many
/// writes it took.
async fn write_counted(stream: &mut TcpStream, bytes: &mut impl Buf) -> std::io::Result<u32> {
    let mut writes = 0;
    while bytes.has_remaining() {
        if stream.write_buf(bytes).await? == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        writes += 1;
    }
    Ok(writes)
}

/// A failure before a complete response head arrived.
fn head_error(cause: String) -> TransportError {
    TransportError::new(
        TransportErrorKind::Protocol,
        format!("{cause}: check that --url points at an HTTP/1.1 server and that it is healthy"),
    )
}

/// Appends a request target, percent-encoding any byte that may not appear in one as it is
/// (spaces, control characters, non-ASCII), as a URL parser would: a path from `--endpoint`
/// can never break the request line or add a header.
fn push_request_target(head: &mut Vec<u8>, target: &str) {
    for &byte in target.as_bytes() {
        if byte.is_ascii_graphic() {
            head.push(byte);
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            head.extend_from_slice(&[
                b'%',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 15)],
            ]);
        }
    }
}

/// Appends `name: value\r\n`.
fn push_header(head: &mut Vec<u8>, name: &str, value: &[u8]) {
    head.extend_from_slice(name.as_bytes());
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use aiperf_core::transport::TransportContext;

    use super::*;

    fn client(url: &str, headers: &[(&str, &str)]) -> Http1Client {
        let ctx = TransportContext {
            url: Some(url.to_owned()),
            headers: headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            ..TransportContext::default()
        };
        Http1Client::new(HttpTarget::new(&ctx, "http").unwrap(), 1).unwrap()
    }

    fn head(client: &Http1Client, path: &str) -> String {
        String::from_utf8(client.head_start("POST", path, 7)).unwrap()
    }

    #[test]
    fn the_head_names_the_base_path_the_query_the_host_and_the_length() {
        let client = client("http://h:8000/prefix/?api-version=2", &[("X-Key", "k")]);
        assert_eq!(
            head(&client, "/v1/chat/completions"),
            "POST /prefix/v1/chat/completions?api-version=2 HTTP/1.1\r\nHost: h:8000\r\n\
             x-key: k\r\ncontent-type: application/json\r\ncontent-length: 7\r\n"
        );
        for base in ["http://h:8000/v1", "http://h:8000/v1/chat/completions/"] {
            let head = head(&self::client(base, &[]), "/v1/chat/completions");
            assert!(
                head.starts_with("POST /v1/chat/completions HTTP/1.1\r\n"),
                "{base}: {head}"
            );
        }
    }

    #[test]
    fn a_users_host_header_replaces_the_urls() {
        let client = client("http://10.0.0.1:80", &[("Host", "api.example")]);
        let head = head(&client, "/v1/x");
        assert!(head.contains("host: api.example\r\n"), "{head}");
        assert_eq!(head.matches("ost: ").count(), 1, "one Host header: {head}");
    }

    #[test]
    fn a_path_cannot_break_the_request_line() {
        let client = client("http://h:1", &[]);
        let head = head(&client, "/v1/a b\r\nX-Evil: 1/é");
        assert!(
            head.starts_with("POST /v1/a%20b%0D%0AX-Evil:%201/%C3%A9 HTTP/1.1\r\n"),
            "{head}"
        );
    }
}
