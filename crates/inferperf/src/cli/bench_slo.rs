//! `inferperf bench slo`: capacity search for the highest load that meets every SLO.
//!
//! Skeleton: flags and the library call are filled in by the issue that owns this command.

use std::process::ExitCode;

/// `bench slo` flags.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`bench slo` is not implemented yet")
}
