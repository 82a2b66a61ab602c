//! `inferperf perf-dump ...` subcommands (not implemented yet).

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum PerfDumpCommand {
    /// Placeholder until the first subcommand lands.
    Todo,
}

pub fn run(_cmd: PerfDumpCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`perf-dump` is not implemented yet")
}
