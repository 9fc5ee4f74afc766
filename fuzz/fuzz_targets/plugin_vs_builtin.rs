//! Fuzz target `plugin_vs_builtin`: the nvidia-optimized-endpoints plugin reads any response
//! exactly as the builtin endpoints do. The oracle is `aiperf_fuzz::plugin_vs_builtin::check` (see
//! there); the committed corpus is `fuzz/corpus/plugin_vs_builtin/`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aiperf_fuzz::plugin_vs_builtin::check(data));
