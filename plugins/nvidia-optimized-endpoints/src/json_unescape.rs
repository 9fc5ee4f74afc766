//! Decoding the raw bytes of a JSON string (as found between its quotes in a chunk) straight
//! into a `String`, the response's text buffer: no intermediate string is built.
//!
//! Every JSON escape is handled (`\" \\ \/ \b \f \n \r \t` and `\uXXXX`, surrogate pairs
//! included). Whatever `serde_json` would reject when reading a `&str` (invalid UTF-8, a lone
//! surrogate) returns `None`, so the caller can hand the chunk to the exact serde path.

use memchr::memchr;

/// Where decoded text goes: the response's text buffer, or nowhere when only checking.
pub(crate) trait TextSink {
    /// Appends a run of text.
    fn push_str(&mut self, s: &str);
    /// Appends one decoded character.
    fn push_char(&mut self, c: char);
}

impl TextSink for String {
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s);
    }
    fn push_char(&mut self, c: char) {
        self.push(c);
    }
}

/// A sink that keeps nothing: decoding into it only checks the string.
pub(crate) struct Check;

impl TextSink for Check {
    fn push_str(&mut self, _: &str) {}
    fn push_char(&mut self, _: char) {}
}

/// Decodes `raw`, the bytes between a JSON string's quotes, into `out`. `escaped` says whether
/// `raw` holds a backslash. The escapes' syntax must already have been checked (the scanner
/// does); `None` when the text is not valid UTF-8 or holds a lone surrogate.
pub(crate) fn unescape_into(raw: &[u8], escaped: bool, out: &mut impl TextSink) -> Option<()> {
    if !escaped {
        out.push_str(std::str::from_utf8(raw).ok()?);
        return Some(());
    }
    let mut rest = raw;
    while let Some(at) = memchr(b'\\', rest) {
        out.push_str(std::str::from_utf8(&rest[..at]).ok()?);
        let (c, used) = decode_escape(rest.get(at + 1..)?)?;
        out.push_char(c);
        rest = &rest[at + 1 + used..];
    }
    out.push_str(std::str::from_utf8(rest).ok()?);
    Some(())
}

/// Decodes the escape whose backslash was just before `after`: the character and how many
/// bytes of `after` it used.
fn decode_escape(after: &[u8]) -> Option<(char, usize)> {
    let c = match *after.first()? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => return decode_unicode(after),
        _ => return None,
    };
    Some((c, 1))
}

/// Decodes `uXXXX`, or `uD8xx\uDCxx` for a character beyond the Basic Multilingual Plane.
fn decode_unicode(after: &[u8]) -> Option<(char, usize)> {
    let high = hex4(after.get(1..5)?)?;
    match high {
        0xD800..=0xDBFF => {
            if after.get(5..7)? != b"\\u" {
                return None;
            }
            let low = hex4(after.get(7..11)?)?;
            if !(0xDC00..=0xDFFF).contains(&low) {
                return None;
            }
            let code = 0x1_0000 + ((high - 0xD800) << 10) + (low - 0xDC00);
            Some((char::from_u32(code)?, 11))
        }
        0xDC00..=0xDFFF => None,
        _ => Some((char::from_u32(high)?, 5)),
    }
}

/// The value of four hex digits.
fn hex4(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |value, &d| {
        let digit = char::from(d).to_digit(16)?;
        Some((value << 4) | digit)
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn decoded(raw: &str) -> Option<String> {
        let mut out = String::new();
        unescape_into(raw.as_bytes(), raw.contains('\\'), &mut out).map(|()| out)
    }

    #[test]
    fn decodes_every_escape() {
        assert_eq!(
            decoded(r#"a\"b\\c\/d\be\ff\ng\rh\ti"#).unwrap(),
            "a\"b\\c/d\u{8}e\u{c}f\ng\rh\ti"
        );
        assert_eq!(decoded(r"caf\u00e9 \u00E9").unwrap(), "café é");
        assert_eq!(decoded(r"\ud83d\ude00!").unwrap(), "😀!");
        assert_eq!(decoded("plain ünïcode").unwrap(), "plain ünïcode");
        assert_eq!(decoded(r"\u0000").unwrap(), "\0");
    }

    #[test]
    fn rejects_what_serde_json_rejects_for_a_str() {
        for bad in [
            r"\ud83d",
            r"\ud83d x",
            r"\ud83d\u0041",
            r"\ude00",
            r"\x",
            r"\u12",
            r"\u12g4",
        ] {
            assert_eq!(decoded(bad), None, "{bad}");
        }
        let mut out = String::new();
        assert!(unescape_into(b"\xff", false, &mut out).is_none());
        assert!(unescape_into(b"a\\n\xff", true, &mut Check).is_none());
    }

    proptest! {
        #[test]
        fn decodes_whatever_serde_json_encodes(s in any::<String>()) {
            let encoded = serde_json::to_string(&s).unwrap();
            let raw = &encoded[1..encoded.len() - 1];
            prop_assert_eq!(decoded(raw), Some(s));
        }

        #[test]
        fn decodes_ascii_escapes_of_any_character(s in any::<String>()) {
            // Python's json.dumps (ensure_ascii) escapes every non-ASCII character as \uXXXX.
            let mut raw = String::new();
            for unit in s.encode_utf16() {
                raw.push_str(&format!("\\u{unit:04x}"));
            }
            prop_assert_eq!(decoded(&raw), Some(s));
        }
    }
}
