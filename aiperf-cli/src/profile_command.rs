//! In progress.

/// Arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct ProfileArgs {}

/// Runs the command.
pub(crate) fn run(_args: ProfileArgs) -> anyhow::Result<u8> {
    anyhow::bail!("not built yet")
}
