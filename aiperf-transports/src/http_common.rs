//! What every HTTP exchange shares, whichever client carries it (`http1` for `http://` URLs of
//! the `http` transport, reqwest in `http_exchange` for HTTP/2 and TLS): the checked target
//! (`--url`, `-H`, the timeout), how events are kept for a sink that does not parse them, and
//! the messages of failures.
//!
//! Messages name the kind of failure and where it happened (before the headers, before the
//! first event, mid-stream), never per-request figures, so that the error summary, which groups
//! by code, type and message, has one row per way of failing.

use std::borrow::Cow;
use std::time::Duration;

use aiperf_core::registry::CreateError;
use aiperf_core::transport::{ResponseSink, TransportContext, TransportError, TransportErrorKind};
use bytes::{Bytes, BytesMut};
use reqwest::Url;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue,
    TRANSFER_ENCODING,
};

use crate::conversation_headers;

/// How much of an error response's body its message keeps.
pub(crate) const ERROR_BODY_KEPT: usize = 4 * 1024;
/// How much of an error response's body is read (the rest is dropped with the connection).
pub(crate) const ERROR_BODY_READ: usize = 64 * 1024;
/// How long one readiness probe may take.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// The media type of server-sent events.
pub(crate) const EVENT_STREAM: &[u8] = b"text/event-stream";
/// The path of readiness probes and of the requests that open connections before a run:
/// OpenAI's model list. Any HTTP answer, even 404 from a server without the route, shows the
/// server is there.
pub(crate) const PROBE_PATH: &str = "/v1/models";

/// The server a transport sends to and how: `--url` checked and split, the run's headers
/// checked, the request timeout.
#[derive(Debug)]
pub(crate) struct HttpTarget {
    /// The base URL without its query and trailing slash: `http://host:8000` or
    /// `http://host/prefix`.
    pub base: String,
    /// The base URL, parsed (no query, no fragment): what the `http` transport's own client
    /// connects to (reqwest takes `base`).
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub url: Url,
    /// The base URL's query (without `?`), appended to every request's URL.
    pub query: Option<String>,
    /// The run's headers (`-H`, `--api-key`) plus `Content-Type: application/json` unless given.
    pub headers: HeaderMap,
    /// Whether to ask for `text/event-stream` on streaming requests (the user did not set
    /// `Accept` themselves).
    pub accept_event_stream: bool,
    /// The conversation headers sent with each request's correlation id
    /// ([`conversation_headers::to_send`]).
    pub session_headers: Vec<HeaderName>,
    /// The request timeout: connect, first byte and the whole stream.
    pub timeout: Option<Duration>,
}

impl HttpTarget {
    /// Checks the context: `--url` (an `http://` URL, or `https://` with the `tls` feature),
    /// the headers, the timeout. `name` is the transport's, for messages.
    pub(crate) fn new(ctx: &TransportContext, name: &str) -> Result<Self, CreateError> {
        let (mut url, query) = base_url(ctx.url.as_deref(), name)?;
        let mut given = Cow::Borrowed(&ctx.headers[..]);
        if let Some(basic) = take_credentials(&mut url) {
            if given
                .iter()
                .any(|(name, _)| name.trim().eq_ignore_ascii_case("authorization"))
            {
                return Err(CreateError::new(
                    "the --url's credentials (user:password@) and an Authorization header (-H or \
                     --api-key) both authenticate: give one of them",
                ));
            }
            given.to_mut().push(("Authorization".to_owned(), basic));
        }
        let mut headers = default_headers(&given)?;
        // AIPerf's X-Session-Affinity is authoritative: the request's correlation id.
        headers.remove(conversation_headers::SESSION_AFFINITY);
        let timeout = crate::request_timeout::limit(ctx)?;
        Ok(Self {
            base: url.as_str().trim_end_matches('/').to_owned(),
            url,
            query,
            accept_event_stream: !headers.contains_key(ACCEPT),
            session_headers: conversation_headers::to_send(ctx, |name| headers.contains_key(name))?,
            headers,
            timeout,
        })
    }

    /// The URL of a request to `path`: the base URL, one `/`, the path, then the base URL's
    /// query.
    pub(crate) fn url_for(&self, path: &str) -> String {
        let mut url = String::with_capacity(self.base.len() + path.len() + 1);
        url.push_str(&self.base);
        self.push_path(&mut url, path);
        url
    }

    /// Appends to `out` what follows the base URL for a request to `path`: one `/`, the path
    /// (less what the base URL already holds of it: [`beyond_base`]), then the base URL's
    /// query.
    pub(crate) fn push_path(&self, out: &mut String, path: &str) {
        let path = beyond_base(self.url.path(), path);
        if !path.is_empty() && !path.starts_with('/') {
            out.push('/');
        }
        out.push_str(path);
        if let Some(query) = &self.query {
            out.push(if path.contains('?') { '&' } else { '?' });
            out.push_str(query);
        }
    }

    /// Whether the URL is `https://`.
    #[cfg(feature = "http")]
    pub(crate) fn is_tls(&self) -> bool {
        self.url.scheme() == "https"
    }
}

/// What of `path` to append to a base URL whose path is `base_path`, with AIPerf's two
/// corrections of a `--url` that already holds part of it: nothing when the base URL ends with
/// the whole path (`--url http://host/v1/chat/completions`), and the path less its `v1/` when
/// the base URL ends with `/v1` (`--url http://host/v1`). Any other path is appended whole.
fn beyond_base<'p>(base_path: &str, path: &'p str) -> &'p str {
    let base = base_path.trim_end_matches('/');
    let relative = path.trim_start_matches('/');
    let ends_with_path = base
        .strip_suffix(relative)
        .is_some_and(|before| before.ends_with('/'));
    if !relative.is_empty() && ends_with_path {
        return "";
    }
    match relative.strip_prefix("v1/") {
        Some(rest) if base.ends_with("/v1") => rest,
        _ => path,
    }
}

/// Checks `--url` and splits it into the base (no query, no fragment) and its query.
fn base_url(url: Option<&str>, name: &str) -> Result<(Url, Option<String>), CreateError> {
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
        "https" => return Err(crate::connect_failure::tls_not_built(url, "http")),
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
    Ok((parsed, query))
}

/// Takes the credentials out of `url` (`http://user:password@host`) and returns them as the
/// `Authorization: Basic` value that sends them, as AIPerf's client does.
fn take_credentials(url: &mut Url) -> Option<String> {
    use base64::Engine;
    use percent_encoding::percent_decode_str;

    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let user = percent_decode_str(url.username()).decode_utf8_lossy();
    let password = percent_decode_str(url.password().unwrap_or_default()).decode_utf8_lossy();
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    // Clearing them cannot fail on an http(s) URL, which has a host.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Some(format!("Basic {encoded}"))
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
        if header == CONTENT_LENGTH || header == TRANSFER_ENCODING {
            return Err(CreateError::new(format!(
                "`{name}` frames each request's body, which aiperf sets itself: remove -H \
                 '{name}: ...'"
            )));
        }
        if header == AUTHORIZATION || header.as_str().contains("key") {
            value.set_sensitive(true);
        }
        // A header given twice is sent once, with the last value (AIPerf's header dict keeps
        // the last of two same-case names).
        map.insert(header, value);
    }
    if !map.contains_key(CONTENT_TYPE) {
        map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    Ok(map)
}

/// Whether a `Content-Type` value is `text/event-stream` (parameters allowed).
pub(crate) fn is_event_stream(content_type: &[u8]) -> bool {
    content_type
        .get(..EVENT_STREAM.len())
        .is_some_and(|media_type| media_type.eq_ignore_ascii_case(EVENT_STREAM))
}

/// Where a streamed request keeps its events' data until the request ends and they are parsed,
/// when its sink does not parse them as they come.
///
/// An event's data arrives as a slice of the connection's read buffer. Kept as it is, each
/// event would hold its whole read buffer alive until the request ends, and the connection
/// would allocate a fresh buffer for every read: hundreds of KiB per stream, and a large
/// allocation per event. Copying the few hundred bytes into blocks of the request's own
/// (growing with the stream, so a short stream stays small) costs a `memcpy` and lets the
/// connection reuse its buffer.
#[derive(Default)]
pub(crate) struct EventStore {
    block: BytesMut,
    kept: usize,
}

impl EventStore {
    /// The smallest block: a few typical chat chunks.
    const MIN_BLOCK: usize = 1024;
    /// The largest block.
    const MAX_BLOCK: usize = 16 * 1024;

    /// A copy of `data` in the store.
    pub(crate) fn keep(&mut self, data: &[u8]) -> Bytes {
        if self.block.capacity() < data.len() {
            let block = self.kept.clamp(Self::MIN_BLOCK, Self::MAX_BLOCK);
            self.block.reserve(block.max(data.len()));
        }
        self.block.extend_from_slice(data);
        self.kept += data.len();
        self.block.split().freeze()
    }

    /// `data` as the sink may keep it: itself when the sink parses it at once, else a copy.
    pub(crate) fn for_sink(&mut self, sink: &ResponseSink, data: Bytes) -> Bytes {
        if sink.consumes() {
            data
        } else {
            self.keep(&data)
        }
    }
}

/// The error of a non-2xx response, close to AIPerf's: its message is the body, as AIPerf's is
/// (here its start, with `...` when it was longer than what was kept, so that a run of large
/// error pages holds no more than a few KiB of each), then the `retry-after` the server asked
/// for, if any (`slow down... (retry-after: 2)`), which AIPerf leaves out. The error summary
/// names it by the status's reason phrase
/// ([`aiperf_core::transport::TransportError::summary_type`]).
pub(crate) fn status_error(
    code: u16,
    retry_after: Option<&[u8]>,
    body_start: &[u8],
    truncated: bool,
) -> TransportError {
    let mut message = utf8_prefix(body_start).trim().to_owned();
    if truncated && !message.is_empty() {
        message.push_str("...");
    }
    if let Some(retry_after) = retry_after {
        if !message.is_empty() {
            message.push(' ');
        }
        message.push_str("(retry-after: ");
        message.push_str(utf8_prefix(retry_after).trim());
        message.push(')');
    }
    TransportError {
        kind: TransportErrorKind::Status,
        code: Some(code),
        message,
    }
}

/// Whether `id` can be sent as a header value as it is (visible ASCII: a UUID can).
pub(crate) fn is_header_safe(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_graphic())
}

/// The error of a request id that cannot be sent as an `X-Request-ID` header.
pub(crate) fn request_id_error(id: &str) -> TransportError {
    TransportError::new(
        TransportErrorKind::Protocol,
        format!("request id `{id}` cannot be sent as an X-Request-ID header: use visible ASCII"),
    )
}

/// The error of a body that failed at `stage` (see [`crate::request_timeout::stage`]), because
/// of `cause`.
pub(crate) fn broken_body(cause: &str, stage: &str) -> TransportError {
    TransportError::new(
        TransportErrorKind::Protocol,
        format!(
            "the response broke off {stage} ({cause}): the server closed the connection or sent \
             a malformed body"
        ),
    )
}

/// The error of a server at `base` that could not be reached at all
/// ([`crate::connect_failure::connect_error`]).
pub(crate) fn connect_error(base: &str, cause: &str) -> TransportError {
    crate::connect_failure::connect_error(&format!("the server at {base}"), cause)
}

/// The text of `bytes`, dropping a character cut at the end and replacing invalid UTF-8.
pub(crate) fn utf8_prefix(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(error) if error.error_len().is_none() => {
            String::from_utf8_lossy(&bytes[..error.valid_up_to()])
        }
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create_error(ctx: &TransportContext) -> String {
        HttpTarget::new(ctx, "http").unwrap_err().message
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
            // AIPerf's corrections: a base URL ending with the whole path, or with /v1.
            ("http://h:1/v1", "/v1/chat", "http://h:1/v1/chat"),
            ("http://h:1/v1/", "/v1/chat", "http://h:1/v1/chat"),
            (
                "http://h:1/api/v1",
                "/v1/models",
                "http://h:1/api/v1/models",
            ),
            ("http://h:1/v1/chat", "/v1/chat", "http://h:1/v1/chat"),
            (
                "http://h:1/v1/chat?api-version=2",
                "/v1/chat",
                "http://h:1/v1/chat?api-version=2",
            ),
            // No other overlap is guessed at.
            (
                "http://h:1/api/v10",
                "/v1/models",
                "http://h:1/api/v10/v1/models",
            ),
            ("http://h:1/xv1", "/v1/models", "http://h:1/xv1/v1/models"),
            (
                "http://h:1/deployments/chat",
                "/chat/completions",
                "http://h:1/deployments/chat/chat/completions",
            ),
            (
                "http://h:1/v1/chat/completions",
                "/v1/models",
                "http://h:1/v1/chat/completions/v1/models",
            ),
        ] {
            let target = HttpTarget::new(&TransportContext::for_url(base), "http").unwrap();
            assert_eq!(target.url_for(path), expected, "{base} + {path}");
        }
    }

    #[test]
    fn a_missing_or_wrong_url_says_what_to_pass() {
        let missing = create_error(&TransportContext::default());
        assert!(missing.contains("pass --url http://"), "{missing}");
        let no_scheme = create_error(&TransportContext::for_url("localhost:8000"));
        assert!(
            no_scheme.contains("pass --url http://localhost:8000"),
            "{no_scheme}"
        );
        let scheme = create_error(&TransportContext::for_url("grpc://localhost:8000"));
        assert!(scheme.contains("not `grpc://`"), "{scheme}");
        let named = HttpTarget::new(&TransportContext::default(), "http2");
        let named = named.unwrap_err().message;
        assert!(named.starts_with("the http2 transport needs"), "{named}");
        let invalid = create_error(&TransportContext::for_url("http://"));
        assert!(invalid.contains("not a valid URL"), "{invalid}");
    }

    #[test]
    fn https_is_accepted_exactly_when_tls_is_built_in() {
        let result = HttpTarget::new(&TransportContext::for_url("https://example.com"), "http");
        if cfg!(feature = "tls") {
            assert_eq!(result.unwrap().url.scheme(), "https");
        } else {
            let message = result.unwrap_err().message;
            assert!(message.contains("`tls` feature"), "{message}");
        }
    }

    #[test]
    fn invalid_headers_are_named() {
        let mut ctx = TransportContext::for_url("http://h:1");
        ctx.headers = vec![("Bad Name".into(), "v".into())];
        assert!(create_error(&ctx).contains("`Bad Name` is not a valid HTTP header name"));
        ctx.headers = vec![("X-Ok".into(), "line\nbreak".into())];
        assert!(create_error(&ctx).contains("value of header `X-Ok`"));
        ctx.headers = vec![("Content-Length".into(), "5".into())];
        assert!(create_error(&ctx).contains("remove -H 'Content-Length: ...'"));
    }

    #[test]
    fn content_type_and_accept_defer_to_the_users_headers() {
        let target = HttpTarget::new(&TransportContext::for_url("http://h:1"), "http").unwrap();
        assert!(target.accept_event_stream);
        assert_eq!(target.headers[CONTENT_TYPE], "application/json");

        let mut ctx = TransportContext::for_url("http://h:1");
        ctx.headers = vec![
            ("content-type".to_owned(), "application/x-ndjson".to_owned()),
            ("Accept".to_owned(), "*/*".to_owned()),
        ];
        let target = HttpTarget::new(&ctx, "http").unwrap();
        assert_eq!(target.headers[CONTENT_TYPE], "application/x-ndjson");
        assert!(!target.accept_event_stream);
    }

    #[test]
    fn the_conversation_headers_are_aiperfs() {
        let target = HttpTarget::new(&TransportContext::for_url("http://h:1"), "http").unwrap();
        assert_eq!(target.session_headers.len(), 2);
        // A user's X-Correlation-ID is kept; their X-Session-Affinity is replaced, as in AIPerf.
        let mut ctx = TransportContext::for_url("http://h:1");
        ctx.headers = vec![
            ("X-Session-Affinity".to_owned(), "mine".to_owned()),
            ("X-Correlation-ID".to_owned(), "mine".to_owned()),
        ];
        let target = HttpTarget::new(&ctx, "http").unwrap();
        assert_eq!(target.session_headers, ["x-session-affinity"]);
        assert!(!target.headers.contains_key("x-session-affinity"));
        assert!(is_header_safe("1f0c-uuid") && !is_header_safe("a b") && !is_header_safe(""));
    }

    #[test]
    fn a_header_given_twice_is_sent_once_with_its_last_value() {
        let mut ctx = TransportContext::for_url("http://h:1");
        ctx.headers = vec![
            ("X-Tenant".to_owned(), "a".to_owned()),
            ("x-tenant".to_owned(), "b".to_owned()),
        ];
        let target = HttpTarget::new(&ctx, "http").unwrap();
        let values: Vec<_> = target.headers.get_all("x-tenant").iter().collect();
        assert_eq!(values, ["b"]);
    }

    #[test]
    fn credentials_in_the_url_are_sent_as_basic_authorization() {
        let ctx = TransportContext::for_url("http://user:p%40ss@h:1/v1");
        let target = HttpTarget::new(&ctx, "http").unwrap();
        // base64("user:p@ss")
        assert_eq!(target.headers[AUTHORIZATION], "Basic dXNlcjpwQHNz");
        assert_eq!(
            target.base, "http://h:1/v1",
            "the credentials leave the URL"
        );

        let mut ctx = TransportContext::for_url("http://user:pw@h:1");
        ctx.headers = vec![("Authorization".to_owned(), "Bearer k".to_owned())];
        assert!(create_error(&ctx).contains("give one of them"));
    }

    #[test]
    fn a_zero_timeout_is_rejected() {
        let mut ctx = TransportContext::for_url("http://h:1");
        ctx.request_timeout = Some(Duration::ZERO);
        assert!(create_error(&ctx).contains("--request-timeout-seconds"));
    }

    #[test]
    fn a_cut_character_is_dropped_from_the_error_body() {
        assert_eq!(utf8_prefix("né".as_bytes()), "né");
        assert_eq!(utf8_prefix(&"né".as_bytes()[..2]), "n");
        assert_eq!(utf8_prefix(b"a\xFFb"), "a\u{FFFD}b");
    }

    #[test]
    fn status_errors_carry_the_body_start_and_the_retry_after() {
        let error = status_error(429, Some(b" 2 "), b" slow down ", true);
        assert_eq!(error.code, Some(429));
        assert_eq!(error.message, "slow down... (retry-after: 2)");
        assert_eq!(status_error(500, None, b"", false).message, "");
        assert_eq!(
            status_error(503, Some(b"5"), b"", false).message,
            "(retry-after: 5)"
        );
    }

    #[test]
    fn event_stream_content_types_are_recognised_with_parameters_and_any_case() {
        assert!(is_event_stream(b"text/event-stream"));
        assert!(is_event_stream(b"Text/Event-Stream; charset=utf-8"));
        assert!(!is_event_stream(b"application/json"));
        assert!(!is_event_stream(b"text/event"));
    }
}
