//! A JSON reader for the plain case of a streamed chunk: one pass over the text, checking the
//! grammar of what it skips, borrowing the strings it keeps.
//!
//! In the data flow of DESIGN.md §4 every streamed chunk goes through `parse_response`, where
//! serde_json's general machinery (a visitor per struct, an `Option` per field, field names
//! matched after being read as strings) cost about 5,000 instructions per chunk, a third of
//! the client's work per request. The chat and completions endpoints first read a streamed
//! chunk with this [`Scanner`] (see [`super::response::read_first_choice`]), which answers only
//! for what it reads exactly as serde_json does, and declines (`None`) otherwise: a string with
//! an escape or a control character, nesting deeper than [`MAX_DEPTH`], malformed JSON. A
//! declined chunk is read by serde_json, which decides whether it is valid and what it says.

/// Nesting deeper than this is declined, well inside serde_json's own limit of 128.
const MAX_DEPTH: u32 = 32;

/// The bytes that end the plain run of a string: its closing quote, an escape, a control
/// character (one table lookup per byte instead of three comparisons).
const ENDS_PLAIN_RUN: [bool; 256] = {
    let mut ends = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        ends[byte] = true;
        byte += 1;
    }
    ends[b'"' as usize] = true;
    ends[b'\\' as usize] = true;
    ends
};

/// A cursor over a JSON text that is valid UTF-8. Every method returns `None` to decline.
#[derive(Debug)]
pub(crate) struct Scanner<'a> {
    text: &'a str,
    pos: usize,
    depth: u32,
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `text`.
    pub(crate) fn new(text: &'a str) -> Self {
        Self {
            text,
            pos: 0,
            depth: 0,
        }
    }

    /// The next byte after JSON whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        let bytes = self.text.as_bytes();
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = bytes.get(self.pos) {
            self.pos += 1;
        }
        bytes.get(self.pos).copied()
    }

    /// Consumes `byte` if it comes next (after whitespace).
    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.pos += usize::from(found);
        found
    }

    /// Consumes `word` (`true`, `false`, `null`) if it comes next.
    fn eat_word(&mut self, word: &str) -> bool {
        let found = self.peek().is_some() && self.text[self.pos..].starts_with(word);
        if found {
            self.pos += word.len();
        }
        found
    }

    /// Whether only whitespace is left.
    pub(crate) fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// Consumes `null` if it comes next.
    pub(crate) fn null(&mut self) -> bool {
        self.eat_word("null")
    }

    /// A string without escapes or control characters, borrowed from the text.
    pub(crate) fn string(&mut self) -> Option<&'a str> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.pos;
        let bytes = &self.text.as_bytes()[start..];
        let len = bytes.iter().position(|&b| ENDS_PLAIN_RUN[usize::from(b)])?;
        // A quote ends the string; an escape or a control character declines it.
        if bytes[len] != b'"' {
            return None;
        }
        self.pos = start + len + 1;
        Some(&self.text[start..start + len])
    }

    /// `null` as `None`, a string as `Some`.
    pub(crate) fn null_or_string(&mut self) -> Option<Option<&'a str>> {
        if self.null() {
            Some(None)
        } else {
            self.string().map(Some)
        }
    }

    /// Reads an object, calling `member` with each key once the scanner is at its value; the
    /// call reads or skips the value.
    pub(crate) fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, &'a str) -> Option<()>,
    ) -> Option<()> {
        self.enter(b'{')?;
        if !self.eat(b'}') {
            loop {
                let key = self.string()?;
                if !self.eat(b':') {
                    return None;
                }
                member(self, key)?;
                if !self.eat(b',') {
                    break;
                }
            }
            if !self.eat(b'}') {
                return None;
            }
        }
        self.depth -= 1;
        Some(())
    }

    /// Reads an array, calling `element` with each index once the scanner is at that element;
    /// the call reads or skips it.
    pub(crate) fn array(
        &mut self,
        mut element: impl FnMut(&mut Self, usize) -> Option<()>,
    ) -> Option<()> {
        self.enter(b'[')?;
        if !self.eat(b']') {
            let mut index = 0;
            loop {
                element(self, index)?;
                index += 1;
                if !self.eat(b',') {
                    break;
                }
            }
            if !self.eat(b']') {
                return None;
            }
        }
        self.depth -= 1;
        Some(())
    }

    /// Consumes the opening `bracket` of an object or array, one level deeper.
    fn enter(&mut self, bracket: u8) -> Option<()> {
        if self.depth >= MAX_DEPTH || !self.eat(bracket) {
            return None;
        }
        self.depth += 1;
        Some(())
    }

    /// Skips any value, checking its grammar.
    pub(crate) fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => self.object(|scanner, _| scanner.skip_value()),
            b'[' => self.array(|scanner, _| scanner.skip_value()),
            b't' => self.eat_word("true").then_some(()),
            b'f' => self.eat_word("false").then_some(()),
            b'n' => self.null().then_some(()),
            _ => self.number(),
        }
    }

    /// Skips a number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Option<()> {
        let bytes = self.text.as_bytes();
        let digits = |from: usize| {
            bytes[from..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
        };
        let mut pos = self.pos;
        if bytes.get(pos) == Some(&b'-') {
            pos += 1;
        }
        match bytes.get(pos) {
            Some(b'0') => pos += 1,
            Some(b'1'..=b'9') => pos += digits(pos),
            _ => return None,
        }
        if bytes.get(pos) == Some(&b'.') {
            let fraction = digits(pos + 1);
            if fraction == 0 {
                return None;
            }
            pos += 1 + fraction;
        }
        if let Some(b'e' | b'E') = bytes.get(pos) {
            pos += 1;
            if let Some(b'+' | b'-') = bytes.get(pos) {
                pos += 1;
            }
            let exponent = digits(pos);
            if exponent == 0 {
                return None;
            }
            pos += exponent;
        }
        self.pos = pos;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use serde::de::IgnoredAny;

    use super::*;

    /// Skips `text` as one whole value; `None` when declined.
    fn skipped(text: &str) -> Option<()> {
        let mut scanner = Scanner::new(text);
        scanner.skip_value()?;
        scanner.at_end().then_some(())
    }

    #[test]
    fn accepted_values_are_valid_json() {
        for text in [
            "0",
            "-0",
            "12",
            "-3.25e+10",
            "1E5",
            "0.5e-3",
            "true",
            "false",
            " null ",
            r#""""#,
            r#""plain text, with: punctuation {}[]""#,
            "\"caf\u{e9}\"",
            "[]",
            "[1, [2, {}], {\"a\": [true]}]",
            "{\"a\":{\"b\":{\"c\":null}},\"a\":1}",
        ] {
            assert_eq!(skipped(text), Some(()), "{text}");
            assert!(serde_json::from_str::<IgnoredAny>(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn malformed_json_is_declined() {
        for text in [
            "",
            "01",
            "-",
            "1.",
            ".5",
            "+1",
            "1e",
            "1e+",
            "0x1",
            "tru",
            "nul",
            "nulll",
            "True",
            "\"open",
            "[1,]",
            "[1 2]",
            "{\"a\"}",
            "{\"a\":1,}",
            "{a:1}",
            "{\"a\":1",
            "[",
            "]",
            "1 2",
            "'a'",
        ] {
            assert_eq!(skipped(text), None, "{text}");
            assert!(serde_json::from_str::<IgnoredAny>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn escapes_control_characters_and_deep_nesting_are_declined() {
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        for text in [r#""a\"b""#, r#""\u0041""#, "\"tab\there\"", &deep] {
            assert_eq!(skipped(text), None, "{text}");
        }
        let shallow = format!("{}{}", "[".repeat(30), "]".repeat(30));
        assert_eq!(skipped(&shallow), Some(()));
    }

    #[test]
    fn strings_are_borrowed_and_members_visited_in_order() {
        let text = r#" {"k": "v", "n": null, "list": ["x", "y"]} "#;
        let mut scanner = Scanner::new(text);
        let mut seen = Vec::new();
        scanner
            .object(|scanner, key| {
                match key {
                    "k" => seen.push(scanner.string()?),
                    "n" => assert_eq!(scanner.null_or_string()?, None),
                    _ => scanner.array(|scanner, index| {
                        let item = scanner.string()?;
                        seen.push(if index == 0 { item } else { "second" });
                        Some(())
                    })?,
                }
                Some(())
            })
            .unwrap();
        assert!(scanner.at_end());
        assert_eq!(seen, ["v", "x", "second"]);
    }
}
