//! `bench one-batch` (SGLang `bench_one_batch`): the latency of one static batch on the
//! in-process engine, no server. For every (batch size, input length, output length) case the
//! whole batch is prefilled in one EXTEND step, then decoded in `output_len - 1` DECODE steps;
//! each step is timed on the engine thread. SGLang's formulas, printed lines and JSONL keys.
//!
//! The engine must run without the prefix cache (`EngineConfig::disable_radix_cache`): every
//! case, and every profiled re-run, computes its whole prompt, as SGLang's model-runner loop does.
//!
//! Profiling (`--profile`) runs each case again with a profile window on the prefill step and
//! one on the chosen decode steps (so the measured run carries no profiler overhead), and writes
//! SGLang's `{prefix}_batch{bs}_input{il}_output{ol}_{prefill|decode}.trace.json.gz` with an
//! operator table sorted by self time.

use std::path::{Path, PathBuf};

use inferperf_engine::api::{GenerateRequest, SamplingParams};
use inferperf_engine::hooks::ForwardMode;
use inferperf_protocol::profile::ProfileReqInput;
use rand::{Rng, SeedableRng};

use crate::inproc::{BatchRun, InProcEngine};
pub use inferperf_loadgen::batch_case::Case;
use inferperf_loadgen::error::BenchError;
use inferperf_loadgen::jsonl::OrderedRecord;
use inferperf_loadgen::stats::{percentile_sorted, sorted};

/// Which steps `--profile` captures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProfileStage {
    All,
    Prefill,
    Decode,
}

/// `--profile*` settings.
#[derive(Clone, Debug)]
pub struct ProfileOptions {
    pub stage: ProfileStage,
    /// 0-based decode step the decode window starts at (default `output_len / 2`).
    pub start_step: Option<usize>,
    /// Decode steps captured (default 1).
    pub steps: Option<usize>,
    pub prefix: String,
    pub record_shapes: bool,
    /// Where the traces go (`SGLANG_TORCH_PROFILER_DIR`, else `/tmp`).
    pub dir: PathBuf,
}

/// The command's settings besides the model.
#[derive(Clone, Debug)]
pub struct OneBatchOptions {
    pub run_name: String,
    pub batch_sizes: Vec<usize>,
    pub input_lens: Vec<usize>,
    pub output_lens: Vec<usize>,
    pub result_filename: Option<PathBuf>,
    /// Print every N-th decode step (steps 0-4 always); 0 prints only the first five.
    pub log_decode_step: usize,
    pub correctness_test: bool,
    pub profile: Option<ProfileOptions>,
    pub seed: u64,
}

/// One case's measurements (SGLang's record).
#[derive(Clone, Debug, PartialEq)]
pub struct CaseResult {
    pub case: Case,
    pub prefill_latency: f64,
    pub prefill_throughput: f64,
    pub decode_latencies: Vec<f64>,
    pub median_decode_latency: Option<f64>,
    pub median_decode_throughput: Option<f64>,
    pub total_latency: f64,
    pub overall_throughput: f64,
    /// Generated text per request (`--correctness-test`).
    pub texts: Vec<String>,
    /// Trace files written for this case (`--profile`).
    pub traces: Vec<PathBuf>,
}

impl CaseResult {
    /// SGLang's JSONL record: `run_name, batch_size, input_len, output_len, prefill_latency,
    /// prefill_throughput, [median_decode_latency, median_decode_throughput], total_latency,
    /// overall_throughput`.
    pub fn record(&self, run_name: &str) -> OrderedRecord {
        let mut r = self.case.record_head(run_name);
        r.put("prefill_latency", self.prefill_latency);
        r.put("prefill_throughput", self.prefill_throughput);
        if let (Some(l), Some(t)) = (self.median_decode_latency, self.median_decode_throughput) {
            r.put("median_decode_latency", l);
            r.put("median_decode_throughput", t);
        }
        r.put("total_latency", self.total_latency);
        r.put("overall_throughput", self.overall_throughput);
        r
    }
}

/// The Cartesian product of the lists, in SGLang's order (batch size outermost).
pub fn cases(o: &OneBatchOptions) -> Vec<Case> {
    let mut v = Vec::new();
    for &batch_size in &o.batch_sizes {
        for &input_len in &o.input_lens {
            for &output_len in &o.output_lens {
                v.push(Case {
                    batch_size,
                    input_len,
                    output_len,
                });
            }
        }
    }
    v
}

/// Synthetic prompts: ids drawn uniformly below min(10000, vocab), seeded per case.
fn requests(case: Case, output_len: usize, vocab: usize, seed: u64) -> Vec<GenerateRequest> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
        seed ^ ((case.batch_size as u64) << 40) ^ ((case.input_len as u64) << 20),
    );
    let hi = vocab.clamp(1, 10_000) as u32;
    (0..case.batch_size)
        .map(|i| GenerateRequest {
            rid: format!("one-batch-{i}"),
            input_ids: (0..case.input_len).map(|_| rng.gen_range(0..hi)).collect(),
            sampling: SamplingParams {
                max_new_tokens: output_len,
                temperature: 0.0,
                ignore_eos: true,
                ..SamplingParams::default()
            },
            stream_interval: usize::MAX,
        })
        .collect()
}

/// Check that the run was one EXTEND of the whole batch followed by whole-batch DECODE steps,
/// and return (prefill seconds, decode seconds per step).
fn split_steps(case: Case, run: &BatchRun) -> Result<(f64, Vec<f64>), BenchError> {
    let bad = |why: String| {
        BenchError::Server(format!(
            "case (bs={}, il={}, ol={}) did not run as one static batch: {why}",
            case.batch_size, case.input_len, case.output_len
        ))
    };
    if let Some(o) = run.outputs.iter().find(|o| {
        o.finish
            .as_ref()
            .is_none_or(|f| f.completion_tokens != case.output_len)
    }) {
        return Err(bad(format!("a request ended early: {:?}", o.finish)));
    }
    let Some((first, rest)) = run.steps.split_first() else {
        return Err(bad("no step ran".into()));
    };
    if first.mode != ForwardMode::Extend || first.batch_size != case.batch_size {
        return Err(bad(format!(
            "the first step was {} with {} requests",
            first.mode.name(),
            first.batch_size
        )));
    }
    if let Some(s) = rest
        .iter()
        .find(|s| s.mode != ForwardMode::Decode || s.batch_size != case.batch_size)
    {
        return Err(bad(format!(
            "step {} was {} with {} requests",
            s.forward_ct,
            s.mode.name(),
            s.batch_size
        )));
    }
    if rest.len() + 1 != case.output_len {
        return Err(bad(format!(
            "{} decode steps for {} output tokens",
            rest.len(),
            case.output_len
        )));
    }
    Ok((first.seconds, rest.iter().map(|s| s.seconds).collect()))
}

/// SGLang's arithmetic over the step times of one case.
pub fn measure(case: Case, prefill: f64, decode: Vec<f64>) -> CaseResult {
    let (bs, il, ol) = (
        case.batch_size as f64,
        case.input_len as f64,
        case.output_len as f64,
    );
    let median_decode_latency =
        (!decode.is_empty()).then(|| percentile_sorted(&sorted(&decode), 50.0));
    let total_latency = prefill + decode.iter().sum::<f64>();
    CaseResult {
        case,
        prefill_latency: prefill,
        prefill_throughput: il * bs / prefill,
        median_decode_throughput: median_decode_latency.map(|l| bs / l),
        median_decode_latency,
        decode_latencies: decode,
        total_latency,
        overall_throughput: (il + ol) * bs / total_latency,
        texts: Vec::new(),
        traces: Vec::new(),
    }
}

/// Run every case (after a warm-up), printing SGLang's lines; returns the measured cases.
pub fn run(engine: &InProcEngine, o: &OneBatchOptions) -> Result<Vec<CaseResult>, BenchError> {
    let all = cases(o);
    let Some(first) = all.first().copied() else {
        return Err(BenchError::Config(
            "--batch-size, --input-len and --output-len need at least one value each".into(),
        ));
    };
    if all
        .iter()
        .any(|c| c.batch_size == 0 || c.input_len == 0 || c.output_len == 0)
    {
        return Err(BenchError::Config(
            "batch sizes, input lengths and output lengths must be at least 1".into(),
        ));
    }
    let state = engine.state()?;
    let capacity = state.max_total_num_tokens;
    let vocab = engine.model_info().vocab_size;
    let fits = |c: &Case| c.batch_size <= capacity / (c.input_len + c.output_len);
    if fits(&first) {
        println!("Warmup ...");
        let warm = Case {
            output_len: first.output_len.min(32),
            ..first
        };
        engine.run_batch(requests(warm, warm.output_len, vocab, o.seed))?;
    }
    let mut results = Vec::new();
    for case in all {
        if !fits(&case) {
            println!(
                "skipping ({}, {}, {}) due to max batch size limit",
                case.batch_size, case.input_len, case.output_len
            );
            continue;
        }
        let run = engine.run_batch(requests(case, case.output_len, vocab, o.seed))?;
        let (prefill, decode) = split_steps(case, &run)?;
        let mut r = measure(case, prefill, decode);
        print_case(&r, o.log_decode_step);
        if o.correctness_test {
            r.texts = run.outputs.iter().map(|out| out.text.clone()).collect();
            for (i, t) in r.texts.iter().enumerate() {
                println!("========== Prompt {i} ==========\n{t}\n");
            }
        }
        if let Some(p) = &o.profile {
            r.traces = profile_case(engine, case, p, vocab, o.seed)?;
        }
        if let Some(path) = &o.result_filename {
            inferperf_loadgen::jsonl::append_line(path, &r.record(&o.run_name).to_line())?;
        }
        results.push(r);
    }
    Ok(results)
}

fn print_case(r: &CaseResult, log_decode_step: usize) {
    println!(
        "Prefill. latency: {:6.5} s, throughput: {:9.2} token/s",
        r.prefill_latency, r.prefill_throughput
    );
    for (i, l) in r.decode_latencies.iter().enumerate() {
        if i < 5 || (log_decode_step > 0 && i % log_decode_step == 0) {
            println!(
                "Decode {i}. Batch size: {}, latency: {l:6.5} s, throughput: {:9.2} token/s",
                r.case.batch_size,
                r.case.batch_size as f64 / l
            );
        }
    }
    if let (Some(l), Some(t)) = (r.median_decode_latency, r.median_decode_throughput) {
        println!("Decode.  median latency: {l:6.5} s, median throughput: {t:9.2} token/s");
    }
    println!(
        "Total. latency: {:6.3} s, throughput: {:9.2} token/s",
        r.total_latency, r.overall_throughput
    );
}

/// Run the case again with windows on its prefill step and on its decode steps; move each
/// window's trace to SGLang's name and print the operator table.
fn profile_case(
    engine: &InProcEngine,
    case: Case,
    p: &ProfileOptions,
    vocab: usize,
    seed: u64,
) -> Result<Vec<PathBuf>, BenchError> {
    let decode_steps = case.output_len.saturating_sub(1);
    let start = p
        .start_step
        .unwrap_or(case.output_len / 2)
        .min(decode_steps.saturating_sub(1));
    let steps = p
        .steps
        .unwrap_or(1)
        .max(1)
        .min(decode_steps.saturating_sub(start));
    let mut windows: Vec<(&str, u64, u64)> = Vec::new();
    // Step numbers relative to the forward count before the run: +1 is the EXTEND step, +2 the
    // first DECODE step.
    if matches!(p.stage, ProfileStage::All | ProfileStage::Prefill) {
        windows.push(("prefill", 1, 1));
    }
    if matches!(p.stage, ProfileStage::All | ProfileStage::Decode) && steps > 0 {
        windows.push(("decode", 2 + start as u64, steps as u64));
    }
    let mut written = Vec::new();
    for (stage, offset, n) in windows {
        let tmp = tempfile::tempdir_in(&p.dir).map_err(|e| {
            BenchError::io(format!("creating a directory in {}", p.dir.display()), e)
        })?;
        let f0 = engine.state()?.forward_ct;
        let session = engine.profile(&ProfileReqInput {
            output_dir: Some(tmp.path().to_string_lossy().into_owned()),
            start_step: Some(f0 + offset),
            num_steps: Some(n),
            activities: Some(vec!["CPU".into()]),
            with_stack: Some(true),
            record_shapes: Some(p.record_shapes),
            ..ProfileReqInput::default()
        })?;
        engine.run_batch(requests(case, case.output_len, vocab, seed))?;
        let outcome = engine.wait(&session)?;
        let Some(src) = outcome.trace_files.first() else {
            return Err(BenchError::Server(format!(
                "the {stage} window wrote no trace"
            )));
        };
        let dst = p.dir.join(format!(
            "{}_batch{}_input{}_output{}_{stage}.trace.json.gz",
            p.prefix, case.batch_size, case.input_len, case.output_len
        ));
        std::fs::rename(src, &dst)
            .map_err(|e| BenchError::io(format!("moving the trace to {}", dst.display()), e))?;
        print!("{}", crate::ops_table::render(&dst, 15)?);
        println!(
            "torch profiler chrome trace for {stage} saved to {}",
            dst.display()
        );
        written.push(dst);
    }
    Ok(written)
}

/// `SGLANG_TORCH_PROFILER_DIR`, else `/tmp`.
pub fn default_profile_dir() -> PathBuf {
    std::env::var_os("SGLANG_TORCH_PROFILER_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new("/tmp").to_path_buf())
}
