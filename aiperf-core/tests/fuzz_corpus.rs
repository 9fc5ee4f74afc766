//! Replays the committed fuzz corpora of the SSE parser and the dataset line parsers
//! (`fuzz/corpus/sse/`, `fuzz/corpus/dataset_lines/`) through the fuzz targets' own checks, so
//! that `cargo test` holds every input the fuzzer kept, and every crash it found, to the same
//! oracle, with no fuzzer or nightly compiler. The checks live in `fuzz/src/`, one copy each,
//! shared with the fuzz targets (see `fuzz/README.md`).

#[path = "../../fuzz/src/dataset_lines.rs"]
mod dataset_lines;
#[path = "../../fuzz/src/replay.rs"]
mod replay;
#[path = "../../fuzz/src/sse.rs"]
mod sse;

use std::path::{Path, PathBuf};

fn corpora() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

#[test]
fn the_sse_corpus_splits_alike_everywhere() {
    replay::replay(&corpora(), "sse", sse::check);
}

#[test]
fn the_dataset_lines_corpus_parses_by_the_rules() {
    replay::replay(&corpora(), "dataset_lines", dataset_lines::check);
}
