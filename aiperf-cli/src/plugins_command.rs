//! In progress.

/// Arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct PluginsArgs {}

/// Runs the command.
pub(crate) fn run(_args: PluginsArgs) -> anyhow::Result<u8> {
    anyhow::bail!("not built yet")
}
