//! `inferperf trace explain`: flags to [`inferperf_trace::explain`] and its tables/JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use inferperf_trace::explain::{explain, ExplainOptions};

use super::trace::OutputArgs;

#[derive(clap::Args)]
pub struct ExplainArgs {
    /// The client request trace (`bench serving --request-trace FILE`, or
    /// `client-requests.json` next to the server's traces after `--profile`).
    client: PathBuf,
    /// The reference server's profiler traces (rank 0; by-stage files are joined).
    #[arg(conflicts_with = "request_log")]
    server_traces: Vec<PathBuf>,
    /// The reference server's `serve --log-requests` file instead of traces.
    #[arg(long, value_name = "FILE")]
    request_log: Option<PathBuf>,
    /// Slowest requests listed per measure (TTFT, largest chunk gap, E2E).
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Delaying steps named per slow request (in --json; the table shows the first).
    #[arg(long, default_value_t = 5)]
    steps_per_request: usize,
    #[command(flatten)]
    out: OutputArgs,
}

pub fn run(a: ExplainArgs) -> anyhow::Result<ExitCode> {
    let rep = explain(&ExplainOptions {
        client: a.client.clone(),
        request_log: a.request_log,
        server_traces: a.server_traces,
        top: a.top,
        steps_per_request: a.steps_per_request,
    })
    .with_context(|| format!("trace explain {}", a.client.display()))?;
    if !a.out.json {
        println!(
            "Explained {} requests; server side: {}",
            rep.requests.len(),
            rep.server_source
        );
        for n in &rep.notes {
            println!("Note: {n}");
        }
    }
    let tables = rep.tables();
    super::trace::print(
        &a.out,
        || serde_json::to_string_pretty(&rep).context("serialize the report"),
        tables,
    )
}
