//! Counting prompt tokens exactly, as the builtin tokenizer (o200k_base) would, but without
//! running it on the texts aiperf itself sends.
//!
//! A real server tokenizes every prompt, and so does the engine; but tiktoken costs about
//! 0.7 µs per token here, which would cap a mock server at ~1,400 requests/s for 1,000-token
//! prompts and make it, not the client, the bottleneck. Synthetic prompts are made of
//! [`WORDS`], each one token, joined as they are (`" the of and"`), sometimes with newline runs
//! between turns (`"\n\n"`). For such texts the count is known without the tokenizer:
//!
//! - o200k's pre-tokenizer cuts `" word"` (a space then letters) into a piece of its own
//!   when the next character is a space, a newline or the end, and a newline run between such
//!   words into a piece of its own; BPE never merges across pieces.
//! - each vocabulary word is one token (checked against the tokenizer by the vocabulary's own
//!   test); each newline run's count is taken from the tokenizer once.
//!
//! Any other text goes to the tokenizer. A test checks random vocabulary texts against it.
//!
//! Even that walk (a hash lookup per word) was a quarter of the mock server's time under a
//! non-streaming load of 550-token prompts, while benchmarks send the same few prompts over
//! and over. So counts are also kept in a small cache ([`RecentCounts`]), keyed by the whole
//! text (compared in full on a hit: a count is never taken from another text).

use std::sync::{Mutex, OnceLock, PoisonError};

use crate::tokenizer::{Tokenizer, o200k};
use crate::vocabulary::WORDS;

/// The tokens of `text` under the builtin tokenizer.
pub(crate) fn count(text: &str) -> u64 {
    static RECENT: RecentCounts = RecentCounts::new();
    if !(RecentCounts::MIN_TEXT..=RecentCounts::MAX_TEXT).contains(&text.len()) {
        return count_uncached(text);
    }
    RECENT.count(text, count_uncached)
}

fn count_uncached(text: &str) -> u64 {
    count_vocabulary_text(text.as_bytes()).unwrap_or_else(|| Tokenizer::builtin().count(text))
}

/// The counts of recently seen texts: a direct-mapped cache of [`RecentCounts::SLOTS`]
/// entries, each a text and its count, placed by a hash of the text. A hit costs the hash and
/// one comparison of the whole text; a miss counts and takes the slot.
struct RecentCounts {
    slots: Mutex<Vec<Option<Counted>>>,
}

/// A text and its token count.
type Counted = (Box<str>, u64);

impl RecentCounts {
    /// Entries kept: more than the distinct prompts of a typical benchmark dataset.
    const SLOTS: usize = 1024;
    /// Texts shorter than this are counted directly: hashing them saves nothing.
    const MIN_TEXT: usize = 256;
    /// Texts longer than this are counted directly, so that the cache holds at most
    /// `SLOTS × MAX_TEXT` bytes (64 MiB), whatever the prompts.
    const MAX_TEXT: usize = 64 * 1024;

    const fn new() -> Self {
        Self {
            slots: Mutex::new(Vec::new()),
        }
    }

    /// The count of `text`, from the cache or from `count` (then cached).
    fn count(&self, text: &str, count: impl FnOnce(&str) -> u64) -> u64 {
        // The vocabulary's hash: fast, eight bytes at a time, and well mixed in its low bits.
        let slot = (o200k::hash(text.as_bytes()) as usize) & (Self::SLOTS - 1);
        {
            let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(Some((kept, tokens))) = slots.get(slot)
                && **kept == *text
            {
                return *tokens;
            }
        }
        let tokens = count(text);
        let entry = Some((Box::<str>::from(text), tokens));
        let replaced = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            if slots.is_empty() {
                slots.resize(Self::SLOTS, None);
            }
            std::mem::replace(&mut slots[slot], entry)
        };
        // The text it replaces is freed after the lock is let go.
        drop(replaced);
        tokens
    }
}

/// Longest newline run handled without the tokenizer.
const MAX_NEWLINES: usize = 8;

/// Longest vocabulary word, in letters: a word and its length are compared as one `u128`.
const MAX_WORD: usize = 15;

/// The vocabulary as an open-addressing hash set of packed words.
struct Table {
    /// Packed words (see [`pack`]); 0 where free.
    slots: Box<[u128]>,
}

impl Table {
    fn get() -> &'static Table {
        static TABLE: OnceLock<Table> = OnceLock::new();
        TABLE.get_or_init(|| {
            let size = (WORDS.len() * 4).next_power_of_two();
            let mut slots = vec![0; size].into_boxed_slice();
            for word in WORDS {
                let letters = word
                    .strip_prefix(' ')
                    .expect("vocabulary words start with a space");
                assert!(
                    !letters.is_empty()
                        && letters.len() <= MAX_WORD
                        && letters.bytes().all(|b| b.is_ascii_alphabetic()),
                    "vocabulary words are a space then 1 to {MAX_WORD} ASCII letters: {word:?}"
                );
                let key = pack(letters.as_bytes());
                let mut slot = slot_of(key, size);
                while slots[slot] != 0 {
                    slot = (slot + 1) & (size - 1);
                }
                slots[slot] = key;
            }
            Table { slots }
        })
    }

    fn contains(&self, key: u128) -> bool {
        let mask = self.slots.len() - 1;
        let mut slot = slot_of(key, self.slots.len());
        loop {
            match self.slots[slot] {
                0 => return false,
                found if found == key => return true,
                _ => slot = (slot + 1) & mask,
            }
        }
    }
}

/// The tokens of a run of `run` newlines (up to [`MAX_NEWLINES`]), from the tokenizer, which
/// is built only when a prompt has newlines: prompts of words alone never wait for it.
fn newline_tokens(run: usize) -> Option<u64> {
    static COUNTS: OnceLock<[u64; MAX_NEWLINES + 1]> = OnceLock::new();
    let counts = COUNTS.get_or_init(|| {
        let tokenizer = Tokenizer::builtin();
        std::array::from_fn(|run| tokenizer.count(&"\n".repeat(run)))
    });
    counts.get(run).copied()
}

/// A word of 1 to [`MAX_WORD`] bytes as one number: its bytes, zero-padded, then its length
/// (so that a word with trailing NUL bytes never equals a shorter one).
fn pack(letters: &[u8]) -> u128 {
    let mut bytes = [0; 16];
    bytes[..letters.len()].copy_from_slice(letters);
    bytes[15] = letters.len() as u8;
    u128::from_le_bytes(bytes)
}

fn slot_of(key: u128, size: usize) -> usize {
    let mixed =
        (key as u64 ^ (key >> 64) as u64 ^ (key >> 37) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (mixed >> 32) as usize & (size - 1)
}

/// The count of a text made only of vocabulary words and newline runs, or `None` for any
/// other text.
fn count_vocabulary_text(text: &[u8]) -> Option<u64> {
    let table = Table::get();
    let mut tokens = 0;
    let mut at = 0;
    while at < text.len() {
        match text[at] {
            b'\n' => {
                let run = text[at..].iter().take_while(|b| **b == b'\n').count();
                tokens += newline_tokens(run)?;
                at += run;
            }
            b' ' => {
                let start = at + 1;
                let mut end = start;
                while end < text.len() && text[end] != b' ' && text[end] != b'\n' {
                    end += 1;
                }
                let letters = end - start;
                if letters == 0 || letters > MAX_WORD || !table.contains(pack(&text[start..end])) {
                    return None;
                }
                tokens += 1;
                at = end;
            }
            _ => return None,
        }
    }
    Some(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::outcome::splitmix64;

    #[test]
    fn vocabulary_texts_count_as_the_tokenizer_counts_them() {
        let tokenizer = Tokenizer::builtin();
        let mut state = 1;
        let mut next = |bound: usize| {
            state = splitmix64(state);
            (state % bound as u64) as usize
        };
        for _ in 0..300 {
            let mut text = String::new();
            let mut after_newlines = false;
            for _ in 0..next(60) {
                // Newline runs of up to MAX_NEWLINES, between words or at either end.
                if next(10) == 0 && !after_newlines {
                    text.push_str(&"\n".repeat(1 + next(MAX_NEWLINES)));
                    after_newlines = true;
                } else {
                    text.push_str(WORDS[next(WORDS.len())]);
                    after_newlines = false;
                }
            }
            let fast = count_vocabulary_text(text.as_bytes());
            assert_eq!(fast, Some(tokenizer.count(&text)), "{text:?}");
        }
    }

    #[test]
    fn other_texts_go_to_the_tokenizer() {
        for text in [
            "the",
            " the  of",
            " the ",
            " Supercalifragilistic",
            " the's",
            " of,",
            "hello world",
            " the\t of",
            " café",
            " the\0",
            "\n\n\n\n\n\n\n\n\n the",
        ] {
            assert_eq!(count_vocabulary_text(text.as_bytes()), None, "{text:?}");
            assert_eq!(count(text), Tokenizer::builtin().count(text), "{text:?}");
        }
        assert_eq!(count_vocabulary_text(b""), Some(0));
    }

    #[test]
    fn cached_counts_belong_to_their_own_text() {
        let cache = RecentCounts::new();
        let words: Vec<String> = (0..3000)
            .map(|i| " the of and".repeat(1 + i % 40) + &" to".repeat(i / 40))
            .collect();
        let mut counted = 0;
        for _ in 0..2 {
            for text in &words {
                let tokens = cache.count(text, |text| {
                    counted += 1;
                    count_uncached(text)
                });
                assert_eq!(tokens, count_uncached(text), "{text:?}");
            }
        }
        // 3,000 texts share 1,024 slots: the second pass hits where a text kept its slot.
        assert!(
            counted < 2 * words.len(),
            "the cache answered some: {counted}"
        );
        let text = &words[7];
        let tokens = cache.count(text, count_uncached);
        assert_eq!(cache.count(text, |_| unreachable!("just cached")), tokens);
    }
}
