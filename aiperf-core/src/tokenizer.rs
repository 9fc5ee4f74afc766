//! Client-side token counting: the builtin tokenizer is tiktoken's o200k_base, embedded in the
//! binary and working offline (AIPerf's `--tokenizer builtin`). Building it takes 100-200 ms, so
//! [`Tokenizer::warm_up_in_background`] starts that work at launch, off the critical path, and
//! counting happens after the run (DESIGN.md §4: no tokenization on the per-chunk path).

use tiktoken_rs::CoreBPE;

/// A tokenizer that counts the tokens of a text.
#[derive(Clone, Copy)]
pub struct Tokenizer {
    bpe: &'static CoreBPE,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokenizer(o200k_base)")
    }
}

impl Tokenizer {
    /// The builtin tokenizer (o200k_base), built on first use and shared.
    pub fn builtin() -> Self {
        Self {
            bpe: tiktoken_rs::o200k_base_singleton(),
        }
    }

    /// Starts building the builtin tokenizer on a background thread, so that a later
    /// [`Tokenizer::builtin`] finds it ready.
    pub fn warm_up_in_background() {
        std::thread::Builder::new()
            .name("tokenizer-warm-up".into())
            .spawn(|| {
                Self::builtin();
            })
            .expect("spawning a thread at start-up succeeds");
    }

    /// The number of tokens of `text` (special tokens treated as ordinary text).
    pub fn count(&self, text: &str) -> u64 {
        self.bpe.encode_ordinary(text).len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::WORDS;

    #[test]
    fn counts_known_texts() {
        let tokenizer = Tokenizer::builtin();
        assert_eq!(tokenizer.count(""), 0);
        assert_eq!(tokenizer.count("hello world"), 2);
        assert!(tokenizer.count("Supercalifragilisticexpialidocious") > 1);
    }

    #[test]
    fn every_vocabulary_word_is_one_token_and_texts_of_them_count_exactly() {
        let tokenizer = Tokenizer::builtin();
        let multi: Vec<&str> = WORDS
            .iter()
            .copied()
            .filter(|w| tokenizer.count(w) != 1)
            .collect();
        assert!(multi.is_empty(), "not single tokens: {multi:?}");
        let text: String = WORDS.iter().cycle().take(1000).copied().collect();
        assert_eq!(tokenizer.count(&text), 1000);
    }
}
