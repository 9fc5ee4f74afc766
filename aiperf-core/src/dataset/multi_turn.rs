//! The `multi_turn` custom dataset (AIPerf's format): one JSON object per line, each a session
//! of turns sent in order, each turn after the previous one's answer (and its `delay`).
//!
//! ```text
//! {"session_id": "chat-1", "turns": [
//!     {"role": "system", "text": "You are terse."},
//!     {"text": "What is a GPU?"},
//!     {"text": "And a TPU?", "delay": 1000}]}
//! ```
//!
//! Each turn has the fields of a [`super::single_turn`] line. A session without a
//! `session_id` gets `multi_turn-<line>`; lines sharing a `session_id` are one session, their
//! turns in file order. A leading text-only `system` turn is not sent as a request: it becomes
//! the system message at the head of the first request (AIPerf hoists it the same way).
//!
//! Each [`Turn`] holds only that turn's user message (after the system messages for the first
//! turn); the runner sends the conversation so far with it: the earlier user messages and the
//! server's real answers.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::custom::{CustomDatasetConfig, count_texts};
use super::jsonl::{self, Fields, LineError};
use super::single_turn::{TurnEntry, parse_turn};
use super::system_prompt::SYSTEM_PROMPT_SEPARATOR;
use super::{Conversation, DatasetError, PrefixPrompts, Turn};
use crate::endpoint::{Message, Role};

/// One line of a `multi_turn` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEntry {
    /// The session id given (`session_id`).
    pub session_id: Option<String>,
    /// The turns, in order; at least one.
    pub turns: Vec<TurnEntry>,
}

/// Parses one line of a `multi_turn` file.
pub fn parse_line(line: &str) -> Result<SessionEntry, LineError> {
    parse_session(&jsonl::parse_object(line)?)
}

/// Reads the session of one line's object.
fn parse_session(object: &Map<String, Value>) -> Result<SessionEntry, LineError> {
    let fields = Fields::top(object);
    let items = fields.array("turns")?.ok_or(LineError::MissingField {
        field: "turns".to_owned(),
        hint: "a multi_turn line lists its requests in `turns`",
    })?;
    if items.is_empty() {
        return Err(LineError::Invalid {
            field: "turns".to_owned(),
            problem: "is empty: give at least one turn".to_owned(),
        });
    }
    let turns = items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Object(turn) => parse_turn(&Fields::nested(turn, format!("turns[{i}]"))),
            other => Err(LineError::WrongType {
                field: format!("turns[{i}]"),
                expected: "an object",
                found: jsonl::type_name(other).to_owned(),
            }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SessionEntry {
        session_id: fields.string("session_id")?.map(str::to_owned),
        turns,
    })
}

/// A session being assembled: its id, the line it starts on, the hoisted system prompt, and
/// its turns.
struct Session {
    id: String,
    line: usize,
    system: Option<String>,
    turns: Vec<TurnEntry>,
}

/// Loads a `multi_turn` file.
pub(crate) fn load(config: &CustomDatasetConfig) -> Result<Vec<Conversation>, DatasetError> {
    let mut sessions: Vec<Session> = Vec::new();
    let mut index_of: HashMap<String, usize> = HashMap::new();
    jsonl::read_objects(&config.path, |line, object| {
        let entry = parse_session(object)?;
        // An empty id is none, as in AIPerf.
        let id = entry
            .session_id
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| format!("multi_turn-{line}"));
        let index = *index_of.entry(id.clone()).or_insert_with(|| {
            sessions.push(Session {
                id,
                line,
                system: None,
                turns: Vec::new(),
            });
            sessions.len() - 1
        });
        let session = &mut sessions[index];
        for (i, turn) in entry.turns.into_iter().enumerate() {
            match turn.role {
                Role::User => session.turns.push(turn),
                Role::System if hoistable(session, &turn) => session.system = Some(turn.text),
                Role::System => {
                    return Err(LineError::Invalid {
                        field: format!("turns[{i}].role"),
                        problem: "is `system` after the session's first turn, or with timing or \
                                  an output length: only a session's leading system turn is \
                                  supported, as its system prompt"
                            .to_owned(),
                    });
                }
                Role::Assistant => {
                    return Err(LineError::Invalid {
                        field: format!("turns[{i}].role"),
                        problem: "is `assistant`: the server's own answers are sent as the \
                                  assistant turns; give only the user turns"
                            .to_owned(),
                    });
                }
            }
        }
        Ok(())
    })?;
    if let Some(session) = sessions.iter().find(|s| s.turns.is_empty()) {
        // Only possible when a session is nothing but a system prompt.
        return Err(DatasetError::Line {
            path: config.path.clone(),
            line: session.line,
            error: LineError::Invalid {
                field: "turns".to_owned(),
                problem: format!(
                    "of session `{}` hold only a system prompt: add a user turn",
                    session.id
                ),
            },
        });
    }

    let prefixes = PrefixPrompts::generate(&config.prefix, &config.prompt_words, config.seed);
    let (shared_system, shared_tokens) = prefixes.system_messages();
    // A session's own system prompt follows a verbatim one in the same message.
    let verbatim = prefixes.verbatim_system_prompt();
    if let Some(verbatim) = verbatim {
        for own in sessions
            .iter_mut()
            .filter_map(|session| session.system.as_mut())
        {
            *own = format!("{verbatim}{SYSTEM_PROMPT_SEPARATOR}{own}");
        }
    }
    let texts = sessions.iter().flat_map(|session| {
        session
            .system
            .iter()
            .chain(session.turns.iter().map(|turn| &turn.text))
            .map(String::as_str)
    });
    let mut counts = count_texts(&config.tokenizer, texts)?.into_iter();
    let mut next_count = || counts.next().expect("one count per text");

    Ok(sessions
        .into_iter()
        .map(|session| {
            let (mut first, mut first_tokens) = match (&session.system, verbatim) {
                // The joined message replaces the verbatim one.
                (Some(_), Some(_)) => (Vec::with_capacity(2), 0),
                _ => (shared_system.clone(), u64::from(shared_tokens)),
            };
            if let Some(system) = session.system {
                first_tokens += next_count();
                first.push(Message {
                    role: Role::System,
                    content: system,
                });
            }
            let turns = session
                .turns
                .into_iter()
                .enumerate()
                .map(|(i, turn)| {
                    let opening = if i == 0 {
                        (std::mem::take(&mut first), first_tokens)
                    } else {
                        (Vec::with_capacity(1), 0)
                    };
                    let prompt = (turn.text, next_count());
                    Turn {
                        delay: turn.delay,
                        timestamp: turn.timestamp,
                        ..Turn::of_prompt(opening, prompt, turn.output_length)
                    }
                })
                .collect();
            Conversation {
                session_id: session.id,
                turns,
            }
        })
        .collect())
}

/// A system turn becomes the session's system prompt when it comes first and carries nothing
/// a request would need (timing, an output length).
fn hoistable(session: &Session, turn: &TurnEntry) -> bool {
    session.turns.is_empty()
        && session.system.is_none()
        && turn.timestamp.is_none()
        && turn.delay.is_none()
        && turn.output_length.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_a_session_of_turns() {
        let entry = parse_line(
            r#"{"session_id": "s", "turns": [{"text": "a"}, {"text": "b", "delay": 5}]}"#,
        )
        .expect("valid");
        assert_eq!(entry.session_id.as_deref(), Some("s"));
        assert_eq!(entry.turns.len(), 2);
        assert_eq!(
            entry.turns[1].delay,
            Some(std::time::Duration::from_millis(5))
        );
    }

    #[test]
    fn malformed_sessions_name_the_turn() {
        let error = |line: &str| parse_line(line).expect_err(line).to_string();
        assert!(error(r#"{"session_id": "s"}"#).starts_with("missing field `turns`"));
        assert!(error(r#"{"turns": []}"#).contains("is empty"));
        assert_eq!(
            error(r#"{"turns": [{"text": "a"}, "b"]}"#),
            "field `turns[1]` must be an object, found a string"
        );
        assert_eq!(
            error(r#"{"turns": [{"text": "a"}, {"text": "b", "delay": -1}]}"#),
            "field `turns[1].delay` must not be negative, found -1"
        );
    }
}
