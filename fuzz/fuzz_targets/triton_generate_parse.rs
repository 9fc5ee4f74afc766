//! Fuzz target `triton_generate_parse`: the builtin `triton_generate` endpoint's `parse_response`
//! on any bytes. The oracle is `aiperf_fuzz::endpoints::check` (see there); the committed corpus is
//! `fuzz/corpus/triton_generate_parse/`.

#![no_main]

use aiperf_fuzz::endpoints::{Target, check};

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(Target::TritonGenerate, data));
