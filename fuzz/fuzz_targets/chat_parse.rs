//! Fuzz target `chat_parse`: the builtin `chat` endpoint's `parse_response` on any bytes. The
//! oracle is `aiperf_fuzz::endpoints::check` (see there); the committed corpus is
//! `fuzz/corpus/chat_parse/`.

#![no_main]

use aiperf_fuzz::endpoints::{Target, check};

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(Target::Chat, data));
