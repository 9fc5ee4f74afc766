//! The `endpoint` category: how one request's payload is written and how a response (one
//! streamed chunk or a whole body) is read, for one API shape (OpenAI chat, completions,
//! embeddings, ...).
//!
//! In the data flow (DESIGN.md §4) the worker calls [`Endpoint::format_payload`] once per
//! request, hands the bytes to a [`crate::transport::Transport`], and calls
//! [`Endpoint::parse_response`] on each received chunk when the request has ended, so that
//! parsing never delays the timestamps of the chunks still arriving.

use bytes::Bytes;
use serde::Serialize;

use crate::registry::CreateError;

crate::define_category! {
    /// The endpoint category: implementations of [`Endpoint`].
    pub struct EndpointCategory {
        name: "endpoint",
        description: "API shapes: how a request payload is written and how responses are parsed",
        trait: Endpoint,
        context: EndpointContext,
        validation_context: EndpointContext { model: "validation".into(), ..Default::default() },
        slice: AIPERF_ENDPOINTS,
    }
}

/// What every endpoint is created from: the user's choices that shape payloads.
#[derive(Debug, Clone, Default)]
pub struct EndpointContext {
    /// The model name sent in each request (`--model`).
    pub model: String,
    /// Whether to ask for a streamed response (`--streaming`).
    pub streaming: bool,
    /// Extra top-level fields merged into every payload (`--extra-inputs`); they override the
    /// endpoint's own fields of the same name.
    pub extra_inputs: serde_json::Map<String, serde_json::Value>,
    /// A path that replaces the endpoint's default path (`--endpoint`).
    pub custom_path: Option<String>,
    /// Name the output length `max_tokens` where an API also has a newer name for it (chat's
    /// `max_completion_tokens`), for servers that know only the old one
    /// (`--use-legacy-max-tokens`).
    pub use_legacy_max_tokens: bool,
}

impl EndpointContext {
    /// The key a chat payload names its output length with: `max_completion_tokens`, or
    /// `max_tokens` under [`EndpointContext::use_legacy_max_tokens`].
    pub fn output_length_key(&self) -> &'static str {
        if self.use_legacy_max_tokens {
            "max_tokens"
        } else {
            "max_completion_tokens"
        }
    }
}

/// The speaker of one message of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions shared by a conversation.
    System,
    /// The user's turn.
    User,
    /// The model's earlier answer.
    Assistant,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// What is said.
    pub content: String,
}

impl Message {
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }
}

/// What one request asks for, independent of the API shape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInput {
    /// The conversation so far; the last message is the new user turn. Completions endpoints
    /// join the contents into one prompt; embeddings endpoints embed the user contents.
    pub messages: Vec<Message>,
    /// The number of output tokens asked for (`--osl`), if any.
    pub max_output_tokens: Option<u32>,
}

impl RequestInput {
    /// The contents of every message joined by blank lines: the prompt of a completions API.
    pub fn joined_prompt(&self) -> String {
        let mut prompt = String::new();
        for (i, message) in self.messages.iter().enumerate() {
            if i > 0 {
                prompt.push_str("\n\n");
            }
            prompt.push_str(&message.content);
        }
        prompt
    }
}

/// Token counts reported by the server (OpenAI `usage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// `prompt_tokens`.
    pub prompt_tokens: Option<u64>,
    /// `completion_tokens` (reasoning tokens included, as OpenAI counts them).
    pub completion_tokens: Option<u64>,
    /// `completion_tokens_details.reasoning_tokens`.
    pub reasoning_tokens: Option<u64>,
    /// `total_tokens` (prompt plus completion, as the server adds them up).
    pub total_tokens: Option<u64>,
}

/// The text a response carried, accumulated over its chunks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseText {
    /// The answer's text.
    pub content: String,
    /// The reasoning text (`reasoning_content`), if the model reasons.
    pub reasoning: String,
}

/// What one chunk (or a whole body) held, besides the text appended to [`ResponseText`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParsedChunk {
    /// It carried answer content (text, or for embeddings a vector).
    pub has_content: bool,
    /// It carried reasoning content.
    pub has_reasoning: bool,
    /// The usage it reported, if any (streams usually send it in their last chunk).
    pub usage: Option<Usage>,
    /// It was the end-of-stream marker (`[DONE]`).
    pub is_done: bool,
}

impl ParsedChunk {
    /// Whether the chunk counts as a response for the metrics (DESIGN.md §5): non-empty
    /// content or reasoning. Role-only, usage-only and `[DONE]` chunks do not.
    pub fn is_response(&self) -> bool {
        self.has_content || self.has_reasoning
    }
}

/// A response that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
#[non_exhaustive]
pub struct ParseError {
    /// What was wrong with it.
    pub message: String,
    /// Whether the response was the server reporting an error of its own (an `error` object
    /// in a body or an event, which vLLM and TGI send mid-stream), not one the client could
    /// not read: the error summary then names it `ServerError`, not `ResponseParseError`.
    pub reported_by_server: bool,
}

impl ParseError {
    /// A parse error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            reported_by_server: false,
        }
    }

    /// The server's report of an error of its own, in a response that otherwise parsed.
    pub fn reported_by_server(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            reported_by_server: true,
        }
    }
}

/// How an endpoint's requests travel, which decides the transports that can carry them: each
/// transport lists the formats it carries in
/// [`TransportMetadata::wire_formats`](crate::transport::TransportMetadata::wire_formats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WireFormat {
    /// A body POSTed to the endpoint's URL path, answered with one body or with server-sent
    /// events (OpenAI APIs, Triton's generate extension).
    Http,
    /// A protobuf message sent to the gRPC method the endpoint's path names
    /// (`/package.Service/Method`), answered with one message or a stream of them (KServe v2).
    Grpc,
}

impl WireFormat {
    /// Its name in messages and listings (`http`, `grpc`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Grpc => "grpc",
        }
    }
}

impl std::fmt::Display for WireFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Facts about an endpoint that the runner and `aiperf plugins` need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointMetadata {
    /// The default URL path (`/v1/chat/completions`), or gRPC method path.
    pub path: &'static str,
    /// Whether it can stream.
    pub supports_streaming: bool,
    /// Whether it produces output tokens (false for embeddings): token metrics apply.
    pub produces_tokens: bool,
    /// How its requests travel: only transports carrying this format can serve it.
    pub wire_format: WireFormat,
}

/// One API shape. Implementations are created once per run and shared by all workers.
pub trait Endpoint: Send + Sync {
    /// Builds the endpoint from the user's choices; rejects contradictory ones (e.g. streaming
    /// an API that cannot stream) with a message that says what to change.
    fn create(ctx: &EndpointContext) -> Result<Self, CreateError>
    where
        Self: Sized;

    /// Facts about this endpoint.
    fn metadata(&self) -> EndpointMetadata;

    /// The URL path requests go to: the `--endpoint` override or the default.
    fn path(&self) -> &str;

    /// Writes the request body for one request.
    fn format_payload(&self, input: &RequestInput) -> Bytes;

    /// Reads one response: the data of one streamed event, or a whole non-streamed body.
    /// Appends any text to `text` and returns what else the chunk held.
    fn parse_response(
        &self,
        data: &[u8],
        text: &mut ResponseText,
    ) -> Result<ParsedChunk, ParseError>;
}
