//! Builtin (`aiperf-endpoints`) versus plugin endpoints on the two paths a benchmark run takes
//! per request and per chunk: formatting a chat payload with a ~550-token prompt, and parsing
//! a typical streamed chat chunk.
//!
//! `cargo bench -p nvidia-optimized-endpoints --bench endpoints`

use std::hint::black_box;

use aiperf_core::endpoint::{Endpoint, EndpointContext, Message, RequestInput, ResponseText, Role};
use aiperf_endpoints::ChatEndpoint;
use criterion::{Criterion, criterion_main};
use nvidia_optimized_endpoints::OptimizedChatEndpoint;

/// About 550 tokens of ordinary English with the usual escapes (quotes, newlines).
fn prompt() -> String {
    let paragraph = "The quick brown fox, having \"jumped\" over the lazy dog, paused to consider \
        whether the experiment had been designed with enough statistical power. It decided that \
        latency percentiles, unlike averages, reveal the tail behaviour users actually feel.\n";
    // Each paragraph is about 45 tokens.
    paragraph.repeat(12)
}

fn context() -> EndpointContext {
    EndpointContext {
        model: "meta/llama-3.1-8b-instruct".into(),
        streaming: true,
        extra_inputs: serde_json::json!({"temperature": 0.0, "top_p": 1.0})
            .as_object()
            .expect("an object literal")
            .clone(),
        custom_path: None,
        use_legacy_max_tokens: false,
    }
}

fn chat_payload(c: &mut Criterion) {
    let ctx = context();
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
    let builtin = ChatEndpoint::create(&ctx).expect("builtin chat");
    let plugin = OptimizedChatEndpoint::create(&ctx).expect("plugin chat");
    let mut group = c.benchmark_group("chat_payload_550_tokens");
    group.bench_function("builtin", |b| {
        b.iter(|| builtin.format_payload(black_box(&input)))
    });
    group.bench_function("plugin", |b| {
        b.iter(|| plugin.format_payload(black_box(&input)))
    });
    group.finish();
}

fn chat_chunk_parse(c: &mut Criterion) {
    let ctx = context();
    let chunk: &[u8] = br#"{"id":"chatcmpl-7d1c4c4e2a8b4f0e9a3f5b6c7d8e9f01","object":"chat.completion.chunk","created":1718000000,"model":"meta/llama-3.1-8b-instruct","choices":[{"index":0,"delta":{"content":" latency"},"logprobs":null,"finish_reason":null}],"usage":null}"#;
    let builtin = ChatEndpoint::create(&ctx).expect("builtin chat");
    let plugin = OptimizedChatEndpoint::create(&ctx).expect("plugin chat");
    let mut group = c.benchmark_group("chat_chunk_parse");
    for (name, endpoint) in [
        ("builtin", &builtin as &dyn Endpoint),
        ("plugin", &plugin as &dyn Endpoint),
    ] {
        let mut text = ResponseText::default();
        group.bench_function(name, |b| {
            b.iter(|| {
                text.content.clear();
                endpoint
                    .parse_response(black_box(chunk), &mut text)
                    .expect("a valid chunk")
            })
        });
    }
    group.finish();
}

/// The benchmark groups, in a private module: `criterion_group!` writes an undocumented `pub fn`.
mod groups {
    use super::{chat_chunk_parse, chat_payload};

    criterion::criterion_group!(benches, chat_payload, chat_chunk_parse);
}

criterion_main!(groups::benches);
