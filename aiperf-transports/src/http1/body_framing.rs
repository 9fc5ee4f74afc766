//! How an HTTP/1.1 response body is delimited (RFC 9112 §6): by `Content-Length`, by chunked
//! transfer coding, or by the end of the connection. [`BodyFraming::next_piece`] takes the
//! body's bytes out of the connection's read buffer as zero-copy slices, leaving the framing
//! (chunk sizes, their line endings, trailers) behind.

use bytes::{Bytes, BytesMut};

/// The longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4 * 1024;

/// How a body is delimited, and how much of it is left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum BodyFraming {
    /// `Content-Length`: this many bytes are left.
    Length(u64),
    /// `Transfer-Encoding: chunked`, at this point of its grammar.
    Chunked(Chunked),
    /// No length: the body ends when the server closes the connection.
    UntilClose,
}

/// Where a chunked body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunked {
    /// Before a chunk-size line.
    Size,
    /// Inside a chunk's data, with this many bytes left.
    Data(u64),
    /// After a chunk's data, before its line ending.
    DataEnd,
    /// After the last (empty) chunk, among trailer lines.
    Trailers,
    /// After the blank line that ends the body.
    Done,
}

impl BodyFraming {
    /// A chunked body, before its first chunk.
    pub(super) fn chunked() -> Self {
        Self::Chunked(Chunked::Size)
    }

    /// Whether the whole body has been taken (never, for a body delimited by the connection's
    /// end, until [`BodyFraming::end_of_input`] says so).
    pub(super) fn is_done(&self) -> bool {
        matches!(self, Self::Length(0) | Self::Chunked(Chunked::Done))
    }

    /// The next piece of body data at the start of `buf`, removed from it along with any
    /// framing before it; `Ok(None)` when `buf` holds no more of the body (more must be read,
    /// or the body is done). Errors say what was malformed.
    pub(super) fn next_piece(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, String> {
        loop {
            match self {
                Self::Length(0) | Self::Chunked(Chunked::Done) => return Ok(None),
                Self::Length(left) => return Ok(take(buf, left)),
                Self::UntilClose => {
                    return Ok((!buf.is_empty()).then(|| buf.split().freeze()));
                }
                Self::Chunked(Chunked::Data(left)) => {
                    let piece = take(buf, left);
                    if *left == 0 {
                        *self = Self::Chunked(Chunked::DataEnd);
                    }
                    return Ok(piece);
                }
                Self::Chunked(Chunked::Size) => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(None);
                    };
                    let size = parse_chunk_size(&line)?;
                    *self = Self::Chunked(if size == 0 {
                        Chunked::Trailers
                    } else {
                        Chunked::Data(size)
                    });
                }
                Self::Chunked(Chunked::DataEnd) => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(None);
                    };
                    if !line.is_empty() {
                        return Err("chunk data longer than its chunk size".to_owned());
                    }
                    *self = Self::Chunked(Chunked::Size);
                }
                Self::Chunked(Chunked::Trailers) => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(None);
                    };
                    if line.is_empty() {
                        *self = Self::Chunked(Chunked::Done);
                    }
                }
            }
        }
    }

    /// The connection ended: completes a body delimited by it; any other unfinished body was
    /// cut off.
    pub(super) fn end_of_input(&mut self) -> Result<(), &'static str> {
        match self {
            Self::UntilClose => {
                *self = Self::Length(0);
                Ok(())
            }
            _ if self.is_done() => Ok(()),
            Self::Length(_) => Err("the connection closed before Content-Length bytes arrived"),
            Self::Chunked(Chunked::Trailers) => {
                Err("the connection closed inside the trailers after the last chunk")
            }
            Self::Chunked(_) => Err("the connection closed before the last chunk"),
        }
    }
}

/// Up to `left` bytes from the start of `buf`, counted off `left`.
fn take(buf: &mut BytesMut, left: &mut u64) -> Option<Bytes> {
    if buf.is_empty() {
        return None;
    }
    let length = usize::try_from(*left).map_or(buf.len(), |left| left.min(buf.len()));
    *left -= length as u64;
    Some(buf.split_to(length).freeze())
}

/// One line from the start of `buf` without its line ending (CRLF, or a bare LF), removed
/// from it; `Ok(None)` when the line is not complete yet.
fn take_line(buf: &mut BytesMut) -> Result<Option<Bytes>, String> {
    let Some(end) = memchr::memchr(b'\n', buf) else {
        if buf.len() > MAX_LINE {
            return Err(format!("a chunk line longer than {MAX_LINE} bytes"));
        }
        return Ok(None);
    };
    let mut line = buf.split_to(end + 1);
    line.truncate(end);
    if line.last() == Some(&b'\r') {
        line.truncate(end - 1);
    }
    Ok(Some(line.freeze()))
}

/// A chunk-size line: hexadecimal digits, then optional `;` extensions.
fn parse_chunk_size(line: &[u8]) -> Result<u64, String> {
    let digits = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let valid =
        !digits.is_empty() && digits.len() <= 15 && digits.iter().all(u8::is_ascii_hexdigit);
    if !valid {
        return Err(format!(
            "a chunk size that is not a hexadecimal number: `{}`",
            String::from_utf8_lossy(line)
        ));
    }
    Ok(digits.iter().fold(0, |size, &digit| {
        let value = (digit as char).to_digit(16).unwrap_or_default();
        size * 16 + u64::from(value)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` to `framing` split into `step`-byte reads; returns the body's data and
    /// what is left in the buffer.
    fn decode(mut framing: BodyFraming, wire: &[u8], step: usize) -> (Vec<u8>, Vec<u8>) {
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        for read in wire.chunks(step) {
            buf.extend_from_slice(read);
            while let Some(piece) = framing.next_piece(&mut buf).unwrap() {
                body.extend_from_slice(&piece);
            }
        }
        assert!(framing.is_done(), "{framing:?}");
        (body, buf.to_vec())
    }

    const CHUNKED: &[u8] =
        b"5;ext=1\r\nhello\r\n7\r\n, world\r\nA\nabcdefghij\n0\r\nTrailer: x\r\n\r\nNEXT";

    #[test]
    fn chunked_bodies_lose_their_framing_however_reads_split_them() {
        for step in 1..=CHUNKED.len() {
            let (body, rest) = decode(BodyFraming::chunked(), CHUNKED, step);
            assert_eq!(body, b"hello, worldabcdefghij", "reads of {step}");
            // The framing stops at the body's end: what follows is left, whole.
            assert_eq!(rest, b"NEXT", "reads of {step}");
        }
    }

    #[test]
    fn a_length_takes_exactly_that_many_bytes_however_reads_split_them() {
        for step in 1..=9 {
            let (body, rest) = decode(BodyFraming::Length(5), b"helloNEXT", step);
            assert_eq!(body, b"hello", "reads of {step}");
            assert_eq!(rest, b"NEXT", "reads of {step}");
        }
    }

    #[test]
    fn a_body_until_close_ends_with_the_connection() {
        let mut framing = BodyFraming::UntilClose;
        let mut buf = BytesMut::from("all of it");
        assert_eq!(framing.next_piece(&mut buf).unwrap().unwrap(), "all of it");
        assert!(!framing.is_done());
        assert!(framing.end_of_input().is_ok() && framing.is_done());
    }

    #[test]
    fn a_cut_off_body_is_an_error() {
        let mut framing = BodyFraming::Length(10);
        let mut buf = BytesMut::from("short");
        framing.next_piece(&mut buf).unwrap();
        assert!(
            framing
                .end_of_input()
                .unwrap_err()
                .contains("Content-Length")
        );
        let mut chunked = BodyFraming::chunked();
        assert!(chunked.end_of_input().unwrap_err().contains("last chunk"));
    }

    #[test]
    fn malformed_chunks_are_errors_that_say_why() {
        let mut framing = BodyFraming::chunked();
        let size = framing
            .next_piece(&mut BytesMut::from("zz\r\n"))
            .unwrap_err();
        assert!(size.contains("`zz`"), "{size}");
        let mut framing = BodyFraming::chunked();
        let mut buf = BytesMut::from("2\r\nabc\r\n");
        assert_eq!(framing.next_piece(&mut buf).unwrap().unwrap(), "ab");
        assert!(
            framing
                .next_piece(&mut buf)
                .unwrap_err()
                .contains("longer than its chunk size")
        );
        let mut framing = BodyFraming::chunked();
        let mut endless = BytesMut::from(&[b'1'; MAX_LINE + 1][..]);
        assert!(
            framing
                .next_piece(&mut endless)
                .unwrap_err()
                .contains("longer than")
        );
    }

    #[test]
    fn pieces_are_slices_of_the_read_buffer() {
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(b"3\r\nabc\r\n");
        let start = buf.as_ptr() as usize;
        let mut framing = BodyFraming::chunked();
        let piece = framing.next_piece(&mut buf).unwrap().unwrap();
        assert_eq!(piece.as_ptr() as usize, start + 3, "no copy");
    }
}
