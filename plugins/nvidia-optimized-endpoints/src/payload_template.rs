//! The cheaper per-request path for payloads: everything that does not change between requests
//! (model, stream, stream_options, the extra inputs) is serialized once, when the endpoint is
//! created, into a prefix; each request then only appends its own fields (messages or prompt or
//! input, the output length, `nvext`) into one buffer sized up front.
//!
//! Extra inputs replace the endpoint's own fields of the same name, as with the builtins: a
//! per-request field that an extra input sets is not written per request at all.

use aiperf_core::endpoint::EndpointContext;
use bytes::Bytes;
use serde_json::{Map, Value};

use crate::nvext::Nvext;

/// The fields an endpoint's payload has besides the constant ones.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PayloadShape {
    /// The key of the per-request content (`messages`, `prompt`, `input`).
    pub(crate) content_key: &'static str,
    /// The key of the output length (`max_completion_tokens`, `max_tokens`), if any.
    pub(crate) length_key: Option<&'static str>,
    /// Whether the payload has `stream` (and `stream_options` when streaming).
    pub(crate) streams: bool,
    /// Whether to send NIM's `nvext` so the output length is exact.
    pub(crate) nvext: bool,
}

/// A payload with its constant part serialized once.
#[derive(Debug, Clone)]
pub(crate) struct PayloadTemplate {
    /// `{` and the constant fields, without the closing brace.
    prefix: Vec<u8>,
    /// Whether `prefix` holds a field, so the next one needs a comma.
    prefix_has_fields: bool,
    /// The content key, unless an extra input replaces it.
    content_key: Option<&'static str>,
    /// The output length key, unless absent or replaced by an extra input.
    length_key: Option<&'static str>,
    /// How `nvext` is written, unless not applicable or replaced by an extra input.
    nvext: Option<Nvext>,
}

impl PayloadTemplate {
    /// Serializes the constant part of `shape`'s payload for the choices in `ctx`.
    pub(crate) fn new(ctx: &EndpointContext, shape: PayloadShape) -> Self {
        let mut extra = ctx.extra_inputs.clone();
        let nvext = if shape.nvext {
            Nvext::take_from(&mut extra)
        } else {
            None
        };
        let content_key = Some(shape.content_key).filter(|key| !extra.contains_key(*key));
        let length_key = shape.length_key.filter(|key| !extra.contains_key(*key));

        let mut constant = Map::new();
        constant.insert("model".to_owned(), Value::from(ctx.model.as_str()));
        if shape.streams {
            constant.insert("stream".to_owned(), Value::from(ctx.streaming));
            if ctx.streaming {
                let mut options = Map::new();
                options.insert("include_usage".to_owned(), Value::from(true));
                constant.insert("stream_options".to_owned(), Value::Object(options));
            }
        }
        constant.extend(extra);
        let mut prefix = serde_json::to_vec(&constant).expect("a JSON map always serializes");
        // Drop the closing brace: the per-request fields follow.
        prefix.pop();
        Self {
            prefix,
            prefix_has_fields: !constant.is_empty(),
            content_key,
            length_key,
            nvext,
        }
    }

    /// Writes the body of one request: the prefix, then `content` under the content key
    /// (`content_len` is about how many bytes it writes), the output length and `nvext`.
    pub(crate) fn write(
        &self,
        content_len: usize,
        max_output_tokens: Option<u32>,
        content: impl FnOnce(&mut Vec<u8>),
    ) -> Bytes {
        let nvext_len = self.nvext.as_ref().map_or(0, Nvext::size_hint);
        let capacity = self.prefix.len() + content_len + content_len / 16 + nvext_len + 96;
        let mut out = Vec::with_capacity(capacity);
        out.extend_from_slice(&self.prefix);
        let mut fields = FieldWriter {
            out: &mut out,
            has_fields: self.prefix_has_fields,
        };
        if let Some(key) = self.content_key {
            content(fields.key(key));
        }
        if let (Some(key), Some(n)) = (self.length_key, max_output_tokens) {
            write_u32(fields.key(key), n);
        }
        if let Some(nvext) = &self.nvext {
            nvext.write(&mut fields, max_output_tokens);
        }
        out.push(b'}');
        Bytes::from(out)
    }
}

/// Appends fields to an open JSON object.
pub(crate) struct FieldWriter<'a> {
    out: &'a mut Vec<u8>,
    has_fields: bool,
}

impl FieldWriter<'_> {
    /// Writes `"key":` (after a comma when needed) and returns the buffer for the value.
    /// `key` must need no escaping.
    pub(crate) fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if self.has_fields {
            self.out.push(b',');
        }
        self.has_fields = true;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }
}

/// Appends `n` in decimal, without going through `fmt`.
pub(crate) fn write_u32(out: &mut Vec<u8>, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut start = digits.len();
    loop {
        start -= 1;
        // `n % 10` is below 10: the cast keeps it exactly.
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const CHAT: PayloadShape = PayloadShape {
        content_key: "messages",
        length_key: Some("max_completion_tokens"),
        streams: true,
        nvext: true,
    };

    fn body(ctx: &EndpointContext, shape: PayloadShape, max: Option<u32>) -> Value {
        let template = PayloadTemplate::new(ctx, shape);
        let bytes = template.write(4, max, |out| out.extend_from_slice(b"[]"));
        serde_json::from_slice(&bytes).unwrap()
    }

    fn ctx(streaming: bool, extra: Value) -> EndpointContext {
        let Value::Object(extra_inputs) = extra else {
            panic!("extra inputs must be an object")
        };
        EndpointContext {
            model: "m".into(),
            streaming,
            extra_inputs,
            custom_path: None,
            use_legacy_max_tokens: false,
        }
    }

    #[test]
    fn u32_is_written_in_decimal() {
        for n in [0, 7, 10, 128, 4096, u32::MAX] {
            let mut out = Vec::new();
            write_u32(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    #[test]
    fn nvext_makes_the_length_exact_when_a_length_is_asked_for() {
        assert_eq!(
            body(&ctx(true, json!({})), CHAT, Some(64)),
            json!({
                "model": "m", "stream": true, "stream_options": {"include_usage": true},
                "messages": [], "max_completion_tokens": 64,
                "nvext": {"ignore_eos": true, "min_tokens": 64},
            })
        );
        assert_eq!(
            body(&ctx(false, json!({})), CHAT, None),
            json!({"model": "m", "stream": false, "messages": []})
        );
    }

    #[test]
    fn a_user_nvext_object_is_merged_into_and_its_fields_win() {
        let user = ctx(false, json!({"nvext": {"top_k": 1, "ignore_eos": false}}));
        assert_eq!(
            body(&user, CHAT, Some(8))["nvext"],
            json!({"top_k": 1, "ignore_eos": false, "min_tokens": 8})
        );
        assert_eq!(
            body(&user, CHAT, None)["nvext"],
            json!({"top_k": 1, "ignore_eos": false})
        );
        let empty = ctx(false, json!({"nvext": {}}));
        assert_eq!(body(&empty, CHAT, None)["nvext"], json!({}));
        assert_eq!(
            body(&empty, CHAT, Some(2))["nvext"],
            json!({"ignore_eos": true, "min_tokens": 2})
        );
    }

    #[test]
    fn extra_inputs_replace_per_request_fields() {
        let replaced = ctx(
            false,
            json!({"nvext": null, "messages": ["fixed"], "max_completion_tokens": 1, "model": "x"}),
        );
        let body = body(&replaced, CHAT, Some(8));
        assert_eq!(
            body,
            json!({"model": "x", "stream": false, "messages": ["fixed"], "max_completion_tokens": 1, "nvext": null})
        );
    }

    #[test]
    fn shapes_without_streaming_or_nvext_write_neither() {
        let shape = PayloadShape {
            content_key: "input",
            length_key: None,
            streams: false,
            nvext: false,
        };
        assert_eq!(
            body(&ctx(false, json!({"nvext": {"a": 1}})), shape, Some(3)),
            json!({"model": "m", "input": [], "nvext": {"a": 1}})
        );
    }
}
