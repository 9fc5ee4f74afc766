//! The dataset stage of DESIGN.md §4: what each request says. A dataset is a list of
//! [`Conversation`]s, each a list of [`Turn`]s; the runner sends turns in order and cycles over
//! conversations until the run's request count or duration is reached.
//!
//! Sources: [`synthetic`] prompts of exact token lengths (the default).

pub mod synthetic;

use std::time::Duration;

use crate::endpoint::RequestInput;

/// One turn of a conversation: one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// What the request asks.
    pub input: RequestInput,
    /// The client tokenizer's count of the prompt tokens, when known at dataset time.
    pub input_tokens: Option<u64>,
    /// A wait before this turn is sent, after the previous turn of its conversation ended.
    pub delay: Option<Duration>,
    /// When this turn is due, from the start of the trace (`timestamp` of trace formats);
    /// used by fixed-schedule replay.
    pub timestamp: Option<Duration>,
}

/// A sequence of turns sharing a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// The session id, reported as `conversation_id` and in `inputs.json`.
    pub session_id: String,
    /// The turns, sent in order.
    pub turns: Vec<Turn>,
}
