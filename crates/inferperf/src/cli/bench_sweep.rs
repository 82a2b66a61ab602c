//! `inferperf bench sweep` (alias `benchmark`): genai-bench-style grid of traffic scenarios x load points.
//!
//! Skeleton: flags and the library call are filled in by the issue that owns this command.

use std::process::ExitCode;

/// `bench sweep` flags.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`bench sweep` is not implemented yet")
}
