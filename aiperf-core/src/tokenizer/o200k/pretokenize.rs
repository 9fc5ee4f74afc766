//! o200k_base's pre-tokenizer: the split of a text into the pieces that byte-pair encoding then
//! encodes one by one, identical to tiktoken's.
//!
//! tiktoken splits with this pattern, under backtracking (fancy-regex) semantics:
//!
//! ```text
//! A  [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//! B |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//! C |\p{N}{1,3}
//! D | ?[^\s\p{L}\p{N}]+[\r\n/]*
//! E |\s*[\r\n]+
//! F |\s+(?!\S)
//! G |\s+
//! ```
//!
//! The `regex` crate has no lookahead, so [`Pretokenizer`] matches A|B|C|D|E|G, whose
//! leftmost-first semantics are the backtracking ones, and then redoes what F would have done.
//! At a match start, both engines try A to E alike; only a start where they all fail differs,
//! and there the text is whitespace, from the start to the end of the text or to a non-space
//! (E failing means that run holds no `\r` or `\n`). G takes the whole run. F takes the whole
//! run if the text ends there, the run minus its last character if that leaves at least one,
//! and nothing if the run is one character, which G then takes. So a G match (the only match
//! ending in whitespace other than `\r` or `\n`: A and B end in a letter, mark or contraction,
//! C in a digit, D in a non-space, `\r`, `\n` or `/`, E in `\r` or `\n`) of two or more
//! characters followed by more text gives back its last character, which starts the next piece
//! (typically the space before a word: `"   word"` is `"  "`, `" word"`).

use regex::Regex;

/// o200k_base's pattern with `\s+(?!\S)` left out (see the module docs).
const PATTERN: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|\p{N}{1,3}",
    r"| ?[^\s\p{L}\p{N}]+[\r\n/]*",
    r"|\s*[\r\n]+",
    r"|\s+",
);

/// Splits texts into o200k_base's pieces.
#[derive(Clone, Debug)]
pub(crate) struct Pretokenizer {
    regex: Regex,
}

impl Pretokenizer {
    /// Compiles the pattern (a few milliseconds: its Unicode classes are large).
    pub(crate) fn new() -> Self {
        Self {
            regex: Regex::new(PATTERN).expect("o200k_base's pattern is valid for the regex crate"),
        }
    }

    /// The pieces of `text`, in order; they cover it exactly.
    pub(crate) fn pieces<'r, 't>(&'r self, text: &'t str) -> Pieces<'r, 't> {
        Pieces {
            regex: &self.regex,
            text,
            at: 0,
        }
    }
}

/// The iterator of [`Pretokenizer::pieces`].
pub(crate) struct Pieces<'r, 't> {
    regex: &'r Regex,
    text: &'t str,
    at: usize,
}

impl<'t> Iterator for Pieces<'_, 't> {
    type Item = &'t str;

    fn next(&mut self) -> Option<&'t str> {
        let found = self.regex.find_at(self.text, self.at)?;
        let piece = found.as_str();
        let mut end = found.end();
        if end < self.text.len() {
            let mut chars = piece.chars();
            if let Some(last) = chars.next_back()
                && last.is_whitespace()
                && last != '\r'
                && last != '\n'
                && chars.next().is_some()
            {
                // A run of spaces G took and F would have ended one character earlier.
                end -= last.len_utf8();
            }
        }
        self.at = end;
        Some(&self.text[found.start()..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(text: &str) -> Vec<&str> {
        Pretokenizer::new().pieces(text).collect()
    }

    #[test]
    fn splits_as_tiktoken_does() {
        assert_eq!(pieces(""), Vec::<&str>::new());
        assert_eq!(pieces("Hello, world!"), ["Hello", ",", " world", "!"]);
        assert_eq!(pieces("a   b"), ["a", "  ", " b"]);
        assert_eq!(pieces("a \t 12"), ["a", " \t", " ", "12"]);
        assert_eq!(pieces("x  "), ["x", "  "]);
        assert_eq!(pieces("x \n\n y"), ["x", " \n\n", " y"]);
        assert_eq!(
            pieces("I'M he's 1234567"),
            ["I'M", " he's", " ", "123", "456", "7"]
        );
        assert_eq!(pieces(" \u{a0}word"), [" ", "\u{a0}word"]);
    }

    #[test]
    fn char_is_whitespace_is_the_regex_crate_s_whitespace() {
        // The fix-up tests the last character with `char::is_whitespace`; it must agree with
        // the pattern's `\s` on every character.
        let space = Regex::new(r"^\s$").expect("a valid pattern");
        let mut buffer = [0; 4];
        for c in (0..=0x10_ffff).filter_map(char::from_u32) {
            assert_eq!(
                c.is_whitespace(),
                space.is_match(c.encode_utf8(&mut buffer)),
                "{c:?}"
            );
        }
    }
}
