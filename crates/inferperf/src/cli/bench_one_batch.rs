//! `inferperf bench one-batch`: latency of one static batch on the in-process engine (SGLang `bench_one_batch`).
//!
//! Skeleton: flags and the library call are filled in by the issue that owns this command.

use std::process::ExitCode;

/// `bench one-batch` flags.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`bench one-batch` is not implemented yet")
}
