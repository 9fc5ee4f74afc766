//! Finding where a run of plain JSON string bytes ends: the next `"`, `\` or control
//! character, the only bytes that need attention inside a JSON string, when writing payloads
//! ([`crate::json_escape`]) and when reading chunks ([`crate::chunk_scan`]).
//!
//! Eight bytes are tested at once in a `u64` (the classic "has a zero byte" bit trick), which
//! beats both a byte loop and a `memchr` call on the short strings of a streamed chunk and on the
//! long prompts of a payload alike.

const ONES: u64 = u64::from_le_bytes([1; 8]);
const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
const QUOTES: u64 = u64::from_le_bytes([b'"'; 8]);
const BACKSLASHES: u64 = u64::from_le_bytes([b'\\'; 8]);
const SPACES: u64 = u64::from_le_bytes([0x20; 8]);

/// Whether `b` ends a run: `"`, `\` or a control character.
fn is_stop(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

/// The length of the longest prefix of `bytes` without `"`, `\` or control characters.
#[inline]
pub(crate) fn plain_run_len(bytes: &[u8]) -> usize {
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("chunks_exact yields 8 bytes"));
        let quote = word ^ QUOTES;
        let backslash = word ^ BACKSLASHES;
        // A byte's high bit is set where it is zero (`quote`, `backslash`) or below 0x20
        // (`word`). Borrows can only flag bytes after a truly flagged one, so the lowest flag,
        // the first byte in memory, is exact.
        let stops = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (word.wrapping_sub(SPACES) & !word))
            & HIGHS;
        if stops != 0 {
            // trailing_zeros / 8 is below 8: the cast is exact.
            return at + (stops.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    let tail = chunks.remainder();
    at + tail.iter().position(|&b| is_stop(b)).unwrap_or(tail.len())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn naive(bytes: &[u8]) -> usize {
        bytes
            .iter()
            .position(|&b| is_stop(b))
            .unwrap_or(bytes.len())
    }

    #[test]
    fn stops_at_quotes_backslashes_and_control_characters_only() {
        assert_eq!(plain_run_len(b""), 0);
        assert_eq!(plain_run_len(b"plain text, no stop"), 19);
        assert_eq!(plain_run_len(b"0123456789\"x"), 10);
        assert_eq!(plain_run_len(b"01234567\\"), 8);
        assert_eq!(plain_run_len(b"\x1f"), 0);
        let unicode = "caf\u{e9} \u{1f600} \x7f!";
        assert_eq!(plain_run_len(unicode.as_bytes()), unicode.len());
        // A stop right after bytes that borrow in the bit trick.
        assert_eq!(plain_run_len(b"\x00\"\x1f\x00\\\x01\x02\x03"), 0);
        assert_eq!(plain_run_len(b"abc\x21\x23\x5b\x5d\"zz"), 7);
    }

    proptest! {
        #[test]
        fn agrees_with_a_byte_loop(bytes in prop::collection::vec(
            prop_oneof![any::<u8>(), Just(b'"'), Just(b'\\'), Just(b'a'), Just(0x20u8), Just(0x1fu8)],
            0..64,
        )) {
            prop_assert_eq!(plain_run_len(&bytes), naive(&bytes));
        }
    }
}
