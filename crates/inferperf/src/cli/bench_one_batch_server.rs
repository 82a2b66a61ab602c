//! `inferperf bench one-batch-server`: one batched request per case through a running server (SGLang `bench_one_batch_server`).
//!
//! Skeleton: flags and the library call are filled in by the issue that owns this command.

use std::process::ExitCode;

/// `bench one-batch-server` flags.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`bench one-batch-server` is not implemented yet")
}
