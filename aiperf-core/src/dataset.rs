//! The dataset stage of DESIGN.md §4: what each request says. A dataset is a list of
//! [`Conversation`]s, each a list of [`Turn`]s; the runner sends a conversation's turns in
//! order, picks conversations in the order [`SamplingOrder`] gives, and stops at the run's
//! request count or duration.
//!
//! Sources, each in its own module:
//! - [`synthetic`]: prompts of exact token lengths (the default, `--isl`/`--osl`);
//! - [`custom`]: the user's JSONL file (`--input-file`, `--custom-dataset-type`), one of
//!   [`single_turn`], [`multi_turn`] or [`mooncake`] (`mooncake_trace`), in AIPerf's formats.
//!
//! What they share: [`PromptWords`] (words of one token each for the chosen tokenizer, so that
//! generated prompts have exact lengths), [`prefix`] prompts and the shared system prompt (for
//! prefix-cache benchmarks), and [`DatasetError`], which names the file and line of a bad entry.
//!
//! The conversation history contract: a turn's [`RequestInput::messages`] hold only what that
//! turn adds (its user message; the first turn may start with system messages). At send time
//! the runner prefixes them with the earlier turns' messages and the server's real answers.
//!
//! ```no_run
//! use aiperf_core::dataset::{custom, CustomDatasetType, SamplingOrder, SamplingStrategy};
//! use aiperf_core::tokenizer::Tokenizer;
//!
//! let tokenizer = Tokenizer::from_spec("builtin")?;
//! let config = custom::CustomDatasetConfig::new(
//!     "prompts.jsonl".into(),
//!     CustomDatasetType::SingleTurn,
//!     tokenizer,
//! )?;
//! let conversations = custom::load(&config)?;
//! let order = SamplingOrder::new(SamplingStrategy::Sequential, conversations.len(), 42);
//! for index in order.take(10) {
//!     println!("{}", conversations[index].session_id);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod custom;
mod jsonl;
pub mod model_selection;
pub mod mooncake;
pub mod multi_turn;
pub mod prefix;
mod prompt_words;
pub mod range_ratio;
pub mod sampling;
mod schedule_window;
pub mod single_turn;
pub mod synthetic;
pub mod system_prompt;

use std::path::PathBuf;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::endpoint::{Message, RequestInput};
use crate::tokenizer::TokenizerError;

pub use custom::CustomDatasetType;
pub use jsonl::LineError;
pub use prefix::{PrefixConfig, PrefixPrompts};
pub use prompt_words::{MIN_WORDS, PromptWords};
pub use sampling::{SamplingOrder, SamplingStrategy};
pub use schedule_window::ScheduleWindow;
pub use system_prompt::SystemPrompt;

/// One turn of a conversation: one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// What the request asks: this turn's own messages (see the module docs for history).
    pub input: RequestInput,
    /// The client tokenizer's count of this turn's messages (the sum over them), when known at
    /// dataset time.
    pub input_tokens: Option<u64>,
    /// A wait before this turn is sent, after the previous turn of its conversation ended.
    pub delay: Option<Duration>,
    /// When this turn is due, from the start of the trace (`timestamp` of trace formats);
    /// used by fixed-schedule replay.
    pub timestamp: Option<Duration>,
}

impl Turn {
    /// A turn of the user's `prompt` (`prompt_tokens` tokens), after `opening` (the messages
    /// that open a conversation, on its first turn, with their tokens), asking for
    /// `max_output_tokens`; sent without a delay or timestamp of its own.
    pub(crate) fn of_prompt(
        (mut messages, opening_tokens): (Vec<Message>, u64),
        (prompt, prompt_tokens): (String, u64),
        max_output_tokens: Option<u32>,
    ) -> Self {
        messages.push(Message::user(prompt));
        Self {
            input: RequestInput {
                messages,
                max_output_tokens,
            },
            input_tokens: Some(opening_tokens + prompt_tokens),
            delay: None,
            timestamp: None,
        }
    }
}

/// A sequence of turns sharing a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// The session id, reported as `conversation_id` and in `inputs.json`.
    pub session_id: String,
    /// The turns, sent in order.
    pub turns: Vec<Turn>,
}

/// Why a dataset could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The dataset file is missing or unreadable.
    #[error("cannot read dataset file {}: check the --input-file path and its permissions", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// One line of the dataset file is malformed.
    #[error("{}:{line}: {error}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong with the line.
        error: LineError,
    },
    /// The dataset file holds no entry.
    #[error(
        "dataset file {} holds no entries: write one JSON object per line",
        path.display()
    )]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The tokenizer refused a text.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The tokenizer has too few words of one token each to build prompts of exact lengths.
    #[error(
        "tokenizer {tokenizer} has only {found} words of one token each (at least {MIN_WORDS} are \
         needed) to build synthetic prompts of exact lengths: use --tokenizer builtin, or a \
         dataset of your own texts (--input-file with single_turn or multi_turn)"
    )]
    TooFewPromptWords {
        /// The tokenizer's name.
        tokenizer: String,
        /// How many words qualified.
        found: usize,
    },
    /// Words of one token each alone do not add up in context for this tokenizer.
    #[error(
        "tokenizer {tokenizer} counts a text of {words} one-token words as {counted} tokens, so \
         synthetic prompts of exact lengths cannot be built for it: use --tokenizer builtin, or \
         a dataset of your own texts (--input-file with single_turn or multi_turn)"
    )]
    PromptWordsNotExact {
        /// The tokenizer's name.
        tokenizer: String,
        /// The words in the text.
        words: u32,
        /// The tokenizer's count.
        counted: u64,
    },
}

/// An independent random stream for one purpose (prompts, prefix choice, ...) under `seed`, so
/// that enabling one feature does not shift the random draws of another.
pub(crate) fn rng_for(seed: u64, purpose: u64) -> StdRng {
    StdRng::seed_from_u64(splitmix64(seed ^ splitmix64(purpose)))
}

/// One step of splitmix64: a cheap bijective mix of 64 bits.
pub(crate) fn splitmix64(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
