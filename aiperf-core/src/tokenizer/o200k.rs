//! The builtin tokenizer's counter: tiktoken's o200k_base, counting only. It gives the same
//! count as tiktoken-rs's `o200k_base().encode_ordinary(text).len()` for every text (a
//! differential test and a property test hold it to that), but needs no ids and no decoding,
//! so it is built from the vocabulary blobs the build script lays out (see `vocabulary`):
//! the only start-up work is compiling the pre-tokenizer's pattern, a few milliseconds, where
//! building tiktoken-rs's encoder took 100-200 ms of CPU and 30-40 MiB.
//!
//! A count is the pre-tokenizer's pieces (`pretokenize`), each one token if the vocabulary
//! holds it, else as many as tiktoken's byte-pair merge (lowest rank first) leaves.

mod pretokenize;
mod vocabulary;

use pretokenize::Pretokenizer;
use vocabulary::Vocabulary;
pub(crate) use vocabulary::hash;

/// Every o200k_base token's bytes, concatenated in rank order (written by `build.rs`).
static BYTES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/o200k_base/bytes"));
/// The offsets of the tokens in [`BYTES`].
static STARTS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/o200k_base/starts"));
/// The hash table from bytes to rank.
static SLOTS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/o200k_base/slots"));

/// A token counter giving tiktoken's o200k_base counts.
///
/// [`crate::tokenizer::Tokenizer::builtin`] shares one; building another costs the compilation
/// of the pre-tokenizer's pattern (a few milliseconds), the vocabulary being static.
#[derive(Clone, Debug)]
pub struct O200kBase {
    pretokenizer: Pretokenizer,
    vocabulary: Vocabulary<'static>,
}

impl Default for O200kBase {
    fn default() -> Self {
        Self::new()
    }
}

impl O200kBase {
    /// A counter; see the type's docs for its cost.
    pub fn new() -> Self {
        Self {
            pretokenizer: Pretokenizer::new(),
            vocabulary: Vocabulary::new(BYTES, STARTS, SLOTS),
        }
    }

    /// The number of o200k_base tokens of `text`, special tokens written in it counting as
    /// ordinary text (tiktoken's `encode_ordinary`).
    pub fn count(&self, text: &str) -> usize {
        let vocabulary = &self.vocabulary;
        let mut parts = Vec::new();
        self.pretokenizer
            .pieces(text)
            .map(|piece| {
                let piece = piece.as_bytes();
                if piece.len() == 1 || vocabulary.rank(piece).is_some() {
                    1
                } else {
                    merged_len(vocabulary, piece, &mut parts)
                }
            })
            .sum()
    }
}

/// The number of tokens byte-pair encoding leaves of `piece` (two bytes or more): tiktoken's
/// `_byte_pair_merge`, step for step, so that ties between equal ranks (a pair repeated in the
/// piece) resolve alike, to the leftmost. `parts` is scratch space, reused across pieces.
fn merged_len(vocabulary: &Vocabulary<'_>, piece: &[u8], parts: &mut Vec<(usize, u32)>) -> usize {
    // parts[i] = (start of part i, rank of part i merged with part i + 1, or MAX).
    parts.clear();
    let rank = |bytes: &[u8]| vocabulary.rank(bytes).unwrap_or(u32::MAX);
    let mut min = (u32::MAX, usize::MAX);
    for i in 0..piece.len() - 1 {
        let pair = rank(&piece[i..i + 2]);
        if pair < min.0 {
            min = (pair, i);
        }
        parts.push((i, pair));
    }
    parts.push((piece.len() - 1, u32::MAX));
    parts.push((piece.len(), u32::MAX));

    // The rank of parts i and i + 1 merged with part i + 2 (i + 1 not yet removed).
    let merged_rank = |parts: &[(usize, u32)], i: usize| {
        if i + 3 < parts.len() {
            rank(&piece[parts[i].0..parts[i + 3].0])
        } else {
            u32::MAX
        }
    };
    while min.0 != u32::MAX {
        let i = min.1;
        if i > 0 {
            parts[i - 1].1 = merged_rank(parts, i - 1);
        }
        parts[i].1 = merged_rank(parts, i);
        parts.remove(i + 1);
        min = (u32::MAX, usize::MAX);
        for (i, &(_, rank)) in parts[..parts.len() - 1].iter().enumerate() {
            if rank < min.0 {
                min = (rank, i);
            }
        }
    }
    parts.len() - 1
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use proptest::prelude::*;

    use super::*;

    /// Our counter, built once for all tests.
    fn ours() -> &'static O200kBase {
        static OURS: OnceLock<O200kBase> = OnceLock::new();
        OURS.get_or_init(O200kBase::new)
    }

    /// tiktoken-rs's count, the reference.
    fn reference(text: &str) -> usize {
        tiktoken_rs::o200k_base_singleton()
            .encode_ordinary(text)
            .len()
    }

    /// Texts where a pre-tokenizer or a merge could go wrong.
    const TRICKY: &[&str] = &[
        "",
        " ",
        "  ",
        "hello world",
        "   leading spaces before a word",
        "trailing spaces   ",
        "trailing newline\n",
        "a  b   c    d\t\te \t f",
        "line one\r\nline two\r\n\r\nline four",
        "para one\n\n\npara two\n \n  \n   three",
        "  \n  \n  x",
        "spaces then digits   123 and  45",
        "tab\tseparated\tvalues\t\t",
        "\t\t\tindented code",
        "    fn main() {\n        println!(\"hi\");\n    }\n",
        "I'M YOU'LL he's they'RE we'Ve it'd SHE'S 'S 'll 'LL don't",
        "1 22 333 4444 55555 666666 7777777",
        "3.14159 1,000,000 2024-01-01 0x1F 1e-9",
        "東京は日本の首都です。漢字とかなカナ",
        "한국어 텍스트와 中文 и русский текст",
        "emoji 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ 🤖!",
        "combining: e\u{301}te\u{301} n\u{303} a\u{30a}\u{327}",
        "\u{301}\u{302} marks alone",
        "mixed: abcαβγабв123١٢٣",
        "عربي مع English و 123",
        "हिन्दी देवनागरी",
        "punctuation!!! ??? ... --- ***\n///\r\n",
        "a/b//c///d\n/\n//",
        "<|endoftext|> and <|endofprompt|>",
        "non\u{a0}breaking\u{a0} space \u{a0}\u{a0}x",
        "em\u{2003}space thin\u{2009}space ideographic\u{3000}space",
        "line\u{2028}separator para\u{2029}separator next\u{85}line",
        "\u{b}vertical\u{c}feed",
        "CamelCaseWords and snake_case_words and SCREAMING_CASE",
        "ǅungla ǈ ǋ title case",
        "ſ's long s 'ſ",
        "https://example.com/path?q=1&r=2#frag",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "Supercalifragilisticexpialidocious antidisestablishmentarianism",
        "\u{0}\u{1}\u{7f} controls \u{200b}zero\u{200d}width\u{feff}",
    ];

    #[test]
    fn counts_tricky_texts_as_tiktoken_does() {
        let counter = ours();
        for text in TRICKY {
            assert_eq!(counter.count(text), reference(text), "{text:?}");
        }
        let all = TRICKY.concat();
        assert_eq!(counter.count(&all), reference(&all));
    }

    #[test]
    fn counts_repetitions_as_tiktoken_does() {
        // Repeated pairs have equal ranks: the merge must break ties as tiktoken does.
        for unit in [
            "a", "z", "ab", "abc", "xyz", "=", "-=", "é", "東", "ha", "lo", "!?", " .",
        ] {
            for times in 1..48 {
                let text = unit.repeat(times);
                assert_eq!(ours().count(&text), reference(&text), "{text:?}");
            }
        }
    }

    #[test]
    fn counts_sampled_tokens_as_tiktoken_does() {
        // A token encodes as itself unless the pre-tokenizer splits it; either way the two
        // counters agree.
        let counter = ours();
        let vocabulary = counter.vocabulary;
        for rank in (0..vocabulary.len() as u32).step_by(97) {
            if let Ok(text) = std::str::from_utf8(vocabulary.token(rank)) {
                assert_eq!(counter.count(text), reference(text), "{text:?}");
            }
        }
    }

    /// Text drawn from characters that exercise the pattern's boundaries.
    fn alphabet_text() -> impl Strategy<Value = String> {
        let alphabet: Vec<char> =
            " \t\n\r\u{a0}\u{3000}\u{2028}aAzZéÉ'sSlLdDtT0123456789١.,!?/-_'\"()👍東\u{301}"
                .chars()
                .collect();
        proptest::collection::vec(proptest::sample::select(alphabet), 0..40)
            .prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn counts_any_text_as_tiktoken_does(text in any::<String>()) {
            prop_assert_eq!(ours().count(&text), reference(&text));
        }

        #[test]
        fn counts_texts_of_spaces_letters_digits_and_punctuation_as_tiktoken_does(
            text in alphabet_text()
        ) {
            prop_assert_eq!(ours().count(&text), reference(&text));
        }
    }
}
