//! The `inferperf` command line: parse flags (clap), call a library, print.
//!
//! Each subcommand lives in its own module under `cli/` with an `Args` type and a `run` function,
//! so that commands can grow without touching each other.

mod cli;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Benchmark and profile LLM and diffusion inference servers (SGLang/vLLM compatible).
#[derive(Parser)]
#[command(name = "inferperf", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: variant size differences do not matter, boxing would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the reference inference server (a real transformer engine on CPU).
    Serve(cli::serve::ServeArgs),
    /// Benchmarks: online serving, one batch, offline, sweeps, SLO search, client calibration.
    #[command(subcommand)]
    Bench(cli::bench::BenchCommand),
    /// Drive server-side profiling (`python -m sglang.profiler`).
    Profile(cli::profile::Args),
    /// Send one request, optionally profiled (`python -m sglang.test.send_one`).
    SendOne(cli::send_one::Args),
    /// Analyze profiler traces: merge, summary, ranks, trim, diff.
    #[command(subcommand)]
    Trace(cli::trace::TraceCommand),
    /// Generate an image or video with the diffusion pipeline (`sglang generate`).
    Generate(cli::generate::Args),
    /// Inspect and compare diffusion perf dumps (`--perf-dump-path` files).
    #[command(subcommand)]
    PerfDump(cli::perf_dump::PerfDumpCommand),
    /// Reports from experiment folders and result files: excel, plot, html.
    #[command(subcommand)]
    Report(cli::report::ReportCommand),
}

fn main() -> std::process::ExitCode {
    cli::init_logging();
    // The matches are kept for the commands that ask whether a flag was given.
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Serve(args) => cli::serve::run(args),
        Command::Bench(cmd) => cli::bench::run(cmd, matches.subcommand_matches("bench")),
        Command::Profile(args) => cli::profile::run(args),
        Command::SendOne(args) => cli::send_one::run(args),
        Command::Trace(cmd) => cli::trace::run(cmd),
        Command::Generate(args) => cli::generate::run(args),
        Command::PerfDump(cmd) => cli::perf_dump::run(cmd),
        Command::Report(cmd) => cli::report::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
