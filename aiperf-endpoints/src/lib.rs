//! The builtin endpoints of aiperf: the OpenAI-compatible API shapes, each registered in the
//! `endpoint` category by one [`aiperf_core::register!`] line next to its type.
//!
//! | name | type | path |
//! |---|---|---|
//! | `chat` | [`ChatEndpoint`] | `/v1/chat/completions` |
//! | `completions` | [`CompletionsEndpoint`] | `/v1/completions` |
//! | `embeddings` | [`EmbeddingsEndpoint`] | `/v1/embeddings` |
//! | `triton_generate` | [`TritonGenerateEndpoint`] | `/v2/models/{model}/generate[_stream]` |
//! | `kserve` (feature `kserve`) | [`KServeEndpoint`] | gRPC `/inference.GRPCInferenceService/ModelInfer` or `ModelStreamInfer` |
//!
//! Each says in its metadata which [`WireFormat`](aiperf_core::endpoint::WireFormat) it writes:
//! `kserve` writes protobuf messages for a gRPC transport, the others HTTP bodies.
//!
//! In the data flow of DESIGN.md §4 a worker calls `format_payload` once per request and
//! `parse_response` once per received chunk. The JSON wire format the HTTP endpoints share
//! (payload assembly with extra inputs, borrowed response parsing, usage, server errors) lives
//! in one private module, `openai_wire`; the KServe messages and tensors in [`kserve`].
//!
//! A binary gets these endpoints by naming this crate (linkme elements of a crate nothing names
//! are not linked):
//!
//! ```
//! use aiperf_core::endpoint::{EndpointCategory, EndpointContext, RequestInput, Message};
//! use aiperf_core::registry::Registry;
//! use aiperf_endpoints as _;
//!
//! let registry = Registry::<EndpointCategory>::builtins();
//! let ctx = EndpointContext { model: "m".into(), ..Default::default() };
//! let chat = registry.create_instance("chat", &ctx).unwrap();
//! let body = chat.format_payload(&RequestInput {
//!     messages: vec![Message::user("hi")],
//!     max_output_tokens: Some(8),
//! });
//! assert!(body.starts_with(b"{"));
//! ```

pub mod chat;
pub mod completions;
pub mod embeddings;
#[cfg(feature = "kserve")]
pub mod kserve;
mod openai_wire;
pub mod triton_generate;

pub use chat::ChatEndpoint;
pub use completions::CompletionsEndpoint;
pub use embeddings::EmbeddingsEndpoint;
#[cfg(feature = "kserve")]
pub use kserve::KServeEndpoint;
pub use triton_generate::TritonGenerateEndpoint;
