//! One module per subcommand; each exposes its clap arguments and a `run` returning the exit code.

pub mod bench;
pub mod bench_offline;
pub mod bench_one_batch;
pub mod bench_one_batch_server;
pub mod bench_slo;
pub mod bench_sweep;
pub mod dataset_args;
mod embedded;
pub mod generate;
pub mod perf_dump;
pub mod profile;
pub mod report;
pub mod send_one;
pub mod serve;
pub mod server_flags;
pub mod serving_args;
pub mod shard_args;
pub mod steady_state_args;
pub mod trace;
pub mod trace_explain;
pub mod value_parsers;

/// Logs go to stderr through `tracing`; `RUST_LOG` overrides the default `info` level.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
