//! The request body of the OpenAI-compatible APIs: the endpoint's own fields for one request,
//! then the user's extra inputs (`--extra-inputs`), an extra input replacing an own field of
//! the same name.
//!
//! The body is serialized straight from the request's borrowed messages into one pre-sized
//! buffer: no `serde_json::Value` tree is built per request.

use aiperf_core::endpoint::{Message, Role};
use bytes::Bytes;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

/// The value of one of an endpoint's own payload fields, borrowed from the request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Field<'a> {
    /// A string (`model`, `prompt`).
    Str(&'a str),
    /// A boolean (`stream`).
    Bool(bool),
    /// A count (`max_tokens`).
    Count(u32),
    /// The conversation as `[{"role", "content"}]` (chat `messages`).
    Messages(&'a [Message]),
    /// The contents of the user messages as a list of strings (embeddings `input`).
    UserContents(&'a [Message]),
    /// `{"include_usage": true}` (`stream_options`), so a stream ends with its token counts.
    IncludeUsage,
}

impl Field<'_> {
    /// About how many bytes the field serializes to, to size the buffer once.
    fn size_hint(&self) -> usize {
        match self {
            Field::Str(s) => s.len() + 2,
            Field::Bool(_) | Field::Count(_) => 10,
            Field::Messages(messages) | Field::UserContents(messages) => messages
                .iter()
                .map(|m| m.content.len() + m.content.len() / 16 + 32)
                .sum(),
            Field::IncludeUsage => 24,
        }
    }
}

impl Serialize for Field<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            Field::Str(s) => serializer.serialize_str(s),
            Field::Bool(b) => serializer.serialize_bool(b),
            Field::Count(n) => serializer.serialize_u32(n),
            Field::Messages(messages) => messages.serialize(serializer),
            Field::UserContents(messages) => {
                let users = messages.iter().filter(|m| m.role == Role::User);
                let mut seq = serializer.serialize_seq(None)?;
                for message in users {
                    seq.serialize_element(&message.content)?;
                }
                seq.end()
            }
            Field::IncludeUsage => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("include_usage", &true)?;
                map.end()
            }
        }
    }
}

/// One request body: `own` fields (absent ones are `None`) and the extra inputs.
struct Payload<'a> {
    own: &'a [Option<(&'static str, Field<'a>)>],
    extra: &'a Map<String, Value>,
}

impl Serialize for Payload<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in self.own.iter().flatten() {
            if !self.extra.contains_key(*key) {
                map.serialize_entry(key, value)?;
            }
        }
        for (key, value) in self.extra {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// Serializes a request body from the endpoint's `own` fields and the `extra` inputs, which
/// replace own fields of the same name.
pub(crate) fn write_payload(
    own: &[Option<(&'static str, Field<'_>)>],
    extra: &Map<String, Value>,
) -> Bytes {
    let hint: usize = own
        .iter()
        .flatten()
        .map(|(key, value)| key.len() + 4 + value.size_hint())
        .sum();
    let mut body = Vec::with_capacity(hint + 64);
    serde_json::to_writer(&mut body, &Payload { own, extra })
        .expect("serializing string-keyed JSON into a Vec cannot fail");
    Bytes::from(body)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parsed(own: &[Option<(&'static str, Field<'_>)>], extra: &Map<String, Value>) -> Value {
        serde_json::from_slice(&write_payload(own, extra)).unwrap()
    }

    #[test]
    fn own_fields_are_written_and_absent_ones_skipped() {
        let messages = [
            Message {
                role: Role::System,
                content: "be brief".into(),
            },
            Message::user("say \"hi\"\n"),
        ];
        let own = [
            Some(("model", Field::Str("m"))),
            Some(("messages", Field::Messages(&messages))),
            Some(("input", Field::UserContents(&messages))),
            None,
            Some(("stream_options", Field::IncludeUsage)),
            Some(("max_tokens", Field::Count(7))),
            Some(("stream", Field::Bool(true))),
        ];
        assert_eq!(
            parsed(&own, &Map::new()),
            json!({
                "model": "m",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "say \"hi\"\n"},
                ],
                "input": ["say \"hi\"\n"],
                "stream_options": {"include_usage": true},
                "max_tokens": 7,
                "stream": true,
            })
        );
    }

    #[test]
    fn extra_inputs_are_merged_and_override_own_fields() {
        let extra = json!({"max_tokens": 3, "temperature": 0.5, "nvext": {"top_k": 1}});
        let Value::Object(extra) = extra else {
            unreachable!()
        };
        let own = [
            Some(("model", Field::Str("m"))),
            Some(("max_tokens", Field::Count(100))),
        ];
        let body = write_payload(&own, &extra);
        let text = std::str::from_utf8(&body).unwrap();
        assert_eq!(text.matches("max_tokens").count(), 1, "{text}");
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap(),
            json!({"model": "m", "max_tokens": 3, "temperature": 0.5, "nvext": {"top_k": 1}})
        );
    }
}
