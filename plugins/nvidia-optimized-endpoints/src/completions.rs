//! [`OptimizedCompletionsEndpoint`]: OpenAI text completions for NVIDIA NIM, with `nvext` for
//! an exact output length, a pre-serialized payload prefix, and the tree-free chunk reader.

use std::borrow::Cow;

use aiperf_core::endpoint::{
    Endpoint, EndpointContext, EndpointMetadata, Message, ParseError, ParsedChunk, RequestInput,
    ResponseText, WireFormat,
};
use aiperf_core::registry::CreateError;
use bytes::Bytes;

use crate::chunk_scan::{ChunkShape, parse_fast};
use crate::endpoint_path::resolve_path;
use crate::json_escape::write_json_str_contents;
use crate::payload_template::{PayloadShape, PayloadTemplate};
use crate::wire;

const METADATA: EndpointMetadata = EndpointMetadata {
    path: "/v1/completions",
    supports_streaming: true,
    produces_tokens: true,
    wire_format: WireFormat::Http,
};

const SHAPE: PayloadShape = PayloadShape {
    content_key: "prompt",
    length_key: Some("max_tokens"),
    streams: true,
    nvext: true,
};

/// Text completions (`/v1/completions`) for NVIDIA NIM.
///
/// The payload is the OpenAI one (`model`, `prompt` = the messages joined by blank lines,
/// `stream`, `max_tokens`, `stream_options.include_usage` when streaming, extra inputs merged
/// and winning) plus, when an output length is asked for,
/// `"nvext": {"ignore_eos": true, "min_tokens": N}`. Responses read exactly as with aiperf's
/// builtin `completions` endpoint.
#[derive(Debug, Clone)]
pub struct OptimizedCompletionsEndpoint {
    template: PayloadTemplate,
    path: Cow<'static, str>,
}

impl Endpoint for OptimizedCompletionsEndpoint {
    fn create(ctx: &EndpointContext) -> Result<Self, CreateError> {
        Ok(Self {
            template: PayloadTemplate::new(ctx, SHAPE),
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
        let len = input.messages.iter().map(|m| m.content.len() + 4).sum();
        self.template.write(len, input.max_output_tokens, |out| {
            write_joined_prompt(out, &input.messages);
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
        match parse_fast(data, ChunkShape::Completions, text) {
            Some(parsed) => Ok(parsed),
            None => wire::parse_completions(data, text),
        }
    }
}

/// Writes the messages' contents joined by blank lines as one JSON string, without building
/// the joined prompt first.
fn write_joined_prompt(out: &mut Vec<u8>, messages: &[Message]) {
    out.push(b'"');
    for (i, message) in messages.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(br"\n\n");
        }
        write_json_str_contents(out, &message.content);
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use aiperf_core::endpoint::Role;
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn payload_joins_the_prompt_and_adds_nvext() {
        let completions = OptimizedCompletionsEndpoint::create(&EndpointContext {
            model: "m".into(),
            ..EndpointContext::default()
        })
        .unwrap();
        let input = RequestInput {
            messages: vec![
                Message {
                    role: Role::System,
                    content: "Sys".into(),
                },
                Message::user("Tell me \"a\" story"),
            ],
            max_output_tokens: Some(5),
        };
        let body: Value = serde_json::from_slice(&completions.format_payload(&input)).unwrap();
        assert_eq!(
            body,
            json!({
                "model": "m",
                "prompt": input.joined_prompt(),
                "stream": false,
                "max_tokens": 5,
                "nvext": {"ignore_eos": true, "min_tokens": 5},
            })
        );
    }

    #[test]
    fn stream_reads_text() {
        let completions =
            OptimizedCompletionsEndpoint::create(&EndpointContext::default()).unwrap();
        let mut text = ResponseText::default();
        for chunk in [
            r#"{"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":"One","logprobs":null,"finish_reason":null}],"usage":null}"#,
            r#"{"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":"\ttwo","logprobs":null,"finish_reason":"length"}],"usage":null}"#,
        ] {
            assert!(
                completions
                    .parse_response(chunk.as_bytes(), &mut text)
                    .unwrap()
                    .has_content
            );
        }
        assert_eq!(text.content, "One\ttwo");
    }
}
