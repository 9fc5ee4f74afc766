//! [`OptimizedEmbeddingsEndpoint`]: OpenAI embeddings for NVIDIA NIM with the pre-serialized
//! payload prefix. `nvext` does not apply (no output tokens).
//!
//! Bodies are read with serde ([`crate::wire`]), not with the chunk scanner: an embeddings
//! response comes once per request, not once per streamed token, so its parse is off the
//! per-chunk path, and it is made of float lists that any exact reader has to walk number by
//! number anyway; serde skips them without allocating, counting the values only.

use std::borrow::Cow;

use aiperf_core::endpoint::{
    Endpoint, EndpointContext, EndpointMetadata, Message, ParseError, ParsedChunk, RequestInput,
    ResponseText, Role, WireFormat,
};
use aiperf_core::registry::CreateError;
use bytes::Bytes;

use crate::endpoint_path::resolve_path;
use crate::json_escape::write_json_str;
use crate::payload_template::{PayloadShape, PayloadTemplate};
use crate::wire;

const METADATA: EndpointMetadata = EndpointMetadata {
    path: "/v1/embeddings",
    supports_streaming: false,
    produces_tokens: false,
    wire_format: WireFormat::Http,
};

const SHAPE: PayloadShape = PayloadShape {
    content_key: "input",
    length_key: None,
    streams: false,
    nvext: false,
};

/// Embeddings (`/v1/embeddings`) for NVIDIA NIM; never streams.
///
/// The payload is `{"model", "input": [the user messages' contents]}` with the extra inputs
/// merged (NIM retrievers take `input_type` and `truncate` there). Bodies read exactly as with
/// aiperf's builtin `embeddings` endpoint.
#[derive(Debug, Clone)]
pub struct OptimizedEmbeddingsEndpoint {
    template: PayloadTemplate,
    path: Cow<'static, str>,
}

impl Endpoint for OptimizedEmbeddingsEndpoint {
    fn create(ctx: &EndpointContext) -> Result<Self, CreateError> {
        if ctx.streaming {
            return Err(CreateError::new(
                "the embeddings endpoint does not stream: drop --streaming",
            ));
        }
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
        self.template.write(len, None, |out| {
            write_user_contents(out, &input.messages);
        })
    }

    fn parse_response(
        &self,
        data: &[u8],
        _text: &mut ResponseText,
    ) -> Result<ParsedChunk, ParseError> {
        if wire::is_done(data) {
            return Ok(wire::done_chunk());
        }
        wire::parse_embeddings(data)
    }
}

/// Writes the user messages' contents as a JSON list of strings.
fn write_user_contents(out: &mut Vec<u8>, messages: &[Message]) {
    out.push(b'[');
    let users = messages.iter().filter(|m| m.role == Role::User);
    for (i, message) in users.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_str(out, &message.content);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn streaming_is_rejected_and_nvext_is_never_sent() {
        let err = OptimizedEmbeddingsEndpoint::create(&EndpointContext {
            streaming: true,
            ..EndpointContext::default()
        })
        .unwrap_err();
        assert!(err.message.contains("drop --streaming"));

        let embeddings = OptimizedEmbeddingsEndpoint::create(&EndpointContext {
            model: "nvidia/nv-embedqa-e5-v5".into(),
            extra_inputs: json!({"input_type": "query"}).as_object().unwrap().clone(),
            ..EndpointContext::default()
        })
        .unwrap();
        let input = RequestInput {
            messages: vec![Message::user("a"), Message::user("b")],
            max_output_tokens: Some(9),
        };
        let body: Value = serde_json::from_slice(&embeddings.format_payload(&input)).unwrap();
        assert_eq!(
            body,
            json!({"model": "nvidia/nv-embedqa-e5-v5", "input": ["a", "b"], "input_type": "query"})
        );
        let parsed = embeddings
            .parse_response(
                br#"{"object":"list","data":[{"index":0,"embedding":[0.5,-1.0],"object":"embedding"}],"usage":{"prompt_tokens":2,"total_tokens":2}}"#,
                &mut ResponseText::default(),
            )
            .unwrap();
        assert!(parsed.has_content);
        assert_eq!(parsed.usage.unwrap().prompt_tokens, Some(2));
        assert!(!embeddings.metadata().produces_tokens);
    }
}
