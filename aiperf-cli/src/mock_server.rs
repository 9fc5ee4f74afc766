//! In progress.

/// Arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct MockServerArgs {}

/// Runs the command.
pub(crate) fn run(_args: MockServerArgs) -> anyhow::Result<u8> {
    anyhow::bail!("not built yet")
}
