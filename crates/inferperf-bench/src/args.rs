//! `bench serving` flags: SGLang's `bench_serving` names and defaults, plus vLLM's
//! `--burstiness`, `--goodput`, `--percentile-metrics` and `--metric-percentiles`, plus a few
//! of our own (client threads, request timeout). Flattened into the CLI.

use crate::backend::Backend;
use crate::dataset::{DatasetConfig, DatasetName};
use crate::error::BenchError;
use crate::metrics::Slo;

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

    #[arg(long, value_enum, default_value = "sharegpt")]
    pub dataset_name: DatasetName,
    /// Local dataset file (ShareGPT JSON, custom JSONL, Mooncake trace JSONL).
    #[arg(long, default_value = "")]
    pub dataset_path: String,
    /// agentic-trace: rotate the conversation list by this many.
    #[arg(long, default_value_t = 0)]
    pub dataset_offset: usize,
    /// agentic-trace: at most this many turns per conversation.
    #[arg(long)]
    pub agentic_max_turns: Option<usize>,
    #[arg(long, default_value_t = 1000)]
    pub num_prompts: usize,
    #[arg(long)]
    pub sharegpt_output_len: Option<usize>,
    #[arg(long)]
    pub sharegpt_context_len: Option<usize>,
    #[arg(long, default_value_t = 1024)]
    pub random_input_len: usize,
    #[arg(long, default_value_t = 1024)]
    pub random_output_len: usize,
    /// Lengths are drawn from [len * ratio, len]; a number in [0, 1].
    #[arg(long, default_value_t = 0.0, value_parser = unit_interval)]
    pub random_range_ratio: f64,
    #[arg(long, default_value = "")]
    pub prompt_suffix: String,
    /// Images per request (`image` dataset).
    #[arg(long, default_value_t = 1)]
    pub image_count: usize,
    /// Per-request image count uniform in 1..=--image-count.
    #[arg(long)]
    pub random_image_count: bool,
    /// `4k`, `1080p`, `720p`, `360p`, or `HEIGHTxWIDTH`.
    #[arg(long, default_value = "1080p")]
    pub image_resolution: String,
    /// `jpeg` or `png`.
    #[arg(long, default_value = "jpeg")]
    pub image_format: String,
    /// `random` (noise) or `blank` (white).
    #[arg(long, default_value = "random")]
    pub image_content: String,
    /// Wrap sharegpt/custom prompts in the chat template.
    #[arg(long)]
    pub apply_chat_template: bool,
    /// Send token ids (`input_ids`) instead of text (`--backend sglang` only).
    #[arg(long)]
    pub tokenize_prompt: bool,
    #[arg(long, default_value_t = 64)]
    pub gsp_num_groups: usize,
    #[arg(long, default_value_t = 16)]
    pub gsp_prompts_per_group: usize,
    #[arg(long, default_value_t = 2048)]
    pub gsp_system_prompt_len: usize,
    #[arg(long, default_value_t = 128)]
    pub gsp_question_len: usize,
    #[arg(long, default_value_t = 256)]
    pub gsp_output_len: usize,
    #[arg(long, default_value_t = 1.0, value_parser = unit_interval)]
    pub gsp_range_ratio: f64,
    #[arg(long)]
    pub gsp_ordered: bool,
    /// Questions per conversation; above 1 every row is a multi-turn chat (chat backends).
    #[arg(long, default_value_t = 1)]
    pub gsp_num_turns: usize,
    /// Skip tokenizing prompts (their recorded length is 1).
    #[arg(long)]
    pub gsp_fast_prepare: bool,
    /// How requests spread over groups: `uniform` (prompts-per-group each) or `zipf`.
    #[arg(long, value_parser = ["uniform", "zipf"], default_value = "uniform")]
    pub gsp_group_distribution: String,
    /// Zipf exponent (> 0), required with --gsp-group-distribution zipf.
    #[arg(long)]
    pub gsp_zipf_alpha: Option<f64>,
    #[arg(long)]
    pub gsp_send_routing_key: bool,
    /// Mooncake replay time multiplier.
    #[arg(long, default_value_t = 1.0)]
    pub mooncake_slowdown_factor: f64,
    /// Rounds per Mooncake session (each a longer chat history, all sent at the session's time).
    #[arg(long, default_value_t = 1)]
    pub mooncake_num_rounds: usize,
    /// Which Mooncake trace (`mooncake`, `conversation`, `synthetic`, `toolagent`) when no
    /// --dataset-path is given: read from /tmp/{workload}_trace.jsonl.
    #[arg(long, default_value = "conversation")]
    pub mooncake_workload: String,
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
    pub lora_request_distribution: crate::lora::LoraDistribution,
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
}

/// A flag value in [0, 1].
pub fn unit_interval(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside [0, 1]"))
    }
}

/// A finite duration in seconds, >= 0.
pub fn non_negative_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("{v} must be a finite number of seconds >= 0"))
    }
}

impl ServingArgs {
    /// The dataset flags as the plain settings [`crate::dataset::build`] takes.
    pub fn dataset_config(&self) -> DatasetConfig {
        DatasetConfig {
            name: self.dataset_name,
            path: self.dataset_path.clone(),
            offset: self.dataset_offset,
            agentic_max_turns: self.agentic_max_turns,
            num_prompts: self.num_prompts,
            sharegpt_output_len: self.sharegpt_output_len,
            sharegpt_context_len: self.sharegpt_context_len,
            random_input_len: self.random_input_len,
            random_output_len: self.random_output_len,
            random_range_ratio: self.random_range_ratio,
            prompt_suffix: self.prompt_suffix.clone(),
            image_count: self.image_count,
            random_image_count: self.random_image_count,
            image_resolution: self.image_resolution.clone(),
            image_format: self.image_format.clone(),
            image_content: self.image_content.clone(),
            apply_chat_template: self.apply_chat_template,
            tokenize_prompt: self.tokenize_prompt,
            gsp_num_groups: self.gsp_num_groups,
            gsp_prompts_per_group: self.gsp_prompts_per_group,
            gsp_system_prompt_len: self.gsp_system_prompt_len,
            gsp_question_len: self.gsp_question_len,
            gsp_output_len: self.gsp_output_len,
            gsp_range_ratio: self.gsp_range_ratio,
            gsp_ordered: self.gsp_ordered,
            gsp_num_turns: self.gsp_num_turns,
            gsp_fast_prepare: self.gsp_fast_prepare,
            gsp_group_distribution: self.gsp_group_distribution.clone(),
            gsp_zipf_alpha: self.gsp_zipf_alpha,
            gsp_send_routing_key: self.gsp_send_routing_key,
            mooncake_num_rounds: self.mooncake_num_rounds,
            mooncake_workload: self.mooncake_workload.clone(),
            seed: self.seed,
        }
    }

    /// `--stall-timeout-sec` as a duration (`None` when 0: no stall check).
    pub fn stall_timeout(&self) -> Option<std::time::Duration> {
        (self.stall_timeout_sec > 0.0)
            .then(|| std::time::Duration::from_secs_f64(self.stall_timeout_sec))
    }

    /// Parse `--goodput ttft:MS tpot:MS e2el:MS`.
    pub fn slo(&self) -> Result<Slo, BenchError> {
        let mut s = Slo::default();
        for item in &self.goodput {
            let (k, v) = item.split_once(':').ok_or_else(|| {
                BenchError::Config(format!("--goodput {item:?}: expected NAME:MS"))
            })?;
            let ms: f64 = v.parse().map_err(|_| {
                BenchError::Config(format!("--goodput {item:?}: {v:?} is not a number"))
            })?;
            match k {
                "ttft" => s.ttft_ms = Some(ms),
                "tpot" => s.tpot_ms = Some(ms),
                "e2el" => s.e2el_ms = Some(ms),
                _ => {
                    return Err(BenchError::Config(format!(
                        "--goodput {item:?}: metric must be ttft, tpot or e2el"
                    )))
                }
            }
        }
        Ok(s)
    }

    /// `--percentile-metrics` as a list.
    pub fn percentile_metric_names(&self) -> Vec<String> {
        self.percentile_metrics
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// `--metric-percentiles` as numbers.
    pub fn metric_percentile_values(&self) -> Result<Vec<f64>, BenchError> {
        self.metric_percentiles
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=100.0).contains(p))
                    .ok_or_else(|| {
                        BenchError::Config(format!(
                            "--metric-percentiles: {s:?} is not in [0, 100]"
                        ))
                    })
            })
            .collect()
    }

    /// The base URL: `--base-url`, else `http://{host}:{port}` with the backend's default port.
    /// `None` when nothing was given (the caller may start an embedded server).
    pub fn explicit_base_url(&self) -> Option<String> {
        if let Some(u) = &self.base_url {
            return Some(u.trim_end_matches('/').to_owned());
        }
        if self.host.is_none() && self.port.is_none() {
            return None;
        }
        Some(self.host_port_url())
    }

    /// `http://{host or 127.0.0.1}:{port or the backend default}` (IPv6 bracketed).
    pub fn host_port_url(&self) -> String {
        let host = self.host.clone().unwrap_or_else(|| "127.0.0.1".into());
        let host = if host == "0.0.0.0" {
            "127.0.0.1".to_owned()
        } else {
            host
        };
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host
        };
        format!(
            "http://{host}:{}",
            self.port.unwrap_or(self.backend.default_port())
        )
    }
}
