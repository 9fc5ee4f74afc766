//! The head of an HTTP/1.1 response (status line and headers), parsed with `httparse` into the
//! few facts the exchange needs: the status, how the body is framed, whether it is an event
//! stream, whether the connection may carry another request.

use bytes::{Buf, BytesMut};

use super::body_framing::BodyFraming;
use crate::http_common;

/// The most headers a response may have (hyper's limit too).
const MAX_HEADERS: usize = 100;
/// The largest head accepted: a longer one is an error, not a reason to buffer without end.
pub(super) const MAX_HEAD_BYTES: usize = 64 * 1024;

/// What the exchange needs of a response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// How the body is delimited.
    pub framing: BodyFraming,
    /// Whether `Content-Type` is `text/event-stream`.
    pub event_stream: bool,
    /// Whether the connection may carry another request once the body is read: HTTP/1.1
    /// without `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`, and a body not
    /// delimited by the connection's end.
    pub keep_alive: bool,
    /// The `Retry-After` value, kept for error statuses only.
    pub retry_after: Option<Vec<u8>>,
}

/// Whether `bytes` start like a TLS record (an alert or a handshake, protocol version 3.x): a
/// TLS server's answer to a plain-text request.
fn is_tls_record(bytes: &[u8]) -> bool {
    matches!(bytes, [0x15 | 0x16, 0x03, ..])
}

impl ResponseHead {
    /// Parses a complete head at the start of `buf` and removes it; `Ok(None)` when more bytes
    /// are needed. Interim (1xx) heads are removed and skipped. Errors say what was wrong.
    pub(super) fn take(buf: &mut BytesMut) -> Result<Option<Self>, String> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut headers);
            let length = match response.parse(buf) {
                Ok(httparse::Status::Complete(length)) => length,
                Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
                    return Err(format!(
                        "a response head longer than {MAX_HEAD_BYTES} bytes"
                    ));
                }
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(_) if is_tls_record(buf) => {
                    return Err(
                        "a TLS record instead of an HTTP response: it speaks TLS, so \
                         give an https:// --url"
                            .to_owned(),
                    );
                }
                Err(error) => return Err(format!("a malformed response head: {error}")),
            };
            let status = response.code.unwrap_or_default();
            if (100..200).contains(&status) && status != 101 {
                buf.advance(length);
                continue;
            }
            let head = Self::from_parsed(&response)?;
            buf.advance(length);
            return Ok(Some(head));
        }
    }

    fn from_parsed(response: &httparse::Response<'_, '_>) -> Result<Self, String> {
        let status = response.code.unwrap_or_default();
        if status == 101 {
            return Err("a protocol switch (101), which no request asked for".to_owned());
        }
        let mut content_length = None;
        let mut chunked = false;
        let mut transfer_coded = false;
        let mut event_stream = false;
        let mut close = false;
        let mut keep_alive_asked = false;
        let mut retry_after = None;
        for header in response.headers.iter() {
            let name = header.name;
            let value = header.value;
            if name.eq_ignore_ascii_case("content-length") {
                let length = parse_content_length(value)?;
                if content_length.is_some_and(|known| known != length) {
                    return Err("two different Content-Length headers".to_owned());
                }
                content_length = Some(length);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                transfer_coded = true;
                chunked = last_token(value).eq_ignore_ascii_case(b"chunked");
            } else if name.eq_ignore_ascii_case("content-type") {
                event_stream = http_common::is_event_stream(value);
            } else if name.eq_ignore_ascii_case("connection") {
                for token in value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive_asked |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            } else if name.eq_ignore_ascii_case("retry-after") && !(200..300).contains(&status) {
                retry_after = Some(value.to_vec());
            }
        }
        // RFC 9112 §6.3: a transfer coding decides over Content-Length; one that does not end
        // in chunked leaves the connection's end as the only delimiter.
        let framing = if status == 204 || status == 304 {
            BodyFraming::Length(0)
        } else if chunked {
            BodyFraming::chunked()
        } else if transfer_coded {
            BodyFraming::UntilClose
        } else if let Some(length) = content_length {
            BodyFraming::Length(length)
        } else {
            BodyFraming::UntilClose
        };
        let version_allows = match response.version {
            Some(1) => !close,
            _ => keep_alive_asked && !close && !transfer_coded,
        };
        // Both framings at once may be a smuggling attempt: the body is read, the
        // connection not trusted again.
        let ambiguous = transfer_coded && content_length.is_some();
        Ok(Self {
            status,
            keep_alive: version_allows && !ambiguous && framing != BodyFraming::UntilClose,
            framing,
            event_stream,
            retry_after,
        })
    }
}

/// A `Content-Length` value: decimal digits only.
fn parse_content_length(value: &[u8]) -> Result<u64, String> {
    let digits = value.trim_ascii();
    let valid = !digits.is_empty() && digits.len() <= 19 && digits.iter().all(u8::is_ascii_digit);
    if !valid {
        return Err(format!(
            "a Content-Length that is not a number: `{}`",
            http_common::utf8_prefix(value)
        ));
    }
    Ok(digits
        .iter()
        .fold(0, |length, digit| length * 10 + u64::from(digit - b'0')))
}

/// The last comma-separated token of a header value, trimmed.
fn last_token(value: &[u8]) -> &[u8] {
    value
        .rsplit(|&b| b == b',')
        .next()
        .unwrap_or_default()
        .trim_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<ResponseHead>, String> {
        ResponseHead::take(&mut BytesMut::from(text))
    }

    fn head(text: &str) -> ResponseHead {
        parse(text).unwrap().unwrap()
    }

    #[test]
    fn an_event_stream_over_chunked_encoding_keeps_the_connection() {
        let head = head(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n\
             Transfer-Encoding: chunked\r\n\r\n",
        );
        assert_eq!(head.status, 200);
        assert!(head.event_stream && head.keep_alive);
        assert_eq!(head.framing, BodyFraming::chunked());
        assert_eq!(head.retry_after, None);
    }

    #[test]
    fn the_head_is_removed_and_the_body_left() {
        let mut buf = BytesMut::from("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
        let head = ResponseHead::take(&mut buf).unwrap().unwrap();
        assert_eq!(head.framing, BodyFraming::Length(2));
        assert_eq!(&buf[..], b"{}");
    }

    #[test]
    fn a_partial_head_asks_for_more() {
        assert_eq!(parse("HTTP/1.1 200 OK\r\nContent-Le"), Ok(None));
    }

    #[test]
    fn interim_heads_are_skipped() {
        let head =
            head("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(head.status, 201);
    }

    #[test]
    fn connection_close_http_1_0_and_unframed_bodies_end_the_connection() {
        assert!(
            !head("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keep_alive
        );
        assert!(!head("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
        assert!(
            head("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n")
                .keep_alive
        );
        let unframed = head("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(unframed.framing, BodyFraming::UntilClose);
        assert!(!unframed.keep_alive);
    }

    #[test]
    fn transfer_codings_decide_over_content_length() {
        let both =
            head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(both.framing, BodyFraming::chunked());
        assert!(
            !both.keep_alive,
            "a connection with both framings is not reused"
        );
        let gzip = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(gzip.framing, BodyFraming::UntilClose);
        assert!(!gzip.keep_alive);
    }

    #[test]
    fn retry_after_is_kept_for_errors_only() {
        let limited =
            head("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(limited.retry_after.as_deref(), Some(&b"2"[..]));
        let ok = head("HTTP/1.1 200 OK\r\nRetry-After: 2\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(ok.retry_after, None);
    }

    #[test]
    fn malformed_heads_are_errors_that_say_why() {
        let garbage = parse("SMTP ready\r\n\r\n").unwrap_err();
        assert!(garbage.contains("malformed response head"), "{garbage}");
        // A TLS server's alert to a plain-text request.
        let mut alert = BytesMut::from(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32][..]);
        let tls = ResponseHead::take(&mut alert).unwrap_err();
        assert!(tls.contains("give an https:// --url"), "{tls}");
        let length = parse("HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n").unwrap_err();
        assert!(length.contains("`ten`"), "{length}");
        let two = parse("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
        assert!(two.unwrap_err().contains("two different"));
        let long = format!("HTTP/1.1 200 OK\r\nX: {}", "a".repeat(MAX_HEAD_BYTES));
        assert!(parse(&long).unwrap_err().contains("longer than"));
    }
}
