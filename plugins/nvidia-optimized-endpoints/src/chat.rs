//! [`OptimizedChatEndpoint`]: OpenAI chat completions for NVIDIA NIM, with `nvext` for an
//! exact output length, a pre-serialized payload prefix, and the tree-free chunk reader.

use std::borrow::Cow;

use aiperf_core::endpoint::{
    Endpoint, EndpointContext, EndpointMetadata, Message, ParseError, ParsedChunk, RequestInput,
    ResponseText, Role, WireFormat,
};
use aiperf_core::registry::CreateError;
use bytes::Bytes;

use crate::chunk_scan::{ChunkShape, parse_fast};
use crate::endpoint_path::resolve_path;
use crate::json_escape::write_json_str;
use crate::payload_template::{PayloadShape, PayloadTemplate};
use crate::wire;

const METADATA: EndpointMetadata = EndpointMetadata {
    path: "/v1/chat/completions",
    supports_streaming: true,
    produces_tokens: true,
    wire_format: WireFormat::Http,
};

const SHAPE: PayloadShape = PayloadShape {
    content_key: "messages",
    length_key: Some("max_completion_tokens"),
    streams: true,
    nvext: true,
};

/// Chat completions (`/v1/chat/completions`) for NVIDIA NIM.
///
/// The payload is the OpenAI one (`model`, `messages`, `stream`, `max_completion_tokens` or,
/// with `--use-legacy-max-tokens`, `max_tokens`, `stream_options.include_usage` when
/// streaming, extra inputs merged and winning) plus, when an output length is asked for,
/// `"nvext": {"ignore_eos": true, "min_tokens": N}`.
/// Responses read exactly as with aiperf's builtin `chat` endpoint.
#[derive(Debug, Clone)]
pub struct OptimizedChatEndpoint {
    template: PayloadTemplate,
    path: Cow<'static, str>,
}

impl Endpoint for OptimizedChatEndpoint {
    fn create(ctx: &EndpointContext) -> Result<Self, CreateError> {
        Ok(Self {
            template: PayloadTemplate::new(
                ctx,
                PayloadShape {
                    length_key: Some(ctx.output_length_key()),
                    ..SHAPE
                },
            ),
            path: resolve_path(ctx.custom_path.as_deref(), METADATA.path),
        })
    }

    fn metadata(&self) -> EndpointMetadata {
        METADATA
    }

    fn path(&self) -> &str {
        &self.path
    }

    fn format_payload(&self, input: &RequestInput) -> Bytes {
        let len = input.messages.iter().map(|m| m.content.len() + 40).sum();
        self.template.write(len, input.max_output_tokens, |out| {
            write_messages(out, &input.messages);
        })
    }

    fn parse_response(
        &self,
        data: &[u8],
        text: &mut ResponseText,
    ) -> Result<ParsedChunk, ParseError> {
        if wire::is_done(data) {
            return Ok(wire::done_chunk());
        }
        match parse_fast(data, ChunkShape::Chat, text) {
            Some(parsed) => Ok(parsed),
            None => wire::parse_chat(data, text),
        }
    }
}

/// Writes `[{"role":..,"content":..},..]`.
fn write_messages(out: &mut Vec<u8>, messages: &[Message]) {
    out.push(b'[');
    for (i, message) in messages.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(match message.role {
            Role::System => br#"{"role":"system","content":"#,
            Role::User => br#"{"role":"user","content":"#,
            Role::Assistant => br#"{"role":"assistant","content":"#,
        });
        write_json_str(out, &message.content);
        out.push(b'}');
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn payload_has_messages_length_and_nvext() {
        let chat = OptimizedChatEndpoint::create(&EndpointContext {
            model: "meta/llama-3.1-8b-instruct".into(),
            streaming: true,
            ..EndpointContext::default()
        })
        .unwrap();
        let input = RequestInput {
            messages: vec![
                Message {
                    role: Role::System,
                    content: "Be \"brief\".".into(),
                },
                Message::user("Why?\n"),
                Message {
                    role: Role::Assistant,
                    content: "Because.".into(),
                },
            ],
            max_output_tokens: Some(200),
        };
        let body: Value = serde_json::from_slice(&chat.format_payload(&input)).unwrap();
        assert_eq!(
            body,
            json!({
                "model": "meta/llama-3.1-8b-instruct",
                "messages": [
                    {"role": "system", "content": "Be \"brief\"."},
                    {"role": "user", "content": "Why?\n"},
                    {"role": "assistant", "content": "Because."},
                ],
                "stream": true,
                "stream_options": {"include_usage": true},
                "max_completion_tokens": 200,
                "nvext": {"ignore_eos": true, "min_tokens": 200},
            })
        );
        assert_eq!(chat.path(), "/v1/chat/completions");
        assert_eq!(chat.metadata(), METADATA);
    }

    #[test]
    fn the_legacy_flag_names_the_output_length_max_tokens() {
        let chat = OptimizedChatEndpoint::create(&EndpointContext {
            use_legacy_max_tokens: true,
            ..EndpointContext::default()
        })
        .unwrap();
        let input = RequestInput {
            messages: vec![Message::user("hi")],
            max_output_tokens: Some(9),
        };
        let body: Value = serde_json::from_slice(&chat.format_payload(&input)).unwrap();
        assert_eq!(body["max_tokens"], json!(9), "{body}");
        assert_eq!(body.get("max_completion_tokens"), None, "{body}");
        assert_eq!(body["nvext"]["min_tokens"], json!(9), "{body}");
    }

    #[test]
    fn stream_reads_content_usage_and_done() {
        let chat = OptimizedChatEndpoint::create(&EndpointContext::default()).unwrap();
        let mut text = ResponseText::default();
        let chunks: Vec<ParsedChunk> = [
            r#"{"id":"1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
            r#"{"id":"1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Bonjour \u00e0 \ud83c\udf0d"}}]}"#,
            r#"{"id":"1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#,
            "[DONE]",
        ]
        .iter()
        .map(|c| chat.parse_response(c.as_bytes(), &mut text).unwrap())
        .collect();
        assert_eq!(text.content, "Bonjour à 🌍");
        assert!(!chunks[0].is_response() && chunks[1].has_content);
        assert_eq!(chunks[2].usage.unwrap().completion_tokens, Some(4));
        assert!(chunks[3].is_done);
        let err = chat
            .parse_response(br#"{"error":{"message":"overloaded"}}"#, &mut text)
            .unwrap_err();
        assert_eq!(err.message, "the server returned an error: overloaded");
    }
}
