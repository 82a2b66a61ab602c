//! `inferperf bench one-batch-server`: one batched request per case through a server (SGLang
//! `bench_one_batch_server`). Without `--base-url` it starts the reference server in this
//! process from the `serve` model flags (with the profiler), like SGLang launches one.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use inferperf_bench::one_batch_server::{self, Options, ProfileOptions, ServerBackend};
use inferperf_server::{EmbeddedServer, ServerArgs};

/// `bench one-batch-server` flags: SGLang's `BenchArgs`, plus the `serve` flags for the
/// embedded server.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Server to benchmark; empty starts the embedded reference server.
    #[arg(long, default_value = "")]
    pub base_url: String,
    #[arg(long, value_enum, default_value = "sglang")]
    pub backend: ServerBackend,
    /// Model name for `--backend vllm`.
    #[arg(long, default_value = "default")]
    pub model: String,
    #[arg(long, default_value = "default")]
    pub run_name: String,
    #[arg(long, num_args = 1.., default_values_t = [1usize])]
    pub batch_size: Vec<usize>,
    #[arg(long, num_args = 1.., default_values_t = [1024usize])]
    pub input_len: Vec<usize>,
    #[arg(long, num_args = 1.., default_values_t = [16usize])]
    pub output_len: Vec<usize>,
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    #[arg(long)]
    pub return_logprob: bool,
    #[arg(long, default_value_t = 1)]
    pub client_stream_interval: usize,
    #[arg(long)]
    pub skip_warmup: bool,
    /// Print SGLang's markdown summary table.
    #[arg(long)]
    pub show_report: bool,
    /// Warm this fraction of every prompt into the prefix cache before each case.
    #[arg(long, default_value_t = 0.0)]
    pub cache_hit_rate: f64,
    #[arg(long, default_value = "result.jsonl")]
    pub result_filename: PathBuf,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Run every case again with a profile window (`bs-{bs}-il-{il}` prefixes).
    #[arg(long, help_heading = "Profiling")]
    pub profile: bool,
    /// Default CPU GPU (SGLang's); the embedded CPU server records CPU only.
    #[arg(long, num_args = 1.., help_heading = "Profiling")]
    pub profile_activities: Option<Vec<String>>,
    #[arg(long, help_heading = "Profiling")]
    pub profile_start_step: Option<u64>,
    #[arg(long, default_value_t = 5, help_heading = "Profiling")]
    pub profile_steps: u64,
    #[arg(long, help_heading = "Profiling")]
    pub profile_by_stage: bool,
    #[arg(long, help_heading = "Profiling")]
    pub profile_prefix: Option<String>,
    #[arg(long, help_heading = "Profiling")]
    pub profile_output_dir: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let embedded = a.base_url.is_empty();
    let server = if embedded {
        let mut args = a.server.clone();
        args.port = 0;
        let s = runtime
            .block_on(EmbeddedServer::start(args))
            .context("starting the embedded reference server")?;
        println!("Started the embedded reference server at {}", s.base_url());
        Some(s)
    } else {
        None
    };
    let base_url = match &server {
        Some(s) => s.base_url(),
        None => a.base_url.trim_end_matches('/').to_string(),
    };
    let activities = a.profile_activities.clone().unwrap_or_else(|| {
        if embedded {
            vec!["CPU".into()]
        } else {
            vec!["CPU".into(), "GPU".into()]
        }
    });
    let options = Options {
        base_url,
        backend: a.backend,
        model: a.model.clone(),
        run_name: a.run_name.clone(),
        batch_sizes: a.batch_size.clone(),
        input_lens: a.input_len.clone(),
        output_lens: a.output_len.clone(),
        temperature: a.temperature,
        return_logprob: a.return_logprob,
        client_stream_interval: a.client_stream_interval,
        cache_hit_rate: a.cache_hit_rate,
        skip_warmup: a.skip_warmup,
        show_report: a.show_report,
        profile: a.profile.then(|| ProfileOptions {
            activities,
            start_step: a.profile_start_step,
            steps: a.profile_steps,
            by_stage: a.profile_by_stage,
            prefix: a.profile_prefix.clone(),
            output_dir: a.profile_output_dir.clone(),
        }),
        result_filename: Some(a.result_filename.clone()),
        seed: a.seed,
        hourly_cost: 2.0 * a.server.tp_size as f64,
    };
    let result = runtime.block_on(one_batch_server::run(&options));
    if let Some(s) = server {
        if let Err(e) = runtime.block_on(s.shutdown()) {
            tracing::warn!("embedded server shutdown: {e}");
        }
    }
    let results = result.context("bench one-batch-server")?;
    if !results.is_empty() {
        println!("Results appended to {}", a.result_filename.display());
    }
    Ok(ExitCode::SUCCESS)
}
