//! An aiperf plugin: OpenAI-compatible endpoints tuned for NVIDIA NIM.
//!
//! It replaces aiperf's builtin `chat`, `completions` and `embeddings` endpoints (declared in
//! this crate's `[package.metadata.aiperf.plugins.endpoint]`; aiperf's build script finds them
//! in the dependency graph, nothing registers at run time) with three that differ in two ways:
//!
//! - **Exact output length on NIM.** When a request asks for N output tokens, the payload also
//!   carries `"nvext": {"ignore_eos": true, "min_tokens": N}`, so the server neither stops early
//!   at an end-of-sequence token nor produces fewer than N tokens ([`OptimizedChatEndpoint`],
//!   [`OptimizedCompletionsEndpoint`]). A user's own `nvext` extra input is merged into.
//! - **A cheaper per-request path.** The constant part of the payload (model, stream,
//!   stream_options, extra inputs) is serialized once when the endpoint is created; each
//!   request only appends its messages and lengths into a buffer sized up front. Streamed
//!   chunks are read in one pass over the bytes, without a JSON tree or struct
//!   deserialization, and their text is unescaped straight into the response's buffers;
//!   the rare chunks that carry a non-null `usage` or an error go through serde.
//!
//! Responses read exactly as with the builtins (the crate's differential tests compare them on
//! realistic chunks and random ones), so metrics do not depend on which endpoint is selected.
//!
//! In aiperf's data flow (a worker formats a payload per request, the transport stamps each
//! chunk, the endpoint parses the chunks) these types sit where any endpoint does:
//!
//! ```
//! use aiperf_core::endpoint::{Endpoint, EndpointContext, Message, RequestInput, ResponseText};
//! use nvidia_optimized_endpoints::OptimizedChatEndpoint;
//!
//! let ctx = EndpointContext { model: "meta/llama-3.1-8b-instruct".into(), streaming: true, ..Default::default() };
//! let chat = OptimizedChatEndpoint::create(&ctx).unwrap();
//! let body = chat.format_payload(&RequestInput {
//!     messages: vec![Message::user("Hello")],
//!     max_output_tokens: Some(64),
//! });
//! assert!(std::str::from_utf8(&body).unwrap().contains(r#""nvext":{"ignore_eos":true,"min_tokens":64}"#));
//!
//! let mut text = ResponseText::default();
//! let chunk = chat
//!     .parse_response(br#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#, &mut text)
//!     .unwrap();
//! assert!(chunk.has_content);
//! assert_eq!(text.content, "Hi");
//! ```

mod chat;
mod chunk_scan;
mod completions;
mod embeddings;
mod endpoint_path;
mod json_escape;
mod json_unescape;
mod nvext;
mod payload_template;
mod plain_run;
mod wire;

pub use chat::OptimizedChatEndpoint;
pub use completions::OptimizedCompletionsEndpoint;
pub use embeddings::OptimizedEmbeddingsEndpoint;
