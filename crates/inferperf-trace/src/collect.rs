//! One streaming pass over a trace file that keeps what the analyses need: GPU intervals with
//! their class, kernel launch times by correlation id, step spans, per-name CPU span
//! statistics, and CPU collective calls with the CPU breakdown of a trace without GPU activity.
//! Memory is proportional to the number of GPU events and CPU ops, not to the file size.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::value::RawValue;

use crate::cpucomm::{self, CollectiveSpan, CpuCollective};
use crate::error::TraceError;
use crate::event::{is_gpu_category, EventParser};
use crate::progress::Progress;
use crate::reader::TraceReader;
use crate::stats::Stats;
use crate::taxonomy::{KernelClass, Taxonomy};
use crate::timeline::Timeline;

/// One GPU activity interval.
#[derive(Debug, Clone, Copy)]
pub struct GpuEvent {
    /// Start (ns).
    pub start: i64,
    /// End (ns).
    pub end: i64,
    /// Index into `TraceData::names`.
    pub name: u32,
    /// Taxonomy category index.
    pub category: u16,
    /// Temporal-breakdown class.
    pub class: KernelClass,
    /// Correlation id linking it to its launch, if any.
    pub correlation: Option<i64>,
    /// Stream (tid).
    pub stream: i64,
}

/// One engine step as the trace marks it: SGLang's (and the reference server's) `step[...]`,
/// vLLM's `execute_context_N(T)_generation_M(U)`, or PyTorch's `ProfilerStep#N`.
/// `docs/trace-conventions.md` lists the names and how each maps to a stage.
#[derive(Debug, Clone)]
pub struct StepSpan {
    /// Full span name.
    pub name: String,
    /// Stage: `prefill` for EXTEND/PREFILL, `decode`, other modes lower-cased (`mixed`,
    /// `idle`...); for vLLM, from its request counts (see [`BatchCounts::stage`]); for
    /// `ProfilerStep#N`, `profiler_step`.
    pub stage: String,
    /// Start (ns).
    pub start: i64,
    /// End (ns).
    pub end: i64,
    /// Batch size: `bs=`, or vLLM's context + generation requests.
    pub bs: Option<u64>,
    /// Tokens: `toks=` (SGLang names only prefill tokens), or vLLM's context + generation
    /// tokens.
    pub toks: Option<u64>,
    /// N of `ProfilerStep#N`.
    pub profiler_step: Option<u64>,
    /// vLLM's split of the step into context (prefill) and generation (decode) work.
    pub batch: Option<BatchCounts>,
}

/// What a vLLM step annotation states: requests and tokens in the context phase (prefill,
/// including later chunks of a chunked prefill) and in the generation phase (decode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchCounts {
    /// Requests still in their context (prefill) phase.
    pub context_requests: u64,
    /// Tokens scheduled for them.
    pub context_tokens: u64,
    /// Requests generating (decode).
    pub generation_requests: u64,
    /// Tokens scheduled for them (more than one per request with speculative decoding).
    pub generation_tokens: u64,
}

impl BatchCounts {
    /// `prefill` when only context requests run, `decode` when only generation requests run,
    /// `mixed` for both, `idle` for neither -- the stage names SGLang's modes map to.
    pub fn stage(&self) -> &'static str {
        match (self.context_requests > 0, self.generation_requests > 0) {
            (true, false) => "prefill",
            (false, true) => "decode",
            (true, true) => "mixed",
            (false, false) => "idle",
        }
    }
}

/// What to keep while collecting.
#[derive(Debug, Clone, Default)]
pub struct CollectOptions {
    /// Include `python_function` events in the CPU span statistics.
    pub include_python: bool,
    /// Skip invalid events (see [`EventParser::check`]), counting them, instead of failing on
    /// the first one.
    pub skip_bad: bool,
}

/// Everything the analyses need from one trace file.
pub struct TraceData {
    /// The file.
    pub path: PathBuf,
    /// `distributedInfo.rank`, when present.
    pub rank: Option<i64>,
    /// `distributedInfo.world_size`, when present.
    pub world_size: Option<i64>,
    /// Interned event names.
    pub names: Vec<String>,
    /// GPU intervals in file order.
    pub gpu: Vec<GpuEvent>,
    /// Launch time (ns) of each correlation id (runtime/driver calls).
    pub launches: HashMap<i64, i64>,
    /// Step spans other than `ProfilerStep#N` (SGLang `step[...]`, vLLM `execute_...`) in
    /// start order.
    pub steps: Vec<StepSpan>,
    /// `ProfilerStep#N` spans in start order.
    pub profiler_steps: Vec<StepSpan>,
    /// CPU span statistics by (category, name).
    pub cpu_spans: HashMap<(String, u32), Stats>,
    /// Events read (valid ones; see `bad_events`).
    pub events: u64,
    /// Invalid events skipped (only with `CollectOptions::skip_bad`).
    pub bad_events: u64,
    /// Events per category.
    pub by_category: BTreeMap<String, u64>,
    /// Earliest `ts` of any event (ns).
    pub first_ts: Option<i64>,
    /// Latest end of any event (ns).
    pub last_ts: Option<i64>,
    /// Warnings from reading (tolerated damage).
    pub warnings: Vec<String>,
    /// Top-level metadata (raw JSON).
    pub metadata: Vec<(String, Box<RawValue>)>,
    /// CPU collective calls (gloo, c10d, `record_param_comms`, the reference server's
    /// `all_reduce`), nested spans merged, in start order; see [`cpucomm`].
    pub cpu_collectives: Vec<CpuCollective>,
    /// The CPU breakdown ([`Timeline::of_cpu`]) of a trace without GPU events; `None` when it
    /// has GPU events or no CPU ops and collectives at all.
    pub cpu_timeline: Option<Timeline>,
}

impl TraceData {
    /// The name of an interned id.
    pub fn name(&self, id: u32) -> &str {
        self.names
            .get(id as usize)
            .map(String::as_str)
            .unwrap_or("")
    }

    /// A short label for this trace: `rank N` or the file name.
    pub fn label(&self) -> String {
        match self.rank {
            Some(r) => format!("rank {r}"),
            None => self
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }
}

/// Reads `path` once and collects the analysis data, classifying GPU events with `taxonomy`.
pub fn collect(
    path: &Path,
    taxonomy: &Taxonomy,
    opts: &CollectOptions,
    progress: &Progress,
) -> Result<TraceData, TraceError> {
    let mut reader = TraceReader::open(path)?;
    let mut parser = EventParser::default();
    let mut names: Vec<String> = Vec::new();
    let mut name_ids: HashMap<String, u32> = HashMap::new();
    let mut classes: HashMap<u32, (u16, KernelClass)> = HashMap::new();
    let mut gpu = Vec::new();
    let mut launches = HashMap::new();
    let mut steps = Vec::new();
    let mut profiler_steps = Vec::new();
    let mut cpu_spans: HashMap<(String, u32), Stats> = HashMap::new();
    let mut by_category: BTreeMap<String, u64> = BTreeMap::new();
    let mut first_ts: Option<i64> = None;
    let mut last_ts: Option<i64> = None;
    let mut coll_spans: Vec<CollectiveSpan> = Vec::new();
    let mut threads: HashMap<String, u64> = HashMap::new();
    let mut cpu_ops: Vec<(i64, i64)> = Vec::new();
    let mut index: u64 = 0;
    let mut last_pos = 0u64;

    let mut intern = |names: &mut Vec<String>, s: &str| -> u32 {
        if let Some(&id) = name_ids.get(s) {
            return id;
        }
        let id = names.len() as u32;
        names.push(s.to_string());
        name_ids.insert(s.to_string(), id);
        id
    };

    let mut members = Vec::new();
    let mut bad = BadEvents::default();
    while let Some((raw, scanned)) = reader.next_event_scanned(&mut members)? {
        let parsed = if scanned {
            parser.parse_scanned(raw, &members)
        } else {
            parser.parse(raw)
        };
        let ev = match parsed {
            Ok(ev) => ev,
            Err(e) => {
                bad.note(path, index + bad.count, &e, opts.skip_bad)?;
                continue;
            }
        };
        index += 1;
        let cat = ev.category();
        match by_category.get_mut(cat) {
            Some(n) => *n += 1,
            None => {
                by_category.insert(cat.to_string(), 1);
            }
        }
        if ev.ph == "M" {
            continue;
        }
        if let Some(ts) = ev.ts {
            first_ts = Some(first_ts.map_or(ts.0, |f| f.min(ts.0)));
            let end = ev.end().map_or(ts.0, |e| e.0);
            last_ts = Some(last_ts.map_or(end, |l| l.max(end)));
        }
        if ev.ph != "X" {
            continue;
        }
        let (Some(ts), Some(dur)) = (ev.ts, ev.dur) else {
            continue;
        };
        let (start, end) = (ts.0, ts.0.saturating_add(dur.0));
        if is_gpu_category(cat) {
            let id = intern(&mut names, &ev.name);
            let (category, class) = *classes.entry(id).or_insert_with(|| {
                let (c, k) = taxonomy.classify(cat, &ev.name);
                (c as u16, k)
            });
            let link = ev.link_args();
            let stream = link
                .stream
                .or_else(|| ev.tid.as_ref().and_then(|t| t.as_int()))
                .unwrap_or(-1);
            gpu.push(GpuEvent {
                start,
                end,
                name: id,
                category,
                class,
                correlation: link.correlation,
                stream,
            });
            continue;
        }
        if matches!(cat, "cuda_runtime" | "cuda_driver" | "Runtime") {
            if let Some(c) = ev.link_args().correlation {
                launches.insert(c, start);
            }
        }
        let step = parse_step(cat, &ev.name, start, end);
        if cpucomm::span_kind(cat, &ev.name).is_some() {
            let key = format!(
                "{}/{}",
                ev.pid.as_ref().map(ToString::to_string).unwrap_or_default(),
                ev.tid.as_ref().map(ToString::to_string).unwrap_or_default()
            );
            let n = threads.len() as u64;
            let thread = *threads.entry(key).or_insert(n);
            let args = ev.args.map(|a| a.get());
            coll_spans.extend(CollectiveSpan::classify(
                thread, start, end, cat, &ev.name, args,
            ));
        } else if step.is_none() && matches!(cat, "cpu_op" | "Operator") {
            cpu_ops.push((start, end));
        }
        if let Some(span) = step {
            if span.profiler_step.is_some() {
                profiler_steps.push(span);
            } else {
                steps.push(span);
            }
        }
        if cat == "python_function" && !opts.include_python {
            continue;
        }
        if matches!(cat, "ac2g" | "Trace" | "overhead") {
            continue;
        }
        let id = intern(&mut names, &ev.name);
        let key = (cat.to_string(), id);
        cpu_spans.entry(key).or_default().add(end - start);
        let pos = reader.position();
        if pos - last_pos > 1 << 20 {
            progress.inc(pos - last_pos);
            last_pos = pos;
        }
    }
    progress.inc(reader.position().saturating_sub(last_pos));
    let mut warnings = reader.warnings().to_vec();
    warnings.extend(bad.warning(path));
    if parser.invalid_utf8 > 0 {
        let msg = format!(
            "{} events had invalid UTF-8 and were read with replacement characters",
            parser.invalid_utf8
        );
        tracing::warn!("{}: {}", path.display(), msg);
        warnings.push(msg);
    }
    keep_one_step_convention(&mut steps);
    steps.sort_by_key(|s| s.start);
    profiler_steps.sort_by_key(|s| s.start);
    let metadata: Vec<(String, Box<RawValue>)> = reader.metadata().to_vec();
    let dist = metadata
        .iter()
        .find(|(k, _)| k == "distributedInfo")
        .and_then(|(_, v)| serde_json::from_str::<serde_json::Value>(v.get()).ok());
    let rank = dist
        .as_ref()
        .and_then(|d| d.get("rank"))
        .and_then(|r| r.as_i64());
    let world_size = dist
        .as_ref()
        .and_then(|d| d.get("world_size"))
        .and_then(|r| r.as_i64());
    let cpu_collectives = cpucomm::group_calls(coll_spans);
    let cpu_timeline = (gpu.is_empty() && !(cpu_ops.is_empty() && cpu_collectives.is_empty()))
        .then(|| {
            let calls: Vec<(i64, i64)> = cpu_collectives.iter().map(|c| (c.start, c.end)).collect();
            Timeline::of_cpu(&cpu_ops, &calls)
        });
    Ok(TraceData {
        path: path.to_path_buf(),
        rank,
        world_size,
        names,
        gpu,
        launches,
        steps,
        profiler_steps,
        cpu_spans,
        events: index,
        bad_events: bad.count,
        by_category,
        first_ts,
        last_ts,
        warnings,
        metadata,
        cpu_collectives,
        cpu_timeline,
    })
}

/// Invalid events met while reading one file: `trace summary` and `trace merge` judge events
/// alike ([`EventParser::check`]) and report them alike -- an error naming the file and the
/// event, or, when skipping, a count with the first one.
#[derive(Debug, Default)]
pub struct BadEvents {
    /// Invalid events skipped.
    pub count: u64,
    /// The first of them: `event N: what is wrong`.
    pub first: Option<String>,
}

impl BadEvents {
    /// Records that event `index` (0-based, in file order) of `path` is invalid: an error unless
    /// `skip`, in which case it is counted.
    pub fn note(
        &mut self,
        path: &Path,
        index: u64,
        error: &serde_json::Error,
        skip: bool,
    ) -> Result<(), TraceError> {
        let what = format!("event {index}: {error}");
        if !skip {
            return Err(TraceError::format(
                path,
                format!("{what} (--skip-bad skips invalid events)"),
            ));
        }
        self.count += 1;
        self.first.get_or_insert(what);
        Ok(())
    }

    /// The warning for the skipped events, if any (also logged).
    pub fn warning(&self, path: &Path) -> Option<String> {
        let first = self.first.as_ref()?;
        let msg = format!("skipped {} invalid events (first: {first})", self.count);
        tracing::warn!("{}: {}", path.display(), msg);
        Some(msg)
    }
}

/// Recognizes a step span by its name: `ProfilerStep#N`, SGLang's `step[MODE bs=.. toks=..]`
/// and vLLM's `execute_context_N(T)_generation_M(U)` (also its detailed form
/// `execute_S_context_N(sqT sk..)_generation_M(sqU sk..)`). Each is one prefix check, as this
/// runs on every CPU span. `gpu_user_annotation` events are GPU-side copies of CPU annotations
/// and are never steps (counting them would count each step twice).
pub fn parse_step(category: &str, name: &str, start: i64, end: i64) -> Option<StepSpan> {
    if category == "gpu_user_annotation" {
        return None;
    }
    if let Some(n) = name.strip_prefix("ProfilerStep#") {
        return Some(StepSpan {
            name: name.to_string(),
            stage: "profiler_step".into(),
            start,
            end,
            bs: None,
            toks: None,
            profiler_step: n.trim().parse().ok(),
            batch: None,
        });
    }
    if let Some(rest) = name.strip_prefix("execute_") {
        let batch = parse_vllm_step(rest)?;
        return Some(StepSpan {
            name: name.to_string(),
            stage: batch.stage().to_string(),
            start,
            end,
            bs: Some(batch.context_requests + batch.generation_requests),
            toks: Some(batch.context_tokens + batch.generation_tokens),
            profiler_step: None,
            batch: Some(batch),
        });
    }
    let inner = name.strip_prefix("step[")?.strip_suffix(']')?;
    let mut parts = inner.split_whitespace();
    let mode = parts.next()?;
    let mut bs = None;
    let mut toks = None;
    for p in parts {
        if let Some(v) = p.strip_prefix("bs=") {
            bs = v.parse().ok();
        } else if let Some(v) = p.strip_prefix("toks=") {
            toks = v.parse().ok();
        }
    }
    let mode_l = mode.to_ascii_lowercase();
    let mode_l = mode_l.rsplit('.').next().unwrap_or(&mode_l).to_string();
    let stage = match mode_l.as_str() {
        "extend" | "prefill" => "prefill".to_string(),
        other => other.to_string(),
    };
    Some(StepSpan {
        name: name.to_string(),
        stage,
        start,
        end,
        bs,
        toks,
        profiler_step: None,
        batch: None,
    })
}

/// Leaves one step span per step when a trace marks its steps both ways: SGLang's traces can
/// carry vLLM-style `execute_..._context_...` annotations around their `step[...]` spans (the
/// TraceLens SGLang traces do), and counting both would count each step twice. SGLang's
/// `step[...]` spans are kept then, the vLLM-style ones dropped.
pub fn keep_one_step_convention(steps: &mut Vec<StepSpan>) {
    let sglang = steps.iter().any(|s| s.batch.is_none());
    if sglang {
        steps.retain(|s| s.batch.is_none());
    }
}

/// The counts of a vLLM step name after `execute_`: `context_N(T)_generation_M(U)`, or the
/// detailed form `S_context_N(sqT...)_generation_M(sqU...)`. `None` for anything else.
fn parse_vllm_step(rest: &str) -> Option<BatchCounts> {
    let rest = match rest.strip_prefix("context_") {
        Some(r) => r,
        None => {
            let (total, r) = rest.split_once("_context_")?;
            total.parse::<u64>().ok()?;
            r
        }
    };
    let (context_requests, context_tokens, rest) = vllm_counts(rest)?;
    let rest = rest.strip_prefix("_generation_")?;
    let (generation_requests, generation_tokens, rest) = vllm_counts(rest)?;
    if !rest.is_empty() {
        return None;
    }
    Some(BatchCounts {
        context_requests,
        context_tokens,
        generation_requests,
        generation_tokens,
    })
}

/// `N(T)` or `N(sqT...)` at the start of `s`: (N, T, what follows the parenthesis).
fn vllm_counts(s: &str) -> Option<(u64, u64, &str)> {
    let (requests, s) = s.split_once('(')?;
    let (inner, rest) = s.split_once(')')?;
    let inner = inner.strip_prefix("sq").unwrap_or(inner);
    let digits = inner
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(inner.len());
    Some((requests.parse().ok()?, inner[..digits].parse().ok()?, rest))
}

/// Collects several files in parallel (one per core); results are in input order.
pub fn collect_many(
    paths: &[PathBuf],
    taxonomy: &Taxonomy,
    opts: &CollectOptions,
    progress: &Progress,
) -> Vec<Result<TraceData, TraceError>> {
    use rayon::prelude::*;
    paths
        .par_iter()
        .map(|p| collect(p, taxonomy, opts, progress))
        .collect()
}
