//! `bench serving` flags: SGLang's `bench_serving` names and defaults, plus vLLM's
//! `--burstiness`, `--goodput`, `--percentile-metrics` and `--metric-percentiles`, plus a few
//! of our own (client threads, request timeout, stall timeout). The dataset flags are the
//! shared [`DatasetArgs`]; flags whose default differs per command (`--num-prompts`, `--seed`,
//! `--gsp-num-groups`, `--lora-zipf-alpha`) are declared here. [`ServingArgs::to_config`] hands
//! the library its plain [`ServingConfig`].

use inferperf_bench::config::ServingConfig;
use inferperf_loadgen::backend::Backend;
use inferperf_loadgen::lora::LoraDistribution;

use super::dataset_args::DatasetArgs;
use super::value_parsers::{non_negative_seconds, unit_interval};

/// Arguments of `inferperf bench serving`.
#[derive(Clone, Debug, clap::Args)]
pub struct ServingArgs {
    /// Request protocol.
    #[arg(long, value_enum, default_value = "sglang")]
    pub backend: Backend,
    /// Server base URL (instead of --host/--port). Without any of the three, an embedded
    /// reference server is started (unless one already listens on the default port).
    #[arg(long)]
    pub base_url: Option<String>,
    #[arg(long)]
    pub host: Option<String>,
    /// Default depends on the backend (SGLang 30000, vLLM 8000, LMDeploy 23333).
    #[arg(long)]
    pub port: Option<u16>,
    /// Seconds to wait for `GET /v1/models` to answer 200; 0 disables the check.
    #[arg(long, default_value_t = 60)]
    pub ready_check_timeout_sec: u64,
    /// Model name; if absent, `GET /v1/models` -> `data[0].id`.
    #[arg(long)]
    pub model: Option<String>,
    /// Name put in the request `model` field (defaults to --model).
    #[arg(long)]
    pub served_model_name: Option<String>,
    /// Path to a tokenizer.json or a directory holding one (else the server's
    /// `/get_model_info` tokenizer path, else --model as a local path).
    #[arg(long)]
    pub tokenizer: Option<String>,
    /// Extra HTTP headers `Key=Value`.
    #[arg(long, num_args = 1..)]
    pub header: Vec<String>,
    #[command(flatten)]
    pub dataset: DatasetArgs,
    #[arg(long, default_value_t = 1000)]
    pub num_prompts: usize,
    #[arg(long, default_value_t = 64)]
    pub gsp_num_groups: usize,
    /// Mooncake replay time multiplier.
    #[arg(long, default_value_t = 1.0)]
    pub mooncake_slowdown_factor: f64,
    /// Label the request rate as "trace" in the table and record (SGLang's flag).
    #[arg(long)]
    pub use_trace_timestamps: bool,
    /// Arrival rate (req/s); `inf` sends everything at t=0.
    #[arg(long, default_value_t = f64::INFINITY)]
    pub request_rate: f64,
    /// Gamma shape of inter-arrival times (vLLM); 1 is Poisson, < 1 burstier.
    #[arg(long, default_value_t = 1.0)]
    pub burstiness: f64,
    #[arg(long)]
    pub max_concurrency: Option<usize>,
    #[arg(long, default_value_t = 1)]
    pub warmup_requests: usize,
    /// POST /flush_cache (SGLang) or /reset_prefix_cache (vLLM) after warmup.
    #[arg(long)]
    pub flush_cache: bool,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long)]
    pub disable_ignore_eos: bool,
    #[arg(long)]
    pub disable_stream: bool,
    /// Sampling temperature (native `/generate` only; OpenAI bodies send 0.0 as SGLang does).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    /// Top-p (native `/generate` only, sent when < 1.0).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f64,
    /// Collect cached-token statistics (SGLang backends): table section and `cache_report`.
    #[arg(long)]
    pub cache_report: bool,
    /// Call `/start_profile` before and `/stop_profile` after the measured run (both outside
    /// the measured duration).
    #[arg(long, help_heading = "Profiling")]
    pub profile: bool,
    #[arg(long, num_args = 1.., default_values_t = ["CPU".to_string(), "GPU".to_string()], help_heading = "Profiling")]
    pub profile_activities: Vec<String>,
    /// Absolute forward step at which the window opens (`start_step`).
    #[arg(long, help_heading = "Profiling")]
    pub profile_start_step: Option<u64>,
    /// Steps to capture; overrides --profile-num-steps; no `/stop_profile`.
    #[arg(long, help_heading = "Profiling")]
    pub profile_steps: Option<u64>,
    /// Steps to capture (the server stops by itself; no `/stop_profile`). 5 with --profile-by-stage.
    #[arg(long, help_heading = "Profiling")]
    pub profile_num_steps: Option<u64>,
    #[arg(long, help_heading = "Profiling")]
    pub profile_by_stage: bool,
    /// With --profile-by-stage: which stages (`prefill`, `decode`).
    #[arg(long, num_args = 1.., help_heading = "Profiling")]
    pub profile_stages: Option<Vec<String>>,
    /// Base directory; a `<epoch>` subdirectory is created and sent as `output_dir`.
    #[arg(long, help_heading = "Profiling")]
    pub profile_output_dir: Option<String>,
    #[arg(long, help_heading = "Profiling")]
    pub profile_prefix: Option<String>,
    /// PD-disaggregated deployment: profile the workers given by --profile-prefill-url or
    /// --profile-decode-url instead of the benchmarked router.
    #[arg(long, help_heading = "Profiling")]
    pub pd_separated: bool,
    /// Prefill worker URLs to profile (with --pd-separated).
    #[arg(long, num_args = 0.., conflicts_with = "profile_decode_url", help_heading = "Profiling")]
    pub profile_prefill_url: Option<Vec<String>>,
    /// Decode worker URLs to profile (with --pd-separated).
    #[arg(long, num_args = 0.., help_heading = "Profiling")]
    pub profile_decode_url: Option<Vec<String>>,
    /// genai-bench's spelling: arm a bounded window (--sglang-profile-steps) on the server
    /// before the run, save `server_args.json` next to the traces, never call `/stop_profile`.
    #[arg(long, help_heading = "Profiling (genai-bench flags)")]
    pub sglang_profile: bool,
    #[arg(
        long,
        default_value_t = 5,
        help_heading = "Profiling (genai-bench flags)"
    )]
    pub sglang_profile_steps: u64,
    #[arg(long, help_heading = "Profiling (genai-bench flags)")]
    pub sglang_profile_by_stage: bool,
    /// Comma-separated (CPU, GPU, MEM).
    #[arg(
        long,
        default_value = "CPU,GPU",
        help_heading = "Profiling (genai-bench flags)"
    )]
    pub sglang_profile_activities: String,
    /// Default `/tmp/genai_bench_profiles`; the path is sent to the server.
    #[arg(long, help_heading = "Profiling (genai-bench flags)")]
    pub sglang_profile_output_dir: Option<String>,
    /// JSON object merged into every request body.
    #[arg(long)]
    pub extra_request_body: Option<String>,
    /// Print a line when each request starts (with its body) and ends (with its output).
    /// SGLang allows it with sglang-oai-chat only; every backend logs here. Costs client CPU:
    /// for debugging, not for measurements.
    #[arg(long)]
    pub print_requests: bool,
    /// Decode-only benchmarking against a server with the fake transfer backend: adds
    /// `bootstrap_host` "2.2.2.2" and `bootstrap_room` 0 to every request body.
    #[arg(long)]
    pub fake_prefill: bool,
    /// Ask for logprobs: native `return_logprob`; OpenAI completions `logprobs` =
    /// --top-logprobs-num when > 0.
    #[arg(long)]
    pub return_logprob: bool,
    #[arg(long, default_value_t = 0)]
    pub top_logprobs_num: u32,
    /// Native only: token ids whose logprobs are returned.
    #[arg(long, num_args = 1..)]
    pub token_ids_logprob: Option<Vec<i64>>,
    /// Native only.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub logprob_start_len: i64,
    /// Native only: ask for the routed experts of every token (MoE servers).
    #[arg(long)]
    pub return_routed_experts: bool,
    /// How requests pick a `--lora-name`: `uniform` (random), `distinct` (round-robin),
    /// `skewed` (weight alpha^-i).
    #[arg(long, value_enum, default_value = "uniform")]
    pub lora_request_distribution: LoraDistribution,
    /// Must be > 1 (`skewed`).
    #[arg(long, default_value_t = 1.5)]
    pub lora_zipf_alpha: f64,
    /// `timeout` query parameter of SGLang's `/flush_cache` (seconds).
    #[arg(long, default_value_t = 60.0)]
    pub flush_cache_timeout: f64,
    /// LoRA adapter names (uniformly assigned).
    #[arg(long, num_args = 0..)]
    pub lora_name: Vec<String>,
    /// Service-level objectives for goodput: `ttft:MS tpot:MS e2el:MS`.
    #[arg(long, num_args = 1..)]
    pub goodput: Vec<String>,
    /// Comma-separated metrics for extra percentiles (vLLM names).
    #[arg(long, default_value = "ttft,tpot,itl")]
    pub percentile_metrics: String,
    /// Comma-separated percentiles for --percentile-metrics.
    #[arg(long, default_value = "99")]
    pub metric_percentiles: String,
    /// JSONL file to append the result record to.
    #[arg(long)]
    pub output_file: Option<String>,
    /// Write the client's side of the run as a Chrome/Kineto trace (Perfetto, `trace merge`):
    /// one slice per request with its rid, phases (queued, waiting, first token, streaming)
    /// and every chunk, on Unix time. With --profile it is also written next to the
    /// server's traces.
    #[arg(long, value_name = "FILE")]
    pub request_trace: Option<std::path::PathBuf>,
    /// Request ids are PREFIX-INDEX (sent as X-Request-Id, and `rid` in SGLang bodies);
    /// default: a fresh 8-hex-digit prefix per run.
    #[arg(long, value_name = "PREFIX")]
    pub request_id_prefix: Option<String>,
    /// Add per-request arrays to the record.
    #[arg(long)]
    pub output_details: bool,
    /// Draw output throughput and concurrency per second in the terminal after the run.
    #[arg(long)]
    pub plot_throughput: bool,
    #[arg(long)]
    pub disable_tqdm: bool,
    #[arg(long)]
    pub tag: Option<String>,
    /// Per-request timeout in seconds (default: none, as SGLang's 6 h).
    #[arg(long)]
    pub request_timeout_sec: Option<f64>,
    /// Fail a request as `stalled` when the server sends no byte for this many seconds
    /// (before the response headers or between two chunks); 0 turns the check off. A stalled
    /// server otherwise hangs a run forever.
    #[arg(long, default_value_t = 600.0, value_parser = non_negative_seconds)]
    pub stall_timeout_sec: f64,
    /// Exit non-zero when more than this fraction of the requests failed (0..=1). A run in
    /// which no request succeeded always exits non-zero.
    #[arg(long, value_parser = unit_interval)]
    pub max_failure_rate: Option<f64>,
    /// Client worker threads (default: one per four cores, at least one).
    #[arg(long)]
    pub client_threads: Option<usize>,
    #[command(flatten)]
    pub steady_state: super::steady_state_args::SteadyStateArgs,
    #[command(flatten)]
    pub shard: super::shard_args::ShardArgs,
}

impl ServingArgs {
    /// The settings the library runs.
    pub fn to_config(&self) -> ServingConfig {
        ServingConfig {
            backend: self.backend,
            base_url: self.base_url.clone(),
            host: self.host.clone(),
            port: self.port,
            ready_check_timeout_sec: self.ready_check_timeout_sec,
            model: self.model.clone(),
            served_model_name: self.served_model_name.clone(),
            tokenizer: self.tokenizer.clone(),
            header: self.header.clone(),
            dataset: self
                .dataset
                .to_config(self.num_prompts, self.seed, self.gsp_num_groups),
            mooncake_slowdown_factor: self.mooncake_slowdown_factor,
            use_trace_timestamps: self.use_trace_timestamps,
            request_rate: self.request_rate,
            burstiness: self.burstiness,
            max_concurrency: self.max_concurrency,
            warmup_requests: self.warmup_requests,
            flush_cache: self.flush_cache,
            disable_ignore_eos: self.disable_ignore_eos,
            disable_stream: self.disable_stream,
            temperature: self.temperature,
            top_p: self.top_p,
            cache_report: self.cache_report,
            profile: self.profile,
            profile_activities: self.profile_activities.clone(),
            profile_start_step: self.profile_start_step,
            profile_steps: self.profile_steps,
            profile_num_steps: self.profile_num_steps,
            profile_by_stage: self.profile_by_stage,
            profile_stages: self.profile_stages.clone(),
            profile_output_dir: self.profile_output_dir.clone(),
            profile_prefix: self.profile_prefix.clone(),
            pd_separated: self.pd_separated,
            profile_prefill_url: self.profile_prefill_url.clone(),
            profile_decode_url: self.profile_decode_url.clone(),
            sglang_profile: self.sglang_profile,
            sglang_profile_steps: self.sglang_profile_steps,
            sglang_profile_by_stage: self.sglang_profile_by_stage,
            sglang_profile_activities: self.sglang_profile_activities.clone(),
            sglang_profile_output_dir: self.sglang_profile_output_dir.clone(),
            extra_request_body: self.extra_request_body.clone(),
            print_requests: self.print_requests,
            fake_prefill: self.fake_prefill,
            return_logprob: self.return_logprob,
            top_logprobs_num: self.top_logprobs_num,
            token_ids_logprob: self.token_ids_logprob.clone(),
            logprob_start_len: self.logprob_start_len,
            return_routed_experts: self.return_routed_experts,
            lora_request_distribution: self.lora_request_distribution,
            lora_zipf_alpha: self.lora_zipf_alpha,
            flush_cache_timeout: self.flush_cache_timeout,
            lora_name: self.lora_name.clone(),
            goodput: self.goodput.clone(),
            percentile_metrics: self.percentile_metrics.clone(),
            metric_percentiles: self.metric_percentiles.clone(),
            output_file: self.output_file.clone(),
            request_trace: self.request_trace.clone(),
            request_id_prefix: self.request_id_prefix.clone(),
            output_details: self.output_details,
            plot_throughput: self.plot_throughput,
            disable_tqdm: self.disable_tqdm,
            tag: self.tag.clone(),
            request_timeout_sec: self.request_timeout_sec,
            stall_timeout_sec: self.stall_timeout_sec,
            max_failure_rate: self.max_failure_rate,
            client_threads: self.client_threads,
            steady_state: self.steady_state.to_config(),
            start_at_unix_ns: self.shard.start_at,
            save_records: self.shard.save_records.clone(),
            // Resolved by `bench serving` (the index may come from the environment).
            sharding: None,
            argv: Vec::new(),
        }
    }
}
