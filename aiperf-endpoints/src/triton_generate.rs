//! The `triton_generate` endpoint: Triton Inference Server's HTTP generate extension, the JSON
//! face of its LLM models (TensorRT-LLM, vLLM backends).
//!
//! Requests go to `/v2/models/{model}/generate`, or `/v2/models/{model}/generate_stream` when
//! streaming (answered with server-sent events), with the model name percent-encoded as one
//! path segment. Payload: `{"text_input" (the messages joined by blank lines), "max_tokens"
//! (when an output length is asked for), "stream"}`, then the extra inputs (sampling parameters
//! such as `temperature`, `top_k`, `ignore_eos`), which override fields of the same name.
//!
//! Responses: a JSON object per event (or the whole body) whose `text_output` is the text it
//! adds; `{"error": "..."}` is a [`ParseError`] carrying the server's message. Triton reports no
//! token counts, so the client tokenizer counts the output.

use std::borrow::Cow;
use std::fmt::Write;

use aiperf_core::endpoint::{
    Endpoint, EndpointContext, EndpointMetadata, ParseError, ParsedChunk, RequestInput,
    ResponseText, WireFormat,
};
use aiperf_core::registry::CreateError;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::openai_wire::payload::{Field, write_payload};
use crate::openai_wire::resolve_path;
use crate::openai_wire::response::{WireStr, append_non_empty};

/// Triton's generate extension (`/v2/models/{model}/generate[_stream]`), streaming or not.
#[derive(Debug, Clone)]
pub struct TritonGenerateEndpoint {
    streaming: bool,
    extra: Map<String, Value>,
    path: Cow<'static, str>,
}

aiperf_core::register!(endpoint "triton_generate" => TritonGenerateEndpoint, "Triton's HTTP generate extension (/v2/models/{model}/generate, generate_stream as SSE): text_input in, text_output out");

const METADATA: EndpointMetadata = EndpointMetadata {
    path: "/v2/models/{model}/generate",
    supports_streaming: true,
    produces_tokens: true,
    wire_format: WireFormat::Http,
};

/// What a generate response (or streamed event) holds that aiperf reads.
#[derive(Debug, Deserialize)]
struct GenerateBody<'a> {
    #[serde(borrow)]
    text_output: Option<WireStr<'a>>,
    error: Option<Value>,
}

impl Endpoint for TritonGenerateEndpoint {
    fn create(ctx: &EndpointContext) -> Result<Self, CreateError> {
        let model = ctx.model.trim();
        if model.is_empty() && ctx.custom_path.is_none() {
            return Err(CreateError::new(
                "the triton_generate endpoint needs the model's name for its URL path: pass -m MODEL",
            ));
        }
        let route = if ctx.streaming {
            "generate_stream"
        } else {
            "generate"
        };
        let default_path = format!("/v2/models/{}/{route}", path_segment(model));
        let path = match resolve_path(ctx.custom_path.as_deref(), "") {
            Cow::Borrowed("") => Cow::Owned(default_path),
            custom => custom,
        };
        Ok(Self {
            streaming: ctx.streaming,
            extra: ctx.extra_inputs.clone(),
            path,
        })
    }

    fn metadata(&self) -> EndpointMetadata {
        METADATA
    }

    fn path(&self) -> &str {
        &self.path
    }

    fn format_payload(&self, input: &RequestInput) -> Bytes {
        let prompt = input.joined_prompt();
        write_payload(
            &[
                Some(("text_input", Field::Str(&prompt))),
                input
                    .max_output_tokens
                    .map(|n| ("max_tokens", Field::Count(n))),
                Some(("stream", Field::Bool(self.streaming))),
            ],
            &self.extra,
        )
    }

    fn parse_response(
        &self,
        data: &[u8],
        text: &mut ResponseText,
    ) -> Result<ParsedChunk, ParseError> {
        if data.trim_ascii_start().first() != Some(&b'{') {
            return Err(not_generate("it is not a JSON object"));
        }
        let body: GenerateBody<'_> =
            serde_json::from_slice(data).map_err(|error| not_generate(&error.to_string()))?;
        if let Some(error) = body.error {
            let message = match error {
                Value::String(message) => message,
                other => other.to_string(),
            };
            return Err(ParseError::reported_by_server(format!(
                "the server returned an error: {message}"
            )));
        }
        Ok(ParsedChunk {
            has_content: append_non_empty(&mut text.content, body.text_output),
            ..ParsedChunk::default()
        })
    }
}

fn not_generate(detail: &str) -> ParseError {
    ParseError::new(format!(
        "the response is not a Triton generate response ({detail}): check that the server \
         serves Triton's generate extension"
    ))
}

/// `text` as one URL path segment: unreserved characters kept, every other byte `%XX`.
fn path_segment(text: &str) -> Cow<'_, str> {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    if text.bytes().all(unreserved) {
        return Cow::Borrowed(text);
    }
    let mut encoded = String::with_capacity(text.len() + 8);
    for byte in text.bytes() {
        if unreserved(byte) {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    Cow::Owned(encoded)
}

#[cfg(test)]
mod tests {
    use aiperf_core::endpoint::Message;
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn endpoint(model: &str, streaming: bool, extra: Value) -> TritonGenerateEndpoint {
        let Value::Object(extra_inputs) = extra else {
            panic!("extra inputs must be an object")
        };
        TritonGenerateEndpoint::create(&EndpointContext {
            model: model.into(),
            streaming,
            extra_inputs,
            custom_path: None,
            use_legacy_max_tokens: false,
        })
        .unwrap()
    }

    fn parse(
        endpoint: &TritonGenerateEndpoint,
        data: &str,
    ) -> Result<(ParsedChunk, String), ParseError> {
        let mut text = ResponseText::default();
        endpoint
            .parse_response(data.as_bytes(), &mut text)
            .map(|chunk| (chunk, text.content))
    }

    #[test]
    fn paths_name_the_model_and_the_streaming_route() {
        assert_eq!(
            endpoint("ensemble", false, json!({})).path(),
            "/v2/models/ensemble/generate"
        );
        assert_eq!(
            endpoint("ensemble", true, json!({})).path(),
            "/v2/models/ensemble/generate_stream"
        );
        assert_eq!(
            endpoint("meta-llama/Llama 3", false, json!({})).path(),
            "/v2/models/meta-llama%2FLlama%203/generate"
        );
        let custom = TritonGenerateEndpoint::create(&EndpointContext {
            custom_path: Some("v2/models/m/versions/2/generate".into()),
            ..EndpointContext::default()
        })
        .unwrap();
        assert_eq!(custom.path(), "/v2/models/m/versions/2/generate");
        let error = TritonGenerateEndpoint::create(&EndpointContext::default()).unwrap_err();
        assert!(error.message.contains("-m MODEL"), "{}", error.message);
    }

    #[test]
    fn payload_has_the_llm_fields_then_the_extra_inputs() {
        let input = RequestInput {
            messages: vec![Message::user("Once"), Message::user("upon")],
            max_output_tokens: Some(32),
        };
        let body: Value =
            serde_json::from_slice(&endpoint("m", true, json!({})).format_payload(&input)).unwrap();
        assert_eq!(
            body,
            json!({"text_input": "Once\n\nupon", "max_tokens": 32, "stream": true})
        );
        let extra = endpoint(
            "m",
            false,
            json!({"max_tokens": 4, "temperature": 0.0, "bad_words": ""}),
        );
        let body: Value = serde_json::from_slice(&extra.format_payload(&RequestInput {
            max_output_tokens: None,
            ..input
        }))
        .unwrap();
        assert_eq!(
            body,
            json!({"text_input": "Once\n\nupon", "stream": false, "max_tokens": 4,
                   "temperature": 0.0, "bad_words": ""})
        );
    }

    #[test]
    fn responses_and_events_carry_text_output() {
        let triton = endpoint("ensemble", true, json!({}));
        let (chunk, text) = parse(
            &triton,
            r#"{"model_name":"ensemble","model_version":"1","sequence_end":false,"sequence_id":0,"sequence_start":false,"text_output":" caf\u00e9"}"#,
        )
        .unwrap();
        assert!(chunk.has_content && chunk.usage.is_none() && !chunk.is_done);
        assert_eq!(text, " café");
        let (chunk, text) = parse(&triton, r#"{"model_name":"m","text_output":""}"#).unwrap();
        assert!(!chunk.is_response());
        assert_eq!(text, "");
    }

    #[test]
    fn errors_and_other_bodies_are_parse_errors() {
        let triton = endpoint("m", false, json!({}));
        let err = parse(
            &triton,
            r#"{"error":"Request for unknown model: 'x' is not found"}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "the server returned an error: Request for unknown model: 'x' is not found"
        );
        assert!(err.reported_by_server);
        let err = parse(&triton, r#"{"error":{"code":3}}"#).unwrap_err();
        assert!(err.message.ends_with(r#"{"code":3}"#), "{err}");
        for bad in [
            "[DONE]",
            "",
            r#"{"text_output":7}"#,
            r#"{"text_output":"x""#,
        ] {
            let err = parse(&triton, bad).unwrap_err();
            assert!(
                err.message.contains("not a Triton generate response"),
                "{bad}: {err}"
            );
        }
    }

    proptest! {
        #[test]
        fn any_text_round_trips(content in any::<String>()) {
            let data = serde_json::to_string(&json!({"text_output": content})).unwrap();
            let (chunk, text) = parse(&endpoint("m", true, json!({})), &data).unwrap();
            prop_assert_eq!(&text, &content);
            prop_assert_eq!(chunk.has_content, !content.is_empty());
        }
    }
}
