//! The `completions` endpoint: OpenAI text completions (`/v1/completions`).
//!
//! Payload: `{"model", "prompt" (the messages joined by blank lines), "stream", "max_tokens"
//! (when an output length is asked for), "stream_options": {"include_usage": true} (when
//! streaming)}`, then the extra inputs, which override fields of the same name.
//!
//! Responses: `choices[0].text` of a streamed chunk or a whole body, `usage`, and `[DONE]`. A
//! streamed chunk is first read by the one-pass scanner of `openai_wire::scanner` (the plain
//! case: no escapes, no usage, no error), which answers only when serde would read the same,
//! then by serde: `cargo bench -p aiperf-endpoints --bench endpoints -- parse_response`
//! measured 370 ns per vLLM chunk with serde alone, 233 ns this way.

use aiperf_core::endpoint::{
    Endpoint, EndpointContext, EndpointMetadata, ParseError, ParsedChunk, RequestInput,
    ResponseText, WireFormat,
};
use aiperf_core::registry::CreateError;
use bytes::Bytes;
use serde::Deserialize;

use crate::openai_wire::Settings;
use crate::openai_wire::payload::{Field, write_payload};
use crate::openai_wire::response::{
    WireStr, append_non_empty, done_chunk, is_done, read_first_choice, read_once,
};
use crate::openai_wire::scanner::Scanner;

/// OpenAI text completions (`/v1/completions`), streaming or not.
#[derive(Debug, Clone)]
pub struct CompletionsEndpoint {
    settings: Settings,
}

aiperf_core::register!(endpoint "completions" => CompletionsEndpoint, "OpenAI text completions (/v1/completions): a prompt in, text out, streaming or not");

const METADATA: EndpointMetadata = EndpointMetadata {
    path: "/v1/completions",
    supports_streaming: true,
    produces_tokens: true,
    wire_format: WireFormat::Http,
};

/// `choices[i]` of a completions response.
#[derive(Debug, PartialEq, Deserialize)]
struct CompletionChoice<'a> {
    #[serde(borrow)]
    text: Option<WireStr<'a>>,
}

/// `choices[0]` read by the [`Scanner`] (see [`read_first_choice`]), exactly as serde reads it
/// into a [`CompletionChoice`]; `None` declines.
fn read_choice<'a>(scanner: &mut Scanner<'a>) -> Option<CompletionChoice<'a>> {
    let mut choice = CompletionChoice { text: None };
    let mut text_seen = false;
    scanner.object(|scanner, key| match key {
        "text" => read_once(scanner, &mut text_seen, &mut choice.text),
        _ => scanner.skip_value(),
    })?;
    Some(choice)
}

impl Endpoint for CompletionsEndpoint {
    fn create(ctx: &EndpointContext) -> Result<Self, CreateError> {
        Ok(Self {
            settings: Settings::new(ctx, METADATA.path),
        })
    }

    fn metadata(&self) -> EndpointMetadata {
        METADATA
    }

    fn path(&self) -> &str {
        &self.settings.path
    }

    fn format_payload(&self, input: &RequestInput) -> Bytes {
        let s = &self.settings;
        let prompt = input.joined_prompt();
        write_payload(
            &[
                Some(("model", Field::Str(&s.model))),
                Some(("prompt", Field::Str(&prompt))),
                Some(("stream", Field::Bool(s.streaming))),
                input
                    .max_output_tokens
                    .map(|n| ("max_tokens", Field::Count(n))),
                s.streaming
                    .then_some(("stream_options", Field::IncludeUsage)),
            ],
            &s.extra,
        )
    }

    fn parse_response(
        &self,
        data: &[u8],
        text: &mut ResponseText,
    ) -> Result<ParsedChunk, ParseError> {
        if is_done(data) {
            return Ok(done_chunk());
        }
        let (choice, usage) = read_first_choice(data, self.settings.streaming, read_choice)?;
        Ok(ParsedChunk {
            has_content: append_non_empty(&mut text.content, choice.and_then(|c| c.text)),
            usage,
            ..ParsedChunk::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use aiperf_core::endpoint::{Message, Role, Usage};
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::openai_wire::response::plain_reading_checks;

    fn endpoint(streaming: bool) -> CompletionsEndpoint {
        CompletionsEndpoint::create(&EndpointContext {
            model: "gpt2".into(),
            streaming,
            ..EndpointContext::default()
        })
        .unwrap()
    }

    #[test]
    fn payload_joins_the_messages_into_one_prompt() {
        let input = RequestInput {
            messages: vec![
                Message {
                    role: Role::System,
                    content: "Be brief.".into(),
                },
                Message::user("Once upon a time"),
            ],
            max_output_tokens: Some(16),
        };
        let body: Value = serde_json::from_slice(&endpoint(true).format_payload(&input)).unwrap();
        assert_eq!(
            body,
            json!({
                "model": "gpt2",
                "prompt": "Be brief.\n\nOnce upon a time",
                "stream": true,
                "max_tokens": 16,
                "stream_options": {"include_usage": true},
            })
        );
        let body: Value = serde_json::from_slice(&endpoint(false).format_payload(&RequestInput {
            max_output_tokens: None,
            ..input
        }))
        .unwrap();
        assert_eq!(
            body,
            json!({"model": "gpt2", "prompt": "Be brief.\n\nOnce upon a time", "stream": false})
        );
        assert_eq!(endpoint(false).path(), "/v1/completions");
    }

    #[test]
    fn stream_and_body_read_the_text_and_usage() {
        let completions = endpoint(true);
        let mut text = ResponseText::default();
        let chunks: Vec<ParsedChunk> = [
            r#"{"id":"cmpl-1","object":"text_completion","created":1718000000,"model":"gpt2","choices":[{"index":0,"text":" there","logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":null}"#,
            r#"{"id":"cmpl-1","object":"text_completion","created":1718000000,"model":"gpt2","choices":[{"index":0,"text":" was a \"ca\u00f1on\"\n","logprobs":null,"finish_reason":"length","stop_reason":null}],"usage":null}"#,
            r#"{"id":"cmpl-1","object":"text_completion","created":1718000000,"model":"gpt2","choices":[],"usage":{"prompt_tokens":4,"total_tokens":20,"completion_tokens":16}}"#,
            "[DONE]",
        ]
        .iter()
        .map(|c| completions.parse_response(c.as_bytes(), &mut text).unwrap())
        .collect();
        assert_eq!(text.content, " there was a \"cañon\"\n");
        assert!(chunks[0].has_content && chunks[1].has_content);
        assert!(!chunks[2].is_response() && chunks[3].is_done);
        assert_eq!(
            chunks[2].usage,
            Some(Usage {
                prompt_tokens: Some(4),
                completion_tokens: Some(16),
                reasoning_tokens: None,
                total_tokens: Some(20),
            })
        );
        let err = completions
            .parse_response(br#"{"error":{"message":"bad prompt"}}"#, &mut text)
            .unwrap_err();
        assert_eq!(err.message, "the server returned an error: bad prompt");
        assert!(
            completions
                .parse_response(b"{\"choices\":[", &mut text)
                .is_err()
        );
    }

    /// Chunks the scanner reads itself: vLLM's, and one with a second choice and odd values.
    const PLAIN_CHUNKS: [&str; 2] = [
        r#"{"id":"cmpl-1","object":"text_completion","created":1718000000,"model":"gpt2","choices":[{"index":0,"text":" there","logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":null}"#,
        r#"{"choices":[{"text":null,"logprobs":{"tokens":["a"],"top":[1.5e-3,-2]}},{"text":"second"}]}"#,
    ];

    /// vLLM's last chunk: serde's to read.
    const USAGE_CHUNK: &str = r#"{"id":"cmpl-1","object":"text_completion","created":1718000000,"model":"gpt2","choices":[],"usage":{"prompt_tokens":4,"total_tokens":20,"completion_tokens":16}}"#;

    #[test]
    fn the_scanner_answers_plain_chunks_and_leaves_the_rest_to_serde() {
        let declined = [
            USAGE_CHUNK,
            r#"{"choices":[{"text":"a\nb"}]}"#,
            r#"{"choices":[{"text":"a","text":"b"}]}"#,
            r#"{"object":"error","message":"no"}"#,
        ];
        plain_reading_checks::answers_and_declines(&PLAIN_CHUNKS, &declined, read_choice);
    }

    #[test]
    fn the_plain_reading_agrees_with_serde_on_the_fuzz_corpora() {
        // 24 answered when this was written.
        plain_reading_checks::on_fuzz_corpora(20, |data| {
            plain_reading_checks::check(data, read_choice)
        });
    }

    proptest! {
        #[test]
        fn the_plain_reading_agrees_with_serde_on_spliced_chunks(
            data in plain_reading_checks::spliced(
                &[PLAIN_CHUNKS[0], PLAIN_CHUNKS[1], USAGE_CHUNK],
                &["\"text\"", "\"logprobs\""],
            )
        ) {
            plain_reading_checks::check(&data, read_choice);
        }

        #[test]
        fn any_text_round_trips_through_a_serialized_chunk(content in any::<String>()) {
            let chunk = json!({"object": "text_completion", "choices": [{"index": 0, "text": content}]});
            let data = serde_json::to_vec(&chunk).unwrap();
            let mut text = ResponseText::default();
            let parsed = endpoint(true).parse_response(&data, &mut text).unwrap();
            prop_assert_eq!(&text.content, &content);
            prop_assert_eq!(parsed.has_content, !content.is_empty());
        }
    }
}
