//! `inferperf bench ...` subcommands (not implemented yet).

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Placeholder until the first subcommand lands.
    Todo,
}

pub fn run(_cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`bench` is not implemented yet")
}
