//! Replaying a committed fuzz corpus through its target's check, as an ordinary test.
//!
//! The corpus-replay tests (`aiperf-core/tests/fuzz_corpus.rs`,
//! `aiperf-endpoints/tests/fuzz_corpus.rs`,
//! `plugins/nvidia-optimized-endpoints/tests/fuzz_corpus.rs`) include this file with `#[path]`
//! and call [`replay`] once per corpus, so CI checks every input the fuzzer kept (and every
//! crash it ever found, which is kept in the corpus) without cargo-fuzz or a nightly compiler.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

/// Runs `check` on every file of `fuzz/corpus/<target>/` (`corpora` is the `fuzz/corpus`
/// directory); panics naming the first file that fails, or when the corpus is missing or
/// empty. Returns how many inputs were checked.
pub fn replay(corpora: &Path, target: &str, check: impl Fn(&[u8])) -> usize {
    let dir = corpora.join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|error| {
        panic!(
            "cannot read the corpus {}: {error} (it is committed with the fuzz targets)",
            dir.display()
        )
    });
    let mut paths: Vec<_> = entries
        .map(|entry| entry.expect("a readable corpus directory").path())
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "the corpus {} is empty", dir.display());
    for path in &paths {
        let data = std::fs::read(path)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
        if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
            panic!(
                "{} fails the `{target}` check (the panic above says why); reproduce it with \
                 `cargo fuzz run {target} {}` in fuzz/",
                path.display(),
                path.display()
            );
        }
    }
    paths.len()
}
