//! `bench serving`'s settings as a plain struct: what the library runs (`serving`, `slo`,
//! `sweep`, `profiling`) takes, with no flag parsing in it. The CLI's `ServingArgs` (SGLang's
//! `bench_serving` flag names and defaults) builds one; tests and other commands build one
//! directly from [`ServingConfig::default`], which equals the flags' defaults (the CLI tests it).

use inferperf_loadgen::backend::Backend;
use inferperf_loadgen::dataset::DatasetConfig;
use inferperf_loadgen::error::BenchError;
use inferperf_loadgen::lora::LoraDistribution;
use inferperf_loadgen::metrics::Slo;

/// Settings of one serving benchmark run.
#[derive(Clone, Debug, PartialEq)]
pub struct ServingConfig {
    /// Request protocol.
    pub backend: Backend,
    /// Server base URL (instead of --host/--port). Without any of the three, an embedded
    /// reference server is started (unless one already listens on the default port).
    pub base_url: Option<String>,
    pub host: Option<String>,
    /// Default depends on the backend (SGLang 30000, vLLM 8000, LMDeploy 23333).
    pub port: Option<u16>,
    /// Seconds to wait for `GET /v1/models` to answer 200; 0 disables the check.
    pub ready_check_timeout_sec: u64,
    /// Model name; if absent, `GET /v1/models` -> `data[0].id`.
    pub model: Option<String>,
    /// Name put in the request `model` field (defaults to --model).
    pub served_model_name: Option<String>,
    /// Path to a tokenizer.json or a directory holding one (else the server's
    /// `/get_model_info` tokenizer path, else --model as a local path).
    pub tokenizer: Option<String>,
    /// Extra HTTP headers `Key=Value`.
    pub header: Vec<String>,
    /// The prompts: dataset, number of prompts and seed (the seed also draws arrivals and
    /// LoRA names).
    pub dataset: DatasetConfig,
    /// Mooncake replay time multiplier.
    pub mooncake_slowdown_factor: f64,
    /// Label the request rate as "trace" in the table and record (SGLang's flag).
    pub use_trace_timestamps: bool,
    /// Arrival rate (req/s); `inf` sends everything at t=0.
    pub request_rate: f64,
    /// Gamma shape of inter-arrival times (vLLM); 1 is Poisson, < 1 burstier.
    pub burstiness: f64,
    pub max_concurrency: Option<usize>,
    pub warmup_requests: usize,
    /// POST /flush_cache (SGLang) or /reset_prefix_cache (vLLM) after warmup.
    pub flush_cache: bool,
    pub disable_ignore_eos: bool,
    pub disable_stream: bool,
    /// Sampling temperature (native `/generate` only; OpenAI bodies send 0.0 as SGLang does).
    pub temperature: f64,
    /// Top-p (native `/generate` only, sent when < 1.0).
    pub top_p: f64,
    /// Collect cached-token statistics (SGLang backends): table section and `cache_report`.
    pub cache_report: bool,
    /// Call `/start_profile` before and `/stop_profile` after the measured run (both outside
    /// the measured duration).
    pub profile: bool,
    pub profile_activities: Vec<String>,
    /// Absolute forward step at which the window opens (`start_step`).
    pub profile_start_step: Option<u64>,
    /// Steps to capture; overrides --profile-num-steps; no `/stop_profile`.
    pub profile_steps: Option<u64>,
    /// Steps to capture (the server stops by itself; no `/stop_profile`). 5 with --profile-by-stage.
    pub profile_num_steps: Option<u64>,
    pub profile_by_stage: bool,
    /// With --profile-by-stage: which stages (`prefill`, `decode`).
    pub profile_stages: Option<Vec<String>>,
    /// Base directory; a `<epoch>` subdirectory is created and sent as `output_dir`.
    pub profile_output_dir: Option<String>,
    pub profile_prefix: Option<String>,
    /// PD-disaggregated deployment: profile the workers given by --profile-prefill-url or
    /// --profile-decode-url instead of the benchmarked router.
    pub pd_separated: bool,
    /// Prefill worker URLs to profile (with --pd-separated).
    pub profile_prefill_url: Option<Vec<String>>,
    /// Decode worker URLs to profile (with --pd-separated).
    pub profile_decode_url: Option<Vec<String>>,
    /// genai-bench's spelling: arm a bounded window (--sglang-profile-steps) on the server
    /// before the run, save `server_args.json` next to the traces, never call `/stop_profile`.
    pub sglang_profile: bool,
    pub sglang_profile_steps: u64,
    pub sglang_profile_by_stage: bool,
    /// Comma-separated (CPU, GPU, MEM).
    pub sglang_profile_activities: String,
    /// Default `/tmp/genai_bench_profiles`; the path is sent to the server.
    pub sglang_profile_output_dir: Option<String>,
    /// JSON object merged into every request body.
    pub extra_request_body: Option<String>,
    /// Print a line when each request starts (with its body) and ends (with its output).
    /// SGLang allows it with sglang-oai-chat only; every backend logs here. Costs client CPU:
    /// for debugging, not for measurements.
    pub print_requests: bool,
    /// Decode-only benchmarking against a server with the fake transfer backend: adds
    /// `bootstrap_host` "2.2.2.2" and `bootstrap_room` 0 to every request body.
    pub fake_prefill: bool,
    /// Ask for logprobs: native `return_logprob`; OpenAI completions `logprobs` =
    /// --top-logprobs-num when > 0.
    pub return_logprob: bool,
    pub top_logprobs_num: u32,
    /// Native only: token ids whose logprobs are returned.
    pub token_ids_logprob: Option<Vec<i64>>,
    /// Native only.
    pub logprob_start_len: i64,
    /// Native only: ask for the routed experts of every token (MoE servers).
    pub return_routed_experts: bool,
    /// How requests pick a `--lora-name`: `uniform` (random), `distinct` (round-robin),
    /// `skewed` (weight alpha^-i).
    pub lora_request_distribution: LoraDistribution,
    /// Must be > 1 (`skewed`).
    pub lora_zipf_alpha: f64,
    /// `timeout` query parameter of SGLang's `/flush_cache` (seconds).
    pub flush_cache_timeout: f64,
    /// LoRA adapter names (uniformly assigned).
    pub lora_name: Vec<String>,
    /// Service-level objectives for goodput: `ttft:MS tpot:MS e2el:MS`.
    pub goodput: Vec<String>,
    /// Comma-separated metrics for extra percentiles (vLLM names).
    pub percentile_metrics: String,
    /// Comma-separated percentiles for --percentile-metrics.
    pub metric_percentiles: String,
    /// JSONL file to append the result record to.
    pub output_file: Option<String>,
    /// Chrome/Kineto trace of the client side: one slice per request with its phases and
    /// chunks, its request id, on Unix time (see `request_trace`). With `--profile` it is
    /// also written next to the server's traces when they go to a directory the client knows.
    pub request_trace: Option<std::path::PathBuf>,
    /// Request ids are `{prefix}-{index}`; `None` draws a fresh 8-hex-digit prefix per run.
    pub request_id_prefix: Option<String>,
    /// A sharded run: this process's part (`--num-shards`, `--shard-index`).
    pub sharding: Option<crate::shard::Sharding>,
    /// Start the measured run at this wall-clock instant (`--start-at`, Unix ns).
    pub start_at_unix_ns: Option<u64>,
    /// Write every request's raw observations here (`--save-records`; `{shard}` becomes the
    /// shard index) for `bench merge`.
    pub save_records: Option<std::path::PathBuf>,
    /// The command line, recorded in the records file's header.
    pub argv: Vec<String>,
    /// Add per-request arrays to the record.
    pub output_details: bool,
    /// Draw output throughput and concurrency per second in the terminal after the run.
    pub plot_throughput: bool,
    pub disable_tqdm: bool,
    pub tag: Option<String>,
    /// Per-request timeout in seconds (default: none, as SGLang's 6 h).
    pub request_timeout_sec: Option<f64>,
    /// Fail a request as `stalled` when the server sends no byte for this many seconds
    /// (before the response headers or between two chunks); 0 turns the check off. A stalled
    /// server otherwise hangs a run forever.
    pub stall_timeout_sec: f64,
    /// Exit non-zero when more than this fraction of the requests failed (0..=1). A run in
    /// which no request succeeded always exits non-zero.
    pub max_failure_rate: Option<f64>,
    /// Client worker threads (default: one per four cores, at least one).
    pub client_threads: Option<usize>,
    /// The steady-state section reported next to the whole-run metrics.
    pub steady_state: SteadyStateConfig,
}

impl Default for ServingConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Sglang,
            base_url: None,
            host: None,
            port: None,
            ready_check_timeout_sec: 60,
            model: None,
            served_model_name: None,
            tokenizer: None,
            header: Vec::new(),
            dataset: DatasetConfig::default(),
            mooncake_slowdown_factor: 1.0,
            use_trace_timestamps: false,
            request_rate: f64::INFINITY,
            burstiness: 1.0,
            max_concurrency: None,
            warmup_requests: 1,
            flush_cache: false,
            disable_ignore_eos: false,
            disable_stream: false,
            temperature: 0.0,
            top_p: 1.0,
            cache_report: false,
            profile: false,
            profile_activities: vec!["CPU".into(), "GPU".into()],
            profile_start_step: None,
            profile_steps: None,
            profile_num_steps: None,
            profile_by_stage: false,
            profile_stages: None,
            profile_output_dir: None,
            profile_prefix: None,
            pd_separated: false,
            profile_prefill_url: None,
            profile_decode_url: None,
            sglang_profile: false,
            sglang_profile_steps: 5,
            sglang_profile_by_stage: false,
            sglang_profile_activities: "CPU,GPU".into(),
            sglang_profile_output_dir: None,
            extra_request_body: None,
            print_requests: false,
            fake_prefill: false,
            return_logprob: false,
            top_logprobs_num: 0,
            token_ids_logprob: None,
            logprob_start_len: -1,
            return_routed_experts: false,
            lora_request_distribution: LoraDistribution::Uniform,
            lora_zipf_alpha: 1.5,
            flush_cache_timeout: 60.0,
            lora_name: Vec::new(),
            goodput: Vec::new(),
            percentile_metrics: "ttft,tpot,itl".into(),
            metric_percentiles: "99".into(),
            output_file: None,
            request_trace: None,
            request_id_prefix: None,
            sharding: None,
            start_at_unix_ns: None,
            save_records: None,
            argv: Vec::new(),
            output_details: false,
            plot_throughput: false,
            disable_tqdm: false,
            tag: None,
            request_timeout_sec: None,
            stall_timeout_sec: 600.0,
            max_failure_rate: None,
            client_threads: None,
            steady_state: SteadyStateConfig::default(),
        }
    }
}

impl ServingConfig {
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

/// How the steady-state window is chosen and where it goes (see
/// `inferperf_loadgen::steady_state`). On by default, unlike SGLang's opt-in client.
#[derive(Clone, Debug, PartialEq)]
pub struct SteadyStateConfig {
    /// Report the section (`--no-steady-state` turns it off).
    pub enabled: bool,
    /// SGLang's `--steady-state-concurrency-ratio`, in (0, 1]; default 0.8, SGLang's example.
    pub ratio: f64,
    /// Also append the section alone as one JSONL line here (SGLang's
    /// `--steady-state-output-file`).
    pub output_file: Option<String>,
    /// Seconds cut from the start and the end of the run (`--warmup-duration`,
    /// `--cooldown-duration`); either > 0 replaces the ratio search by the fixed window.
    pub warmup_duration_s: f64,
    pub cooldown_duration_s: f64,
    /// Sweeps and SLO searches (`--use-steady-state`): take each point's throughput and
    /// latency numbers from its steady-state section instead of the whole run.
    pub use_in_aggregates: bool,
}

impl Default for SteadyStateConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ratio: 0.8,
            output_file: None,
            warmup_duration_s: 0.0,
            cooldown_duration_s: 0.0,
            use_in_aggregates: false,
        }
    }
}

impl SteadyStateConfig {
    /// The window rule the settings choose.
    pub fn rule(&self) -> inferperf_loadgen::steady_state::WindowRule {
        use inferperf_loadgen::steady_state::WindowRule;
        if self.warmup_duration_s > 0.0 || self.cooldown_duration_s > 0.0 {
            WindowRule::WarmupCooldown {
                warmup_s: self.warmup_duration_s,
                cooldown_s: self.cooldown_duration_s,
            }
        } else {
            WindowRule::ConcurrencyRatio(self.ratio)
        }
    }

    /// Reject what no run can make sense of, before the first request.
    pub fn validate(&self) -> Result<(), BenchError> {
        if !self.enabled {
            return Ok(());
        }
        if !(self.ratio > 0.0 && self.ratio <= 1.0) {
            return Err(BenchError::Config(format!(
                "--steady-state-concurrency-ratio must be in (0, 1], got {}",
                self.ratio
            )));
        }
        let ok = |x: f64| x.is_finite() && x >= 0.0;
        if !ok(self.warmup_duration_s) || !ok(self.cooldown_duration_s) {
            return Err(BenchError::Config(format!(
                "--warmup-duration and --cooldown-duration must be finite and >= 0 seconds, got {} and {}",
                self.warmup_duration_s, self.cooldown_duration_s
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod steady_state_tests {
    use super::SteadyStateConfig;
    use inferperf_loadgen::steady_state::WindowRule;

    /// Any warm-up or cool-down replaces the ratio search; bad values name their flags.
    #[test]
    fn the_rule_follows_the_durations() {
        let c = SteadyStateConfig::default();
        assert_eq!(c.rule(), WindowRule::ConcurrencyRatio(0.8));
        let fixed = SteadyStateConfig {
            cooldown_duration_s: 3.0,
            ..c.clone()
        };
        assert_eq!(
            fixed.rule(),
            WindowRule::WarmupCooldown {
                warmup_s: 0.0,
                cooldown_s: 3.0
            }
        );
        let bad = SteadyStateConfig {
            warmup_duration_s: -1.0,
            ..c.clone()
        };
        let e = bad.validate().expect_err("negative").to_string();
        assert!(e.contains("--warmup-duration"), "{e}");
        let bad = SteadyStateConfig { ratio: 0.0, ..c };
        let e = bad.validate().expect_err("ratio").to_string();
        assert!(e.contains("--steady-state-concurrency-ratio"), "{e}");
    }
}
