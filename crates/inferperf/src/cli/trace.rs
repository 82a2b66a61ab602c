//! `inferperf trace ...` subcommands (not implemented yet).

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum TraceCommand {
    /// Placeholder until the first subcommand lands.
    Todo,
}

pub fn run(_cmd: TraceCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`trace` is not implemented yet")
}
