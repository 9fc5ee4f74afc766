//! The checks behind aiperf's fuzz targets, one module per target family; each module is the
//! single copy of its target's oracle.
//!
//! The fuzz targets in `fuzz_targets/` are one-line calls into these modules. The same files
//! are included with `#[path]` by the corpus-replay tests that run as ordinary `cargo test`
//! (`aiperf-core/tests/fuzz_corpus.rs`, `aiperf-endpoints/tests/fuzz_corpus.rs`,
//! `plugins/nvidia-optimized-endpoints/tests/fuzz_corpus.rs`), so CI checks every committed
//! corpus input against exactly the oracle the fuzzer used, without a fuzzer or a nightly
//! compiler. That is why each module is self-contained (it names only the crates under test,
//! never `crate::`) and uses only their public APIs.
//!
//! See `fuzz/README.md` for how to run a target.

#![forbid(unsafe_code)]

pub mod dataset_lines;
pub mod endpoints;
pub mod plugin_vs_builtin;
pub mod replay;
pub mod sse;
