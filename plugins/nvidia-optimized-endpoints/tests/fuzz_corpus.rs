//! Replays the committed fuzz corpus of the differential target (`fuzz/corpus/plugin_vs_builtin/`)
//! and the corpora of the builtin chat, completions and embeddings parsers through the
//! differential check: the plugin must read every one of those inputs exactly as aiperf's
//! builtin endpoints do. The check lives in `fuzz/src/plugin_vs_builtin.rs`, one copy shared
//! with the fuzz target (see `fuzz/README.md`); it runs here, as an ordinary `cargo test`, with
//! no fuzzer or nightly compiler.

#[path = "../../../fuzz/src/plugin_vs_builtin.rs"]
mod plugin_vs_builtin;
#[path = "../../../fuzz/src/replay.rs"]
mod replay;

use std::path::Path;

#[test]
fn every_corpus_response_reads_the_same_with_the_plugin() {
    let corpora = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    for target in [
        "plugin_vs_builtin",
        "chat_parse",
        "completions_parse",
        "embeddings_parse",
    ] {
        replay::replay(&corpora, target, plugin_vs_builtin::check);
    }
}
