//! Writing a Rust string as a JSON string literal, straight into the request buffer.
//!
//! The output is byte for byte what `serde_json` writes (`"`, `\` and control characters
//! escaped, `\b \t \n \f \r` by name, other control characters as `\u00XX`, everything else
//! verbatim), without going through a `Serializer`: runs of plain bytes are found eight bytes
//! at a time ([`crate::plain_run`]) and copied whole.

use crate::plain_run::plain_run_len;

/// What to write for each byte that [`plain_run_len`] stops at: the letter after the
/// backslash (`u` for `\u00XX`).
const ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` to `out` as a quoted JSON string.
pub(crate) fn write_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    write_json_str_contents(out, s);
    out.push(b'"');
}

/// Appends `s` to `out` escaped as inside a JSON string, without the quotes.
pub(crate) fn write_json_str_contents(out: &mut Vec<u8>, s: &str) {
    let mut rest = s.as_bytes();
    loop {
        let run = plain_run_len(rest);
        out.extend_from_slice(&rest[..run]);
        let Some(&b) = rest.get(run) else {
            return;
        };
        let escape = ESCAPE[usize::from(b)];
        if escape == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', escape]);
        }
        rest = &rest[run + 1..];
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn escaped(s: &str) -> String {
        let mut out = Vec::new();
        write_json_str(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_like_serde_json() {
        for s in [
            "",
            "plain",
            "quote \" backslash \\ slash /",
            "\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f}",
            "café 😀 \u{2028}",
        ] {
            assert_eq!(escaped(s), serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    proptest! {
        #[test]
        fn any_string_is_escaped_exactly_as_serde_json_does(s in any::<String>()) {
            prop_assert_eq!(escaped(&s), serde_json::to_string(&s).unwrap());
        }
    }
}
