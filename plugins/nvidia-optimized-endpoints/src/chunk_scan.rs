//! The per-chunk fast path: reads a streamed chat or completions chunk without building a JSON
//! tree or deserializing into structs. One pass over the bytes checks the JSON and notes where
//! the strings of interest are (`choices[0].delta.content`, `reasoning_content`, `reasoning`,
//! or `choices[0].text`); their text is then unescaped straight into the response's buffers.
//!
//! The fast path is exact or declines: it answers only when the chunk is valid JSON that
//! `serde_json` would read to the same result, and returns `None` for everything else: a
//! non-null `usage` (the last chunk of a stream), an `error`, escaped or duplicated keys,
//! unexpected types, malformed JSON. Those rare chunks go to the serde path
//! ([`crate::wire`]), which matches the builtin endpoints exactly.

use aiperf_core::endpoint::{ParsedChunk, ResponseText};

use crate::json_unescape::{Check, unescape_into};
use crate::plain_run::plain_run_len;

/// The API whose chunks are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkShape {
    /// Chat completions: `choices[0].delta` (or `.message`) with `content` and reasoning.
    Chat,
    /// Text completions: `choices[0].text`.
    Completions,
}

/// Nesting deeper than this in skipped values is left to serde.
const MAX_DEPTH: u32 = 64;

/// Reads `data` on the fast path and appends its text to `text`; `None` (with `text` left as
/// it was) when the chunk must go to the serde path.
pub(crate) fn parse_fast(
    data: &[u8],
    shape: ChunkShape,
    text: &mut ResponseText,
) -> Option<ParsedChunk> {
    let spans = scan(data, shape)?;
    let (content_len, reasoning_len) = (text.content.len(), text.reasoning.len());
    let parsed = spans.append_to(text);
    if parsed.is_none() {
        text.content.truncate(content_len);
        text.reasoning.truncate(reasoning_len);
    }
    parsed
}

/// A JSON string as it appears between its quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RawStr<'a> {
    bytes: &'a [u8],
    /// Whether it holds a backslash escape.
    escaped: bool,
}

impl RawStr<'_> {
    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Decodes into `out`; `None` when serde would reject the string.
    fn append(&self, out: &mut String) -> Option<()> {
        unescape_into(self.bytes, self.escaped, out)
    }

    /// Checks the string as serde would when reading it, keeping nothing.
    fn check(&self) -> Option<()> {
        unescape_into(self.bytes, self.escaped, &mut Check)
    }
}

/// The strings of interest found in a chunk (`None`: absent or `null`).
#[derive(Debug, Default)]
struct Spans<'a> {
    content: Option<RawStr<'a>>,
    reasoning_content: Option<RawStr<'a>>,
    reasoning: Option<RawStr<'a>>,
}

impl Spans<'_> {
    /// Appends the text as the builtin does: content; `reasoning_content`, or `reasoning` when
    /// that is absent or empty. Empty strings are not content.
    fn append_to(&self, text: &mut ResponseText) -> Option<ParsedChunk> {
        let mut parsed = ParsedChunk::default();
        if let Some(content) = self.content {
            content.append(&mut text.content)?;
            parsed.has_content = !content.is_empty();
        }
        let reasoning = match self.reasoning_content {
            Some(chosen) if !chosen.is_empty() => {
                // serde reads `reasoning` too: it must be a valid string even though unused.
                if let Some(unused) = self.reasoning {
                    unused.check()?;
                }
                Some(chosen)
            }
            _ => self.reasoning,
        };
        if let Some(reasoning) = reasoning {
            reasoning.append(&mut text.reasoning)?;
            parsed.has_reasoning = !reasoning.is_empty();
        }
        Some(parsed)
    }
}

/// Finds the strings of interest in `data`, checking the whole chunk on the way; `None` when
/// the serde path must read it.
fn scan(data: &[u8], shape: ChunkShape) -> Option<Spans<'_>> {
    let mut cursor = Cursor { bytes: data, at: 0 };
    let mut spans = Spans::default();
    let mut seen = Seen::default();
    if cursor.peek()? != b'{' {
        return None;
    }
    cursor.object(|c, key| match struct_key(key)? {
        b"choices" => {
            seen.first(0)?;
            if c.peek()? == b'n' {
                return c.literal(b"null");
            }
            c.array(|c, index| {
                if index == 0 {
                    choice(c, shape, &mut spans)
                } else {
                    c.skip_value(MAX_DEPTH)
                }
            })
        }
        // A non-null usage is read by serde (it is in one chunk per stream).
        b"usage" => {
            seen.first(1)?;
            c.literal(b"null")
        }
        // vLLM reports errors as {"object": "error", "message": ...}.
        b"object" => {
            seen.first(2)?;
            let object = c.string()?;
            (!object.escaped && object.bytes != b"error").then_some(())?;
            // serde reads it as a `&str`: it must be valid UTF-8.
            object.check()
        }
        b"error" | b"message" => None,
        _ => c.skip_value(MAX_DEPTH),
    })?;
    cursor.skip_whitespace();
    (cursor.at == data.len()).then_some(spans)
}

/// Reads `choices[0]`.
fn choice<'a>(c: &mut Cursor<'a>, shape: ChunkShape, spans: &mut Spans<'a>) -> Option<()> {
    if c.peek()? != b'{' {
        return None;
    }
    let mut seen = Seen::default();
    let mut has_message = false;
    c.object(|c, key| match (shape, struct_key(key)?) {
        (ChunkShape::Chat, key @ (b"delta" | b"message")) => {
            seen.first(usize::from(key == b"message"))?;
            match c.peek()? {
                b'n' => c.literal(b"null"),
                // The builtin prefers `delta` when both are set: leave that to serde.
                b'{' if !has_message => {
                    has_message = true;
                    message(c, spans)
                }
                _ => None,
            }
        }
        (ChunkShape::Completions, b"text") => {
            seen.first(0)?;
            spans.content = c.nullable_string()?;
            Some(())
        }
        _ => c.skip_value(MAX_DEPTH),
    })
}

/// Reads a chat `delta` or `message`.
fn message<'a>(c: &mut Cursor<'a>, spans: &mut Spans<'a>) -> Option<()> {
    let mut seen = Seen::default();
    c.object(|c, key| {
        let (slot, field) = match struct_key(key)? {
            b"content" => (0, &mut spans.content),
            b"reasoning_content" => (1, &mut spans.reasoning_content),
            b"reasoning" => (2, &mut spans.reasoning),
            _ => return c.skip_value(MAX_DEPTH),
        };
        seen.first(slot)?;
        *field = c.nullable_string()?;
        Some(())
    })
}

/// A key of an object that serde reads into a struct: serde decodes it as a `&str`, so one
/// with escapes or invalid UTF-8 is left to serde.
fn struct_key(key: RawStr<'_>) -> Option<&[u8]> {
    if key.escaped || !(key.bytes.is_ascii() || std::str::from_utf8(key.bytes).is_ok()) {
        return None;
    }
    Some(key.bytes)
}

/// Which fields of one struct were seen: serde rejects a duplicated field.
#[derive(Debug, Default)]
struct Seen(u8);

impl Seen {
    /// Marks field `slot` seen; `None` when it was already.
    fn first(&mut self, slot: usize) -> Option<()> {
        let bit = 1u8 << slot;
        if self.0 & bit != 0 {
            return None;
        }
        self.0 |= bit;
        Some(())
    }
}

/// A position in a chunk. Every method returns `None` on anything it does not accept, which
/// hands the chunk to serde.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    #[inline]
    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.bytes.get(self.at).copied()
    }

    /// Consumes `byte` after whitespace.
    #[inline]
    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.skip_whitespace();
        if !self.bytes[self.at..].starts_with(word) {
            return None;
        }
        self.at += word.len();
        Some(())
    }

    /// A string, checked as serde checks strings it skips: valid escapes, no control
    /// characters. (UTF-8 and surrogates are checked when a string is decoded.)
    #[inline]
    fn string(&mut self) -> Option<RawStr<'a>> {
        self.eat(b'"')?;
        let start = self.at;
        let mut escaped = false;
        loop {
            let rest = &self.bytes[self.at..];
            let run = plain_run_len(rest);
            self.at += run;
            match *rest.get(run)? {
                b'"' => {
                    let bytes = &self.bytes[start..self.at];
                    self.at += 1;
                    return Some(RawStr { bytes, escaped });
                }
                b'\\' => {}
                // A control character: serde rejects it.
                _ => return None,
            }
            escaped = true;
            self.at += 1;
            match *self.bytes.get(self.at)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 1,
                b'u' => {
                    let hex = self.bytes.get(self.at + 1..self.at + 5)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    self.at += 5;
                }
                _ => return None,
            }
        }
    }

    /// A string or `null`.
    fn nullable_string(&mut self) -> Option<Option<RawStr<'a>>> {
        match self.peek()? {
            b'n' => self.literal(b"null").map(|()| None),
            b'"' => self.string().map(Some),
            _ => None,
        }
    }

    /// A number, by the JSON grammar.
    fn number(&mut self) -> Option<()> {
        let bytes = self.bytes;
        let mut at = self.at;
        let digits = |mut at: usize| {
            while bytes.get(at).is_some_and(u8::is_ascii_digit) {
                at += 1;
            }
            at
        };
        if bytes.get(at) == Some(&b'-') {
            at += 1;
        }
        match bytes.get(at)? {
            b'0' => at += 1,
            b'1'..=b'9' => at = digits(at + 1),
            _ => return None,
        }
        if bytes.get(at) == Some(&b'.') {
            let end = digits(at + 1);
            if end == at + 1 {
                return None;
            }
            at = end;
        }
        if let Some(b'e' | b'E') = bytes.get(at) {
            at += 1;
            if let Some(b'+' | b'-') = bytes.get(at) {
                at += 1;
            }
            let end = digits(at);
            if end == at {
                return None;
            }
            at = end;
        }
        self.at = at;
        Some(())
    }

    /// An object, calling `field` with each key; `field` must consume the value.
    fn object(&mut self, mut field: impl FnMut(&mut Self, RawStr<'a>) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            field(self, key)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An array, calling `element` with each index; `element` must consume the value.
    fn array(&mut self, mut element: impl FnMut(&mut Self, usize) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.at += 1;
            return Some(());
        }
        let mut index = 0;
        loop {
            element(self, index)?;
            index += 1;
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Any value, checked and skipped; nesting deeper than `depth` is left to serde.
    fn skip_value(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => {
                let depth = depth.checked_sub(1)?;
                self.object(|c, _| c.skip_value(depth))
            }
            b'[' => {
                let depth = depth.checked_sub(1)?;
                self.array(|c, _| c.skip_value(depth))
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast(data: &str, shape: ChunkShape) -> Option<(ParsedChunk, ResponseText)> {
        let mut text = ResponseText::default();
        parse_fast(data.as_bytes(), shape, &mut text).map(|parsed| (parsed, text))
    }

    #[test]
    fn typical_chunks_take_the_fast_path() {
        let (parsed, text) = fast(
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1718000000,"model":"m","choices":[{"index":0,"delta":{"content":"Hi \"there\"\n"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
            ChunkShape::Chat,
        )
        .unwrap();
        assert!(parsed.has_content && !parsed.has_reasoning && parsed.usage.is_none());
        assert_eq!(text.content, "Hi \"there\"\n");

        let (parsed, text) = fast(
            "{ \"choices\": [ { \"index\": 0, \"text\": \" once\", \"logprobs\": {\"tokens\": [\"a\"], \"token_logprobs\": [-0.5e-3]} } ] }\n",
            ChunkShape::Completions,
        )
        .unwrap();
        assert!(parsed.has_content);
        assert_eq!(text.content, " once");
    }

    #[test]
    fn chunks_of_every_server_take_the_fast_path() {
        for (server, data, content, reasoning) in [
            (
                "vllm",
                r#"{"id":"chatcmpl-b2c9","object":"chat.completion.chunk","created":1718000000,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
                "",
                "",
            ),
            (
                "vllm reasoning",
                r#"{"id":"chatcmpl-r1","object":"chat.completion.chunk","created":1718000000,"model":"m","choices":[{"index":0,"delta":{"reasoning":" about caf\u00e9s"},"logprobs":null,"finish_reason":null}]}"#,
                "",
                " about cafés",
            ),
            (
                "sglang",
                r#"{"id":"4b9f","object":"chat.completion.chunk","created":1718000000,"model":"default","choices":[{"index":0,"delta":{"role":null,"content":null,"reasoning_content":"Let me think","tool_calls":null},"logprobs":null,"finish_reason":null,"matched_stop":null}],"usage":null}"#,
                "",
                "Let me think",
            ),
            (
                "trt-llm",
                r#"{"id":"chatcmpl-6e7f","object":"chat.completion.chunk","created":1718000000,"model":"TinyLlama","choices":[{"index":0,"delta":{"role":null,"content":" world","reasoning_content":null,"tool_calls":[]},"logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":null}"#,
                " world",
                "",
            ),
            (
                "openai with logprobs",
                r#"{"id":"chatcmpl-A1b2","object":"chat.completion.chunk","created":1718000000,"model":"gpt-4o-mini","system_fingerprint":"fp_4","choices":[{"index":0,"delta":{"content":"\ud83d\ude00 na\u00efve"},"logprobs":{"content":[{"token":"x","logprob":-0.0012,"bytes":[66,111],"top_logprobs":[{"token":"x","logprob":-1.2e-3,"bytes":[66]}]}],"refusal":null},"finish_reason":null}],"usage":null,"obfuscation":"aBcD"}"#,
                "😀 naïve",
                "",
            ),
            (
                "python json.dumps",
                r#"{"id": "py", "choices": [{"index": 0, "delta": {"content": "\u4f60\u597d"}, "finish_reason": null}]}"#,
                "你好",
                "",
            ),
        ] {
            let (_, text) = fast(data, ChunkShape::Chat).unwrap_or_else(|| panic!("{server}"));
            assert_eq!(text.content, content, "{server}");
            assert_eq!(text.reasoning, reasoning, "{server}");
        }
    }

    #[test]
    fn rare_or_unusual_chunks_are_left_to_serde() {
        for data in [
            r#"{"choices":[],"usage":{"prompt_tokens":1}}"#,
            r#"{"error":{"message":"x"}}"#,
            r#"{"object":"error","message":"x"}"#,
            r#"{"choices":[{"delta":{"content":"a","content":"b"}}]}"#,
            r#"{"choices":[{"delta":{"cont\u0065nt":"a"}}]}"#,
            r#"{"choices":[{"delta":{"content":"a"},"message":{"content":"b"}}]}"#,
            r#"{"choices":[{"delta":{"content":1}}]}"#,
            r#"{"choices":[{"delta":{"content":"\ud800"}}]}"#,
            r#"{"choices":[{"delta":{"content":"a"}}]} x"#,
            r#"{"choices":[{"delta":{"content":"a"}}],}"#,
            r#"{"choices":[{"delta":{"content":"a"}}],"n":01}"#,
            r#"{"choices":[{"delta":{"content":"a"}}],"n":1.}"#,
            r#"{"choices":[{"delta":{"content":"a"}}],"n":tru}"#,
            "{\"choices\":[{\"delta\":{\"content\":\"a\tb\"}}]}",
            r#"{"choices":[[{"content":"a"}]]}"#,
            "[]",
            "",
        ] {
            let mut text = ResponseText {
                content: "kept".into(),
                reasoning: "kept".into(),
            };
            assert!(
                parse_fast(data.as_bytes(), ChunkShape::Chat, &mut text).is_none(),
                "{data}"
            );
            assert_eq!(text.content, "kept");
            assert_eq!(text.reasoning, "kept");
        }
    }

    #[test]
    fn a_bad_string_found_late_leaves_the_text_untouched() {
        let mut text = ResponseText::default();
        let data =
            br#"{"choices":[{"delta":{"content":"fine","reasoning_content":"bad \udc00"}}]}"#;
        assert!(parse_fast(data, ChunkShape::Chat, &mut text).is_none());
        assert_eq!(text, ResponseText::default());
    }

    #[test]
    fn deep_skipped_values_are_left_to_serde() {
        let deep = format!(
            r#"{{"x":{}{},"choices":[]}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        assert!(fast(&deep, ChunkShape::Chat).is_none());
        let shallow = format!(
            r#"{{"x":{}{},"choices":[]}}"#,
            "[".repeat(10),
            "]".repeat(10)
        );
        assert!(fast(&shallow, ChunkShape::Chat).is_some());
    }
}
