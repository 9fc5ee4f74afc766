//! Replays the committed fuzz corpora of the builtin endpoints' response parsers
//! (`fuzz/corpus/<endpoint>_parse/`) through the fuzz targets' own check, so that `cargo test`
//! holds every input the fuzzer kept, and every crash it found, to the same oracle, with no
//! fuzzer or nightly compiler. The check lives in `fuzz/src/endpoints.rs`, one copy shared
//! with the fuzz targets (see `fuzz/README.md`).

#[path = "../../fuzz/src/endpoints.rs"]
mod endpoints;
#[path = "../../fuzz/src/replay.rs"]
mod replay;

use std::path::Path;

#[test]
fn every_endpoint_corpus_parses_by_the_contract() {
    let corpora = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for target in endpoints::Target::all() {
        replay::replay(&corpora, target.name(), |data| {
            endpoints::check(target, data)
        });
    }
}
