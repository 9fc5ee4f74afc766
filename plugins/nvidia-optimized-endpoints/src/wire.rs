//! The OpenAI response format read with serde: the exact path for what the fast path
//! ([`crate::chunk_scan`]) declines (the usage chunk at the end of a stream, server errors,
//! anything unusual), for whole non-streamed bodies, and for embeddings.
//!
//! Its rules are those of aiperf's builtin endpoints, so that a response reads the same
//! whichever endpoint is selected (the crate's differential tests check it): only
//! `choices[0]` counts; chat reads `delta` (else `message`) with `content` and
//! `reasoning_content` (or vLLM's `reasoning` when that is absent or empty); empty strings are
//! not content; `{"error": ...}` and vLLM's `{"object": "error", "message": ...}` are
//! [`ParseError`]s carrying the server's message. Strings borrow from the response unless
//! escaped.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use aiperf_core::endpoint::{ParseError, ParsedChunk, ResponseText, Usage};
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::Value;

/// Whether `data` is the end-of-stream marker `[DONE]` (surrounding whitespace allowed).
pub(crate) fn is_done(data: &[u8]) -> bool {
    data.trim_ascii() == b"[DONE]"
}

/// The chunk that `[DONE]` reads as.
pub(crate) fn done_chunk() -> ParsedChunk {
    ParsedChunk {
        is_done: true,
        ..ParsedChunk::default()
    }
}

/// Reads a chat chunk or body.
pub(crate) fn parse_chat(data: &[u8], text: &mut ResponseText) -> Result<ParsedChunk, ParseError> {
    let body: ChoicesBody<'_, ChatChoice<'_>> = parse_object(data)?;
    let (choice, usage) = body.into_first()?;
    let mut chunk = ParsedChunk {
        usage,
        ..ParsedChunk::default()
    };
    if let Some(message) = choice.and_then(|c| c.delta.or(c.message)) {
        chunk.has_content = append_non_empty(&mut text.content, message.content);
        let reasoning = message
            .reasoning_content
            .filter(|r| !r.0.is_empty())
            .or(message.reasoning);
        chunk.has_reasoning = append_non_empty(&mut text.reasoning, reasoning);
    }
    Ok(chunk)
}

/// Reads a completions chunk or body.
pub(crate) fn parse_completions(
    data: &[u8],
    text: &mut ResponseText,
) -> Result<ParsedChunk, ParseError> {
    let body: ChoicesBody<'_, CompletionChoice<'_>> = parse_object(data)?;
    let (choice, usage) = body.into_first()?;
    Ok(ParsedChunk {
        has_content: append_non_empty(&mut text.content, choice.and_then(|c| c.text)),
        usage,
        ..ParsedChunk::default()
    })
}

/// Reads an embeddings body: content when at least one embedding is non-empty.
pub(crate) fn parse_embeddings(data: &[u8]) -> Result<ParsedChunk, ParseError> {
    let body: EmbeddingsBody<'_> = parse_object(data)?;
    server_error(body.error, body.object.as_ref(), body.message.as_ref())?;
    Ok(ParsedChunk {
        has_content: body.data.is_some_and(|count| count.0 > 0),
        usage: body.usage.map(Usage::from),
        ..ParsedChunk::default()
    })
}

/// Deserializes a response that must be a JSON object.
fn parse_object<'a, T: Deserialize<'a>>(data: &'a [u8]) -> Result<T, ParseError> {
    if data.trim_ascii_start().first() != Some(&b'{') {
        return Err(ParseError::new(
            "the response is not a JSON object: check that the endpoint type matches the \
             server's API",
        ));
    }
    serde_json::from_slice(data).map_err(|e| {
        ParseError::new(format!(
            "the response is not a valid OpenAI response ({e}): check that the endpoint type \
             matches the server's API"
        ))
    })
}

/// A chat or completions response, generic over the shape of its choice.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "C: Deserialize<'de>"))]
struct ChoicesBody<'a, C> {
    choices: Option<First<C>>,
    usage: Option<WireUsage>,
    error: Option<Value>,
    #[serde(borrow)]
    object: Option<WireStr<'a>>,
    #[serde(borrow)]
    message: Option<WireStr<'a>>,
}

impl<C> ChoicesBody<'_, C> {
    fn into_first(self) -> Result<(Option<C>, Option<Usage>), ParseError> {
        server_error(self.error, self.object.as_ref(), self.message.as_ref())?;
        Ok((
            self.choices.and_then(|first| first.0),
            self.usage.map(Usage::from),
        ))
    }
}

#[derive(Debug, Deserialize)]
struct ChatChoice<'a> {
    #[serde(borrow)]
    delta: Option<ChatMessage<'a>>,
    #[serde(borrow)]
    message: Option<ChatMessage<'a>>,
}

#[derive(Debug, Deserialize)]
struct ChatMessage<'a> {
    #[serde(borrow)]
    content: Option<WireStr<'a>>,
    #[serde(borrow)]
    reasoning_content: Option<WireStr<'a>>,
    #[serde(borrow)]
    reasoning: Option<WireStr<'a>>,
}

#[derive(Debug, Deserialize)]
struct CompletionChoice<'a> {
    #[serde(borrow)]
    text: Option<WireStr<'a>>,
}

#[derive(Debug, Deserialize)]
struct EmbeddingsBody<'a> {
    data: Option<NonEmptyCount>,
    usage: Option<WireUsage>,
    error: Option<Value>,
    #[serde(borrow)]
    object: Option<WireStr<'a>>,
    #[serde(borrow)]
    message: Option<WireStr<'a>>,
}

/// A JSON string borrowed from the response when it has no escapes, owned otherwise.
#[derive(Debug)]
struct WireStr<'a>(Cow<'a, str>);

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

fn append_non_empty(buf: &mut String, s: Option<WireStr<'_>>) -> bool {
    match s {
        Some(WireStr(s)) if !s.is_empty() => {
            buf.push_str(&s);
            true
        }
        _ => false,
    }
}

/// The first element of a JSON list; the others are checked and skipped.
#[derive(Debug)]
struct First<T>(Option<T>);

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

/// How many items of an embeddings `data` list carry a non-empty embedding.
#[derive(Debug)]
struct NonEmptyCount(usize);

impl<'de> Deserialize<'de> for NonEmptyCount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountVisitor;
        impl<'de> Visitor<'de> for CountVisitor {
            type Value = NonEmptyCount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of embeddings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut count = 0;
                while let Some(item) = seq.next_element::<EmbeddingItem>()? {
                    count += usize::from(item.embedding.is_some_and(|len| len.0 > 0));
                }
                Ok(NonEmptyCount(count))
            }
        }
        deserializer.deserialize_seq(CountVisitor)
    }
}

#[derive(Debug, Deserialize)]
struct EmbeddingItem {
    embedding: Option<EmbeddingLen>,
}

/// The length of one embedding: its number of values, or of base64 characters.
#[derive(Debug)]
struct EmbeddingLen(usize);

impl<'de> Deserialize<'de> for EmbeddingLen {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LenVisitor;
        impl<'de> Visitor<'de> for LenVisitor {
            type Value = EmbeddingLen;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of numbers or a base64 string")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut len = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    len += 1;
                }
                Ok(EmbeddingLen(len))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(EmbeddingLen(v.len()))
            }
        }
        deserializer.deserialize_any(LenVisitor)
    }
}

#[derive(Debug, Deserialize)]
struct WireUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    completion_tokens_details: Option<WireCompletionDetails>,
    total_tokens: Option<u64>,
}

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

/// A [`ParseError`] carrying the server's message when the response reports an error.
fn server_error(
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
