//! `bench offline` (SGLang `bench_offline_throughput`): every prompt of a dataset handed to the
//! in-process engine at once, timed end to end; SGLang's table and JSONL record.
//!
//! Differences from SGLang, on purpose: `--profile` falls back to `/tmp` when
//! `SGLANG_TORCH_PROFILER_DIR` is unset (SGLang asserts it is set), waits for the trace through
//! the profiler instead of polling the directory, and `--do-not-exit` sleeps instead of
//! spinning a core.

use std::path::{Path, PathBuf};
use std::time::Instant;

use inferperf_engine::api::{GenerateRequest, SamplingParams};
use inferperf_protocol::profile::ProfileReqInput;
use serde_json::{json, Map, Value};

use crate::inproc::InProcEngine;
use inferperf_loadgen::backend::parse_extra;
use inferperf_loadgen::backend::Prompt;
use inferperf_loadgen::dataset::DatasetRow;
use inferperf_loadgen::error::BenchError;
use inferperf_loadgen::jsonl::OrderedRecord;
use inferperf_loadgen::tokenizer::tokenizer_error;

/// Settings besides the model and the dataset.
#[derive(Clone, Debug, Default)]
pub struct OfflineOptions {
    pub disable_ignore_eos: bool,
    /// JSON object merged into every request's sampling parameters (as SGLang does here).
    pub extra_request_body: Option<String>,
    pub skip_warmup: bool,
    /// Trace directory when profiling.
    pub profile_dir: Option<PathBuf>,
    pub result_filename: Option<PathBuf>,
    pub seed: u64,
}

/// SGLang's offline metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct OfflineResult {
    pub successful_requests: usize,
    pub total_latency: f64,
    pub total_input_tokens: usize,
    pub total_output_tokens: usize,
    pub request_throughput: f64,
    pub input_throughput: f64,
    pub output_throughput: f64,
    pub total_throughput: f64,
    pub last_gen_throughput: f64,
    /// Trace files written (`--profile`).
    pub traces: Vec<PathBuf>,
}

impl OfflineResult {
    /// The JSONL record, `backend` first.
    pub fn record(&self) -> OrderedRecord {
        let mut r = OrderedRecord::default();
        r.put("backend", json!("engine"));
        r.put("successful_requests", json!(self.successful_requests));
        r.put("total_latency", self.total_latency);
        r.put("total_input_tokens", json!(self.total_input_tokens));
        r.put("total_output_tokens", json!(self.total_output_tokens));
        r.put("request_throughput", self.request_throughput);
        r.put("input_throughput", self.input_throughput);
        r.put("output_throughput", self.output_throughput);
        r.put("total_throughput", self.total_throughput);
        r.put("last_gen_throughput", self.last_gen_throughput);
        r
    }

    /// SGLang's console table.
    pub fn table(&self) -> String {
        let row = |k: &str, v: String| format!("{k:<40} {v:<10}\n");
        let mut s = String::from("\n");
        s.push_str(&format!(
            "{:=^50}\n",
            " Offline Throughput Benchmark Result "
        ));
        s.push_str(&row("Backend:", "engine".into()));
        s.push_str(&row(
            "Successful requests:",
            self.successful_requests.to_string(),
        ));
        s.push_str(&row(
            "Benchmark duration (s):",
            format!("{:.2}", self.total_latency),
        ));
        s.push_str(&row(
            "Total input tokens:",
            self.total_input_tokens.to_string(),
        ));
        s.push_str(&row(
            "Total generated tokens:",
            self.total_output_tokens.to_string(),
        ));
        s.push_str(&row(
            "Last generation throughput (tok/s):",
            format!("{:.2}", self.last_gen_throughput),
        ));
        s.push_str(&row(
            "Request throughput (req/s):",
            format!("{:.2}", self.request_throughput),
        ));
        s.push_str(&row(
            "Input token throughput (tok/s):",
            format!("{:.2}", self.input_throughput),
        ));
        s.push_str(&row(
            "Output token throughput (tok/s):",
            format!("{:.2}", self.output_throughput),
        ));
        s.push_str(&row(
            "Total token throughput (tok/s):",
            format!("{:.2}", self.total_throughput),
        ));
        s.push_str(&"=".repeat(50));
        s.push('\n');
        s
    }
}

/// Sampling parameters of one request: greedy, the row's output length, `ignore_eos`, then the
/// extra body's known keys.
fn sampling(row: &DatasetRow, o: &OfflineOptions, extra: &Map<String, Value>) -> SamplingParams {
    let mut s = SamplingParams {
        max_new_tokens: row.output_len,
        temperature: 0.0,
        ignore_eos: !o.disable_ignore_eos,
        ..SamplingParams::default()
    };
    for (k, v) in extra {
        match (k.as_str(), v) {
            ("temperature", Value::Number(n)) => s.temperature = n.as_f64().unwrap_or(0.0) as f32,
            ("top_p", Value::Number(n)) => s.top_p = n.as_f64().unwrap_or(1.0) as f32,
            ("top_k", Value::Number(n)) => s.top_k = n.as_i64().unwrap_or(-1) as i32,
            ("min_p", Value::Number(n)) => s.min_p = n.as_f64().unwrap_or(0.0) as f32,
            ("max_new_tokens", Value::Number(n)) => {
                s.max_new_tokens = n.as_u64().unwrap_or(row.output_len as u64) as usize
            }
            ("min_new_tokens", Value::Number(n)) => {
                s.min_new_tokens = n.as_u64().unwrap_or(0) as usize
            }
            ("ignore_eos", Value::Bool(b)) => s.ignore_eos = *b,
            _ => tracing::warn!(
                "--extra-request-body key {k:?} is not a sampling parameter of the engine; ignored"
            ),
        }
    }
    s
}

/// Engine requests for the rows (text prompts are tokenized with the engine's tokenizer).
fn requests(
    engine: &InProcEngine,
    rows: &[DatasetRow],
    o: &OfflineOptions,
    extra: &Map<String, Value>,
    tag: &str,
) -> Result<Vec<GenerateRequest>, BenchError> {
    let tok = engine.tokenizer();
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            let input_ids = match &row.prompt {
                Prompt::Ids(ids) => ids.clone(),
                Prompt::Text(t) => tok.encode(t, true).map_err(tokenizer_error)?,
                Prompt::Messages(m) => {
                    let t = tok.apply_chat_template(m, true).map_err(tokenizer_error)?;
                    tok.encode(&t, false).map_err(tokenizer_error)?
                }
                Prompt::Turns(_) => return Err(BenchError::Config(
                    "bench offline sends single requests; multi-turn rows are for bench serving"
                        .into(),
                )),
            };
            Ok(GenerateRequest {
                rid: format!("{tag}-{i}"),
                input_ids,
                sampling: sampling(row, o, extra),
                stream_interval: usize::MAX,
            })
        })
        .collect()
}

/// Warm up (unless skipped), then run every row as one generate call and measure it.
pub fn run(
    engine: &InProcEngine,
    rows: &[DatasetRow],
    warmup_rows: &[DatasetRow],
    o: &OfflineOptions,
) -> Result<OfflineResult, BenchError> {
    if rows.is_empty() {
        return Err(BenchError::Dataset("the dataset produced no rows".into()));
    }
    let extra = parse_extra(o.extra_request_body.as_deref())?;
    if !o.skip_warmup && !warmup_rows.is_empty() {
        println!("Warmup...");
        engine.run_batch(requests(engine, warmup_rows, o, &extra, "warmup")?)?;
    }
    let reqs = requests(engine, rows, o, &extra, "offline")?;
    let session = match &o.profile_dir {
        Some(dir) => Some(engine.profile(&ProfileReqInput {
            output_dir: Some(dir.to_string_lossy().into_owned()),
            activities: Some(vec!["CPU".into()]),
            ..ProfileReqInput::default()
        })?),
        None => None,
    };
    let t0 = Instant::now();
    let run = engine.run_batch(reqs)?;
    let total_latency = t0.elapsed().as_secs_f64();
    let traces = match session {
        Some(_) => engine.stop_profile()?.trace_files,
        None => Vec::new(),
    };
    let finished: Vec<_> = run
        .outputs
        .iter()
        .filter_map(|o| o.finish.as_ref())
        .collect();
    let successful_requests = finished
        .iter()
        .filter(|f| !matches!(f.reason, inferperf_engine::api::FinishReason::Abort { .. }))
        .count();
    let total_input_tokens: usize = rows.iter().map(|r| r.prompt_len).sum();
    let total_output_tokens: usize = finished.iter().map(|f| f.completion_tokens).sum();
    let last_gen_throughput = engine.state()?.last_gen_throughput;
    let per_s = |x: f64| x / total_latency;
    let result = OfflineResult {
        successful_requests,
        total_latency,
        total_input_tokens,
        total_output_tokens,
        request_throughput: per_s(successful_requests as f64),
        input_throughput: per_s(total_input_tokens as f64),
        output_throughput: per_s(total_output_tokens as f64),
        total_throughput: per_s((total_input_tokens + total_output_tokens) as f64),
        last_gen_throughput,
        traces,
    };
    if let Some(path) = &o.result_filename {
        append(path, &result)?;
    }
    Ok(result)
}

fn append(path: &Path, r: &OfflineResult) -> Result<(), BenchError> {
    inferperf_loadgen::jsonl::append_line(path, &r.record().to_line())
}
