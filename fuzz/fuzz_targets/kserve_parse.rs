//! Fuzz target `kserve_parse`: the builtin `kserve` endpoint's `parse_response` (unary and streamed
//! protobuf messages) on any bytes. The oracle is `aiperf_fuzz::endpoints::check` (see there); the
//! committed corpus is `fuzz/corpus/kserve_parse/`.

#![no_main]

use aiperf_fuzz::endpoints::{Target, check};

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(Target::KServe, data));
