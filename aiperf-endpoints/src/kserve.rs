//! The `kserve` endpoint: KServe v2 gRPC inference (`inference.GRPCInferenceService`) with the
//! LLM tensor convention of Triton Inference Server (TensorRT-LLM, vLLM backends) and Dynamo.
//!
//! Payload: a protobuf `ModelInferRequest` for `ctx.model` with the inputs
//! - `text_input` BYTES `[1]`: the messages joined by blank lines, as a completions prompt;
//! - `max_tokens` INT32 `[1]`: the output length asked for (`--osl`), when there is one;
//! - `stream` BOOL `[1]`: `--streaming`;
//! - one tensor per `--extra-inputs` entry (sampling parameters such as `temperature`,
//!   `top_k`, `ignore_eos`), typed by [`tensor::input_from_json`]; an entry named like one of
//!   the inputs above replaces it, and `null` drops it;
//!
//! and asks for the one output `text_output`. It goes to `ModelStreamInfer` when streaming
//! (Triton's only way to reach decoupled models), else to `ModelInfer` ([`proto::method`]), so
//! it needs a transport carrying [`WireFormat::Grpc`].
//!
//! Responses: a `ModelStreamInferResponse` per streamed message (a non-empty `error_message` is
//! a [`ParseError`]; a response without outputs, such as Triton's empty final response, carries
//! nothing), or one `ModelInferResponse`. The text is the `text_output` BYTES elements, read
//! from typed contents or raw contents; each streamed response is taken as the text it adds
//! (TensorRT-LLM's streaming). KServe reports no token counts, so the client tokenizer counts
//! the output.

pub mod proto;
pub mod tensor;

use std::borrow::Cow;

use aiperf_core::endpoint::{
    Endpoint, EndpointContext, EndpointMetadata, ParseError, ParsedChunk, RequestInput,
    ResponseText, WireFormat,
};
use aiperf_core::registry::CreateError;
use bytes::Bytes;
use prost::Message;

use crate::openai_wire::resolve_path;
use proto::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};
use proto::{ModelInferRequest, ModelInferResponse, ModelStreamInferResponse, method};

/// The input carrying the prompt.
pub const TEXT_INPUT: &str = "text_input";
/// The input carrying the output length.
pub const MAX_TOKENS: &str = "max_tokens";
/// The input asking for a streamed answer.
pub const STREAM: &str = "stream";
/// The output carrying the answer's text.
pub const TEXT_OUTPUT: &str = "text_output";

/// KServe v2 gRPC inference with Triton's LLM tensors, unary or streamed.
#[derive(Debug, Clone)]
pub struct KServeEndpoint {
    model_name: String,
    streaming: bool,
    path: Cow<'static, str>,
    /// Sent with every request after the per-request inputs: `stream`, then the extra inputs.
    fixed_inputs: Vec<InferInputTensor>,
    /// Whether this endpoint writes `text_input` (no extra input replaces it).
    writes_text_input: bool,
    /// Whether this endpoint writes `max_tokens` (no extra input replaces it).
    writes_max_tokens: bool,
}

aiperf_core::register!(endpoint "kserve" => KServeEndpoint, "KServe v2 gRPC inference as Triton, TensorRT-LLM and Dynamo serve LLMs: text_input in, text_output out, ModelInfer or ModelStreamInfer (needs --url grpc:// or grpcs://)");

const METADATA: EndpointMetadata = EndpointMetadata {
    path: method::MODEL_INFER,
    supports_streaming: true,
    produces_tokens: true,
    wire_format: WireFormat::Grpc,
};

impl Endpoint for KServeEndpoint {
    fn create(ctx: &EndpointContext) -> Result<Self, CreateError> {
        if ctx.model.trim().is_empty() {
            return Err(CreateError::new(
                "the kserve endpoint needs the model's name: pass -m MODEL",
            ));
        }
        let extra = &ctx.extra_inputs;
        let mut fixed_inputs = Vec::with_capacity(extra.len() + 1);
        if !extra.contains_key(STREAM) {
            fixed_inputs.push(tensor::bool_input(STREAM, vec![ctx.streaming]));
        }
        for (name, value) in extra {
            let input = tensor::input_from_json(name, value)
                .map_err(|error| CreateError::new(error.to_string()))?;
            fixed_inputs.extend(input);
        }
        let default_path = if ctx.streaming {
            method::MODEL_STREAM_INFER
        } else {
            method::MODEL_INFER
        };
        Ok(Self {
            model_name: ctx.model.clone(),
            streaming: ctx.streaming,
            path: resolve_path(ctx.custom_path.as_deref(), default_path),
            fixed_inputs,
            writes_text_input: !extra.contains_key(TEXT_INPUT),
            writes_max_tokens: !extra.contains_key(MAX_TOKENS),
        })
    }

    fn metadata(&self) -> EndpointMetadata {
        METADATA
    }

    fn path(&self) -> &str {
        &self.path
    }

    fn format_payload(&self, input: &RequestInput) -> Bytes {
        let mut inputs = Vec::with_capacity(self.fixed_inputs.len() + 2);
        if self.writes_text_input {
            let prompt = input.joined_prompt().into_bytes();
            inputs.push(tensor::bytes_input(TEXT_INPUT, vec![prompt]));
        }
        if self.writes_max_tokens
            && let Some(max_tokens) = input.max_output_tokens
        {
            let max_tokens = i32::try_from(max_tokens).unwrap_or(i32::MAX);
            inputs.push(tensor::int32_input(MAX_TOKENS, vec![max_tokens]));
        }
        inputs.extend(self.fixed_inputs.iter().cloned());
        let request = ModelInferRequest {
            model_name: self.model_name.clone(),
            inputs,
            outputs: vec![InferRequestedOutputTensor {
                name: TEXT_OUTPUT.to_owned(),
                ..InferRequestedOutputTensor::default()
            }],
            ..ModelInferRequest::default()
        };
        Bytes::from(request.encode_to_vec())
    }

    fn parse_response(
        &self,
        data: &[u8],
        text: &mut ResponseText,
    ) -> Result<ParsedChunk, ParseError> {
        let response = if self.streaming {
            let message = ModelStreamInferResponse::decode(data)
                .map_err(|error| not_kserve("ModelStreamInferResponse", &error.to_string()))?;
            if !message.error_message.is_empty() {
                return Err(ParseError::reported_by_server(format!(
                    "the server returned an error: {}",
                    message.error_message
                )));
            }
            match message.infer_response {
                Some(response) => response,
                None => return Ok(ParsedChunk::default()),
            }
        } else {
            ModelInferResponse::decode(data)
                .map_err(|error| not_kserve("ModelInferResponse", &error.to_string()))?
        };
        Ok(ParsedChunk {
            has_content: append_text_output(&response, &mut text.content)?,
            ..ParsedChunk::default()
        })
    }
}

fn not_kserve(message: &str, error: &str) -> ParseError {
    ParseError::new(format!(
        "the response is not a KServe v2 {message} ({error}): check that the server speaks \
         KServe v2 gRPC"
    ))
}

/// Appends the `text_output` elements of `response` to `text`; whether they held any text. A
/// response without outputs carries nothing; outputs without `text_output` are an error.
fn append_text_output(
    response: &ModelInferResponse,
    text: &mut String,
) -> Result<bool, ParseError> {
    let Some(index) = response.outputs.iter().position(|o| o.name == TEXT_OUTPUT) else {
        if response.outputs.is_empty() {
            return Ok(false);
        }
        let names: Vec<&str> = response.outputs.iter().map(|o| o.name.as_str()).collect();
        return Err(ParseError::new(format!(
            "the response has no `{TEXT_OUTPUT}` output (it has {}): the kserve endpoint reads \
             the LLM convention of Triton, whose models answer in `{TEXT_OUTPUT}`",
            names.join(", ")
        )));
    };
    let output = &response.outputs[index];
    let raw = match response.raw_output_contents.as_slice() {
        [] => None,
        raw => Some(raw.get(index).map_or(&[][..], Vec::as_slice)),
    };
    let elements = tensor::elements(&output.datatype, output.contents.as_ref(), raw)
        .map_err(|error| ParseError::new(format!("cannot read `{TEXT_OUTPUT}`: {error}")))?;
    let tensor::Elements::Bytes(elements) = elements else {
        return Err(ParseError::new(format!(
            "`{TEXT_OUTPUT}` is {}, not BYTES: the kserve endpoint reads text",
            output.datatype
        )));
    };
    let before = text.len();
    for element in elements {
        // A streamed piece may end inside a character; it is kept, replaced, not dropped.
        text.push_str(&String::from_utf8_lossy(element));
    }
    Ok(text.len() > before)
}

#[cfg(test)]
mod tests {
    use aiperf_core::endpoint::Message as ChatMessage;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::proto::model_infer_response::InferOutputTensor;
    use super::proto::{InferTensorContents, ModelInferRequest};
    use super::tensor::Elements;
    use super::*;

    fn endpoint(streaming: bool, extra: Value) -> KServeEndpoint {
        let Value::Object(extra_inputs) = extra else {
            panic!("extra inputs must be an object")
        };
        KServeEndpoint::create(&EndpointContext {
            model: "ensemble".into(),
            streaming,
            extra_inputs,
            custom_path: None,
            use_legacy_max_tokens: false,
        })
        .unwrap()
    }

    fn request(endpoint: &KServeEndpoint, input: &RequestInput) -> ModelInferRequest {
        ModelInferRequest::decode(endpoint.format_payload(input)).unwrap()
    }

    /// Each input by name, with its data type, shape and elements.
    fn inputs(request: &ModelInferRequest) -> Vec<(&str, &str, &[i64], Elements<'_>)> {
        request
            .inputs
            .iter()
            .map(|i| {
                let elements = tensor::elements(&i.datatype, i.contents.as_ref(), None).unwrap();
                (
                    i.name.as_str(),
                    i.datatype.as_str(),
                    i.shape.as_slice(),
                    elements,
                )
            })
            .collect()
    }

    fn prompt(max_output_tokens: Option<u32>) -> RequestInput {
        RequestInput {
            messages: vec![ChatMessage::user("Be brief."), ChatMessage::user("Why?")],
            max_output_tokens,
        }
    }

    fn text_response(raw: bool, pieces: &[&str]) -> ModelInferResponse {
        let elements: Vec<&[u8]> = pieces.iter().map(|p| p.as_bytes()).collect();
        let mut output = InferOutputTensor {
            name: TEXT_OUTPUT.into(),
            datatype: tensor::BYTES.into(),
            shape: vec![pieces.len() as i64],
            ..InferOutputTensor::default()
        };
        let mut response = ModelInferResponse {
            model_name: "ensemble".into(),
            ..ModelInferResponse::default()
        };
        // A second output first, so that the index of text_output matters.
        response.outputs.push(InferOutputTensor {
            name: "cum_log_probs".into(),
            datatype: tensor::FP32.into(),
            shape: vec![1],
            ..InferOutputTensor::default()
        });
        if raw {
            response.raw_output_contents = vec![
                0.5f32.to_le_bytes().to_vec(),
                tensor::encode_raw_bytes(elements),
            ];
        } else {
            output.contents = Some(InferTensorContents {
                bytes_contents: elements.iter().map(|e| e.to_vec()).collect(),
                ..InferTensorContents::default()
            });
        }
        response.outputs.push(output);
        response
    }

    fn streamed(response: ModelInferResponse) -> Vec<u8> {
        ModelStreamInferResponse {
            error_message: String::new(),
            infer_response: Some(response),
        }
        .encode_to_vec()
    }

    #[test]
    fn request_carries_the_llm_tensors_and_asks_for_text_output() {
        let streaming = endpoint(true, json!({}));
        let request = request(&streaming, &prompt(Some(64)));
        assert_eq!(request.model_name, "ensemble");
        assert_eq!(
            inputs(&request),
            [
                (
                    TEXT_INPUT,
                    tensor::BYTES,
                    &[1][..],
                    Elements::Bytes(vec![b"Be brief.\n\nWhy?"])
                ),
                (MAX_TOKENS, tensor::INT32, &[1][..], Elements::Int(vec![64])),
                (STREAM, tensor::BOOL, &[1][..], Elements::Bool(vec![true])),
            ]
        );
        assert_eq!(request.outputs.len(), 1);
        assert_eq!(request.outputs[0].name, TEXT_OUTPUT);
        assert_eq!(streaming.path(), method::MODEL_STREAM_INFER);

        let unary = endpoint(false, json!({}));
        let request = super::tests::request(&unary, &prompt(None));
        let names: Vec<&str> = request.inputs.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, [TEXT_INPUT, STREAM], "no max_tokens without --osl");
        assert_eq!(
            inputs(&request)[1].3,
            Elements::Bool(vec![false]),
            "stream is false"
        );
        assert_eq!(unary.path(), method::MODEL_INFER);
        assert_eq!(unary.metadata().wire_format, WireFormat::Grpc);
    }

    #[test]
    fn extra_inputs_become_tensors_and_replace_or_drop_the_endpoints_own() {
        let kserve = endpoint(
            false,
            json!({"temperature": 0.5, "top_k": 4, "max_tokens": 9, "stream": null,
                   "sampling_parameters": {"ignore_eos": true}}),
        );
        let request = request(&kserve, &prompt(Some(100)));
        let by_name: std::collections::BTreeMap<&str, (&str, Elements<'_>)> = inputs(&request)
            .into_iter()
            .map(|(name, datatype, _, elements)| (name, (datatype, elements)))
            .collect();
        assert_eq!(
            by_name.keys().copied().collect::<Vec<_>>(),
            [
                "max_tokens",
                "sampling_parameters",
                "temperature",
                "text_input",
                "top_k"
            ]
        );
        assert_eq!(
            by_name["max_tokens"],
            (tensor::INT32, Elements::Int(vec![9]))
        );
        assert_eq!(
            by_name["temperature"],
            (tensor::FP32, Elements::Float(vec![0.5]))
        );
        assert_eq!(by_name["top_k"], (tensor::INT32, Elements::Int(vec![4])));
        assert_eq!(
            by_name["sampling_parameters"].1,
            Elements::Bytes(vec![br#"{"ignore_eos":true}"#])
        );
    }

    #[test]
    fn bad_settings_are_refused_with_what_to_change() {
        let error = KServeEndpoint::create(&EndpointContext::default()).unwrap_err();
        assert!(error.message.contains("-m MODEL"), "{}", error.message);
        let Value::Object(extra_inputs) = json!({"stop": [1, "a"]}) else {
            unreachable!()
        };
        let error = KServeEndpoint::create(&EndpointContext {
            model: "m".into(),
            extra_inputs,
            ..EndpointContext::default()
        })
        .unwrap_err();
        assert!(
            error.message.contains("extra input `stop`"),
            "{}",
            error.message
        );
        let custom = KServeEndpoint::create(&EndpointContext {
            model: "m".into(),
            custom_path: Some("/my.Service/Infer".into()),
            ..EndpointContext::default()
        })
        .unwrap();
        assert_eq!(custom.path(), "/my.Service/Infer");
    }

    #[test]
    fn streamed_responses_append_their_text_in_order() {
        let kserve = endpoint(true, json!({}));
        let mut text = ResponseText::default();
        let mut chunks = Vec::new();
        for (raw, piece) in [(true, "Hello"), (false, ", wörld"), (true, "")] {
            let data = streamed(text_response(raw, &[piece]));
            chunks.push(kserve.parse_response(&data, &mut text).unwrap());
        }
        // Triton's empty final response: no outputs at all.
        let last = streamed(ModelInferResponse::default());
        chunks.push(kserve.parse_response(&last, &mut text).unwrap());
        assert_eq!(text.content, "Hello, wörld");
        let responses: Vec<bool> = chunks.iter().map(ParsedChunk::is_response).collect();
        assert_eq!(responses, [true, true, false, false]);
        assert!(chunks.iter().all(|c| c.usage.is_none() && !c.is_done));
    }

    #[test]
    fn a_whole_response_may_hold_several_elements() {
        let kserve = endpoint(false, json!({}));
        let mut text = ResponseText::default();
        let data = text_response(true, &["one ", "two"]).encode_to_vec();
        let chunk = kserve.parse_response(&data, &mut text).unwrap();
        assert!(chunk.has_content);
        assert_eq!(text.content, "one two");
    }

    #[test]
    fn errors_and_foreign_responses_are_parse_errors() {
        let streaming = endpoint(true, json!({}));
        let mut text = ResponseText::default();
        let error = ModelStreamInferResponse {
            error_message: "in ensemble 'ensemble', max_tokens exceeds the limit".into(),
            infer_response: None,
        }
        .encode_to_vec();
        let err = streaming.parse_response(&error, &mut text).unwrap_err();
        assert_eq!(
            err.message,
            "the server returned an error: in ensemble 'ensemble', max_tokens exceeds the limit"
        );

        let unary = endpoint(false, json!({}));
        let not_protobuf = unary
            .parse_response(br#"{"text_output":"hi"}"#, &mut text)
            .unwrap_err();
        assert!(
            not_protobuf.message.contains("not a KServe v2"),
            "{not_protobuf}"
        );

        let mut other = text_response(false, &["x"]);
        other.outputs.remove(1);
        let err = unary
            .parse_response(&other.encode_to_vec(), &mut text)
            .unwrap_err();
        assert!(err.message.contains("(it has cum_log_probs)"), "{err}");

        let mut wrong_type = text_response(false, &["x"]);
        wrong_type.outputs[1].datatype = tensor::INT32.into();
        let err = unary
            .parse_response(&wrong_type.encode_to_vec(), &mut text)
            .unwrap_err();
        assert!(err.message.contains("not BYTES"), "{err}");

        let mut cut = text_response(true, &["hello"]);
        cut.raw_output_contents[1].truncate(6);
        let err = unary
            .parse_response(&cut.encode_to_vec(), &mut text)
            .unwrap_err();
        assert!(err.message.contains("cut off"), "{err}");
        assert_eq!(text, ResponseText::default());
    }

    proptest! {
        #[test]
        fn any_text_round_trips(content in any::<String>(), raw in any::<bool>()) {
            let data = streamed(text_response(raw, &[&content]));
            let mut text = ResponseText::default();
            let parsed = endpoint(true, json!({})).parse_response(&data, &mut text).unwrap();
            prop_assert_eq!(&text.content, &content);
            prop_assert_eq!(parsed.has_content, !content.is_empty());
        }
    }
}
