//! `trace summary`: per trace (rank) and overall -- top kernels and CPU spans with count, sum,
//! mean, min, max and std; the GPU temporal breakdown; time per taxonomy category; and a
//! per-stage (prefill/decode) split when the trace has engine step spans (SGLang `step[...]`,
//! vLLM `execute_context_...`). A trace with nothing to tabulate gets an explanation instead of
//! empty output. A trace without GPU events but with CPU collectives (gloo, `c10d::`,
//! `record_param_comms`, the reference server's `all_reduce`) gets the CPU breakdown instead of
//! the GPU one: CPU ops outside collectives as computation, the collectives as communication.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::collect::{GpuEvent, StepSpan, TraceData};
use crate::stats::{Stats, StatsReport};
use crate::table::{pct, us, us_f, Table};
use crate::taxonomy::Taxonomy;
use crate::timeline::Timeline;

/// Options of the summary.
#[derive(Debug, Clone)]
pub struct SummaryOptions {
    /// Rows in the top-kernel and top-span tables.
    pub top: usize,
}

impl Default for SummaryOptions {
    fn default() -> Self {
        SummaryOptions { top: 15 }
    }
}

/// One kernel (or memcpy/memset) name's statistics.
#[derive(Debug, Clone, Serialize)]
pub struct KernelRow {
    /// Full kernel name.
    pub name: String,
    /// Taxonomy category.
    pub category: String,
    /// compute / comm / memory.
    pub class: String,
    /// Duration statistics.
    pub stats: StatsReport,
    /// Share of the total GPU event time (plain sums), in percent.
    pub share_pct: f64,
}

/// Time per taxonomy category.
#[derive(Debug, Clone, Serialize)]
pub struct CategoryRow {
    /// Category name.
    pub category: String,
    /// compute / comm / memory.
    pub class: String,
    /// Events.
    pub count: u64,
    /// Plain sum of durations (µs).
    pub sum_us: f64,
    /// Share of the total GPU event time, in percent.
    pub share_pct: f64,
}

/// One stage (prefill, decode...) of the engine step spans.
#[derive(Debug, Clone, Serialize)]
pub struct StageRow {
    /// Stage name (`prefill`, `decode`, ..., or `unattributed` for GPU work launched outside
    /// any step span).
    pub stage: String,
    /// Step spans of this stage.
    pub steps: u64,
    /// Step span durations (CPU side).
    pub step_stats: Option<StatsReport>,
    /// Sum of `toks=` over the steps.
    pub tokens: u64,
    /// GPU events launched inside the stage's steps.
    pub gpu_events: u64,
    /// Their summed duration (µs).
    pub gpu_sum_us: f64,
    /// Share of all GPU event time, in percent.
    pub gpu_share_pct: f64,
    /// The stage's top kernels.
    pub top_kernels: Vec<KernelRow>,
}

/// A CPU span name's statistics.
#[derive(Debug, Clone, Serialize)]
pub struct SpanRow {
    /// Category (`cpu_op`, `user_annotation`...).
    pub category: String,
    /// Span name.
    pub name: String,
    /// Duration statistics.
    pub stats: StatsReport,
}

/// Summary of one trace file (one rank).
#[derive(Debug, Clone, Serialize)]
pub struct TraceSummary {
    /// Input file.
    pub file: String,
    /// `distributedInfo.rank`.
    pub rank: Option<i64>,
    /// Events read.
    pub events: u64,
    /// Events per category.
    pub categories: BTreeMap<String, u64>,
    /// GPU temporal breakdown (absent for CPU-only traces).
    pub timeline: Option<Timeline>,
    /// CPU breakdown of a trace without GPU events that has CPU collectives (computation = CPU
    /// ops outside collectives, communication = the collectives).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_timeline: Option<Timeline>,
    /// Its CPU collective calls (nested spans counted once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_collectives: Option<u64>,
    /// Top kernels by total time.
    pub kernels: Vec<KernelRow>,
    /// Distinct GPU event names.
    pub distinct_kernels: usize,
    /// Time per taxonomy category.
    pub kernel_categories: Vec<CategoryRow>,
    /// Per-stage split (empty without engine step spans).
    pub stages: Vec<StageRow>,
    /// `ProfilerStep#N` spans seen.
    pub profiler_steps: usize,
    /// Top CPU spans by total time.
    pub cpu_spans: Vec<SpanRow>,
    /// Tolerated damage while reading.
    pub warnings: Vec<String>,
    /// Why the kernel, stage and span tables are all empty, when they are (what the trace
    /// holds instead, and what to do about it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nothing_to_tabulate: Option<String>,
}

/// The whole summary: one entry per input plus an overall view across them.
#[derive(Debug, Clone, Serialize)]
pub struct SummaryReport {
    /// Per input.
    pub traces: Vec<TraceSummary>,
    /// Across all inputs (kernel statistics pooled, timelines summed); None for one input.
    pub overall: Option<OverallSummary>,
}

/// Pooled view over all inputs.
#[derive(Debug, Clone, Serialize)]
pub struct OverallSummary {
    /// Sum of the per-rank timelines (ns fields summed; percentages omitted).
    pub timeline: Timeline,
    /// Sum of the per-rank CPU breakdowns, when some input has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_timeline: Option<Timeline>,
    /// Top kernels pooled across ranks.
    pub kernels: Vec<KernelRow>,
    /// Time per category pooled across ranks.
    pub kernel_categories: Vec<CategoryRow>,
}

/// Summarizes collected traces.
pub fn summarize(data: &[TraceData], taxonomy: &Taxonomy, opts: &SummaryOptions) -> SummaryReport {
    let traces: Vec<TraceSummary> = data
        .iter()
        .map(|d| summarize_one(d, taxonomy, opts))
        .collect();
    let overall = if data.len() > 1 {
        let mut t = Timeline::default();
        let mut cpu: Option<Timeline> = None;
        let mut by_name: HashMap<String, (u16, String, Stats)> = HashMap::new();
        for d in data {
            if let Some(tl) = Timeline::of(&d.gpu).into() {
                add_timeline(&mut t, &tl);
            }
            if let Some(c) = cpu_breakdown(d) {
                add_timeline(cpu.get_or_insert_with(Timeline::default), c);
            }
            for e in &d.gpu {
                let entry = by_name
                    .entry(d.name(e.name).to_string())
                    .or_insert_with(|| {
                        (e.category, e.class.as_str().to_string(), Stats::default())
                    });
                entry.2.add(e.end - e.start);
            }
        }
        let total: i64 = by_name.values().map(|v| v.2.sum).sum();
        let mut rows: Vec<KernelRow> = by_name
            .iter()
            .map(|(n, (c, class, s))| {
                kernel_row(n, taxonomy.category(*c as usize), class, s, total)
            })
            .collect();
        sort_rows(&mut rows);
        let cats = category_rows(
            by_name
                .values()
                .map(|(c, class, s)| (*c, class.as_str(), *s)),
            taxonomy,
            total,
        );
        rows.truncate(opts.top);
        Some(OverallSummary {
            timeline: t,
            cpu_timeline: cpu,
            kernels: rows,
            kernel_categories: cats,
        })
    } else {
        None
    };
    SummaryReport { traces, overall }
}

/// The CPU breakdown the summary shows for `d`: only without GPU events and with CPU
/// collectives (a CPU trace without collectives has nothing to split).
fn cpu_breakdown(d: &TraceData) -> Option<&Timeline> {
    if d.cpu_collectives.is_empty() {
        return None;
    }
    d.cpu_timeline.as_ref()
}

fn add_timeline(t: &mut Timeline, o: &Timeline) {
    t.gpu_events += o.gpu_events;
    t.kernels += o.kernels;
    t.span_ns += o.span_ns;
    t.busy_ns += o.busy_ns;
    t.idle_ns += o.idle_ns;
    t.computation_ns += o.computation_ns;
    t.exposed_comm_ns += o.exposed_comm_ns;
    t.exposed_memory_ns += o.exposed_memory_ns;
    t.comm_union_ns += o.comm_union_ns;
    t.compute_sum_ns += o.compute_sum_ns;
    t.comm_sum_ns += o.comm_sum_ns;
    t.memory_sum_ns += o.memory_sum_ns;
}

fn kernel_row(name: &str, category: &str, class: &str, s: &Stats, total: i64) -> KernelRow {
    KernelRow {
        name: name.to_string(),
        category: category.to_string(),
        class: class.to_string(),
        stats: s.report(),
        share_pct: if total > 0 {
            100.0 * s.sum as f64 / total as f64
        } else {
            0.0
        },
    }
}

fn sort_rows(rows: &mut [KernelRow]) {
    rows.sort_by(|a, b| {
        b.stats
            .sum_us
            .total_cmp(&a.stats.sum_us)
            .then_with(|| a.name.cmp(&b.name))
    });
}

fn category_rows<'a>(
    items: impl Iterator<Item = (u16, &'a str, Stats)>,
    taxonomy: &Taxonomy,
    total: i64,
) -> Vec<CategoryRow> {
    let mut by_cat: BTreeMap<(u16, String), (u64, i64)> = BTreeMap::new();
    for (c, class, s) in items {
        let e = by_cat.entry((c, class.to_string())).or_default();
        e.0 += s.count;
        e.1 += s.sum;
    }
    let mut rows: Vec<CategoryRow> = by_cat
        .into_iter()
        .map(|((c, class), (count, sum))| CategoryRow {
            category: taxonomy.category(c as usize).to_string(),
            class,
            count,
            sum_us: sum as f64 / 1000.0,
            share_pct: if total > 0 {
                100.0 * sum as f64 / total as f64
            } else {
                0.0
            },
        })
        .collect();
    rows.sort_by(|a, b| b.sum_us.total_cmp(&a.sum_us));
    rows
}

/// Kernel statistics by name for a subset of GPU events.
fn kernel_table<'a>(
    d: &TraceData,
    events: impl Iterator<Item = &'a GpuEvent>,
    taxonomy: &Taxonomy,
    total: i64,
) -> (Vec<KernelRow>, Vec<(u16, &'static str, Stats)>) {
    let mut by: HashMap<u32, (u16, &'static str, Stats)> = HashMap::new();
    for e in events {
        let entry = by
            .entry(e.name)
            .or_insert_with(|| (e.category, e.class.as_str(), Stats::default()));
        entry.2.add(e.end - e.start);
    }
    let mut rows: Vec<KernelRow> = by
        .iter()
        .map(|(n, (c, class, s))| {
            kernel_row(d.name(*n), taxonomy.category(*c as usize), class, s, total)
        })
        .collect();
    sort_rows(&mut rows);
    (rows, by.into_values().collect())
}

/// Finds the step span containing time `t` (spans sorted by start).
pub fn step_at(steps: &[StepSpan], t: i64) -> Option<&StepSpan> {
    let i = steps.partition_point(|s| s.start <= t);
    // Spans normally do not overlap; look back a few in case they nest.
    steps[..i]
        .iter()
        .rev()
        .take(4)
        .find(|s| t < s.end.max(s.start + 1))
}

fn summarize_one(d: &TraceData, taxonomy: &Taxonomy, opts: &SummaryOptions) -> TraceSummary {
    let total: i64 = d.gpu.iter().map(|e| e.end - e.start).sum();
    let (mut kernels, per_name) = kernel_table(d, d.gpu.iter(), taxonomy, total);
    let distinct = kernels.len();
    kernels.truncate(opts.top);
    let kernel_categories = category_rows(per_name.into_iter(), taxonomy, total);
    let timeline = if d.gpu.is_empty() {
        None
    } else {
        Some(Timeline::of(&d.gpu))
    };

    // Stages: GPU work is attributed to the step whose CPU span contains its launch.
    let mut stages = Vec::new();
    if !d.steps.is_empty() {
        let mut order: Vec<String> = Vec::new();
        let mut step_stats: HashMap<String, (Stats, u64)> = HashMap::new();
        for s in &d.steps {
            if !order.contains(&s.stage) {
                order.push(s.stage.clone());
            }
            let e = step_stats.entry(s.stage.clone()).or_default();
            e.0.add(s.end - s.start);
            e.1 += s.toks.unwrap_or(0);
        }
        let mut by_stage: HashMap<String, Vec<&GpuEvent>> = HashMap::new();
        for e in &d.gpu {
            let launch = e.correlation.and_then(|c| d.launches.get(&c).copied());
            let stage = launch
                .and_then(|t| step_at(&d.steps, t))
                .map(|s| s.stage.clone())
                .unwrap_or_else(|| "unattributed".to_string());
            by_stage.entry(stage).or_default().push(e);
        }
        if by_stage.contains_key("unattributed") {
            order.push("unattributed".into());
        }
        for stage in order {
            let evs = by_stage.remove(&stage).unwrap_or_default();
            let sum: i64 = evs.iter().map(|e| e.end - e.start).sum();
            let (mut top, _) = kernel_table(d, evs.iter().copied(), taxonomy, sum);
            top.truncate(opts.top.min(10));
            let (ss, toks) = step_stats.get(&stage).copied().unwrap_or_default();
            stages.push(StageRow {
                stage,
                steps: ss.count,
                step_stats: (ss.count > 0).then(|| ss.report()),
                tokens: toks,
                gpu_events: evs.len() as u64,
                gpu_sum_us: sum as f64 / 1000.0,
                gpu_share_pct: if total > 0 {
                    100.0 * sum as f64 / total as f64
                } else {
                    0.0
                },
                top_kernels: top,
            });
        }
    }

    let mut spans: Vec<SpanRow> = d
        .cpu_spans
        .iter()
        .map(|((cat, n), s)| SpanRow {
            category: cat.clone(),
            name: d.name(*n).to_string(),
            stats: s.report(),
        })
        .collect();
    spans.sort_by(|a, b| {
        b.stats
            .sum_us
            .total_cmp(&a.stats.sum_us)
            .then_with(|| a.name.cmp(&b.name))
    });
    spans.truncate(opts.top);

    let nothing_to_tabulate =
        (kernels.is_empty() && stages.is_empty() && spans.is_empty()).then(|| explain_empty(d));
    TraceSummary {
        file: d.path.display().to_string(),
        rank: d.rank,
        events: d.events,
        categories: d.by_category.clone(),
        timeline,
        cpu_timeline: cpu_breakdown(d).cloned(),
        cpu_collectives: cpu_breakdown(d).map(|_| d.cpu_collectives.len() as u64),
        kernels,
        distinct_kernels: distinct,
        kernel_categories,
        stages,
        profiler_steps: d.profiler_steps.len(),
        cpu_spans: spans,
        warnings: d.warnings.clone(),
        nothing_to_tabulate,
    }
}

/// Why a trace gives no kernel, stage or span rows: what it holds, and the `--python` hint
/// when Python function events are all there is (vLLM's front-end trace).
fn explain_empty(d: &TraceData) -> String {
    let count = |c: &str| d.by_category.get(c).copied().unwrap_or(0);
    let python = count("python_function");
    // Metadata (no category) and Kineto's one `Trace` span come with every trace.
    let bookkeeping = count("") + count("Trace");
    if d.events == 0 {
        return "the trace holds no events".into();
    }
    let found = d
        .by_category
        .iter()
        .map(|(c, n)| {
            let c = if c.is_empty() { "(no category)" } else { c };
            format!("{n} {c}")
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut why = format!(
        "{} events ({found}) but no GPU kernels, no engine step spans and no complete CPU spans to tabulate",
        d.events
    );
    if python > 0 && python + bookkeeping == d.events {
        why.push_str(
            "; apart from metadata it holds only python_function events, which the span table leaves out unless you pass --python (a vLLM front-end trace, *.async_llm.*, is like this)",
        );
    } else if python > 0 {
        why.push_str("; pass --python to tabulate its python_function events");
    }
    why
}

impl SummaryReport {
    /// Human/CSV tables of the report.
    pub fn tables(&self) -> Vec<Table> {
        let mut out = Vec::new();
        let mut tl = Table::new(
            "timeline",
            "GPU temporal breakdown (µs; union-based: computation + exposed comm + exposed memory + idle = span)",
            &[
                "trace", "kernels", "span", "busy", "idle", "idle%", "computation", "exposed comm",
                "exposed mem", "Σcompute", "Σcomm", "Σmem", "comm overlap%",
            ],
        );
        for t in &self.traces {
            if let Some(x) = &t.timeline {
                tl.push(timeline_row(&trace_label(t), x));
            }
        }
        // Without any GPU timeline the pooled row would be all zeros: leave the table out.
        if let (Some(o), false) = (&self.overall, tl.rows.is_empty()) {
            tl.push(timeline_row("all ranks", &o.timeline));
        }
        if !tl.rows.is_empty() {
            out.push(tl);
        }
        let mut cpu = Table::new(
            "cpu_timeline",
            "CPU breakdown of traces without GPU events (µs; computation = CPU ops outside collectives, comm = CPU collectives: gloo, c10d, record_param_comms, all_reduce)",
            &[
                "trace", "ops+collectives", "span", "busy", "idle", "idle%", "computation",
                "comm", "collectives",
            ],
        );
        for t in &self.traces {
            if let Some(x) = &t.cpu_timeline {
                let mut row = cpu_row(&trace_label(t), x);
                row.push(t.cpu_collectives.unwrap_or(0).to_string());
                cpu.push(row);
            }
        }
        if let Some(x) = self.overall.as_ref().and_then(|o| o.cpu_timeline.as_ref()) {
            let mut row = cpu_row("all ranks", x);
            let n: u64 = self.traces.iter().filter_map(|t| t.cpu_collectives).sum();
            row.push(n.to_string());
            cpu.push(row);
        }
        if !cpu.rows.is_empty() {
            out.push(cpu);
        }
        for t in &self.traces {
            let label = trace_label(t);
            if !t.kernels.is_empty() {
                out.push(kernel_tables(
                    &format!("kernels:{label}"),
                    &format!(
                        "Top GPU kernels -- {label} ({} distinct)",
                        t.distinct_kernels
                    ),
                    &t.kernels,
                ));
                let mut c = Table::new(
                    &format!("categories:{label}"),
                    &format!("GPU time by kernel category -- {label}"),
                    &["category", "class", "count", "sum µs", "share%"],
                );
                for r in &t.kernel_categories {
                    c.push(vec![
                        r.category.clone(),
                        r.class.clone(),
                        r.count.to_string(),
                        us_f(r.sum_us),
                        format!("{:.2}", r.share_pct),
                    ]);
                }
                out.push(c);
            }
            if !t.stages.is_empty() {
                let mut s = Table::new(
                    &format!("stages:{label}"),
                    &format!("Stages from engine step spans -- {label} (GPU work attributed by launch time)"),
                    &[
                        "stage", "steps", "step Σ µs", "step mean µs", "tokens", "gpu events",
                        "gpu Σ µs", "gpu share%", "top kernel",
                    ],
                );
                for r in &t.stages {
                    s.push(vec![
                        r.stage.clone(),
                        r.steps.to_string(),
                        r.step_stats.as_ref().map_or("-".into(), |x| us_f(x.sum_us)),
                        r.step_stats
                            .as_ref()
                            .map_or("-".into(), |x| format!("{:.3}", x.mean_us)),
                        r.tokens.to_string(),
                        r.gpu_events.to_string(),
                        us_f(r.gpu_sum_us),
                        format!("{:.2}", r.gpu_share_pct),
                        r.top_kernels.first().map_or("-".into(), |k| k.name.clone()),
                    ]);
                }
                out.push(s);
            }
            if !t.cpu_spans.is_empty() {
                let mut s = Table::new(
                    &format!("spans:{label}"),
                    &format!("Top CPU spans by total time -- {label}"),
                    &[
                        "category", "name", "count", "sum µs", "mean µs", "min µs", "max µs",
                        "std µs",
                    ],
                );
                for r in &t.cpu_spans {
                    s.push(vec![
                        r.category.clone(),
                        r.name.clone(),
                        r.stats.count.to_string(),
                        us_f(r.stats.sum_us),
                        format!("{:.3}", r.stats.mean_us),
                        us_f(r.stats.min_us),
                        us_f(r.stats.max_us),
                        format!("{:.3}", r.stats.std_us),
                    ]);
                }
                out.push(s);
            }
        }
        for t in &self.traces {
            if let Some(why) = &t.nothing_to_tabulate {
                let label = trace_label(t);
                let mut f = Table::new(
                    &format!("found:{label}"),
                    &format!("Nothing to summarize -- {label}: {why}"),
                    &["category", "events"],
                );
                for (c, n) in &t.categories {
                    let c = if c.is_empty() { "(no category)" } else { c };
                    f.push(vec![c.to_string(), n.to_string()]);
                }
                out.push(f);
            }
        }
        if let Some(o) = &self.overall {
            if !o.kernels.is_empty() {
                out.push(kernel_tables(
                    "kernels:all",
                    "Top GPU kernels -- all ranks pooled",
                    &o.kernels,
                ));
            }
        }
        out
    }
}

fn trace_label(t: &TraceSummary) -> String {
    match t.rank {
        Some(r) => format!("rank {r}"),
        None => std::path::Path::new(&t.file)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| t.file.clone()),
    }
}

fn timeline_row(label: &str, x: &Timeline) -> Vec<String> {
    vec![
        label.to_string(),
        x.kernels.to_string(),
        us(x.span_ns),
        us(x.busy_ns),
        us(x.idle_ns),
        pct(x.idle_ns as f64, x.span_ns as f64),
        us(x.computation_ns),
        us(x.exposed_comm_ns),
        us(x.exposed_memory_ns),
        us(x.compute_sum_ns),
        us(x.comm_sum_ns),
        us(x.memory_sum_ns),
        x.comm_overlap_pct.map_or("-".into(), |p| format!("{p:.2}")),
    ]
}

fn cpu_row(label: &str, x: &Timeline) -> Vec<String> {
    vec![
        label.to_string(),
        x.kernels.to_string(),
        us(x.span_ns),
        us(x.busy_ns),
        us(x.idle_ns),
        pct(x.idle_ns as f64, x.span_ns as f64),
        us(x.computation_ns),
        us(x.comm_union_ns),
    ]
}

fn kernel_tables(name: &str, title: &str, rows: &[KernelRow]) -> Table {
    let mut k = Table::new(
        name,
        title,
        &[
            "name", "category", "count", "sum µs", "mean µs", "min µs", "max µs", "std µs",
            "share%",
        ],
    );
    for r in rows {
        k.push(vec![
            r.name.clone(),
            r.category.clone(),
            r.stats.count.to_string(),
            us_f(r.stats.sum_us),
            format!("{:.3}", r.stats.mean_us),
            us_f(r.stats.min_us),
            us_f(r.stats.max_us),
            format!("{:.3}", r.stats.std_us),
            format!("{:.2}", r.share_pct),
        ]);
    }
    k
}
