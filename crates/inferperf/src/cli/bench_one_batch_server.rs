//! `inferperf bench one-batch-server`: one batched request per case through a server (SGLang
//! `bench_one_batch_server`). Without `--base-url` it starts the reference server in this
//! process from the `serve` model flags (with the profiler), like SGLang launches one.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use inferperf_bench::one_batch_server::{
    self, BatchDataset, OneBatchServerConfig, OneBatchServerLora, OneBatchServerProfile,
    ServerBackend,
};
use inferperf_loadgen::lora::LoraDistribution;
use inferperf_loadgen::tokenizer::{HfTokenizer, SharedTokenizer};

use super::bench_one_batch::CaseGridArgs;
use super::embedded::Embedded;

/// `bench one-batch-server` flags: SGLang's `BenchArgs`, plus the `serve` flags for the
/// embedded server.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub server: super::server_flags::ServerFlags,
    /// Server to benchmark; empty starts the embedded reference server.
    #[arg(long, default_value = "")]
    pub base_url: String,
    #[arg(long, value_enum, default_value = "sglang")]
    pub backend: ServerBackend,
    /// Model name for `--backend vllm`.
    #[arg(long, default_value = "default")]
    pub model: String,
    #[command(flatten)]
    pub cases: CaseGridArgs,
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    /// Let requests stop at EOS instead of sending `ignore_eos: true`.
    #[arg(long)]
    pub disable_ignore_eos: bool,
    #[arg(long)]
    pub return_logprob: bool,
    /// Token-id prompts: `random`/`random-ids` (random ids), `generated-shared-prefix`
    /// (min(--gsp-num-groups, bs) shared system prompts; lengths from the --gsp-* flags).
    /// Text datasets (sharegpt, custom, mmmu) and --fixed-prompt-file are not supported.
    #[arg(long, value_parser = ["random", "random-ids", "generated-shared-prefix"], default_value = "random")]
    pub dataset_name: String,
    /// Send this file's prompt, encoded, as every prompt of the batch (bypasses
    /// --dataset-name; the input length becomes the prompt's).
    #[arg(long)]
    pub fixed_prompt_file: Option<PathBuf>,
    /// Encode --fixed-prompt-file as one user message through the chat template.
    #[arg(long, requires = "fixed_prompt_file")]
    pub apply_chat_template: bool,
    /// Tokenizer for --fixed-prompt-file (`tokenizer.json` or its directory); default: the
    /// embedded server's, else the one `/server_info` names.
    #[arg(long)]
    pub local_tokenizer_path: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub gsp_num_groups: usize,
    #[arg(long, default_value_t = 2048)]
    pub gsp_system_prompt_len: usize,
    #[arg(long, default_value_t = 128)]
    pub gsp_question_len: usize,
    #[arg(long, default_value_t = 256)]
    pub gsp_output_len: usize,
    /// Send `"parallel_batch": true`.
    #[arg(long)]
    pub parallel_batch: bool,
    /// Decode-only benchmarking against a server with the fake transfer backend: sends
    /// `bootstrap_host` "2.2.2.2" and `bootstrap_room` 0.
    #[arg(long)]
    pub fake_prefill: bool,
    /// LoRA adapter name(s), sent as `lora_path` (one for the batch, or one per prompt).
    #[arg(long, num_args = 0..)]
    pub lora_name: Option<Vec<String>>,
    #[arg(long, value_enum, default_value = "uniform")]
    pub lora_request_distribution: LoraDistribution,
    /// Must be > 1 (`skewed`).
    #[arg(long, default_value_t = 1.1)]
    pub lora_zipf_alpha: f64,
    /// Allow batch sizes above the server's running cap (it queues the surplus); only
    /// overall_throughput is meaningful then.
    #[arg(long)]
    pub enable_multi_batch: bool,
    /// Also write the results as one JSON document (SGLang's pydantic `BenchmarkResult` list).
    #[arg(long)]
    pub pydantic_result_filename: Option<PathBuf>,
    /// Launch arguments recorded as `server_args` in the pydantic results.
    #[arg(long, num_args = 0..)]
    pub server_args_for_metrics: Option<Vec<String>>,
    /// Do not append the --show-report table to `$GITHUB_STEP_SUMMARY` (only done when
    /// `SGLANG_IS_IN_CI` is true, as SGLang).
    #[arg(long)]
    pub no_append_to_github_summary: bool,
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

/// SGLang's `is_in_ci()`: `SGLANG_IS_IN_CI` set to a true value.
fn in_ci() -> bool {
    std::env::var("SGLANG_IS_IN_CI")
        .map(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
        .unwrap_or(false)
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    // The measured client's runtime, its threads registered for the client CPU accounting
    // (an embedded server runs on it too; its CPU shows in the process CPU).
    let client_threads = 2;
    let cpu = inferperf_loadgen::cpu::ThreadCpu::default();
    let runtime =
        inferperf_loadgen::client_runtime(client_threads, &cpu).context("starting the runtime")?;
    let embedded = a.base_url.is_empty();
    let server = if embedded {
        let s = Embedded::start(a.server.to_config(), None)?;
        println!("Started the embedded reference server at {}", s.base_url());
        Some(s)
    } else {
        None
    };
    let base_url = match &server {
        Some(s) => s.base_url(),
        None => a.base_url.trim_end_matches('/').to_string(),
    };
    let fixed_prompt = match &a.fixed_prompt_file {
        None => None,
        Some(file) => {
            let tok: SharedTokenizer = match (&a.local_tokenizer_path, &server) {
                (Some(p), _) => {
                    std::sync::Arc::new(HfTokenizer::load(p).context("--local-tokenizer-path")?)
                }
                (None, Some(s)) => s.tokenizer(),
                (None, None) => runtime
                    .block_on(one_batch_server::server_tokenizer(&base_url))
                    .context("finding a tokenizer for --fixed-prompt-file")?,
            };
            let ids =
                one_batch_server::encode_fixed_prompt(file, tok.as_ref(), a.apply_chat_template)
                    .context("bench one-batch-server")?;
            println!("Fixed prompt: {} tokens", ids.len());
            Some(ids)
        }
    };
    let activities = a.profile_activities.clone().unwrap_or_else(|| {
        if embedded {
            vec!["CPU".into()]
        } else {
            vec!["CPU".into(), "GPU".into()]
        }
    });
    let options = OneBatchServerConfig {
        base_url,
        backend: a.backend,
        model: a.model.clone(),
        run_name: a.cases.run_name.clone(),
        batch_sizes: a.cases.batch_size.clone(),
        input_lens: a.cases.input_len.clone(),
        output_lens: a.cases.output_len.clone(),
        temperature: a.temperature,
        ignore_eos: !a.disable_ignore_eos,
        return_logprob: a.return_logprob,
        client_stream_interval: a.client_stream_interval,
        dataset: if a.dataset_name == "generated-shared-prefix" {
            BatchDataset::SharedPrefix {
                groups: a.gsp_num_groups,
                system_len: a.gsp_system_prompt_len,
                question_len: a.gsp_question_len,
                output_len: a.gsp_output_len,
            }
        } else {
            BatchDataset::RandomIds
        },
        fixed_prompt,
        parallel_batch: a.parallel_batch,
        fake_prefill: a.fake_prefill,
        lora: a.lora_name.clone().map(|names| OneBatchServerLora {
            names,
            distribution: a.lora_request_distribution,
            zipf_alpha: a.lora_zipf_alpha,
        }),
        enable_multi_batch: a.enable_multi_batch,
        cache_hit_rate: a.cache_hit_rate,
        skip_warmup: a.skip_warmup,
        show_report: a.show_report,
        profile: a.profile.then(|| OneBatchServerProfile {
            activities,
            start_step: a.profile_start_step,
            steps: a.profile_steps,
            by_stage: a.profile_by_stage,
            prefix: a.profile_prefix.clone(),
            output_dir: a.profile_output_dir.clone(),
        }),
        result_filename: Some(a.cases.result_filename.clone()),
        seed: a.seed,
        hourly_cost: 2.0 * a.server.tp_size as f64,
        cpu,
        client_threads,
    };
    let result = runtime.block_on(one_batch_server::run(&options));
    drop(server);
    let results = result.context("bench one-batch-server")?;
    if !results.is_empty() {
        println!("Results appended to {}", a.cases.result_filename.display());
    }
    if let Some(path) = &a.pydantic_result_filename {
        let doc = one_batch_server::pydantic_results(
            &results,
            &a.cases.run_name,
            &a.server.model_path,
            a.server_args_for_metrics.as_deref(),
        );
        let text = serde_json::to_string_pretty(&doc).context("serializing the results")?;
        inferperf_loadgen::jsonl::write_atomic(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if a.show_report && !a.no_append_to_github_summary && in_ci() {
        if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY") {
            use std::io::Write;
            let report = one_batch_server::report(&options, &results);
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&summary)
                .and_then(|mut f| f.write_all(report.as_bytes()))
                .with_context(|| format!("appending to {}", PathBuf::from(&summary).display()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
