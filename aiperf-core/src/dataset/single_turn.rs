//! The `single_turn` custom dataset (AIPerf's format): one JSON object per line, each line one
//! conversation of one request, sent in file order by default; lines that share a
//! `session_id` are the turns of one conversation, as AIPerf groups them (each sent with the
//! conversation so far).
//!
//! ```text
//! {"text": "What is machine learning?"}
//! {"texts": ["Summarize:", "a long document"], "output_length": 64}
//! {"text": "Who are you?", "timestamp": 1000}
//! {"text": "What is AI?", "delay": 250.5}
//! ```
//!
//! Fields ([`TurnEntry`]): `text` or `texts` (strings, or `{"name", "contents": [..]}` objects;
//! joined with newlines), `output_length` (the `max_tokens` asked for), `timestamp` (ms from
//! the start of the trace, for fixed-schedule replay) or `delay` (ms to wait before sending),
//! `role` (`user`), `session_id` (the conversation's id). Media fields (`image`, `audio`,
//! `video` and their plurals) and per-request `extra` bodies are refused: this build sends text
//! only. Prefix prompts ([`super::PrefixConfig`]) start each conversation's first user
//! message; the system prompt precedes it.
//!
//! The same turn schema serves each turn of a [`super::multi_turn`] line.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use super::custom::{CustomDatasetConfig, count_texts};
use super::jsonl::{self, Fields, LineError};
use super::{Conversation, DatasetError, PrefixPrompts, Turn};
use crate::endpoint::Role;

/// One request as AIPerf's `SingleTurn` schema describes it: a line of a `single_turn` file,
/// or one of the `turns` of a `multi_turn` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnEntry {
    /// The prompt: `text`, or the `texts` joined with newlines.
    pub text: String,
    /// Who speaks (`role`, default `user`).
    pub role: Role,
    /// The output length asked for (`output_length`).
    pub output_length: Option<u32>,
    /// When the request is due from the start of the trace (`timestamp`, ms).
    pub timestamp: Option<Duration>,
    /// The wait before sending (`delay`, ms).
    pub delay: Option<Duration>,
    /// The session id given (`session_id`).
    pub session_id: Option<String>,
}

/// Media and body fields AIPerf accepts that this build refuses.
const MEDIA_FIELDS: &[&str] = &[
    "image",
    "images",
    "image_uuids",
    "audio",
    "audios",
    "video",
    "videos",
];

/// Parses one line of a `single_turn` file.
pub fn parse_line(line: &str) -> Result<TurnEntry, LineError> {
    parse_turn(&Fields::top(&jsonl::parse_object(line)?))
}

/// Reads the turn fields of one object (a line, or one of a line's `turns`).
pub(crate) fn parse_turn(fields: &Fields<'_>) -> Result<TurnEntry, LineError> {
    fields.reject(
        MEDIA_FIELDS,
        "this build sends text only: remove media fields, or give their text in `text`",
    )?;
    fields.reject(
        &["extra"],
        "per-request body fields are not supported: use --extra-inputs for fields every \
         request shares",
    )?;
    let text = match (fields.string("text")?, fields.array("texts")?) {
        (Some(_), Some(_)) => {
            return Err(LineError::Invalid {
                field: fields.path("texts"),
                problem: "cannot be given with `text`: keep one of them".to_owned(),
            });
        }
        (Some(text), None) => text.to_owned(),
        (None, Some(texts)) => join_texts(fields, texts)?,
        (None, None) => {
            return Err(LineError::MissingField {
                field: fields.path("text"),
                hint: "give the prompt in `text` (or a list in `texts`)",
            });
        }
    };
    if text.is_empty() {
        return Err(LineError::Invalid {
            field: fields.path(if fields.has("text") { "text" } else { "texts" }),
            problem: "is empty: give the prompt's text".to_owned(),
        });
    }
    let role = match fields.string("role")? {
        None | Some("user") => Role::User,
        Some("system") => Role::System,
        Some("assistant") => Role::Assistant,
        Some(other) => {
            return Err(LineError::Invalid {
                field: fields.path("role"),
                problem: format!("is `{other}`: use `user` (or `system`, `assistant`)"),
            });
        }
    };
    let timestamp = fields.millis("timestamp")?;
    let delay = fields.millis("delay")?;
    if timestamp.is_some() && delay.is_some() {
        return Err(LineError::Invalid {
            field: fields.path("delay"),
            problem: "cannot be given with `timestamp`: keep one of them".to_owned(),
        });
    }
    Ok(TurnEntry {
        text,
        role,
        output_length: fields.positive_count("output_length")?,
        timestamp,
        delay,
        session_id: fields.string("session_id")?.map(str::to_owned),
    })
}

/// `texts`: strings, or `{"name": .., "contents": [strings]}` objects, joined with newlines.
fn join_texts(fields: &Fields<'_>, texts: &[Value]) -> Result<String, LineError> {
    let mut joined = String::new();
    let mut push = |text: &str| {
        if !joined.is_empty() {
            joined.push('\n');
        }
        joined.push_str(text);
    };
    for (i, item) in texts.iter().enumerate() {
        let path = format!("{}[{i}]", fields.path("texts"));
        match item {
            Value::String(text) => push(text),
            Value::Object(object) => {
                let inner = Fields::nested(object, path.clone());
                let contents = inner.array("contents")?.ok_or(LineError::MissingField {
                    field: inner.path("contents"),
                    hint: "a text object holds its strings in `contents`",
                })?;
                for (j, content) in contents.iter().enumerate() {
                    match content {
                        Value::String(text) => push(text),
                        other => {
                            return Err(LineError::WrongType {
                                field: format!("{path}.contents[{j}]"),
                                expected: "a string",
                                found: jsonl::type_name(other).to_owned(),
                            });
                        }
                    }
                }
            }
            other => {
                return Err(LineError::WrongType {
                    field: path,
                    expected: "a string or a text object",
                    found: jsonl::type_name(other).to_owned(),
                });
            }
        }
    }
    Ok(joined)
}

/// Loads a `single_turn` file: one conversation per line, but lines sharing a `session_id`
/// are the turns of one conversation, in file order (AIPerf groups them so).
pub(crate) fn load(config: &CustomDatasetConfig) -> Result<Vec<Conversation>, DatasetError> {
    // Each conversation's id and its turns, in order of first appearance.
    let mut sessions: Vec<(String, Vec<TurnEntry>)> = Vec::new();
    let mut index_of: HashMap<String, usize> = HashMap::new();
    jsonl::read_objects(&config.path, |line, object| {
        let entry = parse_turn(&Fields::top(object))?;
        if entry.role != Role::User {
            return Err(LineError::Invalid {
                field: "role".to_owned(),
                problem: "must be `user` in a single_turn file: a system prompt belongs to a \
                          multi_turn session's first turn, or give it with --system-prompt"
                    .to_owned(),
            });
        }
        // An empty id is none, as in AIPerf.
        match entry.session_id.clone().filter(|id| !id.is_empty()) {
            Some(id) => {
                let index = *index_of.entry(id.clone()).or_insert_with(|| {
                    sessions.push((id, Vec::new()));
                    sessions.len() - 1
                });
                sessions[index].1.push(entry);
            }
            None => sessions.push((format!("single_turn-{line}"), vec![entry])),
        }
        Ok(())
    })?;

    // A conversation's first turn starts with a prefix prompt, after the system prompt.
    let mut prefixes = PrefixPrompts::generate(&config.prefix, &config.prompt_words, config.seed);
    let (system, system_tokens) = prefixes.system_messages();
    let prompts: Vec<String> = sessions
        .iter()
        .flat_map(|(_, turns)| turns.iter().enumerate())
        .map(|(i, entry)| {
            let prefix = if i == 0 { prefixes.next_prefix().0 } else { "" };
            if prefix.is_empty() {
                entry.text.clone()
            } else {
                format!("{prefix} {}", entry.text)
            }
        })
        .collect();
    let counts = count_texts(&config.tokenizer, prompts.iter().map(String::as_str))?;
    let mut prompts = prompts.into_iter().zip(counts);

    Ok(sessions
        .into_iter()
        .map(|(session_id, entries)| {
            let turns = entries
                .into_iter()
                .enumerate()
                .map(|(i, entry)| {
                    let opening = match i {
                        0 => (system.clone(), u64::from(system_tokens)),
                        _ => (Vec::with_capacity(1), 0),
                    };
                    let prompt = prompts.next().expect("one prompt per turn");
                    Turn {
                        delay: entry.delay,
                        timestamp: entry.timestamp,
                        ..Turn::of_prompt(opening, prompt, entry.output_length)
                    }
                })
                .collect();
            Conversation { session_id, turns }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_texts_and_text_objects_give_the_prompt() {
        assert_eq!(
            parse_line(r#"{"text": "hi"}"#).map(|e| e.text),
            Ok("hi".into())
        );
        assert_eq!(
            parse_line(r#"{"texts": ["a", "b"]}"#).map(|e| e.text),
            Ok("a\nb".into())
        );
        assert_eq!(
            parse_line(
                r#"{"texts": [{"name": "x", "contents": ["a", "b"]}, {"contents": ["c"]}]}"#
            )
            .map(|e| e.text),
            Ok("a\nb\nc".into())
        );
    }

    #[test]
    fn every_field_is_read() {
        let entry = parse_line(
            r#"{"text": "q", "output_length": 7, "timestamp": 1500.5, "role": "user", "session_id": "s"}"#,
        )
        .expect("valid");
        assert_eq!(
            entry,
            TurnEntry {
                text: "q".into(),
                role: Role::User,
                output_length: Some(7),
                timestamp: Some(Duration::from_micros(1_500_500)),
                delay: None,
                session_id: Some("s".into()),
            }
        );
        let entry = parse_line(r#"{"text": "q", "delay": 20}"#).expect("valid");
        assert_eq!(entry.delay, Some(Duration::from_millis(20)));
    }

    #[test]
    fn malformed_entries_say_what_is_wrong() {
        let error = |line: &str| parse_line(line).expect_err(line).to_string();
        assert_eq!(
            error(r#"{"output_length": 3}"#),
            "missing field `text`: give the prompt in `text` (or a list in `texts`)"
        );
        assert!(error(r#"{"text": "a", "texts": ["b"]}"#).contains("keep one of them"));
        assert!(error(r#"{"text": ""}"#).contains("is empty"));
        assert_eq!(
            error(r#"{"text": "a", "output_length": -2}"#),
            "field `output_length` must not be negative, found -2"
        );
        assert!(error(r#"{"text": "a", "output_length": 0}"#).contains("at least 1"));
        assert!(error(r#"{"text": "a", "timestamp": 1, "delay": 2}"#).contains("keep one"));
        assert!(error(r#"{"text": "a", "image": "x.png"}"#).contains("text only"));
        assert!(error(r#"{"text": "a", "role": "robot"}"#).contains("`robot`"));
        assert_eq!(
            error(r#"{"texts": ["a", 3]}"#),
            "field `texts[1]` must be a string or a text object, found a number"
        );
        assert_eq!(
            error(r#"{"texts": [{"contents": [true]}]}"#),
            "field `texts[0].contents[0]` must be a string, found a boolean"
        );
    }
}
