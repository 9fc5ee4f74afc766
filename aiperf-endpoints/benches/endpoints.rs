//! The builtin endpoints on the two paths a benchmark run takes (DESIGN.md §4): formatting a
//! payload once per request (chat and completions, a ~550-token prompt), and parsing a response
//! once per received chunk (a streamed chat or completions chunk, the usage chunk, `[DONE]`, a
//! whole chat body, an embeddings body). The plugin's own bench compares it with these.
//!
//! `cargo bench -p aiperf-endpoints --bench endpoints`

use std::hint::black_box;

use aiperf_core::endpoint::{Endpoint, EndpointContext, Message, RequestInput, ResponseText, Role};
use aiperf_endpoints::{ChatEndpoint, CompletionsEndpoint, EmbeddingsEndpoint};
use criterion::{Criterion, criterion_main};

/// About 550 tokens of ordinary English with the usual escapes (quotes, newlines).
fn prompt() -> String {
    let paragraph = "The quick brown fox, having \"jumped\" over the lazy dog, paused to consider \
        whether the experiment had been designed with enough statistical power. It decided that \
        latency percentiles, unlike averages, reveal the tail behaviour users actually feel.\n";
    paragraph.repeat(12)
}

fn context(streaming: bool) -> EndpointContext {
    EndpointContext {
        model: "meta/llama-3.1-8b-instruct".into(),
        streaming,
        ..EndpointContext::default()
    }
}

fn format_payload(c: &mut Criterion) {
    let ctx = context(true);
    let input = RequestInput {
        messages: vec![
            Message {
                role: Role::System,
                content: "You are a helpful assistant.".into(),
            },
            Message::user(prompt()),
        ],
        max_output_tokens: Some(256),
    };
    let chat = ChatEndpoint::create(&ctx).expect("chat");
    let completions = CompletionsEndpoint::create(&ctx).expect("completions");
    let mut group = c.benchmark_group("format_payload_550_tokens");
    group.bench_function("chat", |b| {
        b.iter(|| chat.format_payload(black_box(&input)))
    });
    group.bench_function("completions", |b| {
        b.iter(|| completions.format_payload(black_box(&input)))
    });
    group.finish();
}

fn parse_response(c: &mut Criterion) {
    let chat_chunk: &[u8] = br#"{"id":"chatcmpl-7d1c4c4e2a8b4f0e9a3f5b6c7d8e9f01","object":"chat.completion.chunk","created":1718000000,"model":"meta/llama-3.1-8b-instruct","choices":[{"index":0,"delta":{"content":" latency"},"logprobs":null,"finish_reason":null}],"usage":null}"#;
    let usage_chunk: &[u8] = br#"{"id":"chatcmpl-7d1c4c4e2a8b4f0e9a3f5b6c7d8e9f01","object":"chat.completion.chunk","created":1718000000,"model":"meta/llama-3.1-8b-instruct","choices":[],"usage":{"prompt_tokens":550,"completion_tokens":64,"total_tokens":614}}"#;
    let completions_chunk: &[u8] = br#"{"id":"cmpl-7d1c4c4e2a8b4f0e9a3f5b6c7d8e9f01","object":"text_completion","created":1718000000,"model":"meta/llama-3.1-8b-instruct","choices":[{"index":0,"text":" latency","logprobs":null,"finish_reason":null}],"usage":null}"#;
    let answer = " word".repeat(64);
    let chat_body = format!(
        r#"{{"id":"chatcmpl-1","object":"chat.completion","created":1718000000,"model":"meta/llama-3.1-8b-instruct","choices":[{{"index":0,"message":{{"role":"assistant","content":"{answer}"}},"logprobs":null,"finish_reason":"length"}}],"usage":{{"prompt_tokens":550,"completion_tokens":64,"total_tokens":614}}}}"#
    );
    let embedding: Vec<String> = (0..1024)
        .map(|i| format!("{:.6}", (i as f64).sin()))
        .collect();
    let embeddings_body = format!(
        r#"{{"object":"list","data":[{{"object":"embedding","embedding":[{}],"index":0}}],"model":"m","usage":{{"prompt_tokens":550,"total_tokens":550}}}}"#,
        embedding.join(",")
    );

    let chat = ChatEndpoint::create(&context(true)).expect("chat");
    let chat_whole = ChatEndpoint::create(&context(false)).expect("chat");
    let completions = CompletionsEndpoint::create(&context(true)).expect("completions");
    let embeddings = EmbeddingsEndpoint::create(&context(false)).expect("embeddings");
    let cases: [(&str, &dyn Endpoint, &[u8]); 6] = [
        ("chat_chunk", &chat, chat_chunk),
        ("chat_usage_chunk", &chat, usage_chunk),
        ("chat_done", &chat, b"[DONE]"),
        ("completions_chunk", &completions, completions_chunk),
        (
            "chat_whole_body_64_tokens",
            &chat_whole,
            chat_body.as_bytes(),
        ),
        (
            "embeddings_body_1024_floats",
            &embeddings,
            embeddings_body.as_bytes(),
        ),
    ];
    let mut group = c.benchmark_group("parse_response");
    for (name, endpoint, data) in cases {
        let mut text = ResponseText::default();
        endpoint
            .parse_response(data, &mut text)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        group.bench_function(name, |b| {
            b.iter(|| {
                text.content.clear();
                endpoint
                    .parse_response(black_box(data), &mut text)
                    .expect("a valid response")
            })
        });
    }
    group.finish();
}

/// The benchmark groups, in a private module: `criterion_group!` writes an undocumented `pub fn`.
mod groups {
    use super::{format_payload, parse_response};

    criterion::criterion_group!(benches, format_payload, parse_response);
}

criterion_main!(groups::benches);
