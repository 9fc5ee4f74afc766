//! Generates the plugin override table of the `aiperf` binary (DESIGN.md §3).
//!
//! Reads the resolved dependency graph with `cargo metadata` (with this build's features), finds
//! every linked crate declaring `[package.metadata.aiperf.plugins.<category>]`, checks the
//! declarations and the `[package.metadata.aiperf.select]` pins of aiperf-cli's own Cargo.toml,
//! and writes `OUT_DIR/plugin_table.rs`, which `src/plugin_table.rs` includes. Bad metadata fails
//! the build with `cargo::error=` messages naming the crate, the key and the way out; a type that
//! does not exist or lacks the trait fails compilation of the generated table, on a line naming
//! the crate and key.
//!
//! The logic is in `build/plugin_manifest.rs` (shared with `cargo xtask list-plugins`) and
//! `build/plugin_table_gen.rs`; this file does the I/O.
//!
//! With the `grpc` feature it also generates the mock server's KServe v2 gRPC service
//! (`build/kserve_service_gen.rs`), from the descriptors aiperf-endpoints compiled.

// Shared with `cargo xtask list-plugins`, which uses other parts of it.
#[allow(dead_code)]
#[path = "build/plugin_manifest.rs"]
mod plugin_manifest;
#[path = "build/plugin_table_gen.rs"]
mod plugin_table_gen;
// The mock server's KServe v2 gRPC service; independent of the plugin table.
#[cfg(feature = "grpc")]
#[path = "build/kserve_service_gen.rs"]
mod kserve_service_gen;

use std::collections::BTreeSet;
use std::env;
use std::path::{Path, PathBuf};

use cargo_metadata::{CargoOpt, Metadata, MetadataCommand};

use plugin_manifest::{Builtin, PluginCrate, PluginError};
use plugin_table_gen::LinkedPlugin;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=build");
    println!("cargo::rerun-if-changed=Cargo.toml");
    println!("cargo::rerun-if-env-changed=CARGO_NET_OFFLINE");
    if let Err(message) = run() {
        for line in message.lines() {
            println!("cargo::error={line}");
        }
    }
    #[cfg(feature = "grpc")]
    if let Err(message) =
        env_var("OUT_DIR").and_then(|out_dir| kserve_service_gen::generate(Path::new(&out_dir)))
    {
        for line in message.lines() {
            println!("cargo::error={line}");
        }
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env_var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env_var("OUT_DIR")?);
    let features = enabled_features()?;
    let metadata = query_metadata(&manifest_dir.join("Cargo.toml"), &features)?;

    let workspace_root = metadata.workspace_root.as_std_path();
    for file in ["Cargo.lock", "Cargo.toml"] {
        let path = workspace_root.join(file);
        if path.exists() {
            println!("cargo::rerun-if-changed={}", path.display());
        }
    }

    let root = metadata
        .resolve
        .as_ref()
        .and_then(|r| r.root.clone())
        .ok_or("cargo metadata reported no root package for aiperf-cli")?;
    let root_package = metadata
        .packages
        .iter()
        .find(|p| p.id == root)
        .ok_or("cargo metadata did not list aiperf-cli's own package")?;
    let root_name = root_package.name.to_string();

    let mut errors: Vec<PluginError> = Vec::new();
    let mut plugins: Vec<(PluginCrate, String)> = Vec::new();
    let mut builtins: Vec<Builtin> = Vec::new();
    for reached in plugin_manifest::normal_dependency_closure(&metadata, &root) {
        let package = reached.package;
        if plugin_manifest::depends_on_core(package) {
            let (found, src) = plugin_manifest::scan_builtins(package).map_err(|e| {
                format!(
                    "cannot read the sources of `{}` to find its builtins: {e}",
                    package.name
                )
            })?;
            builtins.extend(found);
            if let Some(src) = src {
                println!("cargo::rerun-if-changed={}", src.display());
            }
        }
        match plugin_manifest::read_plugin_crate(package) {
            Ok(None) => continue,
            Ok(Some(plugin)) => {
                println!("cargo::rerun-if-changed={}", plugin.manifest_path.display());
                match reached.extern_name {
                    Some(name) => plugins.push((plugin, name)),
                    None => errors.push(PluginError::NotDirect {
                        krate: plugin.package,
                        via: format!("{root_name} -> {}", reached.via.join(" -> ")),
                        root: root_name.clone(),
                    }),
                }
            }
            Err(found) => {
                println!("cargo::rerun-if-changed={}", package.manifest_path);
                errors.extend(found);
            }
        }
    }
    let pins = plugin_manifest::read_pins(root_package).unwrap_or_else(|found| {
        errors.extend(found);
        Vec::new()
    });
    let crates: Vec<PluginCrate> = plugins.iter().map(|(p, _)| p.clone()).collect();
    errors.extend(plugin_manifest::select(&crates, &builtins, &pins, &root_name).errors);
    if !errors.is_empty() {
        return Err(render_errors(&errors));
    }

    let linked: Vec<LinkedPlugin<'_>> = plugins
        .iter()
        .map(|(plugin, extern_name)| LinkedPlugin {
            plugin,
            extern_name,
        })
        .collect();
    let table = plugin_table_gen::render_plugin_table(&linked, &pins, &features);
    write_if_changed(&out_dir.join("plugin_table.rs"), &table)
}

fn env_var(name: &str) -> Result<String, String> {
    env::var(name).map_err(|_| format!("cargo did not set {name} for the build script"))
}

/// The features of this build, as cargo passes them (`CARGO_CFG_FEATURE`, set by every cargo
/// this crate's rust-version allows).
fn enabled_features() -> Result<Vec<String>, String> {
    let list = env::var("CARGO_CFG_FEATURE").map_err(|_| {
        "CARGO_CFG_FEATURE is not set: build aiperf-cli with the cargo of its rust-version (1.95) or newer"
            .to_owned()
    })?;
    let features: BTreeSet<String> = list
        .split(',')
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(features.into_iter().collect())
}

/// Runs `cargo metadata` on aiperf-cli with exactly this build's features, for this build's
/// target platform.
///
/// The outer cargo has already resolved and downloaded what this platform needs and written the
/// lock file, but it does not tell build scripts whether it was run with `--offline` or
/// `--locked`. So the first attempt is `--offline --locked`: no network, no write to Cargo.lock.
/// Only if that fails (no lock file, as in a crate unpacked without one) is it retried without
/// them, unless offline mode was asked for through `CARGO_NET_OFFLINE`.
fn query_metadata(manifest: &Path, features: &[String]) -> Result<Metadata, String> {
    let target = env_var("TARGET")?;
    let command = |extra: &[&str]| {
        let mut command = MetadataCommand::new();
        command
            .manifest_path(manifest)
            .features(CargoOpt::NoDefaultFeatures)
            .features(CargoOpt::SomeFeatures(features.to_vec()));
        let mut options = vec!["--filter-platform".to_owned(), target.clone()];
        options.extend(extra.iter().map(|s| (*s).to_owned()));
        command.other_options(options);
        command
    };
    let first = match command(&["--offline", "--locked"]).exec() {
        Ok(metadata) => return Ok(metadata),
        Err(err) => err,
    };
    let offline = env::var("CARGO_NET_OFFLINE").is_ok_and(|v| v == "true" || v == "1");
    let retry: &[&str] = if offline { &["--offline"] } else { &[] };
    match command(retry).exec() {
        Ok(metadata) => {
            println!(
                "cargo::warning=`cargo metadata --offline --locked` failed ({}); used `cargo metadata{}` instead",
                one_line(&first.to_string()),
                if offline { " --offline" } else { "" }
            );
            Ok(metadata)
        }
        Err(second) => Err(format!(
            "cannot read aiperf-cli's dependency graph with `cargo metadata`, so the plugin table cannot be generated.\n\
             first attempt (--offline --locked): {}\n\
             second attempt: {}\n\
             Run `cargo metadata --manifest-path {}` to see the problem.\n\
             When `cargo package` or `cargo publish` verifies aiperf-cli together with unpublished crates of its \
             workspace, the nested cargo cannot see them: publish aiperf-core, aiperf-endpoints, aiperf-transports \
             and the plugin crates first, or pass --no-verify.",
            one_line(&first.to_string()),
            one_line(&second.to_string()),
            manifest.display()
        )),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn render_errors(errors: &[PluginError]) -> String {
    let mut out = format!(
        "the plugin metadata of aiperf-cli's dependencies is invalid ({} problem{}):",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    for error in errors {
        out.push_str("\n- ");
        out.push_str(&error.to_string().replace('\n', "\n  "));
    }
    out.push_str("\nSee docs/writing-a-plugin.md; `cargo xtask list-plugins` shows the plugins and their selection.");
    out
}

fn write_if_changed(path: &Path, contents: &str) -> Result<(), String> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == contents) {
        return Ok(());
    }
    std::fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
