//! The byte sequence -> rank table of a byte-pair-encoding vocabulary, laid out as three flat
//! byte blobs that need no work to use: the build script (`aiperf-core/build.rs`, which
//! includes this file) computes them once from tiktoken-rs's o200k_base, and the builtin
//! tokenizer reads them in place from the binary with `include_bytes!`. Nothing is parsed,
//! hashed or allocated at start-up, and only the pages a lookup touches become resident.
//!
//! The blobs, all integers little-endian `u32`:
//!
//! - `bytes`: every token's bytes, concatenated in rank order;
//! - `starts`: `n + 1` offsets into `bytes`; token `r` is `bytes[starts[r]..starts[r + 1]]`;
//! - `slots`: an open-addressing hash table (linear probing, a power of two of slots, at most
//!   half full). An empty slot is 0; a full one is `tag << RANK_BITS | (rank + 1)`, where the
//!   tag holds bits of the hash that the slot index does not, so that most probes of other
//!   tokens are rejected without reading their bytes.
//!
//! In DESIGN.md §4's data flow this is the lookup under the builtin tokenizer's counts
//! (prompt lengths in the dataset stage, output counts after the run).

/// Bits of a slot holding `rank + 1`; the rest hold the tag.
pub(crate) const RANK_BITS: u32 = 18;

/// The mask of a slot's `rank + 1`.
const RANK_MASK: u32 = (1 << RANK_BITS) - 1;

/// The largest number of tokens a table holds (ranks up to `2^RANK_BITS - 2`).
pub(crate) const MAX_TOKENS: usize = RANK_MASK as usize;

/// The hash of a token's bytes, the same in the build script and at run time: a multiply-rotate
/// over 8-byte words (most tokens are one word) and a final avalanche, whose high bits pick the
/// slot and whose low bits make the tag.
pub(crate) fn hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mix = |h: u64, word: u64| (h ^ word).wrapping_mul(K).rotate_left(29);
    let mut h = bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        h = mix(
            h,
            u64::from_le_bytes(word.try_into().expect("chunks of 8 bytes")),
        );
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut word = [0; 8];
        word[..rest.len()].copy_from_slice(rest);
        h = mix(h, u64::from_le_bytes(word));
    }
    h ^= h >> 32;
    h = h.wrapping_mul(K);
    h ^ (h >> 29)
}

/// The tag bits of a slot for a token of hash `h`.
fn tag(h: u64) -> u32 {
    // The low bits of the hash, above the rank bits of the slot.
    (h as u32) << RANK_BITS
}

/// The `u32` at `index` of a little-endian blob.
fn word(blob: &[u8], index: usize) -> u32 {
    let at = index * 4;
    u32::from_le_bytes(blob[at..at + 4].try_into().expect("a 4-byte slice"))
}

/// A vocabulary's blobs, read in place.
#[derive(Clone, Copy)]
pub(crate) struct Vocabulary<'a> {
    bytes: &'a [u8],
    starts: &'a [u8],
    slots: &'a [u8],
    /// The shift taking a hash to its home slot (64 minus the slot-index bits).
    shift: u32,
    /// The mask wrapping a slot index.
    mask: usize,
}

impl std::fmt::Debug for Vocabulary<'_> {
    /// The number of tokens, not the blobs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vocabulary")
            .field("tokens", &self.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Vocabulary<'a> {
    /// A view of the three blobs (see the module docs).
    ///
    /// # Panics
    ///
    /// If the blobs are not laid out as [`VocabularyBlobs::build`] lays them out: the builtin
    /// tokenizer's come from the build script, so that is a build bug, not an input error.
    pub(crate) fn new(bytes: &'a [u8], starts: &'a [u8], slots: &'a [u8]) -> Self {
        let slot_count = slots.len() / 4;
        assert!(
            starts.len().is_multiple_of(4)
                && starts.len() >= 4
                && slots.len().is_multiple_of(4)
                && slot_count.is_power_of_two()
                && slot_count >= 2
                && word(starts, starts.len() / 4 - 1) as usize == bytes.len(),
            "the vocabulary blobs are laid out as VocabularyBlobs::build writes them"
        );
        Self {
            bytes,
            starts,
            slots,
            shift: 64 - slot_count.trailing_zeros(),
            mask: slot_count - 1,
        }
    }

    /// The number of tokens.
    pub(crate) fn len(&self) -> usize {
        self.starts.len() / 4 - 1
    }

    /// The bytes of the token of rank `rank` (`rank < self.len()`).
    pub(crate) fn token(&self, rank: u32) -> &'a [u8] {
        let rank = rank as usize;
        &self.bytes[word(self.starts, rank) as usize..word(self.starts, rank + 1) as usize]
    }

    /// The rank of the token whose bytes are `piece`, if there is one.
    pub(crate) fn rank(&self, piece: &[u8]) -> Option<u32> {
        let h = hash(piece);
        let tag = tag(h);
        let mut slot = (h >> self.shift) as usize;
        loop {
            // The table is at most half full, so the probe meets an empty slot.
            let entry = word(self.slots, slot);
            if entry == 0 {
                return None;
            }
            if entry & !RANK_MASK == tag {
                let rank = (entry & RANK_MASK) - 1;
                if self.token(rank) == piece {
                    return Some(rank);
                }
            }
            slot = (slot + 1) & self.mask;
        }
    }
}

/// The blobs of a vocabulary, built from its tokens in rank order.
pub(crate) struct VocabularyBlobs {
    /// Every token's bytes, concatenated in rank order.
    pub(crate) bytes: Vec<u8>,
    /// `n + 1` little-endian `u32` offsets into `bytes`.
    pub(crate) starts: Vec<u8>,
    /// The little-endian `u32` slots of the hash table.
    pub(crate) slots: Vec<u8>,
}

impl VocabularyBlobs {
    /// Lays out `tokens`, where `tokens[r]` is the token of rank `r`.
    ///
    /// # Panics
    ///
    /// If there are more than [`MAX_TOKENS`] tokens, more than 4 GiB of them, or two equal
    /// tokens: the build script feeds it a fixed vocabulary, so any of these is a build bug.
    #[cfg_attr(
        not(test),
        allow(
            dead_code,
            reason = "the build script builds the builtin table; unit tests build small ones"
        )
    )]
    pub(crate) fn build<T: AsRef<[u8]>>(tokens: &[T]) -> Self {
        assert!(tokens.len() <= MAX_TOKENS, "at most {MAX_TOKENS} tokens");
        let mut bytes = Vec::new();
        let mut starts = Vec::with_capacity((tokens.len() + 1) * 4);
        starts.extend_from_slice(&0u32.to_le_bytes());
        for token in tokens {
            bytes.extend_from_slice(token.as_ref());
            let end = u32::try_from(bytes.len()).expect("a vocabulary under 4 GiB");
            starts.extend_from_slice(&end.to_le_bytes());
        }
        let slot_count = (tokens.len() * 2).next_power_of_two().max(2);
        let shift = 64 - slot_count.trailing_zeros();
        let mut slots = vec![0u32; slot_count];
        for (rank, token) in (1u32..).zip(tokens) {
            let h = hash(token.as_ref());
            let mut slot = (h >> shift) as usize;
            while slots[slot] != 0 {
                let other = ((slots[slot] & RANK_MASK) - 1) as usize;
                assert!(
                    tokens[other].as_ref() != token.as_ref(),
                    "ranks {other} and {} have the same bytes",
                    rank - 1
                );
                slot = (slot + 1) & (slot_count - 1);
            }
            slots[slot] = tag(h) | rank;
        }
        Self {
            bytes,
            starts,
            slots: slots.iter().flat_map(|slot| slot.to_le_bytes()).collect(),
        }
    }

    /// A view of these blobs.
    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "the build script checks its table through it")
    )]
    pub(crate) fn vocabulary(&self) -> Vocabulary<'_> {
        Vocabulary::new(&self.bytes, &self.starts, &self.slots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_token_finds_its_rank_and_other_pieces_find_none() {
        let tokens: Vec<Vec<u8>> = (0u8..=255)
            .map(|b| vec![b])
            .chain(["he", "hello", "hello world, twelve bytes+", ""].map(|t| t.as_bytes().to_vec()))
            .collect();
        let blobs = VocabularyBlobs::build(&tokens);
        let vocabulary = blobs.vocabulary();
        assert_eq!(vocabulary.len(), tokens.len());
        for (rank, token) in (0u32..).zip(&tokens) {
            assert_eq!(vocabulary.token(rank), token.as_slice());
            assert_eq!(vocabulary.rank(token), Some(rank), "{token:?}");
        }
        for missing in ["hel", "hello ", "hello world, twelve bytes", "\u{e9}"] {
            assert_eq!(vocabulary.rank(missing.as_bytes()), None, "{missing:?}");
        }
    }

    #[test]
    fn an_empty_vocabulary_finds_nothing() {
        let blobs = VocabularyBlobs::build::<&[u8]>(&[]);
        assert_eq!(blobs.vocabulary().len(), 0);
        assert_eq!(blobs.vocabulary().rank(b"a"), None);
    }

    #[test]
    #[should_panic(expected = "have the same bytes")]
    fn equal_tokens_are_refused() {
        VocabularyBlobs::build(&["ab", "ab"]);
    }
}
