//! `inferperf bench offline`: offline throughput of the in-process engine over a dataset (SGLang `bench_offline_throughput`).
//!
//! Skeleton: flags and the library call are filled in by the issue that owns this command.

use std::process::ExitCode;

/// `bench offline` flags.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`bench offline` is not implemented yet")
}
