//! `inferperf bench sweep` (alias `benchmark`): genai-bench's `benchmark` flags over the
//! `bench serving` engine; results in genai-bench's experiment folder layout. Without
//! `--api-base` it starts the embedded reference server.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use inferperf_bench::config::ServingConfig;
use inferperf_bench::scenario::Scenario;
use inferperf_bench::sweep::{self, LoadPoint, SweepOptions};
use inferperf_loadgen::backend::Backend;
use inferperf_loadgen::tokenizer::{HfTokenizer, SharedTokenizer};
use inferperf_server::ServerConfig;

use super::embedded::Embedded;

/// `bench sweep` flags (genai-bench names).
#[derive(clap::Args)]
pub struct Args {
    /// `openai`, `sglang` or `vllm` (all OpenAI-compatible chat completions).
    #[arg(long, default_value = "sglang", ignore_case = true, value_parser = ["openai", "sglang", "vllm"])]
    pub api_backend: String,
    /// Server base URL; without it the embedded reference server is started.
    #[arg(long)]
    pub api_base: Option<String>,
    #[arg(long)]
    pub api_key: Option<String>,
    /// Model name sent in requests (default: the server's).
    #[arg(long)]
    pub api_model_name: Option<String>,
    /// `tokenizer.json` (or its directory) for prompt lengths (default: the embedded server's).
    #[arg(long)]
    pub model_tokenizer: Option<PathBuf>,
    /// Only `text-to-text` is supported by this sweep.
    #[arg(long, default_value = "text-to-text")]
    pub task: String,
    /// Repeatable; genai-bench's grammar (D, N, U, ...). Default: genai-bench's chat set.
    #[arg(long)]
    pub traffic_scenario: Vec<String>,
    /// Closed-loop load points (repeatable). Default 1,2,4,...,256 when no --request-rate.
    #[arg(long, conflicts_with = "request_rate")]
    pub num_concurrency: Vec<usize>,
    /// Open-loop load points in requests per second (repeatable; not in genai-bench).
    #[arg(long)]
    pub request_rate: Vec<f64>,
    /// Minutes per load point (genai-bench's unit).
    #[arg(long, default_value_t = 10.0)]
    pub max_time_per_run: f64,
    #[arg(long, default_value_t = 100)]
    pub max_requests_per_run: usize,
    #[arg(long)]
    pub experiment_base_dir: Option<PathBuf>,
    #[arg(long)]
    pub experiment_folder_name: Option<String>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long)]
    pub server_engine: Option<String>,
    #[arg(long)]
    pub server_version: Option<String>,
    #[arg(long)]
    pub server_gpu_type: Option<String>,
    #[arg(long)]
    pub server_gpu_count: Option<String>,
    /// Profile each point on the server (genai-bench's SGLang profiling PR).
    #[arg(long, help_heading = "SGLang profiling")]
    pub sglang_profile: bool,
    #[arg(long, default_value_t = 5, help_heading = "SGLang profiling")]
    pub sglang_profile_steps: u64,
    #[arg(long, help_heading = "SGLang profiling")]
    pub sglang_profile_by_stage: bool,
    /// Comma-separated (CPU, GPU, MEM).
    #[arg(long, default_value = "CPU,GPU", help_heading = "SGLang profiling")]
    pub sglang_profile_activities: String,
    /// Default `<experiment folder>/profiles` (sent to the server).
    #[arg(long, help_heading = "SGLang profiling")]
    pub sglang_profile_output_dir: Option<PathBuf>,
    /// Copy the experiment folder to an object store: `file://DIR` (always), `s3://`, `gs://`,
    /// `az://` (builds with the `cloud-upload` feature).
    #[arg(long)]
    pub upload_results: Option<String>,
    /// Each point's throughputs and latency stats from its steady-state window (the
    /// requests that started and ended inside it) instead of the whole run; the run files
    /// then carry the window as `aggregated_metrics.steady_state`.
    #[arg(long, help_heading = "Steady state")]
    pub use_steady_state: bool,
    #[command(flatten)]
    pub steady_state: super::steady_state_args::SteadyStateArgs,
}

const DEFAULT_CHAT_SCENARIOS: [&str; 5] = [
    "N(480,240)/(300,150)",
    "D(100,100)",
    "D(100,1000)",
    "D(2000,200)",
    "D(7800,200)",
];

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    if a.task != "text-to-text" {
        bail!(
            "bench sweep --task {}: only text-to-text is supported (use bench serving for diffusion tasks)",
            a.task
        );
    }
    let scenario_texts: Vec<String> = if a.traffic_scenario.is_empty() {
        DEFAULT_CHAT_SCENARIOS
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        a.traffic_scenario.clone()
    };
    let scenarios = scenario_texts
        .iter()
        .map(|s| Scenario::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .context("--traffic-scenario")?;
    let loads: Vec<LoadPoint> = if !a.request_rate.is_empty() {
        a.request_rate.iter().map(|r| LoadPoint::Rate(*r)).collect()
    } else if a.num_concurrency.is_empty() {
        [1, 2, 4, 8, 16, 32, 64, 128, 256]
            .into_iter()
            .map(LoadPoint::Concurrency)
            .collect()
    } else {
        a.num_concurrency
            .iter()
            .map(|c| LoadPoint::Concurrency(*c))
            .collect()
    };
    if loads.iter().any(|l| matches!(l, LoadPoint::Concurrency(0))) {
        bail!("--num-concurrency values must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let (server, base_url, embedded_tok) = match &a.api_base {
        Some(u) => (None, u.trim_end_matches('/').to_string(), None),
        None => {
            let s = Embedded::start(ServerConfig::ephemeral(), None)?;
            let u = s.base_url();
            println!("Started the embedded reference server at {u}");
            let tok = s.tokenizer();
            (Some(s), u, Some(tok))
        }
    };
    let tokenizer: SharedTokenizer = match (&a.model_tokenizer, embedded_tok) {
        (Some(p), _) => Arc::new(HfTokenizer::load(p).context("--model-tokenizer")?),
        (None, Some(t)) => t,
        (None, None) => {
            let auth: Vec<String> = a
                .api_key
                .iter()
                .map(|k| format!("Authorization=Bearer {k}"))
                .collect();
            let headers = inferperf_loadgen::client::request_headers(&auth)
                .context("--api-key is not a valid header value")?;
            runtime
                .block_on(inferperf_loadgen::tokenizer::fetch_from_base_url(
                    &base_url, headers,
                ))
                .context("asking the server for its tokenizer")?
                .context(
                    "--model-tokenizer is required with --api-base: the server does not \
                     publish its tokenizer (inferperf servers do)",
                )?
        }
    };
    let model = a.api_model_name.clone().unwrap_or_else(|| "default".into());
    let stamp = {
        let iso = inferperf_protocol::perf_dump::iso8601_utc(std::time::SystemTime::now());
        let d: String = iso
            .chars()
            .take(19)
            .filter(|c| c.is_ascii_digit())
            .collect();
        format!("{}_{}", &d[..8.min(d.len())], &d[8.min(d.len())..])
    };
    let folder = a.experiment_folder_name.clone().unwrap_or_else(|| {
        let mut parts = vec![a.api_backend.to_lowercase()];
        parts.extend(a.server_engine.clone());
        parts.extend(a.server_version.clone());
        parts.push(a.task.clone());
        parts.push(model.replace('/', "_"));
        parts.push(stamp);
        parts.join("_")
    });
    let base = a
        .experiment_base_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    let experiment_dir = std::path::absolute(base.join(&folder)).unwrap_or(base.join(&folder));
    let cmd: Vec<String> = std::env::args().collect();
    let metadata = serde_json::json!({
        "cmd": cmd.join(" "),
        "benchmark_version": env!("CARGO_PKG_VERSION"),
        "api_backend": a.api_backend.to_lowercase(),
        "auth_config": {"auth_type": "api_key", "has_api_key": a.api_key.is_some()},
        "api_model_name": model,
        "server_model_tokenizer": a.model_tokenizer.as_ref().map(|p| p.display().to_string()),
        "model": model,
        "task": a.task,
        "num_concurrency": loads.iter().filter_map(|l| match l { LoadPoint::Concurrency(c) => Some(*c), _ => None }).collect::<Vec<_>>(),
        "batch_size": [1],
        "iteration_type": loads.first().map_or("num_concurrency", |l| l.iteration_type()),
        "traffic_scenario": scenarios.iter().map(|s| s.label()).collect::<Vec<_>>(),
        "additional_request_params": {},
        "server_engine": a.server_engine,
        "server_version": a.server_version,
        "server_gpu_type": a.server_gpu_type,
        "server_gpu_count": a.server_gpu_count,
        "max_time_per_run_s": a.max_time_per_run * 60.0,
        "max_requests_per_run": a.max_requests_per_run,
        "experiment_folder_name": experiment_dir.display().to_string(),
        "metrics_time_unit": "s",
        "dataset_path": "None",
        "request_rate": a.request_rate,
        "seed": a.seed,
    });
    let mut serving = ServingConfig {
        backend: Backend::OpenaiChat,
        model: a.api_model_name.clone(),
        steady_state: inferperf_bench::config::SteadyStateConfig {
            use_in_aggregates: a.use_steady_state,
            ..a.steady_state.to_config()
        },
        ..ServingConfig::default()
    };
    if let Some(k) = &a.api_key {
        serving.header.push(format!("Authorization=Bearer {k}"));
    }
    let options = SweepOptions {
        base_url,
        model,
        task: a.task.clone(),
        scenarios,
        loads,
        max_requests_per_run: a.max_requests_per_run,
        max_time_per_run_s: a.max_time_per_run * 60.0,
        seed: a.seed,
        experiment_dir: experiment_dir.clone(),
        metadata,
        tokenizer,
        profile: a.sglang_profile.then(|| sweep::SweepProfile {
            steps: a.sglang_profile_steps,
            by_stage: a.sglang_profile_by_stage,
            activities: a
                .sglang_profile_activities
                .split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect(),
            output_dir: a
                .sglang_profile_output_dir
                .clone()
                .unwrap_or_else(|| experiment_dir.join("profiles")),
        }),
    };
    let result = runtime.block_on(sweep::run(&options, &serving));
    drop(server);
    let files = result.context("bench sweep")?;
    println!("{} run files in {}", files.len(), experiment_dir.display());
    Ok(ExitCode::SUCCESS)
}
