//! `cargo xtask`: project automation for aiperf, run through the alias in `.cargo/config.toml`.
//!
//! - `cargo xtask list-plugins [--features F...] [--json]`: without building, every plugin crate
//!   of the workspace and of aiperf-cli's dependency graph, what it declares, whether the given
//!   features enable it, which builtin it overrides, and conflicts ([`list_plugins`]).
//! - `cargo xtask new-plugin NAME --category endpoint --name chat [--path DIR]`: scaffolds a
//!   working plugin crate ([`new_plugin`]).
//! - `cargo xtask bench [--quick] [--json FILE]`: the whole-client benchmark against the mock
//!   server, pinned to separate cores: accuracy, capacity, memory, start-up, idle cost
//!   ([`bench`](mod@bench)).
//! - `cargo xtask soak [--requests N] [--concurrency C]`: a million streamed requests against
//!   the mock server at zero latency: the record count is exact and the client's memory, at 10%
//!   and 100% of the requests, is reported ([`soak`]).
//! - `cargo xtask e2e`: the plugin flow of DESIGN.md §3 end to end, as a user runs it, on a copy
//!   of the workspace ([`e2e`]).
//!
//! The plugin-metadata logic is the one `aiperf-cli/build.rs` uses, included from
//! `aiperf-cli/build/plugin_manifest.rs`, so the report and the build cannot disagree.

mod bench;
mod e2e;
mod list_plugins;
mod new_plugin;
// Shared with aiperf-cli/build.rs, which uses other parts of it.
#[allow(dead_code)]
#[path = "../../aiperf-cli/build/plugin_manifest.rs"]
mod plugin_manifest;
mod soak;
mod workspace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "aiperf project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List plugin crates, what they declare and override, and conflicts, without building.
    ListPlugins(list_plugins::Args),
    /// Scaffold a plugin crate implementing one registry name.
    NewPlugin(new_plugin::Args),
    /// Run the plugin flow end to end on a copy of the workspace (scaffold, add, override,
    /// conflict, pin, broken type path).
    E2e(e2e::Args),
    /// Benchmark the release client against the mock server: accuracy, capacity, memory,
    /// start-up and idle cost, each against its target (docs/performance.md).
    Bench(bench::Args),
    /// Send a million requests to the mock server at zero latency: every record kept, the
    /// client's peak memory at 10% and 100% of the requests.
    Soak(soak::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::ListPlugins(args) => list_plugins::run(args),
        Command::NewPlugin(args) => new_plugin::run(args),
        Command::E2e(args) => e2e::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Soak(args) => soak::run(args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
