//! The check of the builtin endpoints' fuzz targets (`chat_parse`, `completions_parse`,
//! `embeddings_parse`, `triton_generate_parse`, `kserve_parse`): `Endpoint::parse_response`
//! reads any bytes a server may send into a chunk or a [`ParseError`], never a panic, and
//! keeps the contract the runner relies on.
//!
//! In the data flow of DESIGN.md §4 every received chunk goes to `parse_response`, which
//! appends its text to the request's [`ResponseText`]. [`check`] parses the fuzz input, from a
//! text that already holds earlier chunks, and asserts that
//! - an error appends nothing and has a message;
//! - a chunk only appends: the earlier text stays a prefix;
//! - `has_content` / `has_reasoning` say exactly whether content / reasoning text was appended
//!   (embeddings append no text: their content is a vector);
//! - the `[DONE]` marker carries nothing else;
//! - parsing is deterministic: the same bytes read again give the same chunk and text.
//!
//! This file is shared: the fuzz targets in `fuzz/fuzz_targets/` call [`check`] through the
//! `aiperf-fuzz` library, and `aiperf-endpoints/tests/fuzz_corpus.rs` includes it with
//! `#[path]` to replay the committed corpora under `cargo test`. It uses only the public API of
//! aiperf-core and aiperf-endpoints; the `kserve` parts follow the `kserve` feature of the crate
//! including it, which means the same in both.

use aiperf_core::endpoint::{Endpoint, EndpointContext, ParseError, ParsedChunk, ResponseText};
#[cfg(feature = "kserve")]
use aiperf_endpoints::KServeEndpoint;
use aiperf_endpoints::{
    ChatEndpoint, CompletionsEndpoint, EmbeddingsEndpoint, TritonGenerateEndpoint,
};

/// A builtin endpoint under test; each fuzz target checks one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `chat` (streamed chunks and whole bodies parse alike).
    Chat,
    /// `completions`.
    Completions,
    /// `embeddings`.
    Embeddings,
    /// `triton_generate`.
    TritonGenerate,
    /// `kserve`: each input is read both as a unary `ModelInferResponse` and as a streamed
    /// `ModelStreamInferResponse`.
    #[cfg(feature = "kserve")]
    KServe,
}

impl Target {
    /// Every target this build has.
    pub fn all() -> impl Iterator<Item = Target> {
        let all = [
            Target::Chat,
            Target::Completions,
            Target::Embeddings,
            Target::TritonGenerate,
        ];
        #[cfg(feature = "kserve")]
        let all = all.into_iter().chain([Target::KServe]);
        all.into_iter()
    }

    /// The name of its fuzz target, which is also its corpus directory.
    pub fn name(self) -> &'static str {
        match self {
            Target::Chat => "chat_parse",
            Target::Completions => "completions_parse",
            Target::Embeddings => "embeddings_parse",
            Target::TritonGenerate => "triton_generate_parse",
            #[cfg(feature = "kserve")]
            Target::KServe => "kserve_parse",
        }
    }

    /// The endpoints this target reads its inputs with.
    fn endpoints(self) -> Vec<Box<dyn Endpoint>> {
        let ctx = |streaming| EndpointContext {
            model: "fuzz-model".into(),
            streaming,
            ..EndpointContext::default()
        };
        let created = match self {
            Target::Chat => vec![ChatEndpoint::create(&ctx(true)).map(boxed)],
            Target::Completions => vec![CompletionsEndpoint::create(&ctx(true)).map(boxed)],
            Target::Embeddings => vec![EmbeddingsEndpoint::create(&ctx(false)).map(boxed)],
            Target::TritonGenerate => vec![TritonGenerateEndpoint::create(&ctx(true)).map(boxed)],
            #[cfg(feature = "kserve")]
            Target::KServe => vec![
                KServeEndpoint::create(&ctx(false)).map(boxed),
                KServeEndpoint::create(&ctx(true)).map(boxed),
            ],
        };
        created
            .into_iter()
            .map(|endpoint| endpoint.expect("a model name is all these endpoints need"))
            .collect()
    }

    /// Whether the endpoint's content is text appended to [`ResponseText::content`].
    fn content_is_text(self) -> bool {
        self != Target::Embeddings
    }
}

fn boxed(endpoint: impl Endpoint + 'static) -> Box<dyn Endpoint> {
    Box::new(endpoint)
}

/// The text of a response before the chunk under test.
fn earlier_text() -> ResponseText {
    ResponseText {
        content: "earlier ".into(),
        reasoning: "thoughts ".into(),
    }
}

/// Parses `data` with `endpoint` after the earlier text; the result and the text after.
fn parse(endpoint: &dyn Endpoint, data: &[u8]) -> (Result<ParsedChunk, ParseError>, ResponseText) {
    let mut text = earlier_text();
    let result = endpoint.parse_response(data, &mut text);
    (result, text)
}

/// Parses `data` with the endpoints of `target`; panics when the contract is broken.
pub fn check(target: Target, data: &[u8]) {
    let start = earlier_text();
    for endpoint in target.endpoints() {
        let (result, text) = parse(&*endpoint, data);
        assert_eq!(
            parse(&*endpoint, data),
            (result.clone(), text.clone()),
            "parsing the same bytes twice differs"
        );
        let chunk = match result {
            Err(error) => {
                assert_eq!(text, start, "an error appends nothing ({error})");
                assert!(!error.message.is_empty(), "an error has a message");
                continue;
            }
            Ok(chunk) => chunk,
        };
        assert!(
            text.content.starts_with(&start.content)
                && text.reasoning.starts_with(&start.reasoning),
            "a chunk only appends to the text: {text:?}"
        );
        let appended_content = text.content.len() > start.content.len();
        let appended_reasoning = text.reasoning.len() > start.reasoning.len();
        if target.content_is_text() {
            assert_eq!(
                chunk.has_content, appended_content,
                "has_content says whether content was appended: {chunk:?} {text:?}"
            );
        } else {
            assert!(!appended_content, "{target:?} appends no content text");
        }
        assert_eq!(
            chunk.has_reasoning, appended_reasoning,
            "has_reasoning says whether reasoning was appended: {chunk:?} {text:?}"
        );
        if chunk.is_done {
            assert_eq!(
                chunk,
                ParsedChunk {
                    is_done: true,
                    ..ParsedChunk::default()
                },
                "[DONE] carries nothing else"
            );
        }
    }
}
