//! Fuzz target `sse`: the incremental SSE parser gives the same events however the stream is cut
//! into reads. The oracle is `aiperf_fuzz::sse::check` (see there); the committed corpus is
//! `fuzz/corpus/sse/`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aiperf_fuzz::sse::check(data));
