//! The `chat` endpoint: OpenAI chat completions (`/v1/chat/completions`), as served by vLLM,
//! SGLang, TensorRT-LLM, Dynamo, NIM, TGI and OpenAI itself.
//!
//! Payload: `{"model", "messages": [{"role", "content"}], "stream", "max_completion_tokens"
//! (when an output length is asked for; `max_tokens` with `--use-legacy-max-tokens`),
//! "stream_options": {"include_usage": true} (when streaming)}`, then the extra inputs, which
//! override fields of the same name.
//!
//! Responses: a streamed chunk's `choices[0].delta` or a whole body's `choices[0].message`,
//! reading `content` and the reasoning text (`reasoning_content`, or vLLM's `reasoning`), plus
//! `usage` (with `completion_tokens_details.reasoning_tokens`) and `[DONE]`. A streamed chunk is
//! first read by the one-pass scanner of `openai_wire::scanner` (the plain case: no escapes, no
//! usage, no error), which answers only when serde would read the same, then by serde: about a
//! third less work per chunk than serde alone.

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

/// OpenAI chat completions (`/v1/chat/completions`), streaming or not.
#[derive(Debug, Clone)]
pub struct ChatEndpoint {
    settings: Settings,
    /// The output length's key ([`EndpointContext::output_length_key`]).
    length_key: &'static str,
}

aiperf_core::register!(endpoint "chat" => ChatEndpoint, "OpenAI chat completions (/v1/chat/completions): messages in, content and reasoning out, streaming or not");

const METADATA: EndpointMetadata = EndpointMetadata {
    path: "/v1/chat/completions",
    supports_streaming: true,
    produces_tokens: true,
    wire_format: WireFormat::Http,
};

/// `choices[i]` of a chat response: `delta` in a streamed chunk, `message` in a whole body.
#[derive(Debug, PartialEq, Deserialize)]
struct ChatChoice<'a> {
    #[serde(borrow)]
    delta: Option<ChatMessage<'a>>,
    #[serde(borrow)]
    message: Option<ChatMessage<'a>>,
}

/// The text of a chat `delta` or `message`.
#[derive(Debug, PartialEq, Deserialize)]
struct ChatMessage<'a> {
    #[serde(borrow)]
    content: Option<WireStr<'a>>,
    #[serde(borrow)]
    reasoning_content: Option<WireStr<'a>>,
    /// vLLM's name for `reasoning_content`; used when `reasoning_content` is absent or empty.
    #[serde(borrow)]
    reasoning: Option<WireStr<'a>>,
}

/// `choices[0]` read by the [`Scanner`] (see [`read_first_choice`]), exactly as serde reads it
/// into a [`ChatChoice`]; `None` declines.
fn read_choice<'a>(scanner: &mut Scanner<'a>) -> Option<ChatChoice<'a>> {
    let mut choice = ChatChoice {
        delta: None,
        message: None,
    };
    let (mut delta_seen, mut message_seen) = (false, false);
    scanner.object(|scanner, key| {
        let (seen, slot) = match key {
            "delta" => (&mut delta_seen, &mut choice.delta),
            "message" => (&mut message_seen, &mut choice.message),
            _ => return scanner.skip_value(),
        };
        if std::mem::replace(seen, true) {
            return None;
        }
        *slot = read_message(scanner)?;
        Some(())
    })?;
    Some(choice)
}

/// A `delta` or `message` read by the [`Scanner`]: `null`, or an object with the texts.
fn read_message<'a>(scanner: &mut Scanner<'a>) -> Option<Option<ChatMessage<'a>>> {
    if scanner.null() {
        return Some(None);
    }
    let mut message = ChatMessage {
        content: None,
        reasoning_content: None,
        reasoning: None,
    };
    let mut seen = [false; 3];
    scanner.object(|scanner, key| match key {
        "content" => read_once(scanner, &mut seen[0], &mut message.content),
        "reasoning_content" => read_once(scanner, &mut seen[1], &mut message.reasoning_content),
        "reasoning" => read_once(scanner, &mut seen[2], &mut message.reasoning),
        _ => scanner.skip_value(),
    })?;
    Some(Some(message))
}

impl Endpoint for ChatEndpoint {
    fn create(ctx: &EndpointContext) -> Result<Self, CreateError> {
        Ok(Self {
            settings: Settings::new(ctx, METADATA.path),
            length_key: ctx.output_length_key(),
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
        write_payload(
            &[
                Some(("model", Field::Str(&s.model))),
                Some(("messages", Field::Messages(&input.messages))),
                Some(("stream", Field::Bool(s.streaming))),
                input
                    .max_output_tokens
                    .map(|n| (self.length_key, Field::Count(n))),
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
        let mut chunk = ParsedChunk {
            usage,
            ..ParsedChunk::default()
        };
        if let Some(message) = choice.and_then(|c| c.delta.or(c.message)) {
            chunk.has_content = append_non_empty(&mut text.content, message.content);
            let reasoning = message
                .reasoning_content
                .filter(|r| !r.0.is_empty())
                .or(message.reasoning);
            chunk.has_reasoning = append_non_empty(&mut text.reasoning, reasoning);
        }
        Ok(chunk)
    }
}

#[cfg(test)]
mod tests {
    use aiperf_core::endpoint::{Message, Role, Usage};
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::openai_wire::response::plain_reading_checks;

    fn endpoint(streaming: bool, extra: Value) -> ChatEndpoint {
        let Value::Object(extra_inputs) = extra else {
            panic!("extra inputs must be an object")
        };
        ChatEndpoint::create(&EndpointContext {
            model: "meta-llama/Llama-3.1-8B-Instruct".into(),
            streaming,
            extra_inputs,
            custom_path: None,
            use_legacy_max_tokens: false,
        })
        .unwrap()
    }

    fn payload(endpoint: &ChatEndpoint, input: &RequestInput) -> Value {
        serde_json::from_slice(&endpoint.format_payload(input)).unwrap()
    }

    fn parse(chunks: &[&str]) -> (Vec<ParsedChunk>, ResponseText) {
        let chat = endpoint(true, json!({}));
        let mut text = ResponseText::default();
        let parsed = chunks
            .iter()
            .map(|c| chat.parse_response(c.as_bytes(), &mut text).unwrap())
            .collect();
        (parsed, text)
    }

    #[test]
    fn streaming_payload_asks_for_usage_and_the_output_length() {
        let input = RequestInput {
            messages: vec![
                Message {
                    role: Role::System,
                    content: "You are terse.".into(),
                },
                Message::user("Why is the sky blue?"),
            ],
            max_output_tokens: Some(128),
        };
        assert_eq!(
            payload(&endpoint(true, json!({})), &input),
            json!({
                "model": "meta-llama/Llama-3.1-8B-Instruct",
                "messages": [
                    {"role": "system", "content": "You are terse."},
                    {"role": "user", "content": "Why is the sky blue?"},
                ],
                "stream": true,
                "max_completion_tokens": 128,
                "stream_options": {"include_usage": true},
            })
        );
    }

    #[test]
    fn non_streaming_payload_has_no_stream_options_nor_unset_length() {
        let input = RequestInput {
            messages: vec![Message::user("hi")],
            max_output_tokens: None,
        };
        assert_eq!(
            payload(&endpoint(false, json!({})), &input),
            json!({
                "model": "meta-llama/Llama-3.1-8B-Instruct",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": false,
            })
        );
    }

    #[test]
    fn the_legacy_flag_names_the_output_length_max_tokens() {
        let legacy = ChatEndpoint::create(&EndpointContext {
            use_legacy_max_tokens: true,
            ..EndpointContext::default()
        })
        .unwrap();
        let input = RequestInput {
            messages: vec![Message::user("hi")],
            max_output_tokens: Some(9),
        };
        let body = payload(&legacy, &input);
        assert_eq!(body["max_tokens"], json!(9), "{body}");
        assert_eq!(body.get("max_completion_tokens"), None, "{body}");
    }

    #[test]
    fn extra_inputs_are_merged_at_top_level_and_win() {
        let chat = endpoint(
            true,
            json!({"temperature": 0.0, "max_completion_tokens": 5, "stream_options": null}),
        );
        let input = RequestInput {
            messages: vec![Message::user("hi")],
            max_output_tokens: Some(100),
        };
        let body = payload(&chat, &input);
        assert_eq!(body["temperature"], json!(0.0));
        assert_eq!(body["max_completion_tokens"], json!(5));
        assert_eq!(body["stream_options"], Value::Null);
        assert_eq!(body["stream"], json!(true));
    }

    #[test]
    fn custom_path_replaces_the_default() {
        let chat = ChatEndpoint::create(&EndpointContext {
            custom_path: Some("v1/custom/chat".into()),
            ..EndpointContext::default()
        })
        .unwrap();
        assert_eq!(chat.path(), "/v1/custom/chat");
        assert_eq!(endpoint(false, json!({})).path(), "/v1/chat/completions");
        assert_eq!(chat.metadata(), METADATA);
    }

    /// A vLLM stream: role chunk, content chunks with escapes, finish, usage-only, `[DONE]`.
    #[test]
    fn vllm_stream_accumulates_content_and_ends_with_usage() {
        let (chunks, text) = parse(&[
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1718000000,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1718000000,"model":"m","choices":[{"index":0,"delta":{"content":"Caf\u00e9 \"na\u00efve\"\n"},"logprobs":null,"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1718000000,"model":"m","choices":[{"index":0,"delta":{"content":"\ud83d\ude00 \\o/\ttab"},"logprobs":null,"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1718000000,"model":"m","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"stop","stop_reason":null}]}"#,
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1718000000,"model":"m","choices":[],"usage":{"prompt_tokens":9,"total_tokens":21,"completion_tokens":12}}"#,
            "[DONE]",
        ]);
        assert_eq!(text.content, "Café \"naïve\"\n😀 \\o/\ttab");
        assert_eq!(text.reasoning, "");
        let responses: Vec<bool> = chunks.iter().map(ParsedChunk::is_response).collect();
        assert_eq!(responses, [false, true, true, false, false, false]);
        assert_eq!(
            chunks[4].usage,
            Some(Usage {
                prompt_tokens: Some(9),
                completion_tokens: Some(12),
                reasoning_tokens: None,
                total_tokens: Some(21),
            })
        );
        assert!(chunks[5].is_done && chunks[..5].iter().all(|c| !c.is_done));
        assert!(chunks[..4].iter().all(|c| c.usage.is_none()));
    }

    /// DeepSeek-R1 style reasoning, as `reasoning_content` (SGLang, OpenAI-compatible) and as
    /// `reasoning` (newer vLLM).
    #[test]
    fn reasoning_chunks_fill_the_reasoning_text() {
        let (chunks, text) = parse(&[
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":"Let me think."},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"reasoning":" Okay,"},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"reasoning_content":"","reasoning":" so"},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"reasoning_content":" yes","reasoning":" yes"},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"42"},"finish_reason":null}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":9,"completion_tokens_details":{"reasoning_tokens":7}}}"#,
        ]);
        assert_eq!(text.reasoning, "Let me think. Okay, so yes");
        assert_eq!(text.content, "42");
        let kinds: Vec<(bool, bool)> = chunks
            .iter()
            .map(|c| (c.has_content, c.has_reasoning))
            .collect();
        assert_eq!(
            kinds,
            [
                (false, true),
                (false, true),
                (false, true),
                (false, true),
                (true, false),
                (false, false)
            ]
        );
        assert_eq!(chunks[5].usage.unwrap().reasoning_tokens, Some(7));
    }

    #[test]
    fn whole_body_reads_message_and_usage() {
        let (chunks, text) = parse(&[
            r#"{"id":"chatcmpl-9","object":"chat.completion","created":1718000000,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"The sky scatters blue light.","reasoning_content":"Rayleigh.","tool_calls":[]},"logprobs":null,"finish_reason":"stop","stop_reason":null}],"usage":{"prompt_tokens":14,"total_tokens":34,"completion_tokens":20,"prompt_tokens_details":null},"prompt_logprobs":null}"#,
        ]);
        assert_eq!(text.content, "The sky scatters blue light.");
        assert_eq!(text.reasoning, "Rayleigh.");
        assert!(chunks[0].has_content && chunks[0].has_reasoning);
        assert_eq!(chunks[0].usage.unwrap().completion_tokens, Some(20));
    }

    #[test]
    fn only_the_first_choice_counts() {
        let (chunks, text) = parse(&[
            r#"{"choices":[{"index":0,"delta":{"content":"a"}},{"index":1,"delta":{"content":"b"}}]}"#,
        ]);
        assert_eq!(text.content, "a");
        assert!(chunks[0].has_content);
    }

    #[test]
    fn error_bodies_are_parse_errors_with_the_server_message() {
        let chat = endpoint(true, json!({}));
        let mut text = ResponseText::default();
        let err = chat
            .parse_response(
                br#"{"error":{"message":"The model `gpt-5` does not exist.","type":"NotFoundError","code":404}}"#,
                &mut text,
            )
            .unwrap_err();
        assert!(
            err.reported_by_server,
            "the server's error, not the client's"
        );
        assert_eq!(
            err.message,
            "the server returned an error: The model `gpt-5` does not exist."
        );
        let err = chat
            .parse_response(
                br#"{"object":"error","message":"This model's maximum context length is 8192 tokens.","type":"BadRequestError","param":null,"code":400}"#,
                &mut text,
            )
            .unwrap_err();
        assert!(err.message.contains("maximum context length"), "{err}");
        assert_eq!(text, ResponseText::default());
    }

    #[test]
    fn malformed_chunks_are_parse_errors_and_append_nothing() {
        let chat = endpoint(true, json!({}));
        let mut text = ResponseText::default();
        for bad in [
            "",
            "data: {}",
            r#"{"choices":[{"delta":{"content":"cut"#,
            r#"{"choices":[{"delta":{"content":"x"}}]} trailing"#,
            r#"{"choices":[{"delta":{"content":7}}]}"#,
            r#"{"choices":[{"delta":{"content":"\ud800"}}]}"#,
            r#"{"choices":{"delta":{}}}"#,
            "[1,2]",
        ] {
            assert!(
                chat.parse_response(bad.as_bytes(), &mut text).is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(text, ResponseText::default());
    }

    #[test]
    fn the_plain_reading_agrees_with_serde_on_the_fuzz_corpora() {
        // 23 answered when this was written.
        plain_reading_checks::on_fuzz_corpora(20, |data| {
            plain_reading_checks::check(data, read_choice)
        });
    }

    /// Chunks the scanner reads itself.
    const PLAIN_CHUNKS: [&str; 3] = [
        r#"{"id":"c-1","object":"chat.completion.chunk","created":1718000000,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":" on"},"logprobs":null,"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"reasoning_content":"a","reasoning":"b","content":null}},{"index":1}],"usage":null}"#,
        r#"{"object":"chat.completion","choices":[{"message":{"content":"x","tool_calls":[{"a":[1,2.5e-3,true,false]}]},"delta":null}]}"#,
    ];

    /// Realistic chunks with a few pieces of JSON grammar spliced in anywhere.
    fn spliced_chunk() -> impl Strategy<Value = Vec<u8>> {
        let usage = r#" { "choices" : [ ] , "usage" : { "prompt_tokens" : 1 } } "#;
        let names = ["\"delta\"", "\"content\"", "\"reasoning\""];
        plain_reading_checks::spliced(
            &[PLAIN_CHUNKS[0], PLAIN_CHUNKS[1], PLAIN_CHUNKS[2], usage],
            &names,
        )
    }

    #[test]
    fn the_scanner_answers_plain_chunks_and_leaves_usage_to_serde() {
        let usage = r#"{"choices":[],"usage":{"prompt_tokens":1}}"#;
        plain_reading_checks::answers_and_declines(&PLAIN_CHUNKS, &[usage], read_choice);
    }

    proptest! {
        #[test]
        fn the_plain_reading_agrees_with_serde_on_spliced_chunks(data in spliced_chunk()) {
            plain_reading_checks::check(&data, read_choice);
        }

        #[test]
        fn any_content_round_trips_through_a_serialized_chunk(content in any::<String>(), reasoning in any::<String>()) {
            let chunk = json!({
                "id": "chatcmpl-p",
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": content, "reasoning_content": reasoning}, "finish_reason": null}],
            });
            let data = serde_json::to_vec(&chunk).unwrap();
            let mut text = ResponseText::default();
            let parsed = endpoint(true, json!({})).parse_response(&data, &mut text).unwrap();
            prop_assert_eq!(&text.content, &content);
            prop_assert_eq!(&text.reasoning, &reasoning);
            prop_assert_eq!(parsed.has_content, !content.is_empty());
            prop_assert_eq!(parsed.has_reasoning, !reasoning.is_empty());
        }
    }
}
