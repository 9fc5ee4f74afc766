//! Writing what an OpenAI-compatible server sends: chat and completions streaming chunks and
//! whole bodies, the usage chunk, embeddings, the models list, and error bodies.
//!
//! The per-chunk functions append straight into the caller's buffer: no serde tree, no
//! formatting machinery. The model name arrives already JSON-escaped (escaped once per request)
//! and answer words are plain ASCII from [`crate::vocabulary::WORDS`], so nothing on the
//! per-chunk path needs escaping.

use bytes::{BufMut, Bytes, BytesMut};

use super::outcome::{FinishReason, splitmix64, unit};
use crate::vocabulary::WORDS;

/// Dimensions of the simulated embedding vectors.
pub const EMBEDDING_DIMENSIONS: usize = 16;

/// The fields every chunk and body of one response repeats.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head<'a> {
    /// The response number (`chatcmpl-N`, `cmpl-N`).
    pub(crate) id: u64,
    /// Unix seconds at arrival.
    pub(crate) created: u64,
    /// The request's model as a JSON string literal.
    pub(crate) model_json: &'a [u8],
}

/// A run of answer words: `count` words of the vocabulary from index `start` (wrapping).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Words {
    pub(crate) start: usize,
    pub(crate) count: u32,
}

impl Words {
    fn write(self, out: &mut BytesMut) {
        let mut index = self.start % WORDS.len();
        for _ in 0..self.count {
            out.extend_from_slice(WORDS[index].as_bytes());
            index += 1;
            if index == WORDS.len() {
                index = 0;
            }
        }
    }
}

/// Token counts for a `usage` object.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Usage {
    pub(crate) prompt_tokens: u64,
    pub(crate) completion_tokens: u64,
}

/// Whether a response is a chat completion or a (text) completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextApi {
    Chat,
    Completion,
}

impl TextApi {
    fn id_prefix(self) -> &'static [u8] {
        match self {
            Self::Chat => b"chatcmpl-",
            Self::Completion => b"cmpl-",
        }
    }

    fn chunk_object(self) -> &'static [u8] {
        match self {
            Self::Chat => b"chat.completion.chunk",
            Self::Completion => b"text_completion",
        }
    }

    fn body_object(self) -> &'static [u8] {
        match self {
            Self::Chat => b"chat.completion",
            Self::Completion => b"text_completion",
        }
    }
}

/// `{"id":"chatcmpl-N","object":"...","created":T,"model":M,` (the shared opening).
fn open(out: &mut BytesMut, api: TextApi, object: &[u8], head: &Head<'_>) {
    out.extend_from_slice(b"{\"id\":\"");
    out.extend_from_slice(api.id_prefix());
    put_u64(out, head.id);
    out.extend_from_slice(b"\",\"object\":\"");
    out.extend_from_slice(object);
    out.extend_from_slice(b"\",\"created\":");
    put_u64(out, head.created);
    out.extend_from_slice(b",\"model\":");
    out.extend_from_slice(head.model_json);
}

fn finish_reason(out: &mut BytesMut, finish: Option<FinishReason>) {
    out.extend_from_slice(b"\"finish_reason\":");
    match finish {
        Some(reason) => {
            out.put_u8(b'"');
            out.extend_from_slice(reason.as_str().as_bytes());
            out.put_u8(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

fn usage(out: &mut BytesMut, usage: Usage) {
    out.extend_from_slice(b"\"usage\":{\"prompt_tokens\":");
    put_u64(out, usage.prompt_tokens);
    out.extend_from_slice(b",\"completion_tokens\":");
    put_u64(out, usage.completion_tokens);
    out.extend_from_slice(b",\"total_tokens\":");
    put_u64(out, usage.prompt_tokens + usage.completion_tokens);
    out.put_u8(b'}');
}

/// One streamed chunk carrying `words`; the first chat chunk also carries the role, the last
/// one the finish reason.
pub(crate) fn text_chunk(
    out: &mut BytesMut,
    api: TextApi,
    head: &Head<'_>,
    words: Words,
    first: bool,
    finish: Option<FinishReason>,
) {
    open(out, api, api.chunk_object(), head);
    out.extend_from_slice(b",\"choices\":[{\"index\":0,");
    match api {
        TextApi::Chat if first => {
            out.extend_from_slice(b"\"delta\":{\"role\":\"assistant\",\"content\":\"");
        }
        TextApi::Chat => out.extend_from_slice(b"\"delta\":{\"content\":\""),
        TextApi::Completion => out.extend_from_slice(b"\"text\":\""),
    }
    words.write(out);
    match api {
        TextApi::Chat => out.extend_from_slice(b"\"},\"logprobs\":null,"),
        TextApi::Completion => out.extend_from_slice(b"\",\"logprobs\":null,"),
    }
    finish_reason(out, finish);
    out.extend_from_slice(b"}]}");
}

/// The usage chunk that ends a stream when `stream_options.include_usage` is set.
pub(crate) fn usage_chunk(out: &mut BytesMut, api: TextApi, head: &Head<'_>, counts: Usage) {
    open(out, api, api.chunk_object(), head);
    out.extend_from_slice(b",\"choices\":[],");
    usage(out, counts);
    out.put_u8(b'}');
}

/// A whole non-streamed chat or completion body, with usage.
pub(crate) fn text_body(
    out: &mut BytesMut,
    api: TextApi,
    head: &Head<'_>,
    words: Words,
    finish: FinishReason,
    counts: Usage,
) {
    open(out, api, api.body_object(), head);
    out.extend_from_slice(b",\"choices\":[{\"index\":0,");
    match api {
        TextApi::Chat => {
            out.extend_from_slice(b"\"message\":{\"role\":\"assistant\",\"content\":\"");
            words.write(out);
            out.extend_from_slice(b"\"},");
        }
        TextApi::Completion => {
            out.extend_from_slice(b"\"text\":\"");
            words.write(out);
            out.extend_from_slice(b"\",");
        }
    }
    out.extend_from_slice(b"\"logprobs\":null,");
    finish_reason(out, Some(finish));
    out.extend_from_slice(b"}],");
    usage(out, counts);
    out.put_u8(b'}');
}

/// An embeddings body: one deterministic unit vector per input fingerprint.
pub(crate) fn embeddings_body(
    out: &mut BytesMut,
    model_json: &[u8],
    inputs: &[u64],
    prompt_tokens: u64,
) {
    out.extend_from_slice(b"{\"object\":\"list\",\"data\":[");
    for (index, fingerprint) in inputs.iter().enumerate() {
        if index > 0 {
            out.put_u8(b',');
        }
        out.extend_from_slice(b"{\"object\":\"embedding\",\"index\":");
        put_u64(out, index as u64);
        out.extend_from_slice(b",\"embedding\":[");
        let vector = embedding(*fingerprint);
        for (dimension, value) in vector.iter().enumerate() {
            if dimension > 0 {
                out.put_u8(b',');
            }
            put_fixed6(out, *value);
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"],\"model\":");
    out.extend_from_slice(model_json);
    out.extend_from_slice(b",\"usage\":{\"prompt_tokens\":");
    put_u64(out, prompt_tokens);
    out.extend_from_slice(b",\"total_tokens\":");
    put_u64(out, prompt_tokens);
    out.extend_from_slice(b"}}");
}

/// The unit vector of an input: the same text always embeds to the same vector.
fn embedding(fingerprint: u64) -> [f64; EMBEDDING_DIMENSIONS] {
    let mut vector = [0.0; EMBEDDING_DIMENSIONS];
    let mut state = fingerprint;
    for value in &mut vector {
        state = splitmix64(state);
        *value = unit(state) * 2.0 - 1.0;
    }
    let norm = vector.iter().map(|v| v * v).sum::<f64>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|v| *v /= norm);
    }
    vector
}

/// The `/v1/models` body listing one model.
pub fn models_body(model: &str, created: u64) -> Bytes {
    let mut out = BytesMut::with_capacity(128 + model.len());
    out.extend_from_slice(b"{\"object\":\"list\",\"data\":[{\"id\":");
    put_json_string(&mut out, model);
    out.extend_from_slice(b",\"object\":\"model\",\"created\":");
    put_u64(&mut out, created);
    out.extend_from_slice(b",\"owned_by\":\"aiperf\"}]}");
    out.freeze()
}

/// An OpenAI-style error body (as vLLM sends it):
/// `{"error":{"message":..,"type":"BadRequestError","param":null,"code":400}}`.
pub fn error_body(status: u16, message: &str) -> Bytes {
    let kind = match status {
        400 => "BadRequestError",
        401 => "AuthenticationError",
        404 => "NotFoundError",
        405 => "MethodNotAllowedError",
        413 => "RequestTooLargeError",
        429 => "RateLimitError",
        500..=599 => "InternalServerError",
        _ => "APIError",
    };
    let mut out = BytesMut::with_capacity(96 + message.len());
    out.extend_from_slice(b"{\"error\":{\"message\":");
    put_json_string(&mut out, message);
    out.extend_from_slice(b",\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"param\":null,\"code\":");
    put_u64(&mut out, u64::from(status));
    out.extend_from_slice(b"}}");
    out.freeze()
}

fn put_json_string(out: &mut BytesMut, text: &str) {
    serde_json::to_writer(out.writer(), text).expect("writing a string to memory cannot fail");
}

fn put_u64(out: &mut BytesMut, value: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Writes `value` (within [-1, 1]) with six decimals, e.g. `-0.031250`.
fn put_fixed6(out: &mut BytesMut, value: f64) {
    let scaled = (value.abs() * 1e6).round() as u64;
    if value < 0.0 && scaled > 0 {
        out.put_u8(b'-');
    }
    put_u64(out, scaled / 1_000_000);
    out.put_u8(b'.');
    let fraction = scaled % 1_000_000;
    let digits = itoa::Buffer::new().format(fraction).len();
    for _ in digits..6 {
        out.put_u8(b'0');
    }
    put_u64(out, fraction);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const HEAD: Head<'static> = Head {
        id: 42,
        created: 1_700_000_000,
        model_json: br#""m\"1""#,
    };

    fn render(write: impl FnOnce(&mut BytesMut)) -> Value {
        let mut out = BytesMut::new();
        write(&mut out);
        serde_json::from_slice(&out)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)))
    }

    #[test]
    fn vocabulary_words_need_no_json_escaping() {
        for word in WORDS {
            assert_eq!(serde_json::to_string(word).unwrap(), format!("\"{word}\""));
        }
    }

    #[test]
    fn chat_chunks_have_openai_shape() {
        let words = Words { start: 0, count: 2 };
        let first = render(|out| text_chunk(out, TextApi::Chat, &HEAD, words, true, None));
        assert_eq!(
            first,
            json!({"id":"chatcmpl-42","object":"chat.completion.chunk","created":1_700_000_000,
                   "model":"m\"1","choices":[{"index":0,"delta":{"role":"assistant",
                   "content":format!("{}{}", WORDS[0], WORDS[1])},"logprobs":null,"finish_reason":null}]})
        );
        let last = render(|out| {
            text_chunk(
                out,
                TextApi::Chat,
                &HEAD,
                words,
                false,
                Some(FinishReason::Stop),
            )
        });
        assert_eq!(last["choices"][0]["finish_reason"], "stop");
        assert!(last["choices"][0]["delta"].get("role").is_none());
        let counts = Usage {
            prompt_tokens: 3,
            completion_tokens: 5,
        };
        let usage = render(|out| usage_chunk(out, TextApi::Chat, &HEAD, counts));
        assert_eq!(usage["choices"], json!([]));
        assert_eq!(
            usage["usage"],
            json!({"prompt_tokens":3,"completion_tokens":5,"total_tokens":8})
        );
    }

    #[test]
    fn completion_chunks_and_bodies_have_openai_shape() {
        let words = Words {
            start: WORDS.len() - 1,
            count: 2,
        };
        let chunk = render(|out| {
            text_chunk(
                out,
                TextApi::Completion,
                &HEAD,
                words,
                true,
                Some(FinishReason::Length),
            )
        });
        assert_eq!(chunk["object"], "text_completion");
        assert_eq!(chunk["id"], "cmpl-42");
        assert_eq!(
            chunk["choices"][0]["text"],
            format!("{}{}", WORDS[WORDS.len() - 1], WORDS[0]),
            "words wrap around the vocabulary"
        );
        assert_eq!(chunk["choices"][0]["finish_reason"], "length");
        let counts = Usage {
            prompt_tokens: 1,
            completion_tokens: 2,
        };
        let body = render(|out| {
            text_body(
                out,
                TextApi::Completion,
                &HEAD,
                words,
                FinishReason::Length,
                counts,
            )
        });
        assert_eq!(body["choices"][0]["text"], chunk["choices"][0]["text"]);
        assert_eq!(body["usage"]["total_tokens"], 3);
    }

    #[test]
    fn chat_body_has_openai_shape() {
        let counts = Usage {
            prompt_tokens: 1,
            completion_tokens: 3,
        };
        let words = Words { start: 5, count: 3 };
        let body =
            render(|out| text_body(out, TextApi::Chat, &HEAD, words, FinishReason::Stop, counts));
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["choices"][0]["message"]["role"], "assistant");
        let content = body["choices"][0]["message"]["content"].as_str().unwrap();
        assert_eq!(content, WORDS[5..8].concat());
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
        assert_eq!(body["usage"]["completion_tokens"], 3);
    }

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let body = render(|out| embeddings_body(out, br#""e""#, &[1, 2, 1], 9));
        let data = body["data"].as_array().unwrap();
        assert_eq!(data.len(), 3);
        let vector = |i: usize| -> Vec<f64> {
            data[i]["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        };
        assert_eq!(vector(0).len(), EMBEDDING_DIMENSIONS);
        assert_eq!(vector(0), vector(2));
        assert_ne!(vector(0), vector(1));
        let norm: f64 = vector(1).iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
        assert_eq!(data[1]["index"], 1);
        assert_eq!(body["model"], "e");
        assert_eq!(body["usage"], json!({"prompt_tokens":9,"total_tokens":9}));
    }

    #[test]
    fn fixed_point_numbers_print_exactly() {
        for (value, text) in [
            (0.5, "0.500000"),
            (-0.031_25, "-0.031250"),
            (1.0, "1.000000"),
            (-0.0000001, "0.000000"),
        ] {
            let mut out = BytesMut::new();
            put_fixed6(&mut out, value);
            assert_eq!(&out[..], text.as_bytes());
        }
    }

    #[test]
    fn models_and_errors_have_openai_shape() {
        let models: Value = serde_json::from_slice(&models_body("x", 5)).unwrap();
        assert_eq!(
            models,
            json!({"object":"list","data":[{"id":"x","object":"model","created":5,"owned_by":"aiperf"}]})
        );
        let error: Value = serde_json::from_slice(&error_body(400, "bad \"thing\"")).unwrap();
        assert_eq!(
            error,
            json!({"error":{"message":"bad \"thing\"","type":"BadRequestError","param":null,"code":400}})
        );
    }
}
