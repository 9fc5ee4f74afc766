//! The mock server's HTTP routes: each request is routed by method and path, handed to the
//! simulated engine, and its answer sent as one JSON body or as server-sent events
//! (`data: <chunk>\n\n`, ending with `data: [DONE]\n\n`).
//!
//! - `POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings`: the engine.
//! - `GET /v1/models`: the configured model. `GET /health`: 200.
//! - `POST /v2/models/{model}/generate` and `generate_stream`: Triton's generate extension
//!   ([`super::triton`]).
//! - Anything else: 404 (405 for a known path with the wrong method), with an OpenAI-style
//!   error body. Errors from the engine (bad request 400, injected `--error-status`, rate
//!   limited 429 with `retry-after`) have that body too.
//!
//! The fault the engine planned for a request rides on its response, for the wire faults of
//! [`super::faults`].
//!
//! The request's `X-Request-ID` names it in the truth log and is echoed in the response.

use std::convert::Infallible;

use aiperf_core::engine::{Engine, Generation, RequestError, Route, openai_render};
use bytes::{Bytes, BytesMut};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Either, Full, LengthLimitError, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};

use super::faults;
use super::triton::{self, GenerateRoute};

/// A response body: whole, or a stream of SSE events.
pub(crate) type Body = Either<Full<Bytes>, UnsyncBoxBody<Bytes, Infallible>>;

/// The largest request body accepted.
const MAX_BODY_BYTES: usize = 64 << 20;

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Answers one request, which arrived at `arrival_ns` ([`aiperf_core::clock::now_ns`] units; see
/// `arrival`).
pub(crate) async fn handle(
    engine: &Engine,
    request: Request<Incoming>,
    arrival_ns: u64,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    if path == "/health" && parts.method == Method::GET {
        return json(StatusCode::OK, Bytes::from_static(b"{\"status\":\"ok\"}"));
    }
    if let Some(route) = GenerateRoute::parse(path) {
        let request_id = parts.headers.get(X_REQUEST_ID);
        let id = request_id.and_then(|value| value.to_str().ok());
        let method = &parts.method;
        return triton::generate(engine, route, method, body, id, arrival_ns).await;
    }
    let route = match Route::from_path(path) {
        Ok(route) => route,
        Err(error) => return error_response(&error.to_string(), error.status()),
    };
    if parts.method.as_str() != route.method() {
        let error = RequestError::WrongMethod {
            path: route.path(),
            method: parts.method.to_string(),
            expected: route.method(),
        };
        return error_response(&error.to_string(), error.status());
    }
    if route == Route::Models {
        return json(StatusCode::OK, engine.models_body());
    }

    let request_id = parts.headers.get(X_REQUEST_ID);
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<LengthLimitError>() => {
            let message =
                format!("the request body is over {MAX_BODY_BYTES} bytes: send a smaller one");
            return error_response(&message, 413);
        }
        Err(error) => {
            let message = format!("the request body could not be read: {error}");
            return error_response(&message, 400);
        }
    };
    let id = request_id.and_then(|value| value.to_str().ok());
    let mut response = match engine.start(path, &body, id, arrival_ns) {
        Ok(generation) => {
            let fault = generation.fault();
            let mut response = if generation.is_streaming() {
                event_stream(generation)
            } else {
                whole_body(generation).await
            };
            faults::attach(&mut response, fault);
            response
        }
        Err(error) => {
            let mut response = json(status(error.status()), error.openai_body());
            if let Some(seconds) = error.retry_after_seconds() {
                let seconds = HeaderValue::from(seconds);
                response.headers_mut().insert(RETRY_AFTER, seconds);
            }
            response
        }
    };
    if let Some(id) = request_id {
        response.headers_mut().insert(X_REQUEST_ID, id.clone());
    }
    response
}

/// A whole answer, sent once the engine has produced it.
async fn whole_body(mut generation: Generation) -> Response<Body> {
    let mut out = BytesMut::with_capacity(1024);
    generation.next(&mut out).await;
    // Dropping it now records its truth.
    drop(generation);
    json(StatusCode::OK, out.freeze())
}

/// A streamed answer: headers now, then each piece as an SSE event when the engine produces it.
fn event_stream(generation: Generation) -> Response<Body> {
    let events = futures_util::stream::unfold(
        (generation, BytesMut::new()),
        |(mut generation, mut buffer)| async move {
            if buffer.capacity() < 512 {
                buffer.reserve(4096);
            }
            // When the answer is complete the prefix is written for nothing and dropped.
            buffer.extend_from_slice(b"data: ");
            generation.next(&mut buffer).await?;
            buffer.extend_from_slice(b"\n\n");
            let event = Frame::data(buffer.split().freeze());
            Some((Ok(event), (generation, buffer)))
        },
    );
    sse_response(events)
}

/// A `200 text/event-stream` response whose body is `events`, each frame one SSE event.
pub(super) fn sse_response(
    events: impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send + 'static,
) -> Response<Body> {
    let mut response = Response::new(Either::Right(StreamBody::new(events).boxed_unsync()));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// An `application/json` response of `body` with `status`.
pub(super) fn json(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Either::Left(Full::new(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error_response(message: &str, code: u16) -> Response<Body> {
    json(status(code), openai_render::error_body(code, message))
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
