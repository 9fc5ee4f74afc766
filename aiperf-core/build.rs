//! Lays out the builtin tokenizer's vocabulary (tiktoken's o200k_base) as the blobs the
//! runtime reads in place (see `src/tokenizer/o200k/vocabulary.rs`, which this script includes
//! so that both sides share one layout and one hash).
//!
//! The vocabulary comes from tiktoken-rs, a build-dependency: the script builds its o200k_base
//! encoder, reads each rank's bytes back, and writes `OUT_DIR/o200k_base/{bytes,starts,slots}`.
//! The repository keeps no copy of the vocabulary and the binary carries no tiktoken-rs.

use std::path::PathBuf;

#[path = "src/tokenizer/o200k/vocabulary.rs"]
mod vocabulary;

use vocabulary::VocabularyBlobs;

/// o200k_base's ordinary tokens have ranks `0..TOKENS`; its special tokens (`<|endoftext|>`
/// 199999, `<|endofprompt|>` 200018) are never counted in ordinary text and stay out.
const TOKENS: u32 = 199_998;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=src/tokenizer/o200k/vocabulary.rs");

    let bpe = tiktoken_rs::o200k_base().expect("tiktoken-rs builds its own o200k_base");
    let tokens: Vec<Vec<u8>> = bpe
        ._decode_native_and_split((0..TOKENS).collect())
        .collect();
    // The rank after the last must be unknown, or the vocabulary grew and TOKENS is stale.
    let after = bpe
        .decode(vec![TOKENS])
        .expect_err("o200k_base has no rank after its last ordinary token")
        .to_string();
    assert!(
        after.contains("Invalid token"),
        "rank {TOKENS} should be unknown to o200k_base, got {after:?}: update TOKENS"
    );

    let blobs = VocabularyBlobs::build(&tokens);
    let vocabulary = blobs.vocabulary();
    assert_eq!(vocabulary.len(), tokens.len());
    for (rank, token) in (0..).zip(&tokens) {
        assert_eq!(vocabulary.token(rank), token.as_slice());
        assert_eq!(vocabulary.rank(token), Some(rank), "rank {rank} is found");
    }
    for byte in 0..=u8::MAX {
        assert!(vocabulary.rank(&[byte]).is_some(), "byte {byte} is a token");
    }

    let dir =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("o200k_base");
    std::fs::create_dir_all(&dir).expect("OUT_DIR is writable");
    for (name, blob) in [
        ("bytes", &blobs.bytes),
        ("starts", &blobs.starts),
        ("slots", &blobs.slots),
    ] {
        std::fs::write(dir.join(name), blob).expect("OUT_DIR is writable");
    }
}
