//! Differential tests: the plugin's endpoints must read every response exactly as aiperf's
//! builtin endpoints do (same `ParsedChunk`, same text appended, errors in the same cases with
//! the same server message), and write the same payloads plus `nvext`.
//!
//! The inputs are real chunks from vLLM, SGLang, TensorRT-LLM, TGI, NIM and OpenAI (with the
//! escapes, reasoning fields, tool calls, logprobs and usage-only chunks they send), malformed
//! variants of them (every truncation, random byte edits), and random contents.

use aiperf_core::endpoint::{
    Endpoint, EndpointContext, Message, ParseError, ParsedChunk, RequestInput, ResponseText, Role,
};
use aiperf_endpoints::{ChatEndpoint, CompletionsEndpoint, EmbeddingsEndpoint};
use nvidia_optimized_endpoints::{
    OptimizedChatEndpoint, OptimizedCompletionsEndpoint, OptimizedEmbeddingsEndpoint,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Streamed chat chunks and whole chat bodies as servers send them.
const CHAT: &[&str] = &[
    // vLLM / NIM
    r#"{"id":"chatcmpl-b2c9","object":"chat.completion.chunk","created":1718000000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
    r#"{"id":"chatcmpl-b2c9","object":"chat.completion.chunk","created":1718000000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"index":0,"delta":{"content":" Paris"},"logprobs":null,"finish_reason":null}]}"#,
    r#"{"id":"chatcmpl-b2c9","object":"chat.completion.chunk","created":1718000000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"index":0,"delta":{"content":".\n\n**Note**: \"quoted\" \\ back"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    r#"{"id":"chatcmpl-b2c9","object":"chat.completion.chunk","created":1718000000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"stop","stop_reason":null}]}"#,
    r#"{"id":"chatcmpl-b2c9","object":"chat.completion.chunk","created":1718000000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[],"usage":{"prompt_tokens":17,"total_tokens":29,"completion_tokens":12,"prompt_tokens_details":null}}"#,
    r#"{"id":"chatcmpl-b2c9","object":"chat.completion.chunk","created":1718000000,"model":"m","choices":[{"index":0,"delta":{"content":"x"},"logprobs":null,"finish_reason":null}],"usage":{"prompt_tokens":17,"total_tokens":18,"completion_tokens":1}}"#,
    // vLLM reasoning parsers: old `reasoning_content`, new `reasoning`, both.
    r#"{"id":"chatcmpl-r1","object":"chat.completion.chunk","created":1718000000,"model":"deepseek-ai/DeepSeek-R1-Distill-Qwen-7B","choices":[{"index":0,"delta":{"reasoning_content":"Okay, the user asks"},"logprobs":null,"finish_reason":null}]}"#,
    r#"{"id":"chatcmpl-r1","object":"chat.completion.chunk","created":1718000000,"model":"Qwen/Qwen3-8B","choices":[{"index":0,"delta":{"reasoning":" about caf\u00e9s"},"logprobs":null,"finish_reason":null}]}"#,
    r#"{"id":"chatcmpl-r1","object":"chat.completion.chunk","created":1718000000,"model":"Qwen/Qwen3-8B","choices":[{"index":0,"delta":{"reasoning_content":" hmm","reasoning":" hmm"},"logprobs":null,"finish_reason":null}]}"#,
    r#"{"id":"chatcmpl-r1","object":"chat.completion.chunk","created":1718000000,"model":"Qwen/Qwen3-8B","choices":[{"index":0,"delta":{"reasoning_content":"","reasoning":"only this"},"logprobs":null,"finish_reason":null}]}"#,
    r#"{"id":"chatcmpl-r1","object":"chat.completion.chunk","created":1718000000,"model":"m","choices":[],"usage":{"prompt_tokens":10,"total_tokens":300,"completion_tokens":290,"completion_tokens_details":{"reasoning_tokens":250}}}"#,
    // SGLang
    r#"{"id":"4b9f0e3a","object":"chat.completion.chunk","created":1718000000,"model":"default","choices":[{"index":0,"delta":{"role":null,"content":"Hello","reasoning_content":null,"tool_calls":null},"logprobs":null,"finish_reason":null,"matched_stop":null}],"usage":null}"#,
    r#"{"id":"4b9f0e3a","object":"chat.completion.chunk","created":1718000000,"model":"default","choices":[{"index":0,"delta":{"role":null,"content":null,"reasoning_content":"Let me think","tool_calls":null},"logprobs":null,"finish_reason":null,"matched_stop":null}],"usage":null}"#,
    r#"{"id":"4b9f0e3a","object":"chat.completion.chunk","created":1718000000,"model":"default","choices":[{"index":0,"delta":{"role":null,"content":null,"reasoning_content":null,"tool_calls":null},"logprobs":null,"finish_reason":"stop","matched_stop":128009}],"usage":null}"#,
    // TensorRT-LLM (trtllm-serve)
    r#"{"id":"chatcmpl-6e7f","object":"chat.completion.chunk","created":1718000000,"model":"TinyLlama","choices":[{"index":0,"delta":{"role":null,"content":" world","reasoning_content":null,"tool_calls":[]},"logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":null}"#,
    // TGI
    r#"{"object":"chat.completion.chunk","id":"","created":1718000000,"model":"mistralai/Mistral-7B-Instruct-v0.3","system_fingerprint":"2.4.0-native","choices":[{"index":0,"delta":{"role":"assistant","content":"\ud83d\ude80 Deep"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    // OpenAI
    r#"{"id":"chatcmpl-A1b2","object":"chat.completion.chunk","created":1718000000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_44added55e","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"aBcD"}"#,
    r#"{"id":"chatcmpl-A1b2","object":"chat.completion.chunk","created":1718000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_44added55e","choices":[{"index":0,"delta":{"content":"Bonjour \u00e0 tous \u2014 na\u00efve"},"logprobs":{"content":[{"token":"Bonjour","logprob":-0.0012,"bytes":[66,111,110],"top_logprobs":[{"token":"Bonjour","logprob":-1.2e-3,"bytes":[66]}]}],"refusal":null},"finish_reason":null}],"usage":null}"#,
    r#"{"id":"chatcmpl-A1b2","object":"chat.completion.chunk","created":1718000000,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":9,"total_tokens":18,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}"#,
    // Tool calls
    r#"{"id":"chatcmpl-t","object":"chat.completion.chunk","created":1718000000,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_abc","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Par"}}]},"logprobs":null,"finish_reason":null}]}"#,
    // Dynamo with its own response extension
    r#"{"id":"chatcmpl-d","object":"chat.completion.chunk","created":1718000000,"model":"m","choices":[{"index":0,"delta":{"content":"ok","role":"assistant"},"finish_reason":null,"logprobs":null}],"nvext":{"worker_id":{"prefill_worker_id":7,"decode_worker_id":3},"token_ids":[1,2,3]}}"#,
    // n=2: only the first choice counts, even when only the second has text.
    r#"{"id":"chatcmpl-n","object":"chat.completion.chunk","created":1718000000,"model":"m","choices":[{"index":0,"delta":{"content":"first"}},{"index":1,"delta":{"content":"second"}}]}"#,
    r#"{"id":"chatcmpl-n","object":"chat.completion.chunk","created":1718000000,"model":"m","choices":[{"index":0,"delta":{"content":null}},{"index":1,"delta":{"content":"second"}}]}"#,
    // Python json.dumps spacing and pretty-printing, ensure_ascii escapes.
    r#"{"id": "cmpl-py", "object": "chat.completion.chunk", "created": 1718000000, "model": "mock", "choices": [{"index": 0, "delta": {"content": "\u4f60\u597d \ud83d\ude00 \/ \t \u0000"}, "finish_reason": null}]}"#,
    "{\n  \"choices\": [\n    {\n      \"index\": 0,\n      \"delta\": {\n        \"content\": \"pretty\"\n      }\n    }\n  ]\n}\n",
    "\r\n {\"choices\":[{\"delta\":{\"content\":\"spaced\"}}]} \t",
    // Whole bodies
    r#"{"id":"chatcmpl-9","object":"chat.completion","created":1718000000,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"The answer is 42.","reasoning_content":"Compute.","tool_calls":[]},"logprobs":null,"finish_reason":"stop","stop_reason":null}],"usage":{"prompt_tokens":14,"total_tokens":34,"completion_tokens":20,"prompt_tokens_details":null},"prompt_logprobs":null}"#,
    r#"{"id":"chatcmpl-9","object":"chat.completion","created":1718000000,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"no usage here"},"finish_reason":"stop"}]}"#,
    r#"{"choices":[{"index":0,"delta":null,"message":{"content":"message after null delta"}}]}"#,
    r#"{"choices":[{"index":0,"delta":{"content":"delta wins"},"message":{"content":"not this"}}]}"#,
    r#"{"choices":null}"#,
    r#"{}"#,
    // Errors
    r#"{"error":{"message":"The model `gpt-5` does not exist.","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#,
    r#"{"object":"error","message":"This model's maximum context length is 8192 tokens. However, you requested 9000 tokens.","type":"BadRequestError","param":null,"code":400}"#,
    r#"{"error":{"object":"error","message":"Internal server error","type":"InternalServerError","param":null,"code":500}}"#,
    r#"{"error":"Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096","error_type":"validation"}"#,
    r#"{"error":{"code":503}}"#,
    r#"{"error":null,"choices":[{"delta":{"content":"null error is no error"}}]}"#,
    r#"{"object":"error"}"#,
    // Done markers
    "[DONE]",
    " [DONE]\n",
    // Malformed or unexpected
    "",
    "   ",
    "[DONE",
    "data: {\"choices\":[]}",
    "[1,2]",
    "\"string\"",
    "null",
    r#"{"choices":[{"delta":{"content":"cut"#,
    r#"{"choices":[{"delta":{"content":"x"}}]} trailing"#,
    r#"{"choices":[{"delta":{"content":"x"}}],}"#,
    r#"{"choices":[{"delta":{"content":7}}]}"#,
    r#"{"choices":[{"delta":{"content":["part"]}}]}"#,
    r#"{"choices":[{"delta":"text"}]}"#,
    r#"{"choices":{"delta":{}}}"#,
    r#"{"choices":[[{"content":"seq-shaped choice"}]]}"#,
    r#"{"choices":[{"delta":{"content":"a","content":"b"}}]}"#,
    r#"{"choices":[],"choices":[]}"#,
    r#"{"choices":[{"delta":{"cont\u0065nt":"escaped key"}}]}"#,
    r#"{"choices":[{"delta":{"content":"\ud800 lone"}}]}"#,
    r#"{"choices":[{"delta":{"content":"\udc00 lone"}}]}"#,
    r#"{"choices":[{"delta":{"content":"ok","reasoning":"\ud800"}}]}"#,
    r#"{"choices":[{"delta":{"reasoning_content":"used","reasoning":"\ud800"}}]}"#,
    r#"{"choices":[{"delta":{"content":"bad \x escape"}}]}"#,
    r#"{"choices":[{"delta":{"content":"ok"}}],"n":01}"#,
    r#"{"choices":[{"delta":{"content":"ok"}}],"n":-}"#,
    r#"{"choices":[{"delta":{"content":"ok"}}],"n":1.5e}"#,
    r#"{"choices":[{"delta":{"content":"ok"}}],"n":NaN}"#,
    r#"{"choices":[{"delta":{"content":"ok"}}],"n":nul}"#,
    r#"{"choices":[{"delta":{"content":"ok"}}],"x":"\q"}"#,
    r#"{"choices":[{"delta":{"content":"ok"}}],"x":"\u12"}"#,
    r#"{"choices":[{"delta":{"content":"ok"}}],"usage":{"prompt_tokens":-1}}"#,
    r#"{"choices":[{"delta":{"content":"ok"}}],"usage":{"prompt_tokens":1.5}}"#,
    r#"{"choices":[{"delta":{"content":"ok"}}],"usage":7}"#,
    r#"{"choices":[{"delta":{"content":"ok"}}],"object":5}"#,
    r#"{"choices":[{"delta":{"content":"ok"}}],"message":5}"#,
    r#"{"choices":[{"delta":{"content":"ok"}}],"x":"skipped \ud800 lone surrogate"}"#,
];

/// Completions chunks and bodies.
const COMPLETIONS: &[&str] = &[
    r#"{"id":"cmpl-1","object":"text_completion","created":1718000000,"model":"gpt2","choices":[{"index":0,"text":" there","logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":null}"#,
    r#"{"id":"cmpl-1","object":"text_completion","created":1718000000,"model":"gpt2","choices":[{"index":0,"text":" was a \"ca\u00f1on\"\n","logprobs":{"text_offset":[0],"token_logprobs":[-0.25],"tokens":[" was"],"top_logprobs":[{" was":-0.25}]},"finish_reason":"length","stop_reason":null}],"usage":null}"#,
    r#"{"id":"cmpl-1","object":"text_completion","created":1718000000,"model":"gpt2","choices":[],"usage":{"prompt_tokens":4,"total_tokens":20,"completion_tokens":16}}"#,
    r#"{"id":"","object":"text_completion","created":1718000000,"model":"bigcode/starcoder","system_fingerprint":"2.4.0-native","choices":[{"index":0,"text":"def f():\n\treturn 1","logprobs":null,"finish_reason":""}]}"#,
    r#"{"id":"cmpl-2","object":"text_completion","created":1718000000,"model":"m","choices":[{"index":0,"text":"","logprobs":null,"finish_reason":"stop"}]}"#,
    r#"{"id":"cmpl-3","object":"text_completion","created":1718000000,"model":"m","choices":[{"index":0,"text":"whole body","logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#,
    r#"{"choices":[{"text":"a","text":"b"}]}"#,
    r#"{"choices":[{"text":null}]}"#,
    r#"{"choices":[{"text":5}]}"#,
];

/// Embeddings bodies.
const EMBEDDINGS: &[&str] = &[
    r#"{"object":"list","data":[{"object":"embedding","embedding":[0.0123,-0.25,1e-3],"index":0}],"model":"nvidia/nv-embedqa-e5-v5","usage":{"prompt_tokens":8,"total_tokens":8}}"#,
    r#"{"object":"list","data":[{"object":"embedding","embedding":"AACAPwAAAEA=","index":0}],"model":"m","usage":{"prompt_tokens":2,"total_tokens":2}}"#,
    r#"{"object":"list","data":[{"embedding":[]}],"usage":null}"#,
    r#"{"error":{"message":"Input length exceeds 512 tokens","type":"BadRequestError","code":400}}"#,
    r#"{"data":[{"embedding":[1,]}]}"#,
    r#"{"data":[{"embedding":true}]}"#,
];

fn ctx(streaming: bool) -> EndpointContext {
    EndpointContext {
        model: "m".into(),
        streaming,
        ..EndpointContext::default()
    }
}

/// What both endpoints read from one response.
struct Agreed {
    result: Result<ParsedChunk, ParseError>,
    text: ResponseText,
}

/// Parses `data` with both endpoints, from the same non-empty text, and checks they agree.
/// Returns the agreed result for further checks.
fn assert_same(builtin: &dyn Endpoint, plugin: &dyn Endpoint, data: &[u8]) -> Agreed {
    let start = ResponseText {
        content: "earlier ".into(),
        reasoning: "thoughts ".into(),
    };
    let (mut builtin_text, mut plugin_text) = (start.clone(), start.clone());
    let expected = builtin.parse_response(data, &mut builtin_text);
    let actual = plugin.parse_response(data, &mut plugin_text);
    let shown = String::from_utf8_lossy(data);
    match (&expected, &actual) {
        (Ok(e), Ok(a)) => assert_eq!(e, a, "parsed chunk differs for {shown:?}"),
        (Err(e), Err(a)) => {
            if e.message.starts_with("the server returned an error") {
                assert_eq!(e, a, "server error differs for {shown:?}");
            }
        }
        _ => panic!("builtin {expected:?} but plugin {actual:?} for {shown:?}"),
    }
    assert_eq!(builtin_text, plugin_text, "text differs for {shown:?}");
    if expected.is_err() {
        assert_eq!(
            builtin_text, start,
            "an error must append nothing: {shown:?}"
        );
    }
    Agreed {
        result: expected,
        text: builtin_text,
    }
}

struct Pair {
    builtin: Box<dyn Endpoint>,
    plugin: Box<dyn Endpoint>,
}

fn pairs() -> [Pair; 3] {
    [
        Pair {
            builtin: Box::new(ChatEndpoint::create(&ctx(true)).unwrap()),
            plugin: Box::new(OptimizedChatEndpoint::create(&ctx(true)).unwrap()),
        },
        Pair {
            builtin: Box::new(CompletionsEndpoint::create(&ctx(true)).unwrap()),
            plugin: Box::new(OptimizedCompletionsEndpoint::create(&ctx(true)).unwrap()),
        },
        Pair {
            builtin: Box::new(EmbeddingsEndpoint::create(&ctx(false)).unwrap()),
            plugin: Box::new(OptimizedEmbeddingsEndpoint::create(&ctx(false)).unwrap()),
        },
    ]
}

fn corpus() -> impl Iterator<Item = &'static str> {
    CHAT.iter().chain(COMPLETIONS).chain(EMBEDDINGS).copied()
}

#[test]
fn every_corpus_response_reads_the_same_with_every_endpoint_pair() {
    let mut outcomes = [0usize; 2];
    for pair in pairs() {
        for data in corpus() {
            let agreed = assert_same(&*pair.builtin, &*pair.plugin, data.as_bytes());
            outcomes[usize::from(agreed.result.is_ok())] += 1;
        }
    }
    // The corpus exercises both successes and failures.
    assert!(outcomes[0] > 50 && outcomes[1] > 50, "{outcomes:?}");
}

#[test]
fn the_corpus_reads_as_expected() {
    let [chat, completions, _] = pairs();
    let text_of = |pair: &Pair, data: &str| {
        let agreed = assert_same(&*pair.builtin, &*pair.plugin, data.as_bytes());
        (agreed.result.unwrap(), agreed.text)
    };
    let (parsed, text) = text_of(&chat, CHAT[2]);
    assert!(parsed.has_content);
    assert_eq!(text.content, "earlier .\n\n**Note**: \"quoted\" \\ back");
    let (parsed, text) = text_of(&chat, CHAT[8]);
    assert!(parsed.has_reasoning);
    assert_eq!(text.reasoning, "thoughts  hmm");
    let (_, text) = text_of(&chat, CHAT[23]);
    assert_eq!(text.content, "earlier 你好 😀 / \t \0");
    let (parsed, _) = text_of(&chat, CHAT[10]);
    assert_eq!(parsed.usage.unwrap().reasoning_tokens, Some(250));
    let (parsed, text) = text_of(&completions, COMPLETIONS[3]);
    assert!(parsed.has_content);
    assert_eq!(text.content, "earlier def f():\n\treturn 1");
}

#[test]
fn every_truncation_reads_the_same() {
    for pair in pairs() {
        for data in corpus() {
            let bytes = data.as_bytes();
            for end in 0..bytes.len() {
                assert_same(&*pair.builtin, &*pair.plugin, &bytes[..end]);
            }
        }
    }
}

#[test]
fn invalid_utf8_reads_the_same() {
    let [chat, completions, _] = pairs();
    for data in [
        &b"{\"choices\":[{\"delta\":{\"content\":\"a\xff\"}}]}"[..],
        b"{\"choices\":[{\"delta\":{\"content\":\"a\\n\xc3\"}}]}",
        b"{\"choices\":[{\"delta\":{\"co\xffntent\":\"a\"}}]}",
        b"{\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"x\":\"\xff skipped\"}",
        b"{\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"\xff\":1}",
        b"{\"choices\":[{\"text\":\"\xe2\x82\"}]}",
        b"{\"object\":\"\xc3chat.completion.chunk\",\"choices\":[]}",
    ] {
        assert_same(&*chat.builtin, &*chat.plugin, data);
        assert_same(&*completions.builtin, &*completions.plugin, data);
    }
}

/// Bytes that change the structure of JSON when inserted or substituted.
const EDITS: &[u8] = b"\"{}[],:\\ nu0e-.9tfl\x01\xc3\xff";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_edits_of_real_chunks_read_the_same(
        index in 0..CHAT.len() + COMPLETIONS.len(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0..3u8, prop::sample::select(EDITS)), 1..4),
    ) {
        let source = CHAT.iter().chain(COMPLETIONS).nth(index).unwrap();
        let mut data = source.as_bytes().to_vec();
        for (at, kind, byte) in edits {
            let at = at.index(data.len() + 1);
            match kind {
                0 => data.insert(at, byte),
                1 if at < data.len() => data[at] = byte,
                _ if at < data.len() => { data.remove(at); }
                _ => data.push(byte),
            }
        }
        let [chat, completions, _] = pairs();
        assert_same(&*chat.builtin, &*chat.plugin, &data);
        assert_same(&*completions.builtin, &*completions.plugin, &data);
    }
}

/// A field of a generated chunk: absent, `null`, or a string.
fn optional_text() -> impl Strategy<Value = Option<Option<String>>> {
    prop_oneof![
        Just(None),
        Just(Some(None)),
        any::<String>().prop_map(|s| Some(Some(s))),
        Just(Some(Some(String::new()))),
    ]
}

fn insert_text(map: &mut Map<String, Value>, key: &str, value: Option<Option<String>>) {
    if let Some(value) = value {
        map.insert(key.into(), value.map_or(Value::Null, Value::String));
    }
}

proptest! {
    #[test]
    fn random_chat_chunks_read_the_same_and_round_trip(
        content in optional_text(),
        reasoning_content in optional_text(),
        reasoning in optional_text(),
        in_message in any::<bool>(),
        with_usage in any::<bool>(),
        pretty in any::<bool>(),
        noise in any::<String>(),
    ) {
        let mut message = Map::new();
        insert_text(&mut message, "content", content.clone());
        insert_text(&mut message, "reasoning_content", reasoning_content.clone());
        insert_text(&mut message, "reasoning", reasoning.clone());
        message.insert("role".into(), json!("assistant"));
        let mut chunk = json!({
            "id": noise,
            "object": "chat.completion.chunk",
            "created": 1718000000,
            "choices": [{"index": 0, (if in_message { "message" } else { "delta" }): message, "finish_reason": null}],
            "usage": null,
        });
        if with_usage {
            chunk["usage"] = json!({"prompt_tokens": 3, "completion_tokens": 5});
        }
        let data = if pretty { serde_json::to_vec_pretty(&chunk) } else { serde_json::to_vec(&chunk) }.unwrap();
        let [chat, ..] = pairs();
        let Agreed { result, text } = assert_same(&*chat.builtin, &*chat.plugin, &data);
        let parsed = result.unwrap();
        let content = content.flatten().unwrap_or_default();
        let reasoning = reasoning_content.flatten().filter(|r| !r.is_empty()).or(reasoning.flatten()).unwrap_or_default();
        prop_assert_eq!(text.content, format!("earlier {content}"));
        prop_assert_eq!(text.reasoning, format!("thoughts {reasoning}"));
        prop_assert_eq!(parsed.has_content, !content.is_empty());
        prop_assert_eq!(parsed.has_reasoning, !reasoning.is_empty());
        prop_assert_eq!(parsed.usage.is_some(), with_usage);
    }

    #[test]
    fn random_completions_text_reads_the_same_and_round_trips(text in any::<String>(), pretty in any::<bool>()) {
        let chunk = json!({"object": "text_completion", "choices": [{"index": 0, "text": text, "logprobs": null}], "usage": null});
        let data = if pretty { serde_json::to_vec_pretty(&chunk) } else { serde_json::to_vec(&chunk) }.unwrap();
        let [_, completions, _] = pairs();
        let Agreed { result, text: read } = assert_same(&*completions.builtin, &*completions.plugin, &data);
        prop_assert_eq!(result.unwrap().has_content, !text.is_empty());
        prop_assert_eq!(read.content, format!("earlier {text}"));
    }
}

/// The builtin's payload with what the plugin adds: `nvext` when an output length is set, merged
/// into a user `nvext` object whose own fields win.
fn expected_payload(builtin: &Value, extra: &Map<String, Value>, max: Option<u32>) -> Value {
    let mut expected = builtin.clone();
    if let Some(n) = max {
        let mut nvext = match extra.get("nvext") {
            None => Map::new(),
            Some(Value::Object(user)) => user.clone(),
            Some(_) => return expected,
        };
        nvext.entry("ignore_eos").or_insert(json!(true));
        nvext.entry("min_tokens").or_insert(json!(n));
        expected["nvext"] = Value::Object(nvext);
    }
    expected
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::System), Just(Role::User), Just(Role::Assistant)]
}

fn extra_inputs() -> impl Strategy<Value = Map<String, Value>> {
    let entry = prop_oneof![
        Just(("temperature".to_owned(), json!(0.7))),
        Just(("nvext".to_owned(), json!({"top_k": 1}))),
        Just((
            "nvext".to_owned(),
            json!({"min_tokens": 1, "ignore_eos": false})
        )),
        Just(("nvext".to_owned(), json!(null))),
        Just(("max_tokens".to_owned(), json!(9))),
        Just(("max_completion_tokens".to_owned(), json!(9))),
        Just(("stream_options".to_owned(), json!({"include_usage": false}))),
        Just(("model".to_owned(), json!("override"))),
        Just(("input_type".to_owned(), json!("query"))),
        any::<String>().prop_map(|s| (s.clone(), json!(s))),
    ];
    prop::collection::vec(entry, 0..4).prop_map(|entries| entries.into_iter().collect())
}

proptest! {
    #[test]
    fn payloads_are_the_builtins_plus_nvext(
        messages in prop::collection::vec((role(), any::<String>()), 0..4),
        max in prop::option::of(0..100_000u32),
        streaming in any::<bool>(),
        use_legacy_max_tokens in any::<bool>(),
        model in any::<String>(),
        extra in extra_inputs(),
    ) {
        let input = RequestInput {
            messages: messages.into_iter().map(|(role, content)| Message { role, content }).collect(),
            max_output_tokens: max,
        };
        let ctx = EndpointContext { model, streaming, extra_inputs: extra.clone(), custom_path: None, use_legacy_max_tokens };
        let parse = |bytes: bytes::Bytes| serde_json::from_slice::<Value>(&bytes).unwrap();

        let builtin = parse(ChatEndpoint::create(&ctx).unwrap().format_payload(&input));
        let plugin = parse(OptimizedChatEndpoint::create(&ctx).unwrap().format_payload(&input));
        prop_assert_eq!(plugin, expected_payload(&builtin, &extra, max));

        let builtin = parse(CompletionsEndpoint::create(&ctx).unwrap().format_payload(&input));
        let plugin = parse(OptimizedCompletionsEndpoint::create(&ctx).unwrap().format_payload(&input));
        prop_assert_eq!(plugin, expected_payload(&builtin, &extra, max));

        let ctx = EndpointContext { streaming: false, ..ctx };
        let builtin = parse(EmbeddingsEndpoint::create(&ctx).unwrap().format_payload(&input));
        let plugin = parse(OptimizedEmbeddingsEndpoint::create(&ctx).unwrap().format_payload(&input));
        prop_assert_eq!(plugin, builtin);
    }
}
