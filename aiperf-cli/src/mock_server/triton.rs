//! Triton's face of the simulated engine: the LLM convention (`text_input`, `max_tokens`,
//! `stream` in; `text_output` out) that both Triton's HTTP generate extension and its KServe v2
//! gRPC service (`grpc.rs`) speak, and the generate routes themselves.
//!
//! A [`TextRequest`] becomes an OpenAI completions request for the engine, so every protocol
//! the mock server speaks is served by the same engine, with the same batch, timings and truth
//! log; each piece the engine produces is read back as the text it adds ([`TextGeneration`]).
//!
//! Routes (on the HTTP port, HTTP/1.1 or h2c):
//! - `POST /v2/models/{model}/generate`: `{"text_input", "max_tokens"?, "ignore_eos"?,
//!   "min_tokens"?, ...}` answered with one body `{"model_name", "model_version",
//!   "text_output"}`;
//! - `POST /v2/models/{model}/generate_stream`: the same, answered with server-sent events, one
//!   per piece of text (`"stream": false` sends the whole text as one event).
//!
//! Errors are Triton's `{"error": "..."}`: as the body (status 400, 404 or 500), or as an event
//! of a stream.

use std::borrow::Cow;
use std::convert::Infallible;

use aiperf_core::engine::{Engine, EngineError, Generation};
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Limited};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Response, StatusCode};
use serde::{Deserialize, Serialize};

use super::routes::{Body, json, sse_response};

/// The engine route every Triton request is served by.
const COMPLETIONS: &str = "/v1/completions";
/// The largest generate request body accepted.
const MAX_BODY_BYTES: usize = 64 << 20;
/// The version every model reports.
pub(crate) const MODEL_VERSION: &str = "1";

/// One text generation request, whatever protocol carried it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct TextRequest<'a> {
    /// The model named by the request.
    pub(crate) model: &'a str,
    /// The prompt.
    #[serde(rename = "prompt")]
    pub(crate) text_input: Cow<'a, str>,
    /// The output length asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_tokens: Option<u32>,
    /// Whether the text is sent piece by piece.
    pub(crate) stream: bool,
    /// Never stop early.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ignore_eos: Option<bool>,
    /// No early stop before this many tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) min_tokens: Option<u32>,
}

/// A generation read back as text: the engine's pieces without their OpenAI wrapping.
pub(crate) struct TextGeneration {
    generation: Generation,
    buffer: BytesMut,
}

/// A completions chunk or body, as far as its text.
#[derive(Deserialize)]
struct Completion<'a> {
    #[serde(borrow)]
    choices: Vec<Choice<'a>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow)]
    text: Cow<'a, str>,
}

impl TextGeneration {
    /// Starts serving `request` (`request_id` names it in the truth log; `arrival_ns` is when
    /// it arrived).
    pub(crate) fn start(
        engine: &Engine,
        request: &TextRequest<'_>,
        request_id: Option<&str>,
        arrival_ns: u64,
    ) -> Result<Self, EngineError> {
        let body = serde_json::to_vec(request).expect("a text request serializes to JSON");
        let generation = engine.start(COMPLETIONS, &body, request_id, arrival_ns)?;
        Ok(Self {
            generation,
            buffer: BytesMut::with_capacity(512),
        })
    }

    /// The fault the engine planned for this request ([`Generation::fault`]), for the
    /// protocol to make the wire ones (the gRPC service's: the HTTP routes read it from the
    /// generation).
    #[cfg(feature = "grpc")]
    pub(crate) fn fault(&self) -> Option<aiperf_core::engine::PlannedFault> {
        self.generation.fault()
    }

    /// Waits for the next piece of text (the whole text when not streaming); `None` at the end.
    /// A piece that is not a completions chunk (the engine's injected invalid-JSON fault) is
    /// handed back as its bytes, for the protocol to pass on or report.
    pub(crate) async fn next(&mut self) -> Option<Result<String, Bytes>> {
        self.buffer.clear();
        self.generation.next(&mut self.buffer).await?;
        if self.buffer[..] == *b"[DONE]" {
            return None;
        }
        let piece = match serde_json::from_slice::<Completion<'_>>(&self.buffer) {
            Ok(completion) => Ok(completion
                .choices
                .into_iter()
                .next()
                .map(|choice| choice.text.into_owned())
                .unwrap_or_default()),
            Err(_) => Err(self.buffer.split().freeze()),
        };
        Some(piece)
    }

    /// All the text to the end, or the first malformed piece.
    pub(crate) async fn collect(&mut self) -> Result<String, Bytes> {
        let mut text = String::new();
        while let Some(piece) = self.next().await {
            text.push_str(&piece?);
        }
        Ok(text)
    }
}

/// A generate route: which model, and whether it streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GenerateRoute<'a> {
    /// The model named in the path (still percent-encoded).
    pub(crate) model: &'a str,
    /// `generate_stream` rather than `generate`.
    pub(crate) stream: bool,
}

impl<'a> GenerateRoute<'a> {
    /// The generate route of a URL path, if it is one: `/v2/models/{model}/generate` or
    /// `/v2/models/{model}/generate_stream` (also with `/versions/{version}` after the model).
    pub(crate) fn parse(path: &'a str) -> Option<Self> {
        let rest = path.strip_prefix("/v2/models/")?;
        let (model, action) = rest.split_once('/')?;
        let action = match action.split_once('/') {
            Some(("versions", versioned)) => versioned.split_once('/')?.1,
            _ => action,
        };
        let stream = match action {
            "generate" => false,
            "generate_stream" => true,
            _ => return None,
        };
        (!model.is_empty()).then_some(Self { model, stream })
    }
}

/// The body of a generate request, as far as the engine needs it. Other inputs are accepted
/// and ignored, as a model with optional inputs would.
#[derive(Deserialize)]
struct GenerateBody<'a> {
    #[serde(borrow)]
    text_input: Cow<'a, str>,
    max_tokens: Option<u32>,
    stream: Option<bool>,
    ignore_eos: Option<bool>,
    min_tokens: Option<u32>,
}

/// `{"model_name", "model_version", "text_output"}`.
#[derive(Serialize)]
struct GenerateResponse<'a> {
    model_name: &'a str,
    model_version: &'a str,
    text_output: &'a str,
}

/// Answers a generate route.
pub(crate) async fn generate(
    engine: &Engine,
    route: GenerateRoute<'_>,
    method: &Method,
    body: Incoming,
    request_id: Option<&str>,
    arrival_ns: u64,
) -> Response<Body> {
    if method != Method::POST {
        return error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "the generate routes take POST",
        );
    }
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            let message = format!("the request body could not be read: {error}");
            return error_response(StatusCode::BAD_REQUEST, &message);
        }
    };
    let parsed: GenerateBody<'_> = match serde_json::from_slice(&body) {
        Ok(parsed) => parsed,
        Err(detail) => {
            let message = format!("invalid generate request body: {detail}");
            return error_response(StatusCode::BAD_REQUEST, &message);
        }
    };
    let request = TextRequest {
        model: route.model,
        text_input: parsed.text_input,
        max_tokens: parsed.max_tokens,
        stream: route.stream && parsed.stream.unwrap_or(true),
        ignore_eos: parsed.ignore_eos,
        min_tokens: parsed.min_tokens,
    };
    let mut generation = match TextGeneration::start(engine, &request, request_id, arrival_ns) {
        Ok(generation) => generation,
        Err(engine_error) => {
            let status = StatusCode::from_u16(engine_error.status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error_response(status, &engine_error.to_string());
        }
    };
    let model = route.model.to_owned();
    if route.stream {
        return event_stream(generation, model);
    }
    let text = generation.collect().await;
    // Dropping it now records its truth.
    drop(generation);
    match text {
        Ok(text) => json(StatusCode::OK, response_json(&model, &text)),
        // The engine's invalid-JSON fault: the broken body goes out as it is.
        Err(malformed) => json(StatusCode::OK, malformed),
    }
}

fn response_json(model: &str, text: &str) -> Bytes {
    let response = GenerateResponse {
        model_name: model,
        model_version: MODEL_VERSION,
        text_output: text,
    };
    Bytes::from(serde_json::to_vec(&response).expect("a generate response serializes to JSON"))
}

/// A `generate_stream` answer: headers now, then one event per piece of text.
fn event_stream(generation: TextGeneration, model: String) -> Response<Body> {
    let events =
        futures_util::stream::unfold((generation, model), |(mut generation, model)| async move {
            // The engine's invalid-JSON fault: the broken piece goes out as the event's data.
            let data = match generation.next().await? {
                Ok(text) => response_json(&model, &text),
                Err(malformed) => malformed,
            };
            let mut event = Vec::with_capacity(data.len() + 8);
            event.extend_from_slice(b"data: ");
            event.extend_from_slice(&data);
            event.extend_from_slice(b"\n\n");
            let frame = Frame::data(Bytes::from(event));
            Some((Ok::<_, Infallible>(frame), (generation, model)))
        });
    sse_response(events)
}

/// Triton's error body, `{"error": "..."}`.
fn error_response(status: StatusCode, message: &str) -> Response<Body> {
    let body = serde_json::to_vec(&serde_json::json!({ "error": message }))
        .expect("an error body serializes to JSON");
    json(status, Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aiperf_core::engine::EngineConfig;
    use aiperf_core::tokenizer::Tokenizer;

    use super::*;

    #[test]
    fn generate_routes_are_recognized_with_or_without_a_version() {
        let parse = GenerateRoute::parse;
        assert_eq!(
            parse("/v2/models/ensemble/generate"),
            Some(GenerateRoute {
                model: "ensemble",
                stream: false
            })
        );
        assert_eq!(
            parse("/v2/models/m%2Fx/versions/2/generate_stream"),
            Some(GenerateRoute {
                model: "m%2Fx",
                stream: true
            })
        );
        for other in [
            "/v2/models/m/infer",
            "/v2/models//generate",
            "/v2/models/m",
            "/v1/completions",
            "/v2/models/m/versions/2",
        ] {
            assert_eq!(parse(other), None, "{other}");
        }
    }

    #[tokio::test]
    async fn text_generations_give_exactly_max_tokens_in_pieces_or_whole() {
        let engine = Engine::new(EngineConfig {
            ttft: Duration::ZERO,
            itl: Duration::ZERO,
            ..EngineConfig::default()
        })
        .unwrap();
        let mut request = TextRequest {
            model: "m",
            text_input: "Once upon a time".into(),
            max_tokens: Some(12),
            stream: true,
            ignore_eos: None,
            min_tokens: None,
        };
        let mut streamed = TextGeneration::start(&engine, &request, None, 0).unwrap();
        let mut pieces = Vec::new();
        while let Some(piece) = streamed.next().await {
            pieces.push(piece.unwrap());
        }
        assert_eq!(pieces.len(), 12, "{pieces:?}");
        assert_eq!(Tokenizer::builtin().count(&pieces.concat()), 12);

        request.stream = false;
        let mut whole = TextGeneration::start(&engine, &request, None, 0).unwrap();
        let text = whole.collect().await.unwrap();
        assert_eq!(Tokenizer::builtin().count(&text), 12);

        request.max_tokens = Some(0);
        let error = TextGeneration::start(&engine, &request, None, 0)
            .err()
            .unwrap();
        assert_eq!(error.status(), 400);
    }
}
