//! `inferperf bench slo`: capacity search -- the highest request rate (or concurrency) at which
//! every SLO holds, found by doubling then bisection over `bench serving` probes. Takes every
//! `bench serving` flag for the workload; without a URL it starts the embedded reference server.

use std::process::ExitCode;

use super::serving_args::ServingArgs;
use anyhow::Context;
use inferperf_bench::serving::ServingContext;
use inferperf_bench::slo::{parse_slos, search, Mode, SearchOptions};
use inferperf_loadgen::cpu::ThreadCpu;
use inferperf_loadgen::runner::Abort;
use inferperf_server::ServerConfig;

use super::embedded::Embedded;

/// `bench slo` flags.
#[derive(clap::Args)]
pub struct Args {
    /// The workload and the target (`bench serving` flags).
    #[command(flatten)]
    pub bench: ServingArgs,
    /// Comma-separated `STAT_METRIC_ms<=LIMIT` (stats mean, median, p90, p95, p99, max;
    /// metrics ttft, tpot, itl, e2e_latency), e.g. `p99_ttft_ms<=500,p99_tpot_ms<=50`.
    #[arg(long)]
    pub slo: String,
    /// Search over the request rate (open loop) or the concurrency (closed loop).
    #[arg(long, value_enum, default_value = "rate")]
    pub mode: Mode,
    /// First load probed.
    #[arg(long, default_value_t = 1.0)]
    pub start: f64,
    /// Highest load probed.
    #[arg(long, default_value_t = 1024.0)]
    pub max_load: f64,
    /// Stop when the bracket (fail - pass) / pass is at most this.
    #[arg(long, default_value_t = 0.05)]
    pub precision: f64,
    #[arg(long, default_value_t = 16)]
    pub max_probes: usize,
    /// Requests per probe: max(--min-requests, load x this many seconds).
    #[arg(long, default_value_t = 20.0)]
    pub seconds_per_probe: f64,
    #[arg(long, default_value_t = 50)]
    pub min_requests: usize,
    /// Judge each probe on its steady-state window (latencies of the requests that started
    /// and ended inside it, completion rate inside it) instead of the whole run.
    #[arg(long, help_heading = "Steady state")]
    pub use_steady_state: bool,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let slos = parse_slos(&a.slo).context("bench slo")?;
    let mut serving = a.bench.to_config();
    serving.steady_state.use_in_aggregates = a.use_steady_state;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let (server, base_url, tokenizer) = match serving.explicit_base_url() {
        Some(u) => (None, u, None),
        None => {
            let s = Embedded::start(ServerConfig::ephemeral(), None)?;
            let u = s.base_url();
            println!("Started the embedded reference server at {u}");
            let tok = s.tokenizer();
            (Some(s), u, Some(tok))
        }
    };
    let make_ctx = || ServingContext {
        base_url: base_url.clone(),
        tokenizer: tokenizer.clone(),
        client_threads: 1,
        cpu: ThreadCpu::default(),
        abort: Abort::default(),
        calibration: None,
        print: false,
    };
    let options = SearchOptions {
        mode: a.mode,
        slos,
        start: a.start,
        max_load: a.max_load,
        precision: a.precision,
        max_probes: a.max_probes,
        seconds_per_probe: a.seconds_per_probe,
        min_requests: a.min_requests,
    };
    let result = runtime.block_on(search(&options, &serving, &make_ctx, None));
    drop(server);
    let knee = result.context("bench slo")?;
    let unit = match a.mode {
        Mode::Rate => "req/s",
        Mode::Concurrency => "concurrent requests",
    };
    match (knee.load, knee.first_failing) {
        (Some(p), Some(f)) => println!(
            "Capacity: {p:.2} {unit} meets every SLO; {f:.2} does not (knee in [{p:.2}, {f:.2}], {} probes)",
            knee.probes.len()
        ),
        (Some(p), None) => println!(
            "Every probe up to {p:.2} {unit} met the SLOs (raise --max-load to find the knee)"
        ),
        (None, Some(f)) => println!("No probed load met the SLOs (the lowest tried: {f:.2} {unit})"),
        (None, None) => println!("No probe ran"),
    }
    Ok(if knee.load.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
