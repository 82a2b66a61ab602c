//! `bench sweep` (genai-bench's `benchmark`): every traffic scenario at every load point --
//! concurrency (closed loop, genai-bench's only mode) or request rate (open loop) -- through the
//! `bench serving` engine (pacer, client, metrics, validity verdict), written in genai-bench's
//! experiment folder layout: `experiment_metadata.json` and one
//! `{scenario}_{task}_{iteration_type}_{value}_time_{T}s.json` per point with
//! `aggregated_metrics` and `individual_request_metrics`.
//!
//! Differences from genai-bench, on purpose: prompts and lengths are seeded (`--seed`),
//! `error_rate` is computed (genai-bench's is always 0), and open-loop request-rate points exist.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::SeedableRng;
use serde::Serialize;

use crate::config::ServingConfig;
use crate::scenario::{sanitize, Scenario};
use crate::serving::{run_serving_rows, ServingContext};
use inferperf_loadgen::dataset::DatasetRow;
use inferperf_loadgen::error::BenchError;
use inferperf_loadgen::record::{ErrorKind, RequestRecord};
use inferperf_loadgen::runner::Abort;
use inferperf_loadgen::stats::{mean, percentile_sorted, sorted, std_pop};
use inferperf_loadgen::tokenizer::SharedTokenizer;

/// genai-bench's per-request record (`RequestLevelMetrics`), in its field order.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct RequestMetrics {
    pub ttft: Option<f64>,
    pub tpot: Option<f64>,
    pub e2e_latency: Option<f64>,
    pub output_latency: Option<f64>,
    pub output_inference_speed: Option<f64>,
    pub num_input_tokens: Option<u64>,
    pub num_output_tokens: Option<u64>,
    pub num_reasoning_tokens: Option<u64>,
    pub total_tokens: Option<u64>,
    pub input_throughput: Option<f64>,
    pub output_throughput: Option<f64>,
    pub audio_throughput: Option<f64>,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
}

impl RequestMetrics {
    /// From one `bench serving` record.
    pub fn from_record(r: &RequestRecord) -> Self {
        if let Some(e) = &r.error {
            let code = match e.kind {
                ErrorKind::HttpStatus => e
                    .message
                    .strip_prefix("HTTP ")
                    .and_then(|m| m.get(..3))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(500),
                ErrorKind::Timeout => 408,
                _ => 599,
            };
            return Self {
                error_code: Some(code),
                error_message: Some(e.message.clone()),
                ..Self::default()
            };
        }
        let ttft = r.ttft_s();
        let e2e = r.latency_s();
        let out = r.output_len as u64;
        let input = r.server_prompt_len.unwrap_or(r.prompt_len) as u64;
        let output_latency = e2e - ttft;
        let (tpot, speed, out_tp) = if out > 1 && output_latency > 0.0 {
            let tpot = output_latency / (out - 1) as f64;
            (
                Some(tpot),
                Some(1.0 / tpot),
                Some((out - 1) as f64 / output_latency),
            )
        } else {
            (None, None, None)
        };
        Self {
            ttft: Some(ttft),
            tpot,
            e2e_latency: Some(e2e),
            output_latency: Some(output_latency),
            output_inference_speed: speed,
            num_input_tokens: Some(input),
            num_output_tokens: Some(out),
            num_reasoning_tokens: Some(0),
            total_tokens: Some(input + out),
            input_throughput: Some(if ttft > 0.0 { input as f64 / ttft } else { 0.0 }),
            output_throughput: out_tp,
            audio_throughput: None,
            error_code: None,
            error_message: None,
        }
    }
}

/// `{min,max,mean,stddev,sum,p25,p50,p75,p90,p95,p99}` of one field.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Stat {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub stddev: f64,
    pub sum: f64,
    pub p25: f64,
    pub p50: f64,
    pub p75: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
}

impl Stat {
    fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let s = sorted(values);
        let p = |q| percentile_sorted(&s, q);
        Some(Self {
            min: s[0],
            max: s[s.len() - 1],
            mean: mean(values),
            stddev: std_pop(values),
            sum: values.iter().sum(),
            p25: p(25.0),
            p50: p(50.0),
            p75: p(75.0),
            p90: p(90.0),
            p95: p(95.0),
            p99: p(99.0),
        })
    }
}

/// `stats` of the aggregated metrics, in genai-bench's field order.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Stats {
    pub ttft: Option<Stat>,
    pub tpot: Option<Stat>,
    pub e2e_latency: Option<Stat>,
    pub output_latency: Option<Stat>,
    pub output_inference_speed: Option<Stat>,
    pub num_input_tokens: Option<Stat>,
    pub num_output_tokens: Option<Stat>,
    pub num_reasoning_tokens: Option<Stat>,
    pub total_tokens: Option<Stat>,
    pub input_throughput: Option<Stat>,
    pub output_throughput: Option<Stat>,
    pub audio_throughput: Option<Stat>,
}

/// genai-bench's `AggregatedMetrics`, in its field order.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct AggregatedMetrics {
    pub scenario: String,
    pub num_concurrency: Option<usize>,
    pub batch_size: Option<usize>,
    pub iteration_type: String,
    /// Our open-loop points (not in genai-bench).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_rate: Option<f64>,
    pub run_duration: f64,
    pub mean_output_throughput_tokens_per_s: f64,
    pub mean_input_throughput_tokens_per_s: f64,
    pub mean_total_tokens_throughput_tokens_per_s: f64,
    pub requests_per_second: f64,
    pub error_codes_frequency: std::collections::BTreeMap<String, usize>,
    pub error_rate: f64,
    pub num_error_requests: usize,
    pub num_completed_requests: usize,
    pub num_requests: usize,
    pub stats: Stats,
    /// The `bench serving` validity verdict of the point (`OK` or `CLIENT-BOUND`).
    pub validity_verdict: String,
    /// Trace directory of the point (`--sglang-profile`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_path: Option<String>,
    /// With `--use-steady-state`: the window the throughputs and `stats` above come from
    /// (absent: they are the whole run's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steady_state: Option<inferperf_loadgen::steady_state::SteadyStateMetrics>,
}

/// Aggregate a point's records as genai-bench does (no warm-up/cool-down trimming).
pub fn aggregate(
    scenario: &str,
    load: &LoadPoint,
    recs: &[RequestMetrics],
    run_duration: f64,
    verdict: &str,
) -> AggregatedMetrics {
    let ok: Vec<&RequestMetrics> = recs.iter().filter(|r| r.error_code.is_none()).collect();
    let f = |get: &dyn Fn(&RequestMetrics) -> Option<f64>| -> Option<Stat> {
        Stat::of(&ok.iter().filter_map(|r| get(r)).collect::<Vec<_>>())
    };
    let u = |x: Option<u64>| x.map(|v| v as f64);
    let stats = Stats {
        ttft: f(&|r| r.ttft),
        tpot: f(&|r| r.tpot),
        e2e_latency: f(&|r| r.e2e_latency),
        output_latency: f(&|r| r.output_latency),
        output_inference_speed: f(&|r| r.output_inference_speed),
        num_input_tokens: f(&|r| u(r.num_input_tokens)),
        num_output_tokens: f(&|r| u(r.num_output_tokens)),
        num_reasoning_tokens: f(&|r| u(r.num_reasoning_tokens)),
        total_tokens: f(&|r| u(r.total_tokens)),
        input_throughput: f(&|r| r.input_throughput),
        output_throughput: f(&|r| r.output_throughput),
        audio_throughput: f(&|r| r.audio_throughput),
    };
    let mut errors = std::collections::BTreeMap::new();
    for r in recs {
        if let Some(c) = r.error_code {
            *errors.entry(c.to_string()).or_insert(0) += 1;
        }
    }
    let num_error = recs.len() - ok.len();
    let per_s = |x: f64| {
        if run_duration > 0.0 {
            x / run_duration
        } else {
            0.0
        }
    };
    let sum = |s: &Option<Stat>| s.as_ref().map_or(0.0, |s| s.sum);
    AggregatedMetrics {
        scenario: scenario.into(),
        num_concurrency: load.concurrency(),
        batch_size: None,
        iteration_type: load.iteration_type().into(),
        request_rate: load.rate(),
        run_duration,
        mean_output_throughput_tokens_per_s: per_s(sum(&stats.num_output_tokens)),
        mean_input_throughput_tokens_per_s: per_s(sum(&stats.num_input_tokens)),
        mean_total_tokens_throughput_tokens_per_s: per_s(sum(&stats.total_tokens)),
        requests_per_second: per_s(ok.len() as f64),
        error_codes_frequency: errors,
        error_rate: if recs.is_empty() {
            0.0
        } else {
            num_error as f64 / recs.len() as f64
        },
        num_error_requests: num_error,
        num_completed_requests: ok.len(),
        num_requests: recs.len(),
        stats,
        validity_verdict: verdict.into(),
        profile_path: None,
        steady_state: None,
    }
}

/// `--use-steady-state`: replace a point's throughputs and latency `stats` by its
/// steady-state window's (stats over the requests that started and ended inside it); request
/// and error counts stay the whole run's. Without a window (or without a request inside it) the
/// point keeps its whole-run numbers, with a warning.
pub fn use_steady_state(
    agg: &mut AggregatedMetrics,
    load: &LoadPoint,
    records: &[RequestRecord],
    steady: &crate::steady_report::SteadyStateOutcome,
) {
    let ss = match steady {
        Some(Ok(ss)) if ss.duration > 0.0 && ss.requests_within_window > 0 => ss,
        Some(Ok(_)) => {
            tracing::warn!(
                "{}: no request inside the steady-state window; whole-run numbers",
                agg.scenario
            );
            return;
        }
        Some(Err(e)) => {
            tracing::warn!(
                "{}: no steady-state window ({e}); whole-run numbers",
                agg.scenario
            );
            return;
        }
        _ => return,
    };
    let w = ss.window;
    let inside: Vec<RequestMetrics> = records
        .iter()
        .filter(|r| r.success() && !r.warmup && r.sent_ns >= w.start_ns && r.last_ns <= w.end_ns)
        .map(RequestMetrics::from_record)
        .collect();
    agg.stats = aggregate(&agg.scenario, load, &inside, ss.duration, "").stats;
    agg.mean_output_throughput_tokens_per_s = ss.output_throughput;
    agg.mean_input_throughput_tokens_per_s = ss.input_throughput;
    agg.mean_total_tokens_throughput_tokens_per_s = ss.input_throughput + ss.output_throughput;
    agg.requests_per_second = ss.completed as f64 / ss.duration;
    agg.steady_state = Some(ss.clone());
}

/// One run file, in genai-bench's key order.
#[derive(Serialize)]
struct RunFile<'a> {
    aggregated_metrics: &'a AggregatedMetrics,
    individual_request_metrics: &'a [RequestMetrics],
    _time_unit: &'a str,
}

/// One load point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LoadPoint {
    /// Closed loop with this many requests in flight.
    Concurrency(usize),
    /// Open loop (Poisson) at this many requests per second.
    Rate(f64),
}

impl LoadPoint {
    pub fn iteration_type(&self) -> &'static str {
        match self {
            LoadPoint::Concurrency(_) => "num_concurrency",
            LoadPoint::Rate(_) => "request_rate",
        }
    }
    fn concurrency(&self) -> Option<usize> {
        match self {
            LoadPoint::Concurrency(c) => Some(*c),
            LoadPoint::Rate(_) => None,
        }
    }
    fn rate(&self) -> Option<f64> {
        match self {
            LoadPoint::Rate(r) => Some(*r),
            LoadPoint::Concurrency(_) => None,
        }
    }
    fn value(&self) -> String {
        match self {
            LoadPoint::Concurrency(c) => c.to_string(),
            LoadPoint::Rate(r) => inferperf_loadgen::table::py_float(*r),
        }
    }
}

/// The sweep's settings.
pub struct SweepOptions {
    pub base_url: String,
    pub model: String,
    pub task: String,
    pub scenarios: Vec<Scenario>,
    pub loads: Vec<LoadPoint>,
    pub max_requests_per_run: usize,
    pub max_time_per_run_s: f64,
    pub seed: u64,
    pub experiment_dir: PathBuf,
    /// Written into `experiment_metadata.json`.
    pub metadata: serde_json::Value,
    pub tokenizer: SharedTokenizer,
    /// genai-bench's `--sglang-profile*`: one bounded profile window per point.
    pub profile: Option<SweepProfile>,
}

/// `--sglang-profile`, `--sglang-profile-steps`, `--sglang-profile-by-stage`,
/// `--sglang-profile-activities`, `--sglang-profile-output-dir`.
#[derive(Clone, Debug)]
pub struct SweepProfile {
    pub steps: u64,
    pub by_stage: bool,
    pub activities: Vec<String>,
    /// Sent to the server (it must be valid there); default `<experiment>/profiles`.
    pub output_dir: PathBuf,
}

/// Arm the server's profiler for one point as genai-bench's PR does: a directory
/// `{output_dir}/{name}_{epoch}` with `server_args.json`, then `/start_profile` with a
/// bounded window (an SGLang server closes it by itself; one that does not, vLLM, is closed by
/// [`close_profile`] after the point). Returns the trace location for the run file and the
/// window. A failure is a warning, not an abort.
async fn arm_profile(
    base_url: &str,
    p: &SweepProfile,
    name: &str,
) -> Option<(String, inferperf_profiler::client::remote::OpenWindow)> {
    use inferperf_profiler::client as pc;
    let epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let dir = p.output_dir.join(format!("{name}_{epoch}"));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        tracing::warn!("cannot create {}: {e}", dir.display());
        return None;
    }
    let http = pc::http_client().ok()?;
    pc::save_server_args(&http, base_url, &dir).await;
    let req = inferperf_protocol::profile::ProfileReqInput {
        output_dir: Some(dir.to_string_lossy().into_owned()),
        num_steps: Some(p.steps),
        activities: Some(p.activities.clone()),
        profile_by_stage: p.by_stage,
        merge_profiles: false,
        ..Default::default()
    };
    let target = pc::ProfileTarget::single(base_url);
    match pc::remote::open_window(&http, &target, &req).await {
        Ok((window, notes)) => {
            for n in notes {
                tracing::warn!("{n}");
            }
            let path = match window.location {
                pc::remote::TraceLocation::Sent(_) => dir.to_string_lossy().into_owned(),
                pc::remote::TraceLocation::ServerDecides { .. } => window.describe_location(),
            };
            Some((path, window))
        }
        Err(e) => {
            tracing::warn!("Failed to start profiling for this run: {e}");
            None
        }
    }
}

/// Close a point's window when the server will not close it itself (vLLM), after the point
/// ran: a sweep never leaves a window open. A failure is a warning.
async fn close_profile(window: &inferperf_profiler::client::remote::OpenWindow) {
    let Ok(http) = inferperf_profiler::client::http_client() else {
        return;
    };
    if let Err(e) = window.close(&http, crate::profiling::STOP_TIMEOUT).await {
        tracing::warn!("Failed to stop profiling for this run: {e}");
    }
}

/// Prompts of the scenario's sampled lengths (exact in tokens where the tokenizer allows).
fn rows(
    s: &Scenario,
    n: usize,
    tok: &SharedTokenizer,
    seed: u64,
) -> Result<Vec<DatasetRow>, BenchError> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let words = inferperf_loadgen::dataset::exact::WordVocab::build(tok);
    (0..n)
        .map(|_| {
            let (input, output) = s.sample(&mut rng).ok_or_else(|| {
                BenchError::Config(format!(
                    "traffic scenario {} is not a text-to-text scenario (D, N or U)",
                    s.label()
                ))
            })?;
            let prompt = match &words {
                Some(w) => w.prompt(&mut rng, input),
                None => {
                    let vocab = tok.vocab_size().max(2) as u32;
                    let ids: Vec<u32> = (0..input)
                        .map(|_| rand::Rng::gen_range(&mut rng, 1..vocab))
                        .collect();
                    tok.decode(&ids, true)
                        .map_err(inferperf_loadgen::tokenizer::tokenizer_error)?
                }
            };
            Ok(DatasetRow::text(prompt, input, output))
        })
        .collect()
}

fn write_json(path: &Path, v: &impl Serialize) -> Result<(), BenchError> {
    let text = serde_json::to_string_pretty(v)
        .map_err(|e| BenchError::Config(format!("serializing {}: {e}", path.display())))?;
    inferperf_loadgen::jsonl::write_atomic(path, text.as_bytes())
}

/// Run every scenario x load point; returns the run files written.
pub async fn run(o: &SweepOptions, base_args: &ServingConfig) -> Result<Vec<PathBuf>, BenchError> {
    std::fs::create_dir_all(&o.experiment_dir)
        .map_err(|e| BenchError::io(format!("creating {}", o.experiment_dir.display()), e))?;
    write_json(
        &o.experiment_dir.join("experiment_metadata.json"),
        &o.metadata,
    )?;
    let mut files = Vec::new();
    for (si, scenario) in o.scenarios.iter().enumerate() {
        let label = scenario.label();
        for load in &o.loads {
            let rows = rows(
                scenario,
                o.max_requests_per_run,
                &o.tokenizer,
                o.seed ^ si as u64,
            )?;
            let mut args = base_args.clone();
            args.dataset.num_prompts = rows.len();
            args.disable_tqdm = true;
            args.warmup_requests = 0;
            args.output_file = Some(
                o.experiment_dir
                    .join("bench_serving_records.jsonl")
                    .to_string_lossy()
                    .into_owned(),
            );
            match load {
                LoadPoint::Concurrency(c) => {
                    args.max_concurrency = Some(*c);
                    args.request_rate = f64::INFINITY;
                }
                LoadPoint::Rate(r) => {
                    args.max_concurrency = None;
                    args.request_rate = *r;
                }
            }
            let abort = Abort::default();
            let timer = {
                let (abort, t) = (abort.clone(), o.max_time_per_run_s);
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs_f64(t)).await;
                    abort.trigger("max time per run reached");
                })
            };
            let ctx = ServingContext {
                base_url: o.base_url.clone(),
                tokenizer: Some(o.tokenizer.clone()),
                client_threads: 1,
                cpu: inferperf_loadgen::cpu::ThreadCpu::default(),
                abort,
                calibration: None,
                print: false,
            };
            let profile_window = match &o.profile {
                Some(p) => {
                    let name = format!(
                        "{}_{}_{}",
                        sanitize(&label),
                        load.iteration_type(),
                        load.value()
                    );
                    arm_profile(&o.base_url, p, &name).await
                }
                None => None,
            };
            let out = run_serving_rows(&args, ctx, Some(rows)).await;
            timer.abort();
            let profile_path = match profile_window {
                Some((path, window)) => {
                    close_profile(&window).await;
                    Some(path)
                }
                None => None,
            };
            let out = out?;
            let recs: Vec<RequestMetrics> = out
                .records
                .iter()
                .filter(|r| !r.warmup)
                .map(RequestMetrics::from_record)
                .collect();
            if recs.is_empty() {
                tracing::warn!(
                    "{label} at {} {}: no records, no run file",
                    load.iteration_type(),
                    load.value()
                );
                continue;
            }
            // The run's wall time: first scheduled arrival to the last response line.
            let t0 = out
                .records
                .iter()
                .map(|r| r.scheduled_ns)
                .min()
                .unwrap_or(0);
            let t1 = out.records.iter().map(|r| r.last_ns).max().unwrap_or(t0);
            let duration = inferperf_loadgen::record::ns_to_s(t1.saturating_sub(t0));
            let mut agg = aggregate(&label, load, &recs, duration, out.validity.verdict.as_str());
            agg.profile_path = profile_path;
            if args.steady_state.use_in_aggregates {
                use_steady_state(&mut agg, load, &out.records, &out.steady_state);
            }
            let name = format!(
                "{}_{}_{}_{}_time_{}s.json",
                sanitize(&label),
                o.task,
                load.iteration_type(),
                load.value(),
                duration.ceil() as u64
            );
            let path = o.experiment_dir.join(name);
            write_json(
                &path,
                &RunFile {
                    aggregated_metrics: &agg,
                    individual_request_metrics: &recs,
                    _time_unit: "s",
                },
            )?;
            println!(
                "{label} {}={}: {} requests, {:.1} out tok/s, error rate {:.3} -> {}",
                load.iteration_type(),
                load.value(),
                agg.num_requests,
                agg.mean_output_throughput_tokens_per_s,
                agg.error_rate,
                path.display()
            );
            files.push(path);
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--use-steady-state`: the window's throughputs, and stats over the requests inside it.
    #[test]
    fn steady_state_replaces_throughput_and_stats() {
        let s = 1_000_000_000u64;
        let rec = |sent: u64, end: u64| RequestRecord {
            sent_ns: sent * s,
            first_token_ns: sent * s + s / 2,
            chunk_ns: vec![sent * s + s / 2, end * s],
            last_ns: end * s,
            output_len: 2,
            prompt_len: 10,
            ..Default::default()
        };
        // Two in flight on [2, 5): the window at ratio 1; only (2, 5) lies inside it.
        let records = vec![rec(0, 6), rec(2, 5), rec(7, 9)];
        let ss = inferperf_loadgen::steady_state::steady_state(&records, None, 1.0);
        let ss_m = ss.clone().expect("window");
        let load = LoadPoint::Concurrency(2);
        let recs: Vec<RequestMetrics> = records.iter().map(RequestMetrics::from_record).collect();
        let mut agg = aggregate("D(1,1)", &load, &recs, 9.0, "OK");
        use_steady_state(&mut agg, &load, &records, &Some(ss));
        assert_eq!(
            agg.mean_output_throughput_tokens_per_s,
            ss_m.output_throughput
        );
        assert_eq!(agg.num_requests, 3, "counts stay the whole run's");
        let e2e = agg.stats.e2e_latency.as_ref().expect("e2e stats");
        assert_eq!((e2e.min, e2e.max), (3.0, 3.0), "only the request inside");
        assert_eq!(agg.steady_state, Some(ss_m));
    }
}
