//! The check of the `plugin_vs_builtin` fuzz target: the nvidia-optimized-endpoints plugin
//! reads every response exactly as aiperf's builtin endpoints do.
//!
//! The plugin replaces the builtin `chat` and `completions` parsers with a hand-written
//! one-pass scanner (falling back to serde for what it declines) and `embeddings` with its own
//! serde types; metrics must not depend on which implementation the registry selected
//! (DESIGN.md §3). [`check`] parses the fuzz input with each builtin/plugin pair, from the same
//! non-empty text, and asserts
//! - the same result: equal chunks, or both errors (with the same message when the server
//!   reported the error; messages about malformed JSON may word the cause differently);
//! - the same text appended, and nothing appended on error.
//!
//! This file is shared: the fuzz target `fuzz/fuzz_targets/plugin_vs_builtin.rs` calls
//! [`check`] through the `aiperf-fuzz` library, and
//! `plugins/nvidia-optimized-endpoints/tests/fuzz_corpus.rs` includes it with `#[path]` to
//! replay the committed corpus under `cargo test`. It uses only the public APIs of aiperf-core,
//! aiperf-endpoints and the plugin.

use aiperf_core::endpoint::{Endpoint, EndpointContext, ResponseText};
use aiperf_endpoints::{ChatEndpoint, CompletionsEndpoint, EmbeddingsEndpoint};
use nvidia_optimized_endpoints::{
    OptimizedChatEndpoint, OptimizedCompletionsEndpoint, OptimizedEmbeddingsEndpoint,
};

/// The prefix every server-reported error message starts with, in both implementations.
const SERVER_ERROR: &str = "the server returned an error";

/// Parses `data` with both endpoints; panics when they disagree.
fn assert_same(name: &str, builtin: &dyn Endpoint, plugin: &dyn Endpoint, data: &[u8]) {
    let start = ResponseText {
        content: "earlier ".into(),
        reasoning: "thoughts ".into(),
    };
    let (mut builtin_text, mut plugin_text) = (start.clone(), start.clone());
    let expected = builtin.parse_response(data, &mut builtin_text);
    let actual = plugin.parse_response(data, &mut plugin_text);
    let shown = String::from_utf8_lossy(data);
    match (&expected, &actual) {
        (Ok(e), Ok(a)) => assert_eq!(e, a, "{name}: the chunk differs for {shown:?}"),
        (Err(e), Err(a)) => {
            if e.message.starts_with(SERVER_ERROR) || a.message.starts_with(SERVER_ERROR) {
                assert_eq!(e, a, "{name}: the server error differs for {shown:?}");
            }
        }
        _ => panic!("{name}: builtin {expected:?} but plugin {actual:?} for {shown:?}"),
    }
    assert_eq!(
        builtin_text, plugin_text,
        "{name}: the text differs for {shown:?}"
    );
    if expected.is_err() {
        assert_eq!(
            plugin_text, start,
            "{name}: an error appends nothing, for {shown:?}"
        );
    }
}

/// Parses `data` as a chat, a completions and an embeddings response with the builtin and
/// the plugin endpoint; panics when a pair disagrees.
pub fn check(data: &[u8]) {
    let ctx = |streaming| EndpointContext {
        model: "fuzz-model".into(),
        streaming,
        ..EndpointContext::default()
    };
    let (streaming, whole) = (ctx(true), ctx(false));
    let create = "a model name is all these endpoints need";
    assert_same(
        "chat",
        &ChatEndpoint::create(&streaming).expect(create),
        &OptimizedChatEndpoint::create(&streaming).expect(create),
        data,
    );
    assert_same(
        "completions",
        &CompletionsEndpoint::create(&streaming).expect(create),
        &OptimizedCompletionsEndpoint::create(&streaming).expect(create),
        data,
    );
    assert_same(
        "embeddings",
        &EmbeddingsEndpoint::create(&whole).expect(create),
        &OptimizedEmbeddingsEndpoint::create(&whole).expect(create),
        data,
    );
}
