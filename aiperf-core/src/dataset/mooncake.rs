//! The `mooncake_trace` custom dataset: production traces in the Mooncake format (as AIPerf
//! reads them), replayed with prompts synthesized to the recorded lengths.
//!
//! ```text
//! {"timestamp": 0, "input_length": 1200, "output_length": 40, "hash_ids": [7, 8, 9]}
//! {"timestamp": 350, "input_length": 1100, "output_length": 12, "hash_ids": [7, 8, 10]}
//! {"timestamp": 900, "text_input": "Hello there", "output_length": 5}
//! ```
//!
//! Fields ([`TraceEntry`]): `input_length` (prompt tokens) or `text_input` (a literal prompt),
//! `output_length`, `hash_ids` (with `input_length`), `timestamp` (ms from the start of the
//! trace) or `delay` (ms after the session's previous turn), `session_id` (lines sharing one are
//! the turns of one conversation, in file order; other lines are conversations of their own).
//! AIPerf's `messages`, `tools` and `payload` modes are refused.
//!
//! `hash_ids` describe the prompt's KV-cache blocks: id `i` of `n` stands for one block of
//! `isl_block_size` tokens (512 by default), the last block holding the rest,
//! `input_length - (n - 1) * isl_block_size` tokens, which must be between 1 and the block
//! size. The same id always gives the same tokens (a partial block gives the start of them), so
//! two lines whose `hash_ids` share a first `k` ids share their first `k` blocks of tokens
//! exactly, as the recorded requests shared a cached prefix. Blocks are [`PromptWords`] drawn
//! from a random stream keyed by the seed and the id; a line without `hash_ids` gets a random
//! prompt of `input_length` tokens. Everything is deterministic under the seed.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use rand::rngs::StdRng;
use serde_json::{Map, Value};

use super::custom::{CustomDatasetConfig, count_texts};
use super::jsonl::{self, Fields, LineError};
use super::{Conversation, DatasetError, PrefixPrompts, PromptWords, Turn, rng_for, splitmix64};

/// Random stream purposes under the dataset seed.
const BLOCK_STREAM: u64 = 0x626c_6f63_6b73;
const UNHASHED_PROMPT_STREAM: u64 = 0x756e_6861_7368;

/// One line of a Mooncake trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEntry {
    /// What the prompt is.
    pub input: TraceInput,
    /// The output length asked for (`output_length`).
    pub output_length: Option<u32>,
    /// When the request is due from the start of the trace (`timestamp`, ms).
    pub timestamp: Option<Duration>,
    /// The wait after the session's previous turn (`delay`, ms).
    pub delay: Option<Duration>,
    /// The session the line belongs to (`session_id`).
    pub session_id: Option<String>,
}

/// The prompt of a trace line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceInput {
    /// A synthesized prompt of `input_length` tokens, built from `hash_ids` blocks when given.
    Synthetic {
        /// Prompt tokens (`input_length`).
        input_length: u32,
        /// KV-cache block ids (`hash_ids`), possibly empty.
        hash_ids: Vec<u64>,
    },
    /// A literal prompt (`text_input`).
    Text(String),
}

/// Parses one line of a Mooncake trace.
pub fn parse_line(line: &str) -> Result<TraceEntry, LineError> {
    parse_entry(&jsonl::parse_object(line)?)
}

fn parse_entry(object: &Map<String, Value>) -> Result<TraceEntry, LineError> {
    let fields = Fields::top(object);
    fields.reject(
        &["messages", "tools", "payload", "message_mode"],
        "this build replays traces by length (`input_length`) or text (`text_input`) only",
    )?;
    fields.reject(
        &["extra"],
        "per-request body fields are not supported: use --extra-inputs for fields every \
         request shares",
    )?;
    let hash_ids = match fields.array("hash_ids")? {
        None => Vec::new(),
        Some(ids) => ids
            .iter()
            .enumerate()
            .map(|(i, id)| hash_id(id, i))
            .collect::<Result<_, _>>()?,
    };
    let input = match (
        fields.positive_count("input_length")?,
        fields.string("text_input")?,
    ) {
        (Some(_), Some(_)) => {
            return Err(LineError::Invalid {
                field: "text_input".to_owned(),
                problem: "cannot be given with `input_length`: keep one of them".to_owned(),
            });
        }
        (Some(input_length), None) => TraceInput::Synthetic {
            input_length,
            hash_ids,
        },
        (None, Some(_)) if !hash_ids.is_empty() => {
            return Err(LineError::Invalid {
                field: "hash_ids".to_owned(),
                problem: "need `input_length`: a `text_input` prompt is sent as written".to_owned(),
            });
        }
        (None, Some("")) => {
            return Err(LineError::Invalid {
                field: "text_input".to_owned(),
                problem: "is empty: give the prompt's text".to_owned(),
            });
        }
        (None, Some(text)) => TraceInput::Text(text.to_owned()),
        (None, None) => {
            return Err(LineError::MissingField {
                field: "input_length".to_owned(),
                hint: "give the prompt length in `input_length` (or a prompt in `text_input`)",
            });
        }
    };
    let timestamp = fields.millis("timestamp")?;
    let delay = fields.millis("delay")?;
    if timestamp.is_some() && delay.is_some() {
        return Err(LineError::Invalid {
            field: "delay".to_owned(),
            problem: "cannot be given with `timestamp`: keep one of them".to_owned(),
        });
    }
    Ok(TraceEntry {
        input,
        output_length: fields.positive_count("output_length")?,
        timestamp,
        delay,
        session_id: fields.string("session_id")?.map(str::to_owned),
    })
}

fn hash_id(value: &Value, index: usize) -> Result<u64, LineError> {
    let field = || format!("hash_ids[{index}]");
    let integer = jsonl::integer(value).ok_or_else(|| LineError::WrongType {
        field: field(),
        expected: "an integer",
        found: jsonl::type_name(value).to_owned(),
    })?;
    u64::try_from(integer).map_err(|_| {
        if integer < 0 {
            LineError::Negative {
                field: field(),
                value: value.to_string(),
            }
        } else {
            LineError::Invalid {
                field: field(),
                problem: format!("is too large ({value}): at most {}", u64::MAX),
            }
        }
    })
}

/// The tokens of each block of a prompt of `input_length` tokens over `blocks` hash ids.
fn block_lengths(
    input_length: u32,
    blocks: usize,
    block_size: NonZeroU32,
) -> Result<impl Iterator<Item = u32>, LineError> {
    let size = u64::from(block_size.get());
    let full = blocks as u64 - 1;
    let last = i128::from(input_length) - i128::from(full * size);
    if last < 1 || last > i128::from(size) {
        return Err(LineError::Invalid {
            field: "hash_ids".to_owned(),
            problem: format!(
                "hold {blocks} blocks of {size} tokens, which cannot make `input_length` \
                 {input_length}: the last block would hold {last} tokens, and must hold 1 to \
                 {size} (check --isl-block-size)"
            ),
        });
    }
    let last = last as u32;
    Ok((0..blocks).map(move |i| {
        if i + 1 == blocks {
            last
        } else {
            block_size.get()
        }
    }))
}

/// Appends the first `tokens` tokens of block `id` to `text`.
fn push_block(text: &mut String, words: &PromptWords, seed: u64, id: u64, tokens: u32) {
    let mut rng: StdRng = rng_for(seed, BLOCK_STREAM ^ splitmix64(id));
    words.push_words(text, tokens, &mut rng);
}

/// A session being assembled.
struct Session {
    id: String,
    turns: Vec<(usize, TraceEntry)>,
}

/// Loads a Mooncake trace.
pub(crate) fn load(config: &CustomDatasetConfig) -> Result<Vec<Conversation>, DatasetError> {
    let mut sessions: Vec<Session> = Vec::new();
    let mut index_of: HashMap<String, usize> = HashMap::new();
    jsonl::read_objects(&config.path, |line, object| {
        let entry = parse_entry(object)?;
        if let TraceInput::Synthetic {
            input_length,
            hash_ids,
        } = &entry.input
            && !hash_ids.is_empty()
        {
            // Checked here, so that the error names the line.
            let _lengths = block_lengths(*input_length, hash_ids.len(), config.isl_block_size)?;
        }
        let session = match &entry.session_id {
            Some(id) => *index_of.entry(id.clone()).or_insert_with(|| {
                sessions.push(Session {
                    id: id.clone(),
                    turns: Vec::new(),
                });
                sessions.len() - 1
            }),
            None => {
                sessions.push(Session {
                    id: format!("mooncake-{line}"),
                    turns: Vec::new(),
                });
                sessions.len() - 1
            }
        };
        sessions[session].turns.push((line, entry));
        Ok(())
    })?;

    let words = &config.prompt_words;
    let prefixes = PrefixPrompts::generate(&config.prefix, words, config.seed);
    let (system, system_tokens) = prefixes.system_messages();
    let literal = sessions
        .iter()
        .flat_map(|session| &session.turns)
        .filter_map(|(_, entry)| match &entry.input {
            TraceInput::Text(text) => Some(text.as_str()),
            TraceInput::Synthetic { .. } => None,
        });
    let mut literal_counts = count_texts(&config.tokenizer, literal)?.into_iter();
    let mut unhashed = rng_for(config.seed, UNHASHED_PROMPT_STREAM);

    let mut conversations = Vec::with_capacity(sessions.len());
    for session in sessions {
        let mut turns = Vec::with_capacity(session.turns.len());
        for (i, (_, entry)) in session.turns.into_iter().enumerate() {
            let (prompt, tokens) = match entry.input {
                TraceInput::Text(text) => {
                    let tokens = literal_counts.next().expect("one count per literal prompt");
                    (text, tokens)
                }
                TraceInput::Synthetic {
                    input_length,
                    hash_ids,
                } => {
                    let mut prompt = String::with_capacity(input_length as usize * 8);
                    if hash_ids.is_empty() {
                        words.push_words(&mut prompt, input_length, &mut unhashed);
                    } else {
                        let lengths =
                            block_lengths(input_length, hash_ids.len(), config.isl_block_size)
                                .expect("block lengths were checked as the line was read");
                        for (id, tokens) in hash_ids.into_iter().zip(lengths) {
                            push_block(&mut prompt, words, config.seed, id, tokens);
                        }
                    }
                    (prompt, u64::from(input_length))
                }
            };
            let opening = if i == 0 {
                (system.clone(), u64::from(system_tokens))
            } else {
                (Vec::with_capacity(1), 0)
            };
            turns.push(Turn {
                delay: entry.delay,
                timestamp: entry.timestamp,
                ..Turn::of_prompt(opening, (prompt, tokens), entry.output_length)
            });
        }
        conversations.push(Conversation {
            session_id: session.id,
            turns,
        });
    }
    Ok(conversations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::Tokenizer;

    #[test]
    fn a_line_is_read_with_every_field() {
        let entry = parse_line(
            r#"{"timestamp": 27482, "input_length": 6955, "output_length": 52, "hash_ids": [46, 47, 48]}"#,
        )
        .expect("valid");
        assert_eq!(
            entry,
            TraceEntry {
                input: TraceInput::Synthetic {
                    input_length: 6955,
                    hash_ids: vec![46, 47, 48],
                },
                output_length: Some(52),
                timestamp: Some(Duration::from_millis(27482)),
                delay: None,
                session_id: None,
            }
        );
        let entry =
            parse_line(r#"{"text_input": "hi", "session_id": "a", "delay": 3}"#).expect("valid");
        assert_eq!(entry.input, TraceInput::Text("hi".into()));
        assert_eq!(entry.session_id.as_deref(), Some("a"));
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        let error = |line: &str| parse_line(line).expect_err(line).to_string();
        assert!(error(r#"{"output_length": 3}"#).starts_with("missing field `input_length`"));
        assert_eq!(
            error(r#"{"input_length": 10, "hash_ids": [1, -2]}"#),
            "field `hash_ids[1]` must not be negative, found -2"
        );
        assert_eq!(
            error(r#"{"input_length": "10"}"#),
            "field `input_length` must be an integer, found a string"
        );
        assert!(error(r#"{"input_length": 5, "text_input": "x"}"#).contains("keep one"));
        assert!(error(r#"{"text_input": "x", "hash_ids": [1]}"#).contains("need `input_length`"));
        assert!(error(r#"{"messages": []}"#).contains("not supported"));
    }

    #[test]
    fn block_lengths_fill_the_input_and_the_last_block_must_fit() {
        let size = NonZeroU32::new(4).expect("non-zero");
        let lengths: Vec<u32> = block_lengths(10, 3, size).expect("fits").collect();
        assert_eq!(lengths, [4, 4, 2]);
        let lengths: Vec<u32> = block_lengths(12, 3, size).expect("fits").collect();
        assert_eq!(lengths, [4, 4, 4]);
        assert!(block_lengths(8, 3, size).is_err());
        assert!(block_lengths(13, 3, size).is_err());
    }

    #[test]
    fn a_partial_block_is_the_start_of_the_full_one() {
        let words = PromptWords::builtin();
        let (mut full, mut partial, mut other) = (String::new(), String::new(), String::new());
        push_block(&mut full, &words, 1, 99, 20);
        push_block(&mut partial, &words, 1, 99, 7);
        push_block(&mut other, &words, 1, 100, 20);
        assert!(full.starts_with(&partial));
        assert_ne!(full, other);
        assert_eq!(Tokenizer::builtin().count(&partial), 7);
    }
}
