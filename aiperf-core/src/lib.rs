//! Contracts and machinery of aiperf, an LLM-inference benchmark.
//!
//! This crate holds everything that is not a concrete endpoint, transport or command line:
//! - the hybrid plugin registry ([`registry`], [`registries`], the [`define_category!`] and
//!   [`register!`] macros): builtins register through linkme slices, plugins through the table
//!   `aiperf-cli/build.rs` generates from Cargo metadata;
//! - the category traits: [`endpoint::Endpoint`] (payloads and parsing) and
//!   [`transport::Transport`] (sending and timestamped chunks);
//! - the benchmark itself, following DESIGN.md §4: dataset, schedule, workers, records,
//!   metrics, exports; and the simulated engine of the embedded default ([`engine`]).
//!
//! A builtin registers itself next to its type:
//!
//! ```ignore
//! aiperf_core::register!(endpoint "chat" => ChatEndpoint, "OpenAI chat completions");
//! ```

pub mod category;
pub mod clock;
pub mod dataset;
pub mod endpoint;
pub mod engine;
pub mod export;
pub mod http_trace;
pub mod metrics;
pub mod record;
pub mod record_processor;
pub mod registries;
pub mod registry;
pub mod runner;
pub mod schedule;
pub mod sse;
pub mod stats;
pub mod tokenizer;
pub mod transport;
pub mod vocabulary;

/// The linkme version the registration macros expand to; re-exported so that crates
/// registering builtins need no linkme dependency of their own.
pub use linkme;
