//! The `embeddings` endpoint: OpenAI embeddings (`/v1/embeddings`).
//!
//! Payload: `{"model", "input": [the user messages' contents]}`, then the extra inputs (e.g.
//! `encoding_format`, `dimensions`), which override fields of the same name. Embeddings do not
//! stream and produce no output tokens.
//!
//! Responses: a whole body whose `data[].embedding` are lists of floats (or base64 strings with
//! `encoding_format: base64`); it has content when at least one embedding is non-empty. The
//! vectors are counted, never kept. `usage.prompt_tokens` is the input length.

use std::fmt;

use aiperf_core::endpoint::{
    Endpoint, EndpointContext, EndpointMetadata, ParseError, ParsedChunk, RequestInput,
    ResponseText, Usage, WireFormat,
};
use aiperf_core::registry::CreateError;
use bytes::Bytes;
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::Value;

use crate::openai_wire::Settings;
use crate::openai_wire::payload::{Field, write_payload};
use crate::openai_wire::response::{
    WireStr, WireUsage, done_chunk, is_done, parse_object, server_error,
};

/// OpenAI embeddings (`/v1/embeddings`); never streams.
#[derive(Debug, Clone)]
pub struct EmbeddingsEndpoint {
    settings: Settings,
}

aiperf_core::register!(endpoint "embeddings" => EmbeddingsEndpoint, "OpenAI embeddings (/v1/embeddings): the user messages in, vectors out, not streamed");

const METADATA: EndpointMetadata = EndpointMetadata {
    path: "/v1/embeddings",
    supports_streaming: false,
    produces_tokens: false,
    wire_format: WireFormat::Http,
};

/// An embeddings response body.
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

/// How many items of `data` carry a non-empty embedding.
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

/// `data[i]`.
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

impl Endpoint for EmbeddingsEndpoint {
    fn create(ctx: &EndpointContext) -> Result<Self, CreateError> {
        if ctx.streaming {
            return Err(CreateError::new(
                "the embeddings endpoint does not stream: drop --streaming",
            ));
        }
        Ok(Self {
            settings: Settings::new(ctx, METADATA.path),
        })
    }

    fn metadata(&self) -> EndpointMetadata {
        METADATA
    }

    fn path(&self) -> &str {
        &self.settings.path
    }

    fn format_payload(&self, input: &RequestInput) -> Bytes {
        let s = &self.settings;
        write_payload(
            &[
                Some(("model", Field::Str(&s.model))),
                Some(("input", Field::UserContents(&input.messages))),
            ],
            &s.extra,
        )
    }

    fn parse_response(
        &self,
        data: &[u8],
        _text: &mut ResponseText,
    ) -> Result<ParsedChunk, ParseError> {
        if is_done(data) {
            return Ok(done_chunk());
        }
        let body: EmbeddingsBody<'_> = parse_object(data)?;
        server_error(body.error, body.object.as_ref(), body.message.as_ref())?;
        Ok(ParsedChunk {
            has_content: body.data.is_some_and(|count| count.0 > 0),
            usage: body.usage.map(Usage::from),
            ..ParsedChunk::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use aiperf_core::endpoint::{Message, Role};
    use serde_json::json;

    use super::*;

    fn endpoint() -> EmbeddingsEndpoint {
        EmbeddingsEndpoint::create(&EndpointContext {
            model: "nvidia/nv-embedqa-e5-v5".into(),
            ..EndpointContext::default()
        })
        .unwrap()
    }

    fn parse(body: &str) -> Result<ParsedChunk, ParseError> {
        endpoint().parse_response(body.as_bytes(), &mut ResponseText::default())
    }

    #[test]
    fn streaming_is_rejected_with_what_to_do() {
        let err = EmbeddingsEndpoint::create(&EndpointContext {
            streaming: true,
            ..EndpointContext::default()
        })
        .unwrap_err();
        assert!(err.message.contains("drop --streaming"), "{}", err.message);
        assert!(!endpoint().metadata().produces_tokens);
        assert!(!endpoint().metadata().supports_streaming);
    }

    #[test]
    fn payload_embeds_the_user_messages() {
        let input = RequestInput {
            messages: vec![
                Message {
                    role: Role::System,
                    content: "ignored".into(),
                },
                Message::user("first passage"),
                Message::user("second \"passage\""),
            ],
            max_output_tokens: Some(10),
        };
        let body: Value = serde_json::from_slice(&endpoint().format_payload(&input)).unwrap();
        assert_eq!(
            body,
            json!({
                "model": "nvidia/nv-embedqa-e5-v5",
                "input": ["first passage", "second \"passage\""],
            })
        );
    }

    #[test]
    fn body_with_vectors_has_content_and_prompt_tokens() {
        let parsed = parse(
            r#"{"object":"list","data":[{"object":"embedding","embedding":[0.0123,-0.25,1e-3],"index":0},{"object":"embedding","embedding":[],"index":1}],"model":"m","usage":{"prompt_tokens":8,"total_tokens":8}}"#,
        )
        .unwrap();
        assert!(parsed.has_content && !parsed.has_reasoning);
        assert_eq!(parsed.usage.unwrap().prompt_tokens, Some(8));
        let base64 = parse(r#"{"data":[{"embedding":"AACAPwAAAEA="}]}"#).unwrap();
        assert!(base64.has_content && base64.usage.is_none());
    }

    #[test]
    fn empty_embeddings_are_not_content() {
        for body in [
            r#"{"data":[]}"#,
            r#"{"data":[{"embedding":[]}]}"#,
            r#"{"data":[{"index":0}]}"#,
            r#"{"object":"list"}"#,
        ] {
            assert!(!parse(body).unwrap().has_content, "{body}");
        }
    }

    #[test]
    fn errors_and_malformed_bodies_are_parse_errors() {
        let err = parse(r#"{"error":{"message":"input too long","code":400}}"#).unwrap_err();
        assert_eq!(err.message, "the server returned an error: input too long");
        for bad in [
            r#"{"data":[{"embedding":[1,]}]}"#,
            r#"{"data":[{"embedding":7}]}"#,
            "nope",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
