//! The check of the `dataset_lines` fuzz target: the line parsers of the custom dataset
//! formats (`single_turn`, `multi_turn`, `mooncake_trace`) turn any line into an entry or a
//! [`LineError`], never a panic, and what they accept keeps the rules their docs state.
//!
//! A user's dataset file is outside input (DESIGN.md §4, the dataset stage): every line of it
//! goes to one of these `parse_line` functions. [`check`] feeds the fuzz input to all three and
//! asserts that
//! - the line parses the same with the line ending the file reader leaves on it (`\n`, `\r\n`)
//!   and with leading blanks: the entry is equal, or the error is of the same kind;
//! - every accepted entry is valid: a non-empty prompt, a positive output length, not both a
//!   timestamp and a delay, at least one turn;
//! - every error has a message.
//!
//! This file is shared: the fuzz target `fuzz/fuzz_targets/dataset_lines.rs` calls [`check`]
//! through the `aiperf-fuzz` library, and `aiperf-core/tests/fuzz_corpus.rs` includes it with
//! `#[path]` to replay the committed corpus under `cargo test`. It uses only the public API of
//! aiperf-core.

use std::fmt::Debug;
use std::mem::discriminant;

use aiperf_core::dataset::LineError;
use aiperf_core::dataset::mooncake::{self, TraceEntry, TraceInput};
use aiperf_core::dataset::multi_turn::{self, SessionEntry};
use aiperf_core::dataset::single_turn::{self, TurnEntry};

/// Parses `line` and its variants with `parse`; returns the result for `line` itself after
/// checking that the variants agree with it.
fn parse_variants<T: Debug + PartialEq>(
    line: &str,
    parse: impl Fn(&str) -> Result<T, LineError>,
) -> Result<T, LineError> {
    let result = parse(line);
    for variant in [
        format!("{line}\n"),
        format!("{line}\r\n"),
        format!(" \t{line}"),
    ] {
        match (&result, parse(&variant)) {
            (Ok(entry), Ok(again)) => assert_eq!(entry, &again, "{variant:?}"),
            (Err(error), Err(again)) => assert_eq!(
                discriminant(error),
                discriminant(&again),
                "{error:?} became {again:?} for {variant:?}"
            ),
            (result, again) => panic!("{result:?} became {again:?} for {variant:?}"),
        }
    }
    if let Err(error) = &result {
        assert!(!error.to_string().is_empty(), "{error:?} has no message");
    }
    result
}

/// Asserts what every accepted turn of `single_turn` and `multi_turn` holds.
fn check_turn(turn: &TurnEntry) {
    assert!(!turn.text.is_empty(), "an accepted turn has a prompt");
    assert_ne!(turn.output_length, Some(0), "an output length is positive");
    assert!(
        turn.timestamp.is_none() || turn.delay.is_none(),
        "a turn has a timestamp or a delay, not both"
    );
}

/// Parses the fuzz input (lossily decoded as UTF-8: the file reader rejects other bytes before
/// any parser sees them) with the three line parsers; panics when a rule is broken.
pub fn check(input: &[u8]) {
    let line = String::from_utf8_lossy(input);

    if let Ok(turn) = parse_variants(&line, single_turn::parse_line) {
        check_turn(&turn);
    }

    if let Ok(SessionEntry { turns, .. }) = parse_variants(&line, multi_turn::parse_line) {
        assert!(!turns.is_empty(), "an accepted session has a turn");
        turns.iter().for_each(check_turn);
    }

    if let Ok(TraceEntry {
        input,
        output_length,
        timestamp,
        delay,
        ..
    }) = parse_variants(&line, mooncake::parse_line)
    {
        match input {
            TraceInput::Synthetic { input_length, .. } => {
                assert!(input_length > 0, "an input length is positive");
            }
            TraceInput::Text(text) => assert!(!text.is_empty(), "a text prompt is not empty"),
        }
        assert_ne!(output_length, Some(0), "an output length is positive");
        assert!(
            timestamp.is_none() || delay.is_none(),
            "a trace line has a timestamp or a delay, not both"
        );
    }
}
