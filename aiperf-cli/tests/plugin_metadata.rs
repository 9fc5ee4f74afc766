//! Unit tests of build.rs's logic: the metadata reader and selection rules
//! (`build/plugin_manifest.rs`, shared with `cargo xtask list-plugins`) and the table generator
//! (`build/plugin_table_gen.rs`). Build scripts cannot have tests of their own, so their modules
//! are included here; their `#[cfg(test)]` tests run as part of this test binary.

#[allow(dead_code)]
#[path = "../build/plugin_manifest.rs"]
mod plugin_manifest;
#[path = "../build/plugin_table_gen.rs"]
mod plugin_table_gen;

use aiperf_core::registries::{PluginTable, Registries};

/// build.rs knows the categories without depending on aiperf-core; they must stay the same list.
#[test]
fn build_script_categories_match_the_registries() {
    let registries = Registries::discover(&PluginTable::EMPTY).expect("no plugins, no conflict");
    let runtime: Vec<&str> = registries.categories().iter().map(|c| c.name()).collect();
    let build: Vec<&str> = plugin_manifest::CATEGORIES.iter().map(|c| c.name).collect();
    assert_eq!(build, runtime);
}
