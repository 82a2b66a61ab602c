//! `bench one-batch-server` (SGLang `bench_one_batch_server`): one batched streaming request
//! per (batch size, input length, output length) case through a running server, with the
//! prefix cache flushed before each case (and optionally warmed to `--cache-hit-rate`), the
//! cache hit rate measured from the server's Prometheus counters, SGLang's printed lines,
//! JSONL keys and markdown report, and a second, profiled pass per case with `--profile`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use inferperf_profiler::client as pc;
use inferperf_protocol::profile::ProfileReqInput;
use inferperf_protocol::server_info::ServerInfo;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use inferperf_loadgen::batch_case::Case;
use inferperf_loadgen::client::{Pool, Target};
use inferperf_loadgen::clock::Clock;
use inferperf_loadgen::cpu::{CpuMark, ThreadCpu};
use inferperf_loadgen::error::BenchError;
use inferperf_loadgen::jsonl::OrderedRecord;
use inferperf_loadgen::record::{ns_to_s, ErrorKind, RequestRecord};
use inferperf_loadgen::runner::{Abort, Exchange, LiveCounters, PlannedRequest, RunSpec};
use inferperf_loadgen::validity::{assess, render, Validity, ValidityInputs};

/// Which server API the batch goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ServerBackend {
    Sglang,
    Vllm,
}

/// `--profile*` for the second pass.
#[derive(Clone, Debug)]
pub struct OneBatchServerProfile {
    pub activities: Vec<String>,
    pub start_step: Option<u64>,
    pub steps: u64,
    pub by_stage: bool,
    pub prefix: Option<String>,
    pub output_dir: Option<PathBuf>,
}

/// The prompt of `--fixed-prompt-file`, encoded with the server's tokenizer (special tokens
/// added), or as one user message through its chat template with `chat`.
pub fn encode_fixed_prompt(
    path: &std::path::Path,
    tok: &dyn inferperf_loadgen::tokenizer::TextTokenizer,
    chat: bool,
) -> Result<Vec<u32>, BenchError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BenchError::Config(format!("--fixed-prompt-file {}: {e}", path.display())))?;
    let ids = if chat {
        let messages = json!([{"role": "user", "content": text}]);
        let rendered = tok
            .apply_chat_template(&messages, true)
            .map_err(inferperf_loadgen::tokenizer::tokenizer_error)?;
        tok.encode(&rendered, false)
    } else {
        tok.encode(&text, true)
    }
    .map_err(inferperf_loadgen::tokenizer::tokenizer_error)?;
    if ids.is_empty() {
        return Err(BenchError::Config(format!(
            "--fixed-prompt-file {}: the prompt encodes to no tokens",
            path.display()
        )));
    }
    Ok(ids)
}

/// The tokenizer of a running server: the one an inferperf server publishes, else the one an
/// SGLang-style server names in `/server_info` (`tokenizer_path`, else `model_path`), when it
/// is a local `tokenizer.json` or a directory holding one.
pub async fn server_tokenizer(
    base_url: &str,
) -> Result<inferperf_loadgen::tokenizer::SharedTokenizer, BenchError> {
    if let Some(t) =
        inferperf_loadgen::tokenizer::fetch_from_base_url(base_url, hyper::HeaderMap::new()).await?
    {
        return Ok(t);
    }
    let http = pc::http_client().map_err(|e| server_err("HTTP client", e))?;
    let info = server_info(&http, base_url).await?;
    let named: Vec<&str> = [&info.tokenizer_path, &info.model_path]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    inferperf_loadgen::tokenizer::load_first_local(&named)?.ok_or_else(|| {
        BenchError::Tokenizer(format!(
            "no local tokenizer.json at the server's tokenizer_path/model_path ({}); pass \
             --local-tokenizer-path",
            named.join(", ")
        ))
    })
}

/// SGLang's `FAKE_BOOTSTRAP_HOST` (`sglang.srt.disaggregation.utils`): a decode server with the
/// fake transfer backend treats requests carrying it as already prefilled.
pub const FAKE_BOOTSTRAP_HOST: &str = "2.2.2.2";

/// Where a case's token-id prompts come from (`--dataset-name`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BatchDataset {
    /// `random` / `random-ids`: `input_len` random ids per prompt (SGLang sends ids for both).
    RandomIds,
    /// `generated-shared-prefix`: `min(groups, bs)` groups, each a shared random system prompt
    /// of `system_len` ids, plus a `question_len`-id question per prompt; the case's input
    /// length becomes `system_len + question_len` and its output length `output_len`.
    SharedPrefix {
        groups: usize,
        system_len: usize,
        question_len: usize,
        output_len: usize,
    },
}

impl BatchDataset {
    /// The case as measured: shared-prefix prompts have their own lengths.
    fn effective(self, case: Case) -> Case {
        match self {
            BatchDataset::RandomIds => case,
            BatchDataset::SharedPrefix {
                system_len,
                question_len,
                output_len,
                ..
            } => Case {
                input_len: system_len + question_len,
                output_len,
                ..case
            },
        }
    }
}

/// `--lora-name` and how the prompts of a batch pick one.
#[derive(Clone, Debug)]
pub struct OneBatchServerLora {
    pub names: Vec<String>,
    pub distribution: inferperf_loadgen::lora::LoraDistribution,
    pub zipf_alpha: f64,
}

/// The command's settings.
#[derive(Clone, Debug)]
pub struct OneBatchServerConfig {
    pub base_url: String,
    pub backend: ServerBackend,
    /// Model name for the vLLM backend.
    pub model: String,
    pub run_name: String,
    pub batch_sizes: Vec<usize>,
    pub input_lens: Vec<usize>,
    pub output_lens: Vec<usize>,
    pub temperature: f64,
    /// `ignore_eos` in every request (off with `--disable-ignore-eos`).
    pub ignore_eos: bool,
    pub return_logprob: bool,
    pub client_stream_interval: usize,
    pub dataset: BatchDataset,
    /// `--fixed-prompt-file`, encoded: every prompt of every batch is this one (the case's
    /// input length becomes its length); overrides `dataset`.
    pub fixed_prompt: Option<Vec<u32>>,
    /// `"parallel_batch": true` in the sglang payload (`--parallel-batch`).
    pub parallel_batch: bool,
    /// `bootstrap_host`/`bootstrap_room` for decode-only servers (`--fake-prefill`).
    pub fake_prefill: bool,
    pub lora: Option<OneBatchServerLora>,
    /// Send batches larger than the server's running cap (`--enable-multi-batch`): the KV
    /// guard then counts only `min(bs, cap)` requests.
    pub enable_multi_batch: bool,
    pub cache_hit_rate: f64,
    pub skip_warmup: bool,
    pub show_report: bool,
    pub profile: Option<OneBatchServerProfile>,
    pub result_filename: Option<PathBuf>,
    pub seed: u64,
    /// `$/hour` of the serving hardware for the report's cost columns (SGLang: $2 x tp).
    pub hourly_cost: f64,
    /// Registry of the client's threads, for the client CPU accounting of the verdict.
    pub cpu: ThreadCpu,
    /// Worker threads of the client runtime the run is driven on.
    pub client_threads: usize,
}

impl OneBatchServerConfig {
    /// SGLang's defaults against `base_url`: one case (bs 1, il 1024, ol 16), greedy,
    /// `ignore_eos`, random-id prompts, warm-up on, no profile, no result file, seed 42.
    pub fn new(base_url: String) -> Self {
        Self {
            base_url,
            backend: ServerBackend::Sglang,
            model: "default".into(),
            run_name: "default".into(),
            batch_sizes: vec![1],
            input_lens: vec![1024],
            output_lens: vec![16],
            temperature: 0.0,
            ignore_eos: true,
            return_logprob: false,
            client_stream_interval: 1,
            dataset: BatchDataset::RandomIds,
            fixed_prompt: None,
            parallel_batch: false,
            fake_prefill: false,
            lora: None,
            enable_multi_batch: false,
            cache_hit_rate: 0.0,
            skip_warmup: false,
            show_report: false,
            profile: None,
            result_filename: None,
            seed: 42,
            hourly_cost: 2.0,
            cpu: ThreadCpu::default(),
            client_threads: 1,
        }
    }
}

/// One case's measurements (SGLang's record), with the measured client's record of the batch
/// request and the run's validity verdict.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub case: Case,
    pub latency: f64,
    pub input_throughput: f64,
    pub output_throughput: f64,
    pub overall_throughput: f64,
    pub last_ttft: f64,
    pub last_gen_throughput: f64,
    pub acc_length: f64,
    pub cache_hit_rate: Option<f64>,
    /// Trace directory of the profiled pass.
    pub profile_link: Option<String>,
    pub validity: Validity,
    /// The batch request as the load engine recorded it (`first_token_ns`: the last
    /// sequence's first token, i.e. `last_ttft`).
    pub request: RequestRecord,
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

impl CaseResult {
    /// SGLang's JSONL record (with its rounding).
    pub fn record(&self, run_name: &str) -> OrderedRecord {
        let mut r = self.case.record_head(run_name);
        r.put("latency", round(self.latency, 4));
        r.put("input_throughput", round(self.input_throughput, 2));
        r.put("output_throughput", round(self.output_throughput, 2));
        r.put("overall_throughput", round(self.overall_throughput, 2));
        r.put("last_ttft", round(self.last_ttft, 4));
        r.put("last_gen_throughput", round(self.last_gen_throughput, 2));
        r.put("acc_length", round(self.acc_length, 2));
        r.put(
            "cache_hit_rate",
            self.cache_hit_rate
                .map_or(Value::Null, |c| json!(round(c, 4))),
        );
        r
    }
}

fn server_err(what: &str, e: impl std::fmt::Display) -> BenchError {
    BenchError::Server(format!("{what}: {e}"))
}

/// Server limits read before the run.
struct Capacity {
    max_running: usize,
    tokens: usize,
}

async fn capacity(
    http: &reqwest::Client,
    o: &OneBatchServerConfig,
) -> Result<Capacity, BenchError> {
    if o.backend == ServerBackend::Vllm {
        return Ok(Capacity {
            max_running: usize::MAX,
            tokens: usize::MAX,
        });
    }
    let info = server_info(http, &o.base_url).await?;
    let dp = info
        .internal_states
        .first()
        .and_then(|s| s.dp_size)
        .unwrap_or(1)
        .max(1) as usize;
    let per_dp = info
        .internal_states
        .first()
        .and_then(|s| s.effective_max_running_requests_per_dp)
        .unwrap_or(0) as usize;
    if per_dp == 0 {
        return Err(BenchError::Server(
            "the server reports no effective_max_running_requests_per_dp".into(),
        ));
    }
    let tokens = info
        .internal_states
        .iter()
        .map(|s| {
            s.memory_usage
                .as_ref()
                .and_then(|m| m.token_capacity)
                .unwrap_or(1_000_000_000) as usize
        })
        .sum();
    Ok(Capacity {
        max_running: per_dp * dp,
        tokens,
    })
}

async fn server_info(http: &reqwest::Client, base: &str) -> Result<ServerInfo, BenchError> {
    let v = pc::server_info(http, base)
        .await
        .map_err(|e| server_err("GET /server_info", e))?;
    serde_json::from_value(v).map_err(|e| server_err("/server_info", e))
}

/// `POST /flush_cache` (vLLM: `/reset_prefix_cache`), up to three tries two seconds apart.
async fn flush(http: &reqwest::Client, o: &OneBatchServerConfig) -> Result<(), BenchError> {
    let route = match o.backend {
        ServerBackend::Sglang => "/flush_cache",
        ServerBackend::Vllm => "/reset_prefix_cache",
    };
    let url = format!("{}{route}", o.base_url);
    let mut last = String::new();
    for attempt in 0..3 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        match http
            .post(&url)
            .timeout(Duration::from_secs(600))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => return Ok(()),
            // vLLM serves /reset_prefix_cache only with VLLM_SERVER_DEV_MODE=1; the cases
            // still run, with whatever the prefix cache holds.
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => {
                tracing::warn!(
                    "{url} is not served (vLLM needs VLLM_SERVER_DEV_MODE=1 for it): \
                     the prefix cache is not flushed between cases"
                );
                return Ok(());
            }
            Ok(r) => last = format!("HTTP {}", r.status()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(BenchError::Server(format!("POST {route} failed: {last}")))
}

/// Sum of the samples of a Prometheus counter (every label set): the profiler client's reader,
/// the one the whole client side uses.
pub use inferperf_profiler::client::remote::prometheus_sum;

async fn cache_counters(http: &reqwest::Client, base: &str) -> Option<(f64, f64)> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    Some((
        prometheus_sum(&text, "sglang:cached_tokens_total")?,
        prometheus_sum(&text, "sglang:prompt_tokens_total")?,
    ))
}

/// Token-id prompts below min(10000, vocab), seeded per case.
fn prompts(case: Case, dataset: BatchDataset, vocab: usize, seed: u64) -> Vec<Vec<u32>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
        seed ^ ((case.batch_size as u64) << 40) ^ ((case.input_len as u64) << 20),
    );
    let hi = vocab.clamp(2, 10_000) as u32;
    let mut ids = |n: usize| -> Vec<u32> { (0..n).map(|_| rng.gen_range(1..hi)).collect() };
    match dataset {
        BatchDataset::RandomIds => (0..case.batch_size).map(|_| ids(case.input_len)).collect(),
        BatchDataset::SharedPrefix {
            groups,
            system_len,
            question_len,
            ..
        } => {
            // SGLang: min(groups, bs) groups of ceil(bs / groups) prompts, in group order.
            let groups = groups.clamp(1, case.batch_size.max(1));
            let per_group = case.batch_size.div_ceil(groups);
            let systems: Vec<Vec<u32>> = (0..groups).map(|_| ids(system_len)).collect();
            (0..case.batch_size)
                .map(|i| {
                    let mut p = systems[i / per_group].clone();
                    p.extend(ids(question_len));
                    p
                })
                .collect()
        }
    }
}

/// Send the first `int(il * rate)` tokens of every prompt (one output token) so that the
/// measured request finds them in the prefix cache.
async fn warm_prefix(
    http: &reqwest::Client,
    o: &OneBatchServerConfig,
    prompts: &[Vec<u32>],
) -> Result<(), BenchError> {
    let n = prompts
        .first()
        .map_or(0, |p| (p.len() as f64 * o.cache_hit_rate) as usize);
    if n == 0 {
        return Ok(());
    }
    let ids: Vec<&[u32]> = prompts.iter().map(|p| &p[..n]).collect();
    let body =
        json!({"input_ids": ids, "sampling_params": {"max_new_tokens": 1, "temperature": 0.0}});
    let r = http
        .post(format!("{}/generate", o.base_url))
        .json(&body)
        .send()
        .await
        .map_err(|e| server_err("warming the prefix cache", e))?;
    if !r.status().is_success() {
        return Err(BenchError::Server(format!(
            "warming the prefix cache: HTTP {}",
            r.status()
        )));
    }
    let _ = r.bytes().await;
    Ok(())
}

/// SGLang's batched `/generate` body, with its optional fields only when asked for.
fn sglang_payload(
    o: &OneBatchServerConfig,
    case: Case,
    prompts: &[Vec<u32>],
) -> Result<Value, BenchError> {
    let mut body = json!({
        "sampling_params": {
            "temperature": o.temperature,
            "max_new_tokens": case.output_len,
            "ignore_eos": o.ignore_eos,
            "json_schema": null,
            "stream_interval": o.client_stream_interval,
        },
        "return_logprob": o.return_logprob,
        "stream": true,
        "input_ids": prompts,
    });
    if o.parallel_batch {
        body["parallel_batch"] = json!(true);
    }
    if o.fake_prefill {
        body["bootstrap_host"] = json!(FAKE_BOOTSTRAP_HOST);
        body["bootstrap_room"] = json!(0);
    }
    if let Some(l) = o.lora.as_ref().filter(|l| !l.names.is_empty()) {
        // One name applies to the whole batch; several are picked per prompt.
        body["lora_path"] = if l.names.len() == 1 {
            json!(l.names[0])
        } else {
            let seed = o.seed ^ ((case.batch_size as u64) << 32) ^ case.input_len as u64;
            json!(inferperf_loadgen::lora::assign(
                &l.names,
                prompts.len(),
                l.distribution,
                l.zipf_alpha,
                seed
            )?)
        };
    }
    Ok(body)
}

/// The load engine every case's batch goes through: the measured client's pool, and the
/// registry of the client's threads for the CPU accounting.
struct Engine {
    pool: Arc<Pool>,
    cpu: ThreadCpu,
    client_threads: usize,
}

/// What one batch request measured.
struct Batch {
    latency: f64,
    last_ttft: f64,
    record: RequestRecord,
    validity: Validity,
}

/// The batched streaming request, released by the pacer and sent by the measured client: its
/// record keeps every stream line with its kernel arrival time, read here after the request.
/// `last_ttft` is the arrival of the last sequence's first token (SGLang: the last line whose
/// `completion_tokens` is 1; vLLM: the line that completes the set of choice indices).
async fn one_request(
    engine: &Engine,
    o: &OneBatchServerConfig,
    case: Case,
    prompts: &[Vec<u32>],
) -> Result<Batch, BenchError> {
    let (route, body) = match o.backend {
        ServerBackend::Sglang => ("/generate", sglang_payload(o, case, prompts)?),
        ServerBackend::Vllm => (
            "/v1/completions",
            json!({
                "model": o.model,
                "prompt": prompts,
                "max_tokens": case.output_len,
                "temperature": o.temperature,
                "stream": true,
                "ignore_eos": o.ignore_eos,
            }),
        ),
    };
    let body = serde_json::to_vec(&body).map_err(|e| server_err("the batch body", e))?;
    let spec = RunSpec {
        requests: Arc::new(vec![PlannedRequest {
            body: body.into(),
            prompt_len: case.batch_size * case.input_len,
            output_len: case.batch_size * case.output_len,
            headers: None,
            rid: None,
            conversation: None,
        }]),
        offsets: vec![0],
        max_concurrency: Some(1),
        path: engine.pool.target().path(route),
        protocol: inferperf_loadgen::backend::Protocol::Generate,
        stream: true,
        timeout: None,
        stall_timeout: None,
        max_consecutive_connect_failures: 1,
        warmup: false,
        print_requests: false,
        cpu: engine.cpu.clone(),
        exchange: Exchange {
            reading: inferperf_loadgen::sse::ResponseReading::StreamLines,
            ..Exchange::default()
        },
    };
    let cpu0 = CpuMark::now(&engine.cpu);
    let res = inferperf_loadgen::runner::run(
        engine.pool.clone(),
        spec,
        Clock::start(),
        Arc::new(LiveCounters::default()),
        Abort::default(),
    )
    .await;
    let validity = assess(&ValidityInputs::of_run(
        &res,
        false,
        cpu0.client_since(&engine.cpu),
        cpu0.process_since(),
        engine.client_threads,
    ));
    let Some(mut record) = res.records.into_iter().next() else {
        return Err(BenchError::Server(format!(
            "the batch request was not sent: {}",
            res.abort_reason.unwrap_or_default()
        )));
    };
    if let Some(e) = &record.error {
        return Err(BenchError::Server(match e.kind {
            ErrorKind::HttpStatus => format!("the batch request failed: {}", e.message),
            _ => format!("POST the batch: {}", e.message),
        }));
    }
    // Arrival of the last sequence's first token (0 until one is seen).
    let mut last_first_token_ns = 0u64;
    let mut seen = std::collections::HashSet::new();
    for (t, line) in &record.stream_lines {
        let v: Value =
            serde_json::from_slice(line).map_err(|e| server_err("a stream line is not JSON", e))?;
        match o.backend {
            ServerBackend::Sglang => {
                let meta = &v["meta_info"];
                if meta["completion_tokens"].as_u64() == Some(1) {
                    last_first_token_ns = *t;
                }
                if let Some(reason) = meta["finish_reason"]["type"].as_str() {
                    if o.ignore_eos && reason != "length" {
                        return Err(BenchError::Server(format!(
                            "a request of the batch finished with {reason}, not length"
                        )));
                    }
                }
            }
            ServerBackend::Vllm => {
                for c in v["choices"].as_array().into_iter().flatten() {
                    if let Some(i) = c["index"].as_u64() {
                        if seen.insert(i) && seen.len() == case.batch_size {
                            last_first_token_ns = *t;
                        }
                    }
                }
            }
        }
    }
    // The lines were read; the record keeps the times.
    record.first_token_ns = last_first_token_ns.max(record.sent_ns);
    let last_ttft = ns_to_s(record.first_token_ns - record.sent_ns);
    record.stream_lines = Vec::new();
    Ok(Batch {
        latency: record.latency_s(),
        last_ttft,
        record,
        validity,
    })
}

async fn run_case(
    http: &reqwest::Client,
    engine: &Engine,
    o: &OneBatchServerConfig,
    case: Case,
    vocab: usize,
    profile_prefix: Option<&OneBatchServerProfile>,
) -> Result<CaseResult, BenchError> {
    flush(http, o).await?;
    let (case, prompts) = match &o.fixed_prompt {
        Some(ids) => {
            let case = Case {
                input_len: ids.len(),
                ..case
            };
            (case, vec![ids.clone(); case.batch_size])
        }
        None => {
            let case = o.dataset.effective(case);
            (case, prompts(case, o.dataset, vocab, o.seed))
        }
    };
    warm_prefix(http, o, &prompts).await?;
    // Opened through `open_window`, which speaks the server's dialect (a vLLM window is
    // bounded by `max_iterations` and closed by us; SGLang's closes after `num_steps`).
    let window = match profile_prefix {
        Some(p) => {
            let dir = pc::timestamped_output_dir(p.output_dir.as_deref(), None)
                .map_err(|e| server_err("profile directory", e))?;
            let prefix = format!(
                "{}bs-{}-il-{}",
                p.prefix.clone().unwrap_or_default(),
                case.batch_size,
                case.input_len
            );
            let body = ProfileReqInput {
                output_dir: Some(dir.to_string_lossy().into_owned()),
                start_step: p.start_step,
                num_steps: Some(p.steps),
                activities: Some(p.activities.clone()),
                profile_by_stage: p.by_stage,
                profile_prefix: Some(prefix),
                ..ProfileReqInput::default()
            };
            let target = pc::ProfileTarget::single(&o.base_url);
            let (window, notes) = pc::remote::open_window(http, &target, &body)
                .await
                .map_err(|e| server_err("/start_profile", e))?;
            for note in notes {
                tracing::warn!("{note}");
            }
            if !matches!(window.location, pc::remote::TraceLocation::Sent(_)) {
                // The server writes elsewhere: leave no empty directory behind.
                let _ = std::fs::remove_dir(&dir);
            }
            Some(window)
        }
        None => None,
    };
    let before = cache_counters(http, &o.base_url).await;
    let batch = one_request(engine, o, case, &prompts).await;
    // Close a window the server will not close itself, whatever became of the batch.
    if let Some(w) = &window {
        w.close(http, crate::profiling::STOP_TIMEOUT)
            .await
            .map_err(|e| server_err("/stop_profile", e))?;
    }
    let batch = batch?;
    let profile_link = window.map(|w| match w.location {
        pc::remote::TraceLocation::Sent(dir) => dir.to_string_lossy().into_owned(),
        pc::remote::TraceLocation::ServerDecides { reported } => {
            reported.unwrap_or_else(|| "(where the server writes its traces)".into())
        }
    });
    let (latency, last_ttft) = (batch.latency, batch.last_ttft);
    let after = cache_counters(http, &o.base_url).await;
    let cache_hit_rate = match (before, after) {
        (Some((c0, p0)), Some((c1, p1))) if p1 > p0 => Some((c1 - c0) / (p1 - p0)),
        _ => None,
    };
    let (last_gen_throughput, acc_length) = match o.backend {
        ServerBackend::Sglang => {
            let info = server_info(http, &o.base_url).await?;
            let s = info.internal_states.first();
            (
                s.and_then(|s| s.last_gen_throughput).unwrap_or(-1.0),
                s.and_then(|s| s.avg_spec_accept_length).unwrap_or(-1.0),
            )
        }
        ServerBackend::Vllm => (-1.0, -1.0),
    };
    let (bs, il, ol) = (
        case.batch_size as f64,
        case.input_len as f64,
        case.output_len as f64,
    );
    Ok(CaseResult {
        case,
        latency,
        input_throughput: bs * il / last_ttft,
        output_throughput: bs * ol / (latency - last_ttft),
        overall_throughput: bs * (il + ol) / latency,
        last_ttft,
        last_gen_throughput,
        acc_length,
        cache_hit_rate,
        profile_link,
        validity: batch.validity,
        request: batch.record,
    })
}

fn print_case(r: &CaseResult) {
    println!("batch size: {}", r.case.batch_size);
    println!("input_len: {}", r.case.input_len);
    println!("output_len: {}", r.case.output_len);
    println!("latency: {:.2} s", r.latency);
    println!("input throughput: {:.2} tok/s", r.input_throughput);
    if r.case.output_len != 1 {
        println!("output throughput: {:.2} tok/s", r.output_throughput);
    }
    println!("last_ttft: {:.2} s", r.last_ttft);
    println!(
        "last generation throughput: {:.2} tok/s",
        r.last_gen_throughput
    );
    if r.acc_length > 0.0 {
        println!("acc_length: {:.2} ", r.acc_length);
    }
    if let Some(c) = r.cache_hit_rate {
        println!("cache hit rate: {c:.4}");
    }
    print!("{}", render(&r.validity));
}

/// Run every case (after a warm-up per batch size), then the profiled pass.
pub async fn run(o: &OneBatchServerConfig) -> Result<Vec<CaseResult>, BenchError> {
    if !(0.0..1.0).contains(&o.cache_hit_rate) {
        return Err(BenchError::Config(format!(
            "--cache-hit-rate must be in [0, 1), got {}",
            o.cache_hit_rate
        )));
    }
    let http = pc::http_client().map_err(|e| server_err("HTTP client", e))?;
    let engine = Engine {
        pool: Arc::new(Pool::new(Target::from_base_url(
            &o.base_url,
            inferperf_loadgen::client::request_headers(&[])?,
        )?)),
        cpu: o.cpu.clone(),
        client_threads: o.client_threads,
    };
    let cap = capacity(&http, o).await?;
    let vocab = match o.backend {
        // Prompt ids stay below min(10000, vocab); an unknown vocabulary means 10000.
        ServerBackend::Sglang => async {
            let info: Value = http
                .get(format!("{}/model_info", o.base_url))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            info["vocab_size"].as_u64()
        }
        .await
        .unwrap_or(10_000) as usize,
        ServerBackend::Vllm => 10_000,
    };
    let mut cases = Vec::new();
    for &batch_size in &o.batch_sizes {
        for &input_len in &o.input_lens {
            for &output_len in &o.output_lens {
                cases.push(Case {
                    batch_size,
                    input_len,
                    output_len,
                });
            }
        }
    }
    if o.enable_multi_batch {
        let single_wave: Vec<usize> = o
            .batch_sizes
            .iter()
            .copied()
            .filter(|&bs| bs <= cap.max_running)
            .collect();
        if !single_wave.is_empty() {
            println!(
                "WARNING: --enable-multi-batch is set but batch size(s) {single_wave:?} are <= \
                 the running cap ({}); those cases run as a single wave.",
                cap.max_running
            );
        }
        println!(
            "NOTE: with --enable-multi-batch only overall_throughput is meaningful; input/output \
             throughput and last_ttft assume one wave."
        );
    }
    let fits = |c: &Case| -> Option<&'static str> {
        let live = if o.enable_multi_batch {
            c.batch_size.min(cap.max_running)
        } else {
            c.batch_size
        };
        if !o.enable_multi_batch && c.batch_size > cap.max_running {
            Some("max running requests limit")
        } else if live * (c.input_len + c.output_len) > cap.tokens {
            Some("kv cache limit")
        } else {
            None
        }
    };
    if !o.skip_warmup {
        let mut sizes = o.batch_sizes.clone();
        sizes.dedup();
        for bs in sizes {
            let warm = Case {
                batch_size: bs,
                input_len: 1024.min(cap.tokens / bs.max(1) / 2).max(1),
                output_len: 16,
            };
            if fits(&warm).is_none() {
                run_case(&http, &engine, o, warm, vocab, None).await?;
            }
        }
    }
    let mut results = Vec::new();
    for &case in &cases {
        if let Some(why) = fits(&case) {
            println!(
                "Skip benchmark bs={} il={} ol={} due to {why}.",
                case.batch_size, case.input_len, case.output_len
            );
            continue;
        }
        let r = run_case(&http, &engine, o, case, vocab, None).await?;
        print_case(&r);
        if let Some(path) = &o.result_filename {
            inferperf_loadgen::jsonl::append_line(path, &r.record(&o.run_name).to_line())?;
        }
        results.push(r);
    }
    if let Some(p) = &o.profile {
        for r in results.iter_mut() {
            let pr = run_case(&http, &engine, o, r.case, vocab, Some(p)).await?;
            if let Some(path) = &o.result_filename {
                inferperf_loadgen::jsonl::append_line(path, &pr.record(&o.run_name).to_line())?;
            }
            println!(
                "profile of bs={} il={}: traces in {}",
                r.case.batch_size,
                r.case.input_len,
                pr.profile_link.as_deref().unwrap_or("?")
            );
            r.profile_link = pr.profile_link;
        }
    }
    if o.show_report {
        print!("{}", report(o, &results));
    }
    Ok(results)
}

/// SGLang's GitHub-markdown summary table, sorted by input length.
pub fn report(o: &OneBatchServerConfig, results: &[CaseResult]) -> String {
    let mut rows: Vec<&CaseResult> = results.iter().collect();
    rows.sort_by_key(|r| r.case.input_len);
    let with_profile = rows.iter().any(|r| r.profile_link.is_some());
    let mut s = format!(
        "\nInput lens: {:?}. Output lens: {:?}.",
        o.input_lens, o.output_lens
    );
    if o.cache_hit_rate > 0.0 {
        s.push_str(&format!(" Cache hit rate: {}%.", o.cache_hit_rate * 100.0));
    }
    s.push_str("\n\n| batch size | input len | latency (s) | input throughput (tok/s) | output throughput (tok/s) | acc length | ITL (ms) | input cost ($/1M) | output cost ($/1M) | cache hit rate |");
    if with_profile {
        s.push_str(" profile |");
    }
    s.push('\n');
    s.push_str("|---|---|---|---|---|---|---|---|---|---|");
    if with_profile {
        s.push_str("---|");
    }
    s.push('\n');
    for r in rows {
        let itl = 1000.0 * r.case.batch_size as f64 / r.output_throughput;
        let input_cost = 1e6 / (r.input_throughput * 0.7) / 3600.0 * o.hourly_cost;
        let output_cost = 1e6 / r.output_throughput / 3600.0 * o.hourly_cost;
        let acc = if r.acc_length > 0.0 {
            format!("{:.2}", r.acc_length)
        } else {
            "n/a".into()
        };
        let hit = r
            .cache_hit_rate
            .map_or("n/a".into(), |c| format!("{:.2}%", c * 100.0));
        s.push_str(&format!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {acc} | {itl:.2} | {input_cost:.2} | {output_cost:.2} | {hit} |",
            r.case.batch_size, r.case.input_len, r.latency, r.input_throughput, r.output_throughput
        ));
        if with_profile {
            s.push_str(&format!(" {} |", r.profile_link.as_deref().unwrap_or("")));
        }
        s.push('\n');
    }
    s
}

/// One row of SGLang's `--pydantic-result-filename` document (its `BenchmarkResult` fields, in
/// order).
#[derive(Clone, Debug, serde::Serialize)]
pub struct PydanticResult {
    pub model_path: String,
    pub run_name: String,
    pub batch_size: usize,
    pub input_len: usize,
    pub output_len: usize,
    pub latency: f64,
    pub input_throughput: f64,
    pub output_throughput: f64,
    pub overall_throughput: f64,
    pub last_ttft: f64,
    pub last_gen_throughput: f64,
    pub acc_length: Option<f64>,
    pub profile_link_extend: Option<String>,
    pub profile_link_decode: Option<String>,
    pub server_args: Option<Vec<String>>,
}

/// SGLang's `--pydantic-result-filename` rows: one per measured case with the model path, the
/// first prefill/extend and decode trace of its profiled pass (sorted, so TP-0 first), and
/// `--server-args-for-metrics`.
pub fn pydantic_results(
    results: &[CaseResult],
    run_name: &str,
    model_path: &str,
    server_args: Option<&[String]>,
) -> Vec<PydanticResult> {
    results
        .iter()
        .map(|r| {
            let (profile_link_extend, profile_link_decode) = r
                .profile_link
                .as_deref()
                .map(profile_traces)
                .unwrap_or((None, None));
            PydanticResult {
                model_path: model_path.to_string(),
                run_name: run_name.to_string(),
                batch_size: r.case.batch_size,
                input_len: r.case.input_len,
                output_len: r.case.output_len,
                latency: r.latency,
                input_throughput: r.input_throughput,
                output_throughput: r.output_throughput,
                overall_throughput: r.overall_throughput,
                last_ttft: r.last_ttft,
                last_gen_throughput: r.last_gen_throughput,
                acc_length: Some(r.acc_length),
                profile_link_extend,
                profile_link_decode,
                server_args: server_args.map(<[String]>::to_vec),
            }
        })
        .collect()
}

/// The first (sorted) prefill/extend and decode trace files in a profile directory.
fn profile_traces(dir: &str) -> (Option<String>, Option<String>) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".trace.json.gz") || n.ends_with(".trace.json"))
        .collect();
    names.sort();
    let path = |n: &String| format!("{}/{n}", dir.trim_end_matches('/'));
    let lower = |n: &String| n.to_lowercase();
    let extend = names
        .iter()
        .find(|n| lower(n).contains("extend") || lower(n).contains("prefill"))
        .map(path);
    let decode = names
        .iter()
        .find(|n| {
            let l = lower(n);
            l.contains("decode") && !l.contains("extend") && !l.contains("prefill")
        })
        .map(path);
    (extend, decode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> OneBatchServerConfig {
        OneBatchServerConfig::new(String::new())
    }

    /// The optional payload fields appear only when asked for, with SGLang's shapes.
    #[test]
    fn sglang_payload_optional_fields() {
        let case = Case {
            batch_size: 4,
            input_len: 8,
            output_len: 2,
        };
        let ids = prompts(case, BatchDataset::RandomIds, 1000, 1);
        let plain = sglang_payload(&opts(), case, &ids).expect("payload");
        for k in [
            "parallel_batch",
            "bootstrap_host",
            "bootstrap_room",
            "lora_path",
        ] {
            assert!(plain.get(k).is_none(), "{k} only when asked for");
        }
        assert_eq!(plain["sampling_params"]["ignore_eos"], true);
        let mut o = opts();
        o.parallel_batch = true;
        o.fake_prefill = true;
        o.ignore_eos = false;
        o.lora = Some(OneBatchServerLora {
            names: vec!["a".into(), "b".into()],
            distribution: inferperf_loadgen::lora::LoraDistribution::Distinct,
            zipf_alpha: 1.5,
        });
        let p = sglang_payload(&o, case, &ids).expect("payload");
        assert_eq!(p["parallel_batch"], true);
        assert_eq!(p["bootstrap_host"], "2.2.2.2");
        assert_eq!(p["bootstrap_room"], 0);
        assert_eq!(p["sampling_params"]["ignore_eos"], false);
        assert_eq!(p["lora_path"], json!(["a", "b", "a", "b"]));
        o.lora = Some(OneBatchServerLora {
            names: vec!["only".into()],
            distribution: inferperf_loadgen::lora::LoraDistribution::Uniform,
            zipf_alpha: 1.5,
        });
        let one = sglang_payload(&o, case, &ids).expect("payload");
        assert_eq!(
            one["lora_path"], "only",
            "one name applies to the whole batch"
        );
    }

    /// min(groups, bs) groups of ceil(bs / groups) prompts share their system prompt.
    #[test]
    fn shared_prefix_prompts_share_their_group_prefix() {
        let dataset = BatchDataset::SharedPrefix {
            groups: 2,
            system_len: 6,
            question_len: 3,
            output_len: 5,
        };
        let case = dataset.effective(Case {
            batch_size: 5,
            input_len: 100,
            output_len: 1,
        });
        assert_eq!((case.input_len, case.output_len), (9, 5));
        let p = prompts(case, dataset, 1000, 7);
        assert_eq!(p.len(), 5);
        assert!(p.iter().all(|x| x.len() == 9));
        // groups of 3 and 2
        assert_eq!(p[0][..6], p[2][..6]);
        assert_eq!(p[3][..6], p[4][..6]);
        assert_ne!(p[0][..6], p[3][..6]);
        assert_ne!(p[0][6..], p[1][6..], "questions differ");
    }

    #[test]
    fn pydantic_rows_pick_the_first_sorted_extend_and_decode_traces() {
        let dir = tempfile::tempdir().expect("tempdir");
        for n in [
            "bs-1-il-8-TP-1-EXTEND.trace.json.gz",
            "bs-1-il-8-TP-0-EXTEND.trace.json.gz",
            "bs-1-il-8-TP-0-DECODE.trace.json.gz",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(n), b"").expect("write");
        }
        let d = dir.path().to_string_lossy().into_owned();
        let r = CaseResult {
            case: Case {
                batch_size: 1,
                input_len: 8,
                output_len: 2,
            },
            latency: 1.0,
            input_throughput: 2.0,
            output_throughput: 3.0,
            overall_throughput: 4.0,
            last_ttft: 0.5,
            last_gen_throughput: -1.0,
            acc_length: -1.0,
            cache_hit_rate: None,
            profile_link: Some(d.clone()),
            validity: Validity::default(),
            request: RequestRecord::default(),
        };
        let rows = pydantic_results(&[r], "run", "None", Some(&["--tp".into(), "2".into()]));
        let v = serde_json::to_value(&rows).expect("json");
        let line = serde_json::to_string(&rows[0]).expect("json");
        assert_eq!(
            inferperf_loadgen::jsonl::top_level_keys(&line).expect("keys")[..4],
            ["model_path", "run_name", "batch_size", "input_len"]
        );
        assert_eq!(
            v[0]["profile_link_extend"],
            format!("{d}/bs-1-il-8-TP-0-EXTEND.trace.json.gz")
        );
        assert_eq!(
            v[0]["profile_link_decode"],
            format!("{d}/bs-1-il-8-TP-0-DECODE.trace.json.gz")
        );
        assert_eq!(v[0]["server_args"], json!(["--tp", "2"]));
        assert_eq!(v[0]["model_path"], "None");
    }

    #[test]
    fn prometheus_sums_every_label_set() {
        let text =
            "# HELP sglang:cached_tokens_total x\n# TYPE sglang:cached_tokens_total counter\n\
                    sglang:cached_tokens_total{model_name=\"a\"} 3\n\
                    sglang:cached_tokens_total{model_name=\"b\"} 4.5\n\
                    sglang:cached_tokens_total_other 100\n";
        assert_eq!(
            prometheus_sum(text, "sglang:cached_tokens_total"),
            Some(7.5)
        );
        assert_eq!(prometheus_sum(text, "sglang:prompt_tokens_total"), None);
    }
}
