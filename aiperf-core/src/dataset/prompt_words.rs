//! Words that are exactly one token each for a given tokenizer, so that a text of N of them is
//! exactly N tokens: what synthetic prompts, prefix prompts and trace blocks are made of
//! (DESIGN.md §4, the dataset stage). Knowing the length by construction keeps the tokenizer
//! off the generation loop and makes shared prefixes exact: a prompt that starts with the same
//! K words as another shares its first K tokens.
//!
//! For the builtin tokenizer the words are [`WORDS`], checked once by a unit test, and nothing
//! is built at run time. For a HuggingFace tokenizer [`PromptWords::for_tokenizer`] keeps the
//! [`WORDS`] that tokenizer counts as one token, alone and in context; when fewer than
//! [`MIN_WORDS`] survive (a small or non-English vocabulary), it takes words from the
//! tokenizer's own vocabulary instead, and checks them the same way. A tokenizer for which no
//! such words exist (e.g. one that adds a token at the start of every text) is refused with an
//! error rather than given prompts of inexact lengths.

use std::fmt;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::DatasetError;
use crate::tokenizer::Tokenizer;
use crate::vocabulary::WORDS;

/// The fewest single-token words a prompt vocabulary may have.
pub const MIN_WORDS: usize = 8;

/// The most words taken from a tokenizer's own vocabulary.
const MAX_VOCABULARY_WORDS: usize = 1024;

/// The longest word, in characters, taken from a tokenizer's vocabulary.
const MAX_WORD_CHARS: usize = 15;

/// Words of one token each for one tokenizer; cheap to clone.
#[derive(Clone)]
pub struct PromptWords {
    words: Words,
}

#[derive(Clone)]
enum Words {
    /// [`WORDS`], verified for the builtin tokenizer by a unit test.
    Builtin,
    /// Words verified against a HuggingFace tokenizer when it was loaded.
    Verified {
        words: Arc<[Box<str>]>,
        tokenizer: String,
    },
}

impl PromptWords {
    /// The builtin tokenizer's words ([`WORDS`]); builds nothing.
    pub fn builtin() -> Self {
        Self {
            words: Words::Builtin,
        }
    }

    /// The words that are one token each for `tokenizer`, in context: a text of N of them
    /// counts N. Free for the builtin tokenizer; for a HuggingFace one, a few thousand short
    /// encodings (milliseconds).
    pub fn for_tokenizer(tokenizer: &Tokenizer) -> Result<Self, DatasetError> {
        if tokenizer.is_builtin() {
            return Ok(Self::builtin());
        }
        let mut words = single_token_words(tokenizer, WORDS.iter().map(|w| (*w).to_owned()))?;
        if words.len() < MIN_WORDS
            && let Some(vocabulary) = tokenizer.decoded_vocabulary()
        {
            let candidates = vocabulary.filter_map(|piece| {
                let letters = piece.trim();
                let word_like = !letters.is_empty()
                    && letters.chars().count() <= MAX_WORD_CHARS
                    && letters.chars().all(char::is_alphabetic);
                word_like.then(|| format!(" {letters}"))
            });
            words = single_token_words(tokenizer, candidates)?;
        }
        if words.len() < MIN_WORDS {
            return Err(DatasetError::TooFewPromptWords {
                tokenizer: tokenizer.to_string(),
                found: words.len(),
            });
        }
        let verified = Self {
            words: Words::Verified {
                words: words.into(),
                tokenizer: tokenizer.to_string(),
            },
        };
        verified.check_in_context(tokenizer)?;
        Ok(verified)
    }

    /// How many distinct words there are.
    pub fn len(&self) -> usize {
        match &self.words {
            Words::Builtin => WORDS.len(),
            Words::Verified { words, .. } => words.len(),
        }
    }

    /// Whether there are no words (never true of a value this module built).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `index`-th word, with its leading space.
    ///
    /// # Panics
    /// When `index >= self.len()`.
    pub fn word(&self, index: usize) -> &str {
        match &self.words {
            Words::Builtin => WORDS[index],
            Words::Verified { words, .. } => &words[index],
        }
    }

    /// Appends `count` words drawn uniformly with `rng` to `text`: exactly `count` tokens
    /// after any text that ends in one of these words (or is empty).
    pub fn push_words(&self, text: &mut String, count: u32, rng: &mut impl Rng) {
        let len = self.len();
        for _ in 0..count {
            text.push_str(self.word(rng.random_range(0..len)));
        }
    }

    /// A text of exactly `tokens` tokens (`tokens` words).
    pub fn prompt(&self, tokens: u32, rng: &mut impl Rng) -> String {
        let mut text = String::with_capacity(tokens as usize * 8);
        self.push_words(&mut text, tokens, rng);
        text
    }

    /// Checks random texts of these words against the tokenizer: each must count its words.
    fn check_in_context(&self, tokenizer: &Tokenizer) -> Result<(), DatasetError> {
        let mut rng = StdRng::seed_from_u64(0x5eed);
        for words in [1, 2, 3, 64, 1000] {
            let text = self.prompt(words, &mut rng);
            let counted = tokenizer.try_count(&text)?;
            if counted != u64::from(words) {
                return Err(DatasetError::PromptWordsNotExact {
                    tokenizer: tokenizer.to_string(),
                    words,
                    counted,
                });
            }
        }
        Ok(())
    }
}

/// The candidates that `tokenizer` encodes as one token of their own (not an unknown-token
/// stand-in) alone, and as two when repeated, without
/// duplicates, in the candidates' order, at most [`MAX_VOCABULARY_WORDS`].
fn single_token_words(
    tokenizer: &Tokenizer,
    candidates: impl Iterator<Item = String>,
) -> Result<Vec<Box<str>>, DatasetError> {
    let mut words: Vec<Box<str>> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for word in candidates {
        if words.len() == MAX_VOCABULARY_WORDS {
            break;
        }
        if !seen.insert(word.clone()) {
            continue;
        }
        // A model without an unknown token refuses words it lacks: those are simply not words.
        if tokenizer.is_one_known_token(&word)
            && tokenizer.try_count(&word.repeat(2)).ok() == Some(2)
        {
            words.push(word.into_boxed_str());
        }
    }
    Ok(words)
}

impl Default for PromptWords {
    fn default() -> Self {
        Self::builtin()
    }
}

impl fmt::Debug for PromptWords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.words {
            Words::Builtin => write!(f, "PromptWords(builtin, {} words)", WORDS.len()),
            Words::Verified { words, tokenizer } => {
                write!(f, "PromptWords({tokenizer}, {} words)", words.len())
            }
        }
    }
}

impl PartialEq for PromptWords {
    /// Equal when they hold the same words in the same order.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && (0..self.len()).all(|i| self.word(i) == other.word(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::tests::word_level_json;

    fn load(json: &str) -> (tempfile::TempDir, Tokenizer) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("tokenizer.json");
        std::fs::write(&path, json).expect("writable");
        let tokenizer = Tokenizer::from_path(&path).expect("a valid tokenizer");
        (dir, tokenizer)
    }

    #[test]
    fn the_builtin_tokenizer_uses_the_builtin_words_without_building_anything() {
        let words = PromptWords::for_tokenizer(&Tokenizer::builtin()).expect("builtin");
        assert_eq!(words, PromptWords::builtin());
        assert_eq!(words.len(), WORDS.len());
        let mut rng = StdRng::seed_from_u64(1);
        let text = words.prompt(300, &mut rng);
        assert_eq!(Tokenizer::builtin().count(&text), 300);
    }

    #[test]
    fn a_tokenizer_knowing_the_builtin_words_keeps_those_it_counts_as_one_token() {
        let known: Vec<&str> = WORDS.iter().take(20).map(|w| w.trim_start()).collect();
        let (_dir, tokenizer) = load(&word_level_json(&known, true));
        let words = PromptWords::for_tokenizer(&tokenizer).expect("20 words survive");
        // Unknown words are one [UNK] token too, but prompts of [UNK] say nothing: left out.
        let kept: Vec<&str> = (0..words.len()).map(|i| words.word(i)).collect();
        assert_eq!(kept, WORDS[..20]);
        let mut rng = StdRng::seed_from_u64(2);
        for tokens in [1, 7, 500] {
            assert_eq!(
                tokenizer.count(&words.prompt(tokens, &mut rng)),
                u64::from(tokens)
            );
        }
    }

    #[test]
    fn without_the_builtin_words_the_tokenizers_own_vocabulary_serves() {
        let own = [
            "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota",
        ];
        let mut vocabulary = own.to_vec();
        vocabulary.extend(["##ing", "42", "!"]);
        let (_dir, tokenizer) = load(&word_level_json(&vocabulary, false));
        let words = PromptWords::for_tokenizer(&tokenizer).expect("nine own words");
        let found: Vec<&str> = (0..words.len())
            .map(|i| words.word(i).trim_start())
            .collect();
        assert_eq!(found, own);
        let mut rng = StdRng::seed_from_u64(3);
        assert_eq!(tokenizer.count(&words.prompt(123, &mut rng)), 123);
    }

    #[test]
    fn too_small_a_vocabulary_is_a_clear_error() {
        let (_dir, tokenizer) = load(&word_level_json(&["alpha", "beta"], false));
        let error = PromptWords::for_tokenizer(&tokenizer).expect_err("two words");
        assert!(
            matches!(error, DatasetError::TooFewPromptWords { found: 2, .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("tokenizer.json"), "{error}");
    }

    #[test]
    fn a_tokenizer_that_adds_a_token_to_every_text_is_refused() {
        // A normalizer prepending a word to every text (as Llama 2's prepends "▁").
        let words = [
            "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
        ];
        let mut json: serde_json::Value =
            serde_json::from_str(&word_level_json(&words, true)).expect("valid JSON");
        json["normalizer"] = serde_json::json!({"type": "Prepend", "prepend": "start "});
        let (_dir, tokenizer) = load(&json.to_string());
        assert_eq!(tokenizer.count("alpha"), 2);
        let error = PromptWords::for_tokenizer(&tokenizer).expect_err("no single-token words");
        assert!(
            matches!(error, DatasetError::TooFewPromptWords { .. }),
            "{error:?}"
        );
    }
}
