//! `aiperf mock-server --grpc-port PORT`: the simulated engine as a KServe v2
//! `GRPCInferenceService` (cleartext HTTP/2, or TLS with `--tls-cert`), the way Triton
//! Inference Server serves LLMs, so the `grpc` transport and `kserve` endpoint have a real
//! server on loopback with known truth.
//!
//! - `ModelInfer`: one request, one response with the whole `text_output`.
//! - `ModelStreamInfer`: each request on the stream is served on its own task; its text comes
//!   back piece by piece when its `stream` input is true (one response per engine chunk, as a
//!   decoupled model sends), else in one response. Requests that fail are answered in the
//!   stream with `error_message`, as Triton does. With the request parameter
//!   `triton_enable_empty_final_response`, a last empty response carries
//!   `triton_final_response: true`. The stream ends when the client has sent all its requests
//!   and each is answered.
//! - Injected faults: the engine's errors (`--error-rate`, `--rate-limit-rate`) are status
//!   errors of `ModelInfer` (in-stream `error_message`s of `ModelStreamInfer`); a streamed
//!   request picked by `--reset-mid-stream-rate` breaks its call, which ends with `INTERNAL`
//!   before the piece the fault hits.
//! - `ServerLive`, `ServerReady`, `ModelReady`, `ModelMetadata`: the server and any model
//!   named are live and ready (the engine answers for any model name).
//!
//! Requests are read with Triton's LLM convention (`text_input` BYTES, optional `max_tokens`,
//! `stream`, `ignore_eos`, `min_tokens`), from typed or raw contents; answers carry
//! `text_output` as raw contents, as Triton sends them. Each becomes an engine request through
//! [`super::triton`], named in the truth log by the call's `x-request-id` metadata.
//!
//! The service code is generated at build time (`build/kserve_service_gen.rs`) from the same
//! descriptors as the client's messages (`aiperf_endpoints::kserve::proto`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use aiperf_core::clock;
use aiperf_core::engine::{Engine, EngineError, Fault};
use aiperf_endpoints::kserve::proto::infer_parameter::ParameterChoice;
use aiperf_endpoints::kserve::proto::model_infer_response::InferOutputTensor;
use aiperf_endpoints::kserve::proto::model_metadata_response::TensorMetadata;
use aiperf_endpoints::kserve::proto::{
    InferParameter, ModelInferRequest, ModelInferResponse, ModelMetadataRequest,
    ModelMetadataResponse, ModelReadyRequest, ModelReadyResponse, ModelStreamInferResponse,
    ServerLiveRequest, ServerLiveResponse, ServerReadyRequest, ServerReadyResponse,
};
use aiperf_endpoints::kserve::tensor::{self, Elements};
use aiperf_endpoints::kserve::{MAX_TOKENS, STREAM, TEXT_INPUT, TEXT_OUTPUT};
use anyhow::Context;
use futures_util::Stream;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tonic::codegen::Service;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

use super::tls::Acceptor;
use super::triton::{MODEL_VERSION, TextGeneration, TextRequest};
use super::{announce, next_connection, send_unpaced};

/// The generated service trait and server.
mod service {
    include!(concat!(env!("OUT_DIR"), "/inference.rs"));
}

use service::grpc_inference_service_server::{GrpcInferenceService, GrpcInferenceServiceServer};

/// Responses of one stream that may wait to be sent before its requests' tasks wait too.
const RESPONSES_QUEUED: usize = 64;
/// The request parameter asking for an empty last response.
const ENABLE_EMPTY_FINAL: &str = "triton_enable_empty_final_response";
/// The response parameter marking the last response of a request.
const FINAL_RESPONSE: &str = "triton_final_response";
/// The error a piece broken on purpose by the engine (its invalid-JSON fault) becomes: gRPC
/// messages cannot carry broken JSON.
const MALFORMED: &str = "the simulated engine produced a malformed piece (an injected fault)";
/// The status a stream broken by `--reset-mid-stream-rate` ends with.
const BROKEN: &str = "injected fault: the stream broke before its end";

/// Binds the gRPC port (0 picks a free one).
pub(crate) async fn bind(host: &str, port: u16) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind((host, port)).await.with_context(|| {
        format!("cannot listen for gRPC on {host}:{port}: check --host, or pick another --grpc-port (0 takes any free one)")
    })?;
    send_unpaced(&listener, "the gRPC port");
    Ok(listener)
}

/// Prints the gRPC line (after the HTTP one) and serves KServe v2 on `listener` until the
/// runtime stops.
pub(crate) fn start(
    listener: TcpListener,
    acceptor: Acceptor,
    engine: Engine,
) -> anyhow::Result<()> {
    let address = listener
        .local_addr()
        .context("cannot read the gRPC listening address")?;
    announce("grpc ", &acceptor.scheme("grpc"), address)?;
    tokio::spawn(accept(listener, acceptor, engine));
    Ok(())
}

async fn accept(listener: TcpListener, acceptor: Acceptor, engine: Engine) {
    let server = GrpcInferenceServiceServer::new(KServe { engine });
    let mut builder = auto::Builder::new(TokioExecutor::new()).http2_only();
    // Benchmarks multiplex thousands of calls over few connections.
    builder.http2().max_concurrent_streams(100_000);
    let builder = Arc::new(builder);
    loop {
        let stream = next_connection(&listener, "a gRPC connection").await;
        let builder = builder.clone();
        let server = server.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Some(stream) = acceptor.accept(stream).await else {
                return;
            };
            let service = hyper::service::service_fn(move |request| {
                let mut server = server.clone();
                async move { server.call(request).await }
            });
            // A client closing mid-call is normal for a load generator: nothing to report.
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The service: every call served by one engine.
struct KServe {
    engine: Engine,
}

type ResponseStream =
    Pin<Box<dyn Stream<Item = Result<ModelStreamInferResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl GrpcInferenceService for KServe {
    async fn server_live(
        &self,
        _: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _: Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        Ok(Response::new(ServerReadyResponse { ready: true }))
    }

    async fn model_ready(
        &self,
        request: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        let ready = !request.get_ref().name.is_empty();
        Ok(Response::new(ModelReadyResponse { ready }))
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        let name = request.into_inner().name;
        if name.is_empty() {
            return Err(Status::invalid_argument(
                "name the model whose metadata you want",
            ));
        }
        let tensor = |name: &str, datatype: &str, shape: i64| TensorMetadata {
            name: name.to_owned(),
            datatype: datatype.to_owned(),
            shape: vec![shape],
        };
        Ok(Response::new(ModelMetadataResponse {
            name,
            versions: vec![MODEL_VERSION.to_owned()],
            platform: "aiperf-simulated".to_owned(),
            inputs: vec![
                tensor(TEXT_INPUT, tensor::BYTES, 1),
                tensor(MAX_TOKENS, tensor::INT32, 1),
                tensor(STREAM, tensor::BOOL, 1),
                tensor("ignore_eos", tensor::BOOL, 1),
                tensor("min_tokens", tensor::INT32, 1),
            ],
            outputs: vec![tensor(TEXT_OUTPUT, tensor::BYTES, -1)],
        }))
    }

    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let arrival_ns = clock::now_ns();
        let request_id = request_id(request.metadata());
        let request = request.into_inner();
        let mut text_request = text_request(&request)?;
        // One response holds the whole text, whatever `stream` asked for.
        text_request.stream = false;
        let mut generation = TextGeneration::start(
            &self.engine,
            &text_request,
            request_id.as_deref(),
            arrival_ns,
        )
        .map_err(engine_status)?;
        let text = generation.collect().await;
        // Dropping it now records its truth.
        drop(generation);
        let text = text.map_err(|_| Status::internal(MALFORMED))?;
        Ok(Response::new(text_response(&request, &text, None)))
    }

    type ModelStreamInferStream = ResponseStream;

    async fn model_stream_infer(
        &self,
        request: Request<Streaming<ModelInferRequest>>,
    ) -> Result<Response<ResponseStream>, Status> {
        let request_id = request_id(request.metadata());
        let mut incoming = request.into_inner();
        let (responses, queued) = mpsc::channel(RESPONSES_QUEUED);
        let engine = self.engine.clone();
        tokio::spawn(async move {
            loop {
                match incoming.message().await {
                    Ok(Some(request)) => {
                        let arrival_ns = clock::now_ns();
                        tokio::spawn(serve_streamed(
                            engine.clone(),
                            request,
                            request_id.clone(),
                            arrival_ns,
                            responses.clone(),
                        ));
                    }
                    Ok(None) => break,
                    Err(status) => {
                        let _ = responses.send(Err(status)).await;
                        break;
                    }
                }
            }
        });
        // The stream ends when every sender (the reader and each request's task) is gone.
        let stream = futures_util::stream::unfold(queued, |mut queued| async move {
            queued.recv().await.map(|item| (item, queued))
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Serves one request of a `ModelStreamInfer` stream, sending its responses into the stream.
async fn serve_streamed(
    engine: Engine,
    request: ModelInferRequest,
    request_id: Option<String>,
    arrival_ns: u64,
    responses: mpsc::Sender<Result<ModelStreamInferResponse, Status>>,
) {
    let started = text_request(&request).and_then(|text_request| {
        TextGeneration::start(&engine, &text_request, request_id.as_deref(), arrival_ns)
            .map_err(engine_status)
    });
    let mut generation = match started {
        Ok(generation) => generation,
        Err(status) => {
            let failed = ModelStreamInferResponse {
                error_message: status.message().to_owned(),
                infer_response: None,
            };
            let _ = responses.send(Ok(failed)).await;
            return;
        }
    };
    let empty_final = request
        .parameters
        .get(ENABLE_EMPTY_FINAL)
        .is_some_and(|p| p.parameter_choice == Some(ParameterChoice::BoolParam(true)));
    let not_final = empty_final.then_some(false);
    // A mid-stream reset ends the call with INTERNAL before the piece it hits.
    let break_at = generation
        .fault()
        .filter(|planned| planned.fault == Fault::ResetMidStream)
        .map(|planned| planned.chunk);
    let mut pieces = 0;
    while let Some(piece) = generation.next().await {
        if break_at == Some(pieces) {
            let _ = responses.send(Err(Status::internal(BROKEN))).await;
            return;
        }
        pieces += 1;
        let message = match piece {
            Ok(text) => streamed(text_response(&request, &text, not_final)),
            Err(_) => ModelStreamInferResponse {
                error_message: MALFORMED.to_owned(),
                infer_response: None,
            },
        };
        if responses.send(Ok(message)).await.is_err() {
            // The client went away: dropping the generation records it as cancelled.
            return;
        }
    }
    drop(generation);
    if empty_final {
        let last = ModelInferResponse {
            outputs: Vec::new(),
            raw_output_contents: Vec::new(),
            ..text_response(&request, "", Some(true))
        };
        let _ = responses.send(Ok(streamed(last))).await;
    }
}

fn streamed(response: ModelInferResponse) -> ModelStreamInferResponse {
    ModelStreamInferResponse {
        error_message: String::new(),
        infer_response: Some(response),
    }
}

/// The call's `x-request-id`, which names its requests in the truth log.
fn request_id(metadata: &MetadataMap) -> Option<String> {
    metadata
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// Reads Triton's LLM inputs from a request.
fn text_request(request: &ModelInferRequest) -> Result<TextRequest<'_>, Status> {
    let text = input(request, TEXT_INPUT)?.ok_or_else(|| {
        Status::invalid_argument(format!(
            "input `{TEXT_INPUT}` is missing: send the prompt as a BYTES tensor"
        ))
    })?;
    let text_input = match text {
        Elements::Bytes(elements) if !elements.is_empty() => match elements.as_slice() {
            [one] => String::from_utf8_lossy(one),
            several => Cow::Owned(
                several
                    .iter()
                    .map(|element| String::from_utf8_lossy(element))
                    .collect(),
            ),
        },
        _ => {
            return Err(Status::invalid_argument(format!(
                "input `{TEXT_INPUT}` must be a BYTES tensor of at least one element"
            )));
        }
    };
    Ok(TextRequest {
        model: &request.model_name,
        text_input,
        max_tokens: count(request, MAX_TOKENS)?,
        stream: flag(request, STREAM)?.unwrap_or(false),
        ignore_eos: flag(request, "ignore_eos")?,
        min_tokens: count(request, "min_tokens")?,
    })
}

/// The elements of input `name`, if the request has it.
fn input<'a>(request: &'a ModelInferRequest, name: &str) -> Result<Option<Elements<'a>>, Status> {
    let Some(index) = request.inputs.iter().position(|input| input.name == name) else {
        return Ok(None);
    };
    let input = &request.inputs[index];
    let raw = match request.raw_input_contents.as_slice() {
        [] => None,
        raw => Some(raw.get(index).map(Vec::as_slice).ok_or_else(|| {
            Status::invalid_argument(
                "raw_input_contents has fewer entries than inputs: send one per input, in order",
            )
        })?),
    };
    tensor::elements(&input.datatype, input.contents.as_ref(), raw)
        .map(Some)
        .map_err(|error| Status::invalid_argument(format!("input `{name}`: {error}")))
}

/// A non-negative integer input (`max_tokens`, `min_tokens`).
fn count(request: &ModelInferRequest, name: &str) -> Result<Option<u32>, Status> {
    let Some(elements) = input(request, name)? else {
        return Ok(None);
    };
    elements
        .first_integer()
        .and_then(|value| u32::try_from(value).ok())
        .map(Some)
        .ok_or_else(|| {
            Status::invalid_argument(format!(
                "input `{name}` must be one non-negative integer (INT32 or another integer type)"
            ))
        })
}

/// A boolean input (`stream`, `ignore_eos`).
fn flag(request: &ModelInferRequest, name: &str) -> Result<Option<bool>, Status> {
    let Some(elements) = input(request, name)? else {
        return Ok(None);
    };
    elements
        .first_bool()
        .map(Some)
        .ok_or_else(|| Status::invalid_argument(format!("input `{name}` must be one BOOL")))
}

/// A response carrying `text` as `text_output` (raw contents), with the final-response flag
/// when asked for.
fn text_response(
    request: &ModelInferRequest,
    text: &str,
    final_flag: Option<bool>,
) -> ModelInferResponse {
    let parameters = final_flag
        .map(|flag| {
            HashMap::from([(
                FINAL_RESPONSE.to_owned(),
                InferParameter {
                    parameter_choice: Some(ParameterChoice::BoolParam(flag)),
                },
            )])
        })
        .unwrap_or_default();
    ModelInferResponse {
        model_name: request.model_name.clone(),
        model_version: MODEL_VERSION.to_owned(),
        id: request.id.clone(),
        parameters,
        outputs: vec![InferOutputTensor {
            name: TEXT_OUTPUT.to_owned(),
            datatype: tensor::BYTES.to_owned(),
            shape: vec![1],
            ..InferOutputTensor::default()
        }],
        raw_output_contents: vec![tensor::encode_raw_bytes([text.as_bytes()])],
    }
}

/// The gRPC status of a request the engine refused.
fn engine_status(error: EngineError) -> Status {
    let message = error.to_string();
    match error.status() {
        400 => Status::invalid_argument(message),
        404 => Status::not_found(message),
        429 => Status::resource_exhausted(message),
        503 => Status::unavailable(message),
        _ => Status::internal(message),
    }
}

#[cfg(test)]
mod tests {
    use aiperf_endpoints::kserve::proto::model_infer_request::InferInputTensor;

    use super::*;

    fn request(inputs: Vec<InferInputTensor>, raw: Vec<Vec<u8>>) -> ModelInferRequest {
        ModelInferRequest {
            model_name: "ensemble".into(),
            id: "7".into(),
            inputs,
            raw_input_contents: raw,
            ..ModelInferRequest::default()
        }
    }

    fn raw_input(name: &str, datatype: &str) -> InferInputTensor {
        InferInputTensor {
            name: name.into(),
            datatype: datatype.into(),
            shape: vec![1],
            ..InferInputTensor::default()
        }
    }

    #[test]
    fn typed_inputs_are_read_with_the_llm_convention() {
        let typed = request(
            vec![
                tensor::bytes_input(TEXT_INPUT, vec![b"hello".to_vec()]),
                tensor::int32_input(MAX_TOKENS, vec![16]),
                tensor::bool_input(STREAM, vec![true]),
                tensor::bool_input("ignore_eos", vec![true]),
            ],
            Vec::new(),
        );
        assert_eq!(
            text_request(&typed).unwrap(),
            TextRequest {
                model: "ensemble",
                text_input: "hello".into(),
                max_tokens: Some(16),
                stream: true,
                ignore_eos: Some(true),
                min_tokens: None,
            }
        );
    }

    #[test]
    fn raw_inputs_are_read_like_the_official_client_sends_them() {
        let raw = request(
            vec![
                raw_input(TEXT_INPUT, tensor::BYTES),
                raw_input(MAX_TOKENS, tensor::INT32),
                raw_input(STREAM, tensor::BOOL),
            ],
            vec![
                tensor::encode_raw_bytes([&b"hi"[..]]),
                8i32.to_le_bytes().to_vec(),
                vec![0],
            ],
        );
        let read = text_request(&raw).unwrap();
        assert_eq!(
            (read.text_input.as_ref(), read.max_tokens, read.stream),
            ("hi", Some(8), false)
        );
    }

    #[test]
    fn bad_inputs_are_invalid_arguments_that_say_what_to_send() {
        let cases = [
            (request(Vec::new(), Vec::new()), "is missing"),
            (
                request(vec![tensor::int32_input(TEXT_INPUT, vec![1])], Vec::new()),
                "must be a BYTES tensor",
            ),
            (
                request(
                    vec![
                        tensor::bytes_input(TEXT_INPUT, vec![b"x".to_vec()]),
                        tensor::int32_input(MAX_TOKENS, vec![-1]),
                    ],
                    Vec::new(),
                ),
                "non-negative integer",
            ),
            (
                request(
                    vec![
                        raw_input(TEXT_INPUT, tensor::BYTES),
                        raw_input(STREAM, tensor::BOOL),
                    ],
                    vec![tensor::encode_raw_bytes([&b"x"[..]])],
                ),
                "fewer entries than inputs",
            ),
        ];
        for (request, expected) in cases {
            let status = text_request(&request).unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert!(status.message().contains(expected), "{}", status.message());
        }
    }

    #[test]
    fn responses_carry_text_output_raw_and_the_final_flag_when_asked() {
        let request = request(Vec::new(), Vec::new());
        let response = text_response(&request, "Hello", Some(false));
        assert_eq!(
            (response.model_name.as_str(), response.id.as_str()),
            ("ensemble", "7")
        );
        assert_eq!(response.outputs[0].name, TEXT_OUTPUT);
        let read = tensor::elements(tensor::BYTES, None, Some(&response.raw_output_contents[0]));
        assert_eq!(read, Ok(Elements::Bytes(vec![b"Hello"])));
        assert_eq!(
            response.parameters[FINAL_RESPONSE].parameter_choice,
            Some(ParameterChoice::BoolParam(false))
        );
        assert!(text_response(&request, "x", None).parameters.is_empty());
    }
}
