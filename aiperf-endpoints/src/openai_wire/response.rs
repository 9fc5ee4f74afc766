//! Reading OpenAI-compatible responses: the pieces every endpoint's `parse_response` is made
//! of.
//!
//! Responses are deserialized with serde_json into structs that borrow from the chunk
//! ([`WireStr`] holds a `Cow<str>` that only allocates when the server escaped something), and
//! of a list only the first choice is kept ([`First`]): parsing a streamed chunk builds no
//! JSON tree. Streamed chunks are first tried by [`read_first_choice`], which reads their plain
//! case (no escapes, no usage, no error) with the one-pass [`Scanner`] into the same structs
//! and leaves everything else to serde_json. Server errors (`{"error": ...}`, or vLLM's
//! `{"object": "error", "message": ...}`) become a [`ParseError`] carrying the server's
//! message.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use aiperf_core::endpoint::{ParseError, ParsedChunk, Usage};
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::Value;

use super::scanner::Scanner;

/// The `data: [DONE]` marker that ends an OpenAI stream.
const DONE: &[u8] = b"[DONE]";

/// Whether `data` is the end-of-stream marker `[DONE]` (surrounding whitespace allowed).
pub(crate) fn is_done(data: &[u8]) -> bool {
    data.trim_ascii() == DONE
}

/// The chunk that `[DONE]` parses to.
pub(crate) fn done_chunk() -> ParsedChunk {
    ParsedChunk {
        is_done: true,
        ..ParsedChunk::default()
    }
}

/// Deserializes a response that must be a JSON object; anything else is a [`ParseError`]
/// saying so.
///
/// A response that is valid UTF-8 (every compliant server's) is checked once, whole, and read
/// as a `&str`: read as bytes, serde_json checks the UTF-8 of every string it meets, keys
/// included, which cost more than the rest of reading a streamed chunk's strings. Other bytes
/// are read as bytes, which accepts and rejects exactly the same documents.
pub(crate) fn parse_object<'a, T: Deserialize<'a>>(data: &'a [u8]) -> Result<T, ParseError> {
    match std::str::from_utf8(data) {
        Ok(text) => parse_object_text(text),
        Err(_) => parse_json_object(data, || serde_json::from_slice(data)),
    }
}

/// [`parse_object`] of a response already checked to be UTF-8.
fn parse_object_text<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, ParseError> {
    parse_json_object(text.as_bytes(), || serde_json::from_str(text))
}

/// Runs `parse` on `data` if it is a JSON object, and words its errors.
fn parse_json_object<T>(
    data: &[u8],
    parse: impl FnOnce() -> serde_json::Result<T>,
) -> Result<T, ParseError> {
    if data.trim_ascii_start().first() != Some(&b'{') {
        return Err(ParseError::new(
            "the response is not a JSON object: check that the endpoint type matches the \
             server's API",
        ));
    }
    parse().map_err(|e| {
        ParseError::new(format!(
            "the response is not a valid OpenAI response ({e}): check that the endpoint type \
             matches the server's API"
        ))
    })
}

/// The first choice and the usage of a chat or completions response, or the error the server
/// reported. A streamed chunk's plain case (no escapes, no usage, no error) is read in one pass
/// by the [`Scanner`], its first choice by `read_choice`, which must read exactly what serde
/// reads into a `C` and decline (`None`) anything else; everything the scanner declines, and
/// every whole body (which carries its usage), is read by serde. Valid UTF-8 is checked once.
pub(crate) fn read_first_choice<'a, C: Deserialize<'a>>(
    data: &'a [u8],
    streamed: bool,
    read_choice: impl FnMut(&mut Scanner<'a>) -> Option<C>,
) -> Result<(Option<C>, Option<Usage>), ParseError> {
    let Ok(text) = std::str::from_utf8(data) else {
        // Not UTF-8: serde reads the bytes and refuses them where they stand.
        return parse_object::<ChoicesBody<'_, C>>(data)?.into_first();
    };
    if streamed && let Some(choice) = read_plain_body(text, read_choice) {
        return Ok((choice, None));
    }
    parse_object_text::<ChoicesBody<'_, C>>(text)?.into_first()
}

/// Reads the plain case of a response with the [`Scanner`]: `choices` (its first element read
/// by `read_choice`, the others checked and skipped), an `object` other than `"error"`, a null
/// `usage`, other members skipped. `Some(first choice)` only when [`parse_object`] would read
/// the same choice, no usage and no error; `None` leaves the response to [`parse_object`]: a
/// usage, an error, a repeated field, anything the scanner declines.
fn read_plain_body<'a, C>(
    text: &'a str,
    mut read_choice: impl FnMut(&mut Scanner<'a>) -> Option<C>,
) -> Option<Option<C>> {
    let mut scanner = Scanner::new(text);
    let mut choice = None;
    let (mut choices_seen, mut object_seen, mut usage_seen) = (false, false, false);
    scanner.object(|scanner, key| match key {
        "choices" if !std::mem::replace(&mut choices_seen, true) => {
            if scanner.null() {
                return Some(());
            }
            scanner.array(|scanner, index| {
                if index == 0 {
                    choice = Some(read_choice(scanner)?);
                    Some(())
                } else {
                    scanner.skip_value()
                }
            })
        }
        "object" if !std::mem::replace(&mut object_seen, true) => {
            (scanner.null_or_string()? != Some("error")).then_some(())
        }
        "usage" if !std::mem::replace(&mut usage_seen, true) => scanner.null().then_some(()),
        "choices" | "object" | "usage" | "error" | "message" => None,
        _ => scanner.skip_value(),
    })?;
    scanner.at_end().then_some(choice)
}

/// Reads `null` or a string (borrowed) into `slot` once: `None` when `seen` says the field came
/// before (serde_json refuses a repeated field) or the value is neither.
pub(crate) fn read_once<'a>(
    scanner: &mut Scanner<'a>,
    seen: &mut bool,
    slot: &mut Option<WireStr<'a>>,
) -> Option<()> {
    if std::mem::replace(seen, true) {
        return None;
    }
    *slot = scanner.null_or_string()?.map(|s| WireStr(Cow::Borrowed(s)));
    Some(())
}

/// A JSON string borrowed from the response when it has no escapes, owned otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireStr<'a>(pub(crate) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for WireStr<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = WireStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(WireStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(WireStr(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

/// Appends `s` to `buf` when it is present and not empty; returns whether it did.
pub(crate) fn append_non_empty(buf: &mut String, s: Option<WireStr<'_>>) -> bool {
    match s {
        Some(WireStr(s)) if !s.is_empty() => {
            buf.push_str(&s);
            true
        }
        _ => false,
    }
}

/// The first element of a JSON list; the others are checked and skipped without being kept.
#[derive(Debug)]
pub(crate) struct First<T>(pub(crate) Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for First<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FirstVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for FirstVisitor<T> {
            type Value = First<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let first = seq.next_element()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(First(first))
            }
        }
        deserializer.deserialize_seq(FirstVisitor(PhantomData))
    }
}

/// OpenAI `usage`.
#[derive(Debug, Deserialize)]
pub(crate) struct WireUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    completion_tokens_details: Option<WireCompletionDetails>,
    total_tokens: Option<u64>,
}

/// OpenAI `usage.completion_tokens_details`.
#[derive(Debug, Deserialize)]
struct WireCompletionDetails {
    reasoning_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(usage: WireUsage) -> Self {
        Usage {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            reasoning_tokens: usage
                .completion_tokens_details
                .and_then(|details| details.reasoning_tokens),
            total_tokens: usage.total_tokens,
        }
    }
}

/// A chat or completions response (a streamed chunk or a whole body), generic over the shape
/// of its choice: only the first choice is kept.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "C: Deserialize<'de>"))]
struct ChoicesBody<'a, C> {
    choices: Option<First<C>>,
    usage: Option<WireUsage>,
    /// OpenAI, TGI, SGLang: `{"error": {"message": ...}}` or `{"error": "..."}`.
    error: Option<Value>,
    /// vLLM reports errors as `{"object": "error", "message": ...}`.
    #[serde(borrow)]
    object: Option<WireStr<'a>>,
    /// vLLM's error message.
    #[serde(borrow)]
    message: Option<WireStr<'a>>,
}

impl<C> ChoicesBody<'_, C> {
    /// The first choice and the usage, or the error the server reported.
    fn into_first(self) -> Result<(Option<C>, Option<Usage>), ParseError> {
        server_error(self.error, self.object.as_ref(), self.message.as_ref())?;
        Ok((
            self.choices.and_then(|first| first.0),
            self.usage.map(Usage::from),
        ))
    }
}

/// A [`ParseError`] carrying the server's message when the response reports an error.
pub(crate) fn server_error(
    error: Option<Value>,
    object: Option<&WireStr<'_>>,
    message: Option<&WireStr<'_>>,
) -> Result<(), ParseError> {
    let message = match (error, object) {
        (Some(Value::String(message)), _) => message,
        (Some(Value::Object(error)), _) => match error.get("message") {
            Some(Value::String(message)) => message.clone(),
            _ => Value::Object(error).to_string(),
        },
        (Some(other), _) => other.to_string(),
        (None, Some(WireStr(object))) if object == "error" => match message {
            Some(WireStr(message)) => message.clone().into_owned(),
            None => "no message".to_owned(),
        },
        (None, _) => return Ok(()),
    };
    Err(ParseError::reported_by_server(format!(
        "the server returned an error: {message}"
    )))
}

/// What the chat and completions tests use to check that their `read_choice` reads what serde
/// reads.
#[cfg(test)]
pub(crate) mod plain_reading_checks {
    use std::fmt::Debug;

    use proptest::prelude::*;

    use super::*;

    /// Checks that the plain reading of `data` agrees with serde's: when the scanner answers,
    /// serde reads the same first choice and no usage nor error. Returns whether it answered.
    pub(crate) fn check<'a, C: Deserialize<'a> + Debug + PartialEq>(
        data: &'a [u8],
        read_choice: impl FnMut(&mut Scanner<'a>) -> Option<C>,
    ) -> bool {
        let Some(plain) = std::str::from_utf8(data)
            .ok()
            .and_then(|text| read_plain_body(text, read_choice))
        else {
            return false;
        };
        let shown = String::from_utf8_lossy(data);
        let serde = parse_object::<ChoicesBody<'_, C>>(data)
            .and_then(ChoicesBody::into_first)
            .unwrap_or_else(|e| panic!("the scanner read {shown:?}, serde refused it: {e}"));
        assert_eq!((plain, None), serde, "{shown:?}");
        true
    }

    /// Checks with [`check`] that the scanner answers each of `answered` (agreeing with serde)
    /// and declines each of `declined`, leaving it to serde.
    pub(crate) fn answers_and_declines<C: Deserialize<'static> + Debug + PartialEq>(
        answered: &[&'static str],
        declined: &[&'static str],
        read_choice: impl FnMut(&mut Scanner<'static>) -> Option<C> + Copy,
    ) {
        for chunk in answered {
            assert!(check(chunk.as_bytes(), read_choice), "answered: {chunk}");
        }
        for chunk in declined {
            assert!(!check(chunk.as_bytes(), read_choice), "declined: {chunk}");
        }
    }

    /// Runs `check_one` (a [`check`] with the endpoint's `read_choice`) on every input of the
    /// response-parsing fuzz targets (`fuzz/corpus`): most are malformed, and check that the
    /// scanner never accepts what serde refuses; those it answers check that it reads what
    /// serde reads, and there must be at least `floor` of them.
    pub(crate) fn on_fuzz_corpora(floor: usize, mut check_one: impl FnMut(&[u8]) -> bool) {
        let corpora = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        let (mut read, mut answered) = (0, 0);
        for target in ["chat_parse", "completions_parse", "plugin_vs_builtin"] {
            for entry in std::fs::read_dir(corpora.join(target)).unwrap() {
                let data = std::fs::read(entry.unwrap().path()).unwrap();
                answered += usize::from(check_one(&data));
                read += 1;
            }
        }
        assert!(read > 100, "the corpora are missing: {read} inputs");
        assert!(
            answered >= floor,
            "the scanner answered only {answered} of {read} inputs"
        );
    }

    /// One of `chunks` with a few pieces of JSON grammar spliced in anywhere: the common ones
    /// and the endpoint's own field names, `names`.
    pub(crate) fn spliced(
        chunks: &[&'static str],
        names: &[&'static str],
    ) -> impl Strategy<Value = Vec<u8>> + use<> {
        let grammar = [
            "",
            " ",
            ",",
            ":",
            "{",
            "}",
            "[",
            "]",
            "\"",
            "\\\"",
            "\\n",
            "\t",
            "null",
            "nul",
            "true",
            "0",
            "01",
            "-1.5e+3",
            "1.",
            "\"choices\"",
            "\"object\"",
            "\"error\"",
            "\"usage\"",
            "\"message\"",
            "\"x\"",
            "\u{e9}",
            "[[]]",
            "{}",
        ];
        let piece = prop::sample::select(grammar.iter().chain(names).copied().collect::<Vec<_>>());
        let edit = (any::<prop::sample::Index>(), 0..4usize, piece);
        let chunks = prop::sample::select(chunks.to_vec());
        (chunks, prop::collection::vec(edit, 1..4)).prop_map(|(chunk, edits)| {
            let mut data = chunk.as_bytes().to_vec();
            for (at, cut, piece) in edits {
                let start = at.index(data.len() + 1);
                let end = (start + cut).min(data.len());
                data.splice(start..end, piece.bytes());
            }
            data
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn done_marker_allows_surrounding_whitespace_only() {
        assert!(is_done(b"[DONE]"));
        assert!(is_done(b" [DONE]\n"));
        assert!(!is_done(b"[DONE]x"));
        assert!(!is_done(b"{}"));
        assert!(!is_done(b""));
    }

    #[test]
    fn wire_str_borrows_unless_escaped() {
        let plain: WireStr<'_> = serde_json::from_slice(br#""abc""#).unwrap();
        assert!(matches!(plain.0, Cow::Borrowed("abc")));
        let escaped: WireStr<'_> = serde_json::from_slice(br#""a\nb\u00e9""#).unwrap();
        assert!(matches!(escaped.0, Cow::Owned(ref s) if s == "a\nbé"));
    }

    #[test]
    fn first_keeps_the_first_element_and_checks_the_rest() {
        let first: First<u32> = serde_json::from_str("[1, 2, 3]").unwrap();
        assert_eq!(first.0, Some(1));
        let empty: First<u32> = serde_json::from_str("[]").unwrap();
        assert_eq!(empty.0, None);
        assert!(serde_json::from_str::<First<u32>>("[1, nope]").is_err());
    }

    #[test]
    fn usage_keeps_reasoning_tokens_from_the_details() {
        let usage: WireUsage = serde_json::from_value(json!({
            "prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42,
            "completion_tokens_details": {"reasoning_tokens": 20}
        }))
        .unwrap();
        assert_eq!(
            Usage::from(usage),
            Usage {
                prompt_tokens: Some(12),
                completion_tokens: Some(30),
                reasoning_tokens: Some(20),
                total_tokens: Some(42),
            }
        );
        let bare: WireUsage =
            serde_json::from_value(json!({"completion_tokens_details": null})).unwrap();
        assert_eq!(Usage::from(bare), Usage::default());
    }

    fn error_of(body: &str) -> Result<(), ParseError> {
        let body: ChoicesBody<'_, IgnoredAny> = serde_json::from_str(body).unwrap();
        body.into_first().map(drop)
    }

    #[test]
    fn server_errors_carry_the_server_message() {
        for (body, expected) in [
            (
                r#"{"error":{"message":"model `x` not found","type":"invalid_request_error"}}"#,
                "the server returned an error: model `x` not found",
            ),
            (
                r#"{"error":"Input validation error"}"#,
                "the server returned an error: Input validation error",
            ),
            (
                r#"{"error":{"code":503}}"#,
                r#"the server returned an error: {"code":503}"#,
            ),
            (
                r#"{"object":"error","message":"max_tokens is too large","type":"BadRequestError","code":400}"#,
                "the server returned an error: max_tokens is too large",
            ),
        ] {
            assert_eq!(error_of(body).unwrap_err().message, expected, "{body}");
        }
        assert!(error_of(r#"{"error":null,"object":"chat.completion.chunk"}"#).is_ok());
    }

    #[test]
    fn reading_a_response_as_text_judges_it_as_reading_its_bytes() {
        // Valid UTF-8 is read as `&str`: it must accept, refuse and read what bytes would.
        for data in [
            &br#"{"object":"caf\xC3\xA9"}"#[..],
            br#"{"object":"caf\u00e9"}"#,
            br#"{"object":"\ud800"}"#,
            br#"{"object":"a\"b"}"#,
            br#"{"object":1}"#,
            b"{\"object\":\"x\"} ",
            b"{\"object\":\"x\"} x",
        ] {
            let ours = parse_object::<ChoicesBody<'_, IgnoredAny>>(data).map(|body| body.object);
            let bytes =
                serde_json::from_slice::<ChoicesBody<'_, IgnoredAny>>(data).map(|body| body.object);
            assert_eq!(ours.ok(), bytes.ok(), "{data:?}");
        }
        // Other bytes are read as bytes, refused wherever they stand.
        for data in [
            &br#"{"id":"caf\xE9","object":"x"}"#[..],
            br#"{"object":"caf\xE9"}"#,
            b"{\"id\":1}\xFF",
        ] {
            assert!(
                parse_object::<ChoicesBody<'_, IgnoredAny>>(data).is_err(),
                "{data:?}"
            );
        }
    }

    #[test]
    fn non_objects_and_malformed_json_are_parse_errors() {
        for bad in ["", "  ", "[1]", "\"s\"", "{", "{\"a\":}", "{} x"] {
            assert!(
                parse_object::<ChoicesBody<'_, IgnoredAny>>(bad.as_bytes()).is_err(),
                "{bad:?}"
            );
        }
    }
}
