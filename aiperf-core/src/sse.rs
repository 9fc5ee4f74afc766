//! Incremental parsing of server-sent events (the WHATWG HTML "event stream interpretation"),
//! the framing of every streamed LLM response.
//!
//! In the data flow of DESIGN.md §4 a transport stamps each body read with
//! [`crate::clock::now_ns`], feeds the read to an [`SseParser`] and hands the `data` of each
//! complete event to [`crate::endpoint::Endpoint::parse_response`]. Reads may split events
//! anywhere, even between the `\r` and `\n` of a line ending; the parser carries the unfinished
//! part over to the next read.
//!
//! The parser is built for the per-chunk hot path: when an event has one `data` line and that
//! line arrived in one read, its data is a zero-copy [`Bytes::slice`] of the read. Bytes are
//! copied only for a line split across reads or for an event with several `data` lines (joined
//! with `\n`). Data is not decoded: it is handed on as bytes, and the endpoint's JSON parser
//! validates UTF-8.
//!
//! ```
//! use aiperf_core::sse::SseParser;
//! use bytes::Bytes;
//!
//! let mut parser = SseParser::new();
//! let mut events = Vec::new();
//! for read in ["data: {\"a\"", ":1}\r", "\n\r\n: keep-alive\n\ndata: [DONE]\n\n"] {
//!     events.extend(parser.feed(Bytes::from(read)).map(|event| event.data));
//! }
//! assert_eq!(events, ["{\"a\":1}", "[DONE]"]);
//! assert!(parser.finish().is_ok(), "no event was cut off");
//! ```

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

/// The UTF-8 byte order mark, skipped once at the start of a stream.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One dispatched event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The event's data: its `data` lines joined with `\n`.
    pub data: Bytes,
    /// The `event` field, if the event had a non-empty one (`None` means the default type,
    /// `message`).
    pub event_type: Option<Bytes>,
}

/// The stream ended inside an event: the bytes after the last complete event were never
/// terminated by a blank line, so that event was not dispatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the event stream ended inside an event: {bytes} bytes after the last complete event were \
     not terminated by a blank line (the server closed the stream early)"
)]
pub struct IncompleteEvent {
    /// How many bytes of the unfinished event were held (data so far plus any partial line).
    pub bytes: usize,
}

/// The data of the event being assembled.
#[derive(Debug, Default)]
enum Data {
    /// No `data` field yet: a blank line dispatches nothing.
    #[default]
    None,
    /// One `data` line, a slice of the read it arrived in.
    One(Bytes),
    /// Data that had to be copied (several lines, or a line split across reads); it is held in
    /// [`SseParser::joined`].
    Joined,
}

/// Where a complete line is: inside the current read, or assembled in the line buffer because
/// it was split across reads.
#[derive(Debug, Clone, Copy)]
enum Line {
    /// `read[start..end]`.
    InRead { start: usize, end: usize },
    /// The whole line buffer.
    Buffered,
}

/// What a line means.
enum Field {
    /// A blank line: dispatch the event.
    Dispatch,
    /// A `data` field; the range is the value's position in the line.
    Data(Range<usize>),
    /// An `event` field.
    Event(Range<usize>),
    /// An `id` field.
    Id(Range<usize>),
    /// A `retry` field.
    Retry(Range<usize>),
    /// A comment, or a field the standard ignores.
    Ignored,
}

/// An incremental server-sent-events parser: [`push`](Self::push) each read as it arrives and
/// drain complete events with [`next_event`](Self::next_event) (or both at once with
/// [`feed`](Self::feed)); at the end of the stream [`finish`](Self::finish) says whether an event
/// was cut off.
///
/// Implements the WHATWG rules: `\r`, `\n` and `\r\n` line endings; a UTF-8 BOM at the start of
/// the stream is skipped; lines starting with `:` are comments; `field:value` with one optional
/// space after the colon, or a bare `field` with an empty value; `data` lines append to the data
/// (joined with `\n`); `event` sets the event type; `id` (without NUL) sets the last event id;
/// `retry` (digits only) sets the reconnection time; other fields are ignored; a blank line
/// dispatches the event, unless it had no `data` field.
#[derive(Debug)]
pub struct SseParser {
    /// The current read.
    read: Bytes,
    /// How far into `read` lines have been consumed.
    pos: usize,
    /// The start of a line whose end has not arrived yet.
    line: BytesMut,
    /// The previous read ended with `\r`: a `\n` starting the next read belongs to it.
    skip_lf: bool,
    /// Nothing has been parsed yet: a BOM may still be skipped.
    at_start: bool,
    /// The data of the event being assembled.
    data: Data,
    /// Copied data, for [`Data::Joined`]; reused between events.
    joined: BytesMut,
    /// The event type of the event being assembled.
    event_type: Option<Bytes>,
    /// The last event id seen (kept across events, as the standard says).
    last_event_id: Bytes,
    /// The reconnection time the server asked for, in milliseconds.
    retry_ms: Option<u64>,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self {
            read: Bytes::new(),
            pos: 0,
            line: BytesMut::new(),
            skip_lf: false,
            at_start: true,
            data: Data::None,
            joined: BytesMut::new(),
            event_type: None,
            last_event_id: Bytes::new(),
            retry_ms: None,
        }
    }

    /// Adds the next read of the stream. Drain the events it completes with
    /// [`next_event`](Self::next_event) before the next push; pushing earlier is correct but
    /// copies the undrained bytes.
    pub fn push(&mut self, mut read: Bytes) {
        if read.is_empty() {
            return;
        }
        if self.at_start && !self.skip_bom(&mut read) {
            return;
        }
        if self.pos < self.read.len() {
            let rest = &self.read[self.pos..];
            let mut both = BytesMut::with_capacity(rest.len() + read.len());
            both.extend_from_slice(rest);
            both.extend_from_slice(&read);
            read = both.freeze();
        }
        self.read = read;
        self.pos = 0;
    }

    /// Adds the next read and returns an iterator over the events it completes.
    pub fn feed(&mut self, read: Bytes) -> Events<'_> {
        self.push(read);
        Events { parser: self }
    }

    /// The next complete event of what was pushed, or `None` when more bytes are needed.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        while let Some(line) = self.next_line() {
            let event = self.interpret(line);
            if matches!(line, Line::Buffered) {
                self.line.clear();
            }
            if event.is_some() {
                return event;
            }
        }
        None
    }

    /// Ends the stream: `Err` when an event was cut off (data without its terminating blank
    /// line, or a partial field line). Undrained events count as cut off, so drain first. The
    /// parser is then ready for a new stream.
    pub fn finish(&mut self) -> Result<(), IncompleteEvent> {
        let data = match &self.data {
            Data::None => 0,
            Data::One(bytes) => bytes.len(),
            Data::Joined => self.joined.len(),
        };
        let partial_line = if self.line.first() == Some(&b':') {
            0
        } else {
            self.line.len()
        };
        let undrained = self.read.len() - self.pos;
        let bytes = data + partial_line + undrained;
        let has_data = !matches!(self.data, Data::None);
        *self = Self::new();
        if has_data || bytes > 0 {
            Err(IncompleteEvent { bytes })
        } else {
            Ok(())
        }
    }

    /// The last event id the stream set (`id:` field), empty if none.
    pub fn last_event_id(&self) -> &[u8] {
        &self.last_event_id
    }

    /// The reconnection time the stream asked for (`retry:` field), in milliseconds.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// Skips a BOM at the start of the stream, which may itself arrive split across reads.
    /// Returns false when `read` was used up (held as a possible BOM prefix).
    fn skip_bom(&mut self, read: &mut Bytes) -> bool {
        if self.line.is_empty() && read.len() >= BOM.len() {
            if read.starts_with(BOM) {
                *read = read.slice(BOM.len()..);
            }
            self.at_start = false;
            return !read.is_empty();
        }
        // Slow path: the bytes seen so far are a proper prefix of the BOM, held in `line`.
        let mut taken = 0;
        while self.line.len() < BOM.len() {
            match read.get(taken) {
                Some(&byte) if byte == BOM[self.line.len()] => {
                    self.line.put_u8(byte);
                    taken += 1;
                }
                Some(_) => {
                    // Not a BOM: what was held is the start of the first line.
                    self.at_start = false;
                    *read = read.slice(taken..);
                    return true;
                }
                None => return false,
            }
        }
        self.line.clear();
        self.at_start = false;
        *read = read.slice(taken..);
        !read.is_empty()
    }

    /// Lets go of a read whose every byte has been consumed, so that the buffer it is a slice
    /// of (a connection's read buffer, typically) can be reused for the next read instead of
    /// staying shared until the next push.
    fn release_read(&mut self) {
        self.read = Bytes::new();
        self.pos = 0;
    }

    /// Finds the next complete line, buffering a trailing partial one.
    fn next_line(&mut self) -> Option<Line> {
        if self.skip_lf && self.pos < self.read.len() {
            self.skip_lf = false;
            if self.read[self.pos] == b'\n' {
                self.pos += 1;
            }
        }
        let rest = &self.read[self.pos..];
        if rest.is_empty() {
            self.release_read();
            return None;
        }
        let Some(offset) = memchr::memchr2(b'\r', b'\n', rest) else {
            self.line.extend_from_slice(rest);
            self.release_read();
            return None;
        };
        let start = self.pos;
        let end = start + offset;
        self.pos = end + 1;
        if self.read[end] == b'\r' {
            match self.read.get(self.pos) {
                Some(b'\n') => self.pos += 1,
                Some(_) => {}
                None => self.skip_lf = true,
            }
        }
        if self.line.is_empty() {
            Some(Line::InRead { start, end })
        } else {
            self.line.extend_from_slice(&self.read[start..end]);
            Some(Line::Buffered)
        }
    }

    /// Applies one line; returns the event a blank line dispatches.
    fn interpret(&mut self, line: Line) -> Option<SseEvent> {
        let field = classify(self.line_bytes(line));
        match field {
            Field::Dispatch => return self.dispatch(),
            Field::Ignored => {}
            Field::Data(value) => self.append_data(line, value),
            Field::Event(value) => {
                self.event_type = (!value.is_empty()).then(|| self.value(line, value));
            }
            Field::Id(value) => {
                let id = self.value(line, value);
                if memchr::memchr(0, &id).is_none() {
                    self.last_event_id = id;
                }
            }
            Field::Retry(value) => {
                let digits = &self.line_bytes(line)[value];
                if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
                    self.retry_ms = Some(digits.iter().fold(0u64, |ms, digit| {
                        ms.saturating_mul(10)
                            .saturating_add(u64::from(digit - b'0'))
                    }));
                }
            }
        }
        None
    }

    /// A complete line's bytes.
    fn line_bytes(&self, line: Line) -> &[u8] {
        match line {
            Line::InRead { start, end } => &self.read[start..end],
            Line::Buffered => &self.line,
        }
    }

    /// A field value as `Bytes`: a slice of the read, or a copy of a buffered line's value.
    fn value(&self, line: Line, value: Range<usize>) -> Bytes {
        match line {
            Line::InRead { start, .. } => self.read.slice(start + value.start..start + value.end),
            Line::Buffered => Bytes::copy_from_slice(&self.line[value]),
        }
    }

    fn append_data(&mut self, line: Line, value: Range<usize>) {
        let Self {
            read,
            line: buffered,
            data,
            joined,
            ..
        } = self;
        let bytes = match line {
            Line::InRead { start, .. } => &read[start + value.start..start + value.end],
            Line::Buffered => &buffered[value.clone()],
        };
        match data {
            Data::None => match line {
                Line::InRead { start, .. } => {
                    *data = Data::One(read.slice(start + value.start..start + value.end));
                }
                Line::Buffered => {
                    joined.extend_from_slice(bytes);
                    *data = Data::Joined;
                }
            },
            Data::One(first) => {
                joined.reserve(first.len() + 1 + bytes.len());
                joined.extend_from_slice(first);
                joined.put_u8(b'\n');
                joined.extend_from_slice(bytes);
                *data = Data::Joined;
            }
            Data::Joined => {
                joined.put_u8(b'\n');
                joined.extend_from_slice(bytes);
            }
        }
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event_type = self.event_type.take();
        let data = match std::mem::take(&mut self.data) {
            Data::None => return None,
            Data::One(bytes) => bytes,
            Data::Joined => self.joined.split().freeze(),
        };
        Some(SseEvent { data, event_type })
    }
}

/// Splits a line into its field and value (one leading space of the value dropped).
fn classify(line: &[u8]) -> Field {
    if line.is_empty() {
        return Field::Dispatch;
    }
    let (name, value) = match memchr::memchr(b':', line) {
        Some(0) => return Field::Ignored,
        Some(colon) => {
            let start = if line.get(colon + 1) == Some(&b' ') {
                colon + 2
            } else {
                colon + 1
            };
            (&line[..colon], start..line.len())
        }
        None => (line, line.len()..line.len()),
    };
    match name {
        b"data" => Field::Data(value),
        b"event" => Field::Event(value),
        b"id" => Field::Id(value),
        b"retry" => Field::Retry(value),
        _ => Field::Ignored,
    }
}

/// The events completed by one [`SseParser::feed`].
#[derive(Debug)]
pub struct Events<'a> {
    parser: &'a mut SseParser,
}

impl Iterator for Events<'_> {
    type Item = SseEvent;

    fn next(&mut self) -> Option<SseEvent> {
        self.parser.next_event()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `reads` one by one; returns the events' data as strings.
    fn parse(reads: &[&[u8]]) -> Vec<String> {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        for read in reads {
            for event in parser.feed(Bytes::copy_from_slice(read)) {
                out.push(String::from_utf8(event.data.to_vec()).unwrap());
            }
        }
        out
    }

    fn whole(stream: &str) -> Vec<String> {
        parse(&[stream.as_bytes()])
    }

    #[test]
    fn data_with_and_without_the_optional_space() {
        assert_eq!(
            whole("data: a\n\ndata:b\n\ndata:  c\n\n"),
            ["a", "b", " c"],
            "only one space is dropped"
        );
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines() {
        assert_eq!(whole("data: a\ndata:\ndata: b\n\n"), ["a\n\nb"]);
    }

    #[test]
    fn comments_are_ignored_and_do_not_dispatch() {
        assert_eq!(
            whole(": hello\ndata: a\n: in the middle\ndata: b\n\n:\n\n"),
            ["a\nb"]
        );
    }

    #[test]
    fn other_fields_are_ignored_or_exposed() {
        let mut parser = SseParser::new();
        let events: Vec<_> = parser
            .feed(Bytes::from_static(
                b"event: delta\nid: 7\nretry: 1500\nfoo: bar\nData: no\ndata: x\n\ndata: y\n\n",
            ))
            .collect();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].data, "x");
        assert_eq!(events[0].event_type.as_deref(), Some(&b"delta"[..]));
        assert_eq!(events[1].event_type, None, "the event type resets");
        assert_eq!(parser.last_event_id(), b"7", "the last id persists");
        assert_eq!(parser.retry_ms(), Some(1500));
    }

    #[test]
    fn invalid_id_and_retry_are_ignored() {
        let mut parser = SseParser::new();
        let events: Vec<_> = parser
            .feed(Bytes::from_static(
                b"id: 1\nid: a\0b\nretry: 12a\nretry:\ndata: x\n\n",
            ))
            .collect();
        assert_eq!(events.len(), 1);
        assert_eq!(parser.last_event_id(), b"1");
        assert_eq!(parser.retry_ms(), None);
    }

    #[test]
    fn a_field_without_colon_has_an_empty_value() {
        assert_eq!(whole("data\n\ndata\ndata\n\n"), ["", "\n"]);
    }

    #[test]
    fn cr_lf_and_crlf_line_endings() {
        assert_eq!(
            whole("data: a\r\ndata: b\r\r\ndata: c\n\rdata: d\r\n\r\n"),
            ["a\nb", "c", "d"]
        );
    }

    #[test]
    fn crlf_split_between_reads_is_one_line_ending() {
        // Were the `\n` read as a second line ending, `a` would be dispatched alone.
        assert_eq!(
            parse(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]),
            ["a\nb"]
        );
        assert_eq!(parse(&[b"data: a\r", b"\r\n"]), ["a"]);
    }

    #[test]
    fn bom_is_skipped_at_stream_start_only() {
        assert_eq!(whole("\u{feff}data: a\n\n"), ["a"]);
        assert_eq!(parse(&[b"\xEF", b"\xBB", b"\xBFdata: a\n\n"]), ["a"]);
        assert_eq!(parse(&[b"\xEF\xBB\xBF", b"data: a\n\n"]), ["a"]);
        // A BOM line later is a field named "\u{feff}data", which is ignored.
        assert_eq!(whole("data: a\n\n\u{feff}data: b\n\n"), ["a"]);
        // A BOM prefix that is not a BOM stays part of the first line.
        assert_eq!(parse(&[b"\xEF", b"\n", b"data: a\n\n"]), ["a"]);
        assert_eq!(parse(&[b"d", b"a", b"ta: a\n\n"]), ["a"]);
    }

    #[test]
    fn events_are_dispatched_on_blank_lines_only() {
        let mut parser = SseParser::new();
        assert_eq!(parser.feed(Bytes::from_static(b"data: a\n")).count(), 0);
        let events: Vec<_> = parser.feed(Bytes::from_static(b"\n")).collect();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "a");
    }

    #[test]
    fn an_event_without_data_is_not_dispatched() {
        assert_eq!(
            whole("event: ping\n\nid: 3\n\n: comment\n\ndata: a\n\n"),
            ["a"]
        );
        let mut parser = SseParser::new();
        let events: Vec<_> = parser
            .feed(Bytes::from_static(b"event: ping\n\ndata: a\n\n"))
            .collect();
        assert_eq!(events[0].event_type, None, "a blank line resets the type");
    }

    #[test]
    fn single_line_data_is_a_zero_copy_slice_of_the_read() {
        let read = Bytes::from_static(b"data: {\"x\":1}\n\n");
        let mut parser = SseParser::new();
        let event = parser.feed(read.clone()).next().unwrap();
        assert_eq!(event.data, "{\"x\":1}");
        assert_eq!(event.data.as_ptr(), read[6..].as_ptr(), "no copy");
        // Still zero-copy when only the blank line arrives in the next read.
        let first = Bytes::from_static(b"data: later\n");
        assert_eq!(parser.feed(first.clone()).count(), 0);
        let event = parser.feed(Bytes::from_static(b"\n")).next().unwrap();
        assert_eq!(event.data.as_ptr(), first[6..].as_ptr());
    }

    #[test]
    fn a_drained_read_is_let_go_so_its_buffer_can_be_reused() {
        let mut parser = SseParser::new();
        for read in [&b"data: a\n\ndata: b\n\n"[..], b"data: c\n\ndata: d"] {
            let read = Bytes::from(read.to_vec());
            let data: Vec<Bytes> = parser.feed(read.clone()).map(|e| e.data).collect();
            assert!(!data.is_empty());
            drop(data);
            assert!(read.is_unique(), "the parser still holds the read");
        }
        // The unfinished line was copied out; it still completes.
        let event = parser.feed(Bytes::from_static(b"\n\n")).next().unwrap();
        assert_eq!(event.data, "d");
    }

    #[test]
    fn a_line_split_across_reads_is_reassembled() {
        assert_eq!(
            parse(&[b"da", b"ta: {\"a\"", b":1}", b"\n", b"\n"]),
            ["{\"a\":1}"]
        );
    }

    #[test]
    fn finish_reports_a_cut_off_event() {
        let mut parser = SseParser::new();
        assert_eq!(parser.feed(Bytes::from_static(b"data: a\n\n")).count(), 1);
        assert_eq!(parser.finish(), Ok(()));

        assert_eq!(parser.feed(Bytes::from_static(b"data: ab\n")).count(), 0);
        assert_eq!(parser.finish(), Err(IncompleteEvent { bytes: 2 }));

        assert_eq!(
            parser
                .feed(Bytes::from_static(b"data: a\n\ndata: b"))
                .count(),
            1
        );
        let err = parser.finish().unwrap_err();
        assert_eq!(err.bytes, 7);
        assert!(err.to_string().contains("ended inside an event"), "{err}");

        // An empty data field is still an event in progress.
        assert_eq!(parser.feed(Bytes::from_static(b"data:\n")).count(), 0);
        assert!(parser.finish().is_err());

        // Trailing comments, fields without data and a dangling `\r` are not events.
        assert_eq!(
            parser
                .feed(Bytes::from_static(
                    b"data: a\r\n\r\n: bye\nevent: x\n: partial"
                ))
                .count(),
            1
        );
        assert_eq!(parser.finish(), Ok(()));
        assert_eq!(parser.feed(Bytes::from_static(b"data: a\n\r")).count(), 1);
        assert_eq!(parser.finish(), Ok(()));
    }

    #[test]
    fn pushing_before_draining_keeps_the_undrained_events() {
        let mut parser = SseParser::new();
        parser.push(Bytes::from_static(b"data: a\n\ndata: b\n\nda"));
        assert_eq!(parser.next_event().unwrap().data, "a");
        parser.push(Bytes::from_static(b"ta: c\n\n"));
        let rest: Vec<_> = std::iter::from_fn(|| parser.next_event())
            .map(|event| event.data)
            .collect();
        assert_eq!(rest, ["b", "c"]);
        assert_eq!(parser.finish(), Ok(()));
    }

    /// The standard's algorithm, written as directly as possible over a whole stream.
    fn reference(stream: &[u8]) -> (Vec<SseEvent>, bool) {
        let stream = stream.strip_prefix(BOM).unwrap_or(stream);
        let mut lines = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < stream.len() {
            match stream[i] {
                b'\n' => {
                    lines.push(&stream[start..i]);
                    start = i + 1;
                }
                b'\r' => {
                    lines.push(&stream[start..i]);
                    if stream.get(i + 1) == Some(&b'\n') {
                        i += 1;
                    }
                    start = i + 1;
                }
                _ => {}
            }
            i += 1;
        }
        let tail = &stream[start..];
        let (mut events, mut data, mut event_type) = (Vec::new(), None::<Vec<u8>>, None);
        for line in lines {
            if line.is_empty() {
                if let Some(data) = data.take() {
                    events.push(SseEvent {
                        data: Bytes::from(data),
                        event_type: event_type.take(),
                    });
                }
                event_type = None;
                continue;
            }
            if line[0] == b':' {
                continue;
            }
            let (name, value) = match line.iter().position(|&b| b == b':') {
                Some(colon) => {
                    let value = &line[colon + 1..];
                    (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
                }
                None => (line, &b""[..]),
            };
            match name {
                b"data" => match &mut data {
                    Some(data) => {
                        data.push(b'\n');
                        data.extend_from_slice(value);
                    }
                    None => data = Some(value.to_vec()),
                },
                b"event" if value.is_empty() => event_type = None,
                b"event" => event_type = Some(Bytes::copy_from_slice(value)),
                _ => {}
            }
        }
        let incomplete = data.is_some() || (!tail.is_empty() && tail[0] != b':');
        (events, incomplete)
    }

    /// Streams built from the pieces that matter to the grammar.
    fn stream() -> impl Strategy<Value = Vec<u8>> {
        let token = prop::sample::select(vec![
            &b"data"[..],
            b"data:",
            b"data: ",
            b"event:",
            b"event: e",
            b"id: 1",
            b"retry: 10",
            b":",
            b" ",
            b"x",
            b"{\"k\":1}",
            b"\r",
            b"\n",
            b"\r\n",
            b"\n\n",
            b"\xEF\xBB\xBF",
            b"\xEF",
        ]);
        prop::collection::vec(token, 0..60).prop_map(|tokens| tokens.concat())
    }

    fn feed_split(stream: &[u8], cuts: &[usize]) -> (Vec<SseEvent>, bool) {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        cuts.sort_unstable();
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        let mut start = 0;
        for cut in cuts.into_iter().chain([stream.len()]) {
            events.extend(parser.feed(Bytes::copy_from_slice(&stream[start..cut])));
            start = cut;
        }
        (events, parser.finish().is_err())
    }

    proptest! {
        #[test]
        fn splitting_a_stream_anywhere_yields_the_same_events(
            stream in stream(),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            let whole = feed_split(&stream, &[]);
            prop_assert_eq!(&feed_split(&stream, &cuts), &whole);
        }

        #[test]
        fn feeding_byte_by_byte_yields_the_same_events(stream in stream()) {
            let cuts: Vec<usize> = (0..=stream.len()).collect();
            prop_assert_eq!(feed_split(&stream, &cuts), feed_split(&stream, &[]));
        }

        #[test]
        fn the_parser_follows_the_standard(stream in stream()) {
            prop_assert_eq!(feed_split(&stream, &[]), reference(&stream));
        }
    }
}
