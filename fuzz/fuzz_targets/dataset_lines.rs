//! Fuzz target `dataset_lines`: the `single_turn`, `multi_turn` and `mooncake_trace` line parsers
//! on any line. The oracle is `aiperf_fuzz::dataset_lines::check` (see there); the committed corpus
//! is `fuzz/corpus/dataset_lines/`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aiperf_fuzz::dataset_lines::check(data));
