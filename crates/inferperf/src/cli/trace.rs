//! `inferperf trace ...`: merge, summarize, compare ranks, trim and diff profiler traces.
//!
//! Thin layer over `inferperf-trace`: parse flags, call the library, print a human table on
//! stdout (or `--json` / `--csv`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use inferperf_trace::collect::{collect_many, CollectOptions, TraceData};
use inferperf_trace::diff::{diff, DiffOptions};
use inferperf_trace::merge::{merge_with_progress, MergeOptions};
use inferperf_trace::naming::{discover, RankMap};
use inferperf_trace::progress::Progress;
use inferperf_trace::ranks::{compare_ranks, RankKind, RanksOptions};
use inferperf_trace::summary::{summarize, SummaryOptions};
use inferperf_trace::table::{csv_all, render_all, Table};
use inferperf_trace::taxonomy::Taxonomy;
use inferperf_trace::trim::{trim, TrimOptions};
use inferperf_trace::writer::WriteOptions;

#[derive(clap::Subcommand)]
pub enum TraceCommand {
    /// Merge per-rank traces into one (pids relabelled per rank, flow ids never cross ranks).
    Merge(MergeArgs),
    /// Top kernels/ops, GPU temporal breakdown, per-stage split, per rank and overall.
    Summary(AnalyzeArgs),
    /// Imbalance across ranks: per-rank busy/idle/comm, kernel spread, collectives, stragglers.
    Ranks(AnalyzeArgs),
    /// Cut a trace to a window / step range, drop categories, fit a size budget.
    Trim(TrimArgs),
    /// Compare two traces: kernels/ops added, removed, count and duration deltas.
    Diff(DiffArgs),
    /// Why each slow request was slow: a client request trace joined with the server's
    /// request log or traces on the request id, every latency split into parts.
    Explain(super::trace_explain::ExplainArgs),
}

/// Output format flags shared by the analyses.
#[derive(clap::Args)]
pub struct OutputArgs {
    /// Print the full report as JSON.
    #[arg(long, conflicts_with = "csv")]
    pub(super) json: bool,
    /// Print the tables as CSV (each preceded by a `# name` line).
    #[arg(long)]
    csv: bool,
    /// With --csv: print only the table with this name (plain CSV).
    #[arg(long, requires = "csv")]
    table: Option<String>,
}

/// Inputs: explicit files, or SGLang naming (`--profile-id` in `--dir`).
#[derive(clap::Args)]
pub struct InputArgs {
    /// Trace files (plain or gzip JSON).
    files: Vec<PathBuf>,
    /// SGLang profile id: take `[prefix-]{ID}-TP-*.trace.json.gz` from --dir.
    #[arg(long)]
    profile_id: Option<String>,
    /// Directory searched with --profile-id (default: current directory).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
}

impl InputArgs {
    fn resolve(&self) -> anyhow::Result<Vec<PathBuf>> {
        let mut files = self.files.clone();
        if let Some(id) = &self.profile_id {
            files.extend(discover(&self.dir, id)?);
        }
        if files.is_empty() {
            bail!("no input traces: pass files or --profile-id ID [--dir DIR]");
        }
        Ok(files)
    }
}

#[derive(clap::Args)]
pub struct MergeArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Output file (default: `merged-{profile_id}.trace.json.gz` in --dir, or
    /// `merged.trace.json.gz`). `.gz` means gzip.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// TOML rank map for files whose rank is neither in distributedInfo nor in the name
    /// (`"file.json" = 3` or `"file.json" = { tp = 1, dp = 0 }`).
    #[arg(long)]
    rank_map: Option<PathBuf>,
    /// Correct per-rank clock offsets from collective end times (recorded in the output).
    #[arg(long)]
    align_clocks: bool,
    /// Move partially overlapping GPU events to extra tracks so Perfetto shows them.
    #[arg(long)]
    perfetto_fix: bool,
    /// Skip unreadable ranks, and invalid events (counted; judged as `trace summary` judges
    /// them), with a warning instead of failing. Anything skipped makes the exit status 2.
    #[arg(long)]
    skip_bad: bool,
    /// Drop events of this category (repeatable), e.g. python_function.
    #[arg(long = "drop-cat")]
    drop_cat: Vec<String>,
    /// A client request trace (`bench serving --request-trace FILE`) to put on the servers'
    /// clock (shifted by its measured server_clock offset), as its own process, with flow
    /// arrows from each request to the server steps that hold its rid.
    #[arg(long, value_name = "FILE")]
    client: Option<PathBuf>,
    /// gzip level (0-9).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=9))]
    level: u32,
    /// Print the merge report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Kernel taxonomy TOML (replaces the built-in LLM-serving rules).
    #[arg(long)]
    taxonomy: Option<PathBuf>,
    /// Rows in the top tables.
    #[arg(long, default_value_t = 15)]
    top: usize,
    /// Include python_function events in the CPU span table.
    #[arg(long)]
    python: bool,
    /// Skip invalid events (counted, with a warning; judged as `trace merge` judges them)
    /// instead of failing on the first one.
    #[arg(long)]
    skip_bad: bool,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(clap::Args)]
pub struct TrimArgs {
    /// Input trace.
    input: PathBuf,
    /// Output trace (`.gz` means gzip).
    #[arg(short, long)]
    output: PathBuf,
    /// Window start, ms after the first event.
    #[arg(long)]
    start_ms: Option<f64>,
    /// Window end, ms after the first event.
    #[arg(long)]
    end_ms: Option<f64>,
    /// ProfilerStep range `A..B` (inclusive, by step number) or `N`.
    #[arg(long, value_parser = parse_range)]
    profiler_steps: Option<(u64, u64)>,
    /// Engine step span range `A..B` (SGLang `step[...]`, vLLM `execute_context_...`; inclusive,
    /// 0-based in time order) or `N`.
    #[arg(long, value_parser = parse_range)]
    steps: Option<(u64, u64)>,
    /// Drop events of this category (repeatable), e.g. python_function.
    #[arg(long = "drop-cat")]
    drop_cat: Vec<String>,
    /// Uncompressed size budget, e.g. 100MB or 500M (Perfetto opens < ~500 MB comfortably).
    #[arg(long, value_parser = parse_size)]
    max_size: Option<u64>,
    /// gzip level (0-9).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=9))]
    level: u32,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(clap::Args)]
pub struct DiffArgs {
    /// Baseline trace.
    a: PathBuf,
    /// Trace to compare with the baseline.
    b: PathBuf,
    /// Compare full kernel names (default: template arguments and parameters removed).
    #[arg(long)]
    raw_names: bool,
    /// Rows in the table (JSON has all).
    #[arg(long, default_value_t = 30)]
    top: usize,
    /// Kernel taxonomy TOML.
    #[arg(long)]
    taxonomy: Option<PathBuf>,
    #[command(flatten)]
    out: OutputArgs,
}

impl AnalyzeArgs {
    fn collect_options(&self) -> CollectOptions {
        CollectOptions {
            include_python: self.python,
            skip_bad: self.skip_bad,
        }
    }
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("invalid range {s:?}: expected N or A..B with A <= B");
    let (a, b) = match s.split_once("..") {
        Some((a, b)) => (
            a.trim().parse().map_err(|_| bad())?,
            b.trim()
                .trim_start_matches('=')
                .parse()
                .map_err(|_| bad())?,
        ),
        None => {
            let n = s.trim().parse().map_err(|_| bad())?;
            (n, n)
        }
    };
    if a > b {
        return Err(bad());
    }
    Ok((a, b))
}

fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_uppercase();
    let t = t.trim_end_matches('B').trim_end_matches('I');
    let (num, mult) = match t.chars().last() {
        Some('K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('G') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| *v > 0.0)
        .map(|v| (v * mult as f64) as u64)
        .ok_or_else(|| format!("invalid size {s:?}: expected e.g. 100MB, 512K or 2G"))
}

pub fn run(cmd: TraceCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TraceCommand::Merge(a) => run_merge(a),
        TraceCommand::Summary(a) => run_summary(a),
        TraceCommand::Ranks(a) => run_ranks(a),
        TraceCommand::Trim(a) => run_trim(a),
        TraceCommand::Diff(a) => run_diff(a),
        TraceCommand::Explain(a) => super::trace_explain::run(a),
    }
}

pub(super) fn print(
    out: &OutputArgs,
    json: impl FnOnce() -> anyhow::Result<String>,
    tables: Vec<Table>,
) -> anyhow::Result<ExitCode> {
    if out.json {
        println!("{}", json()?);
    } else if out.csv {
        match &out.table {
            Some(name) => {
                let t = tables.iter().find(|t| &t.name == name).with_context(|| {
                    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
                    format!("no table named {name:?}; available: {}", names.join(", "))
                })?;
                print!("{}", t.to_csv());
            }
            None => print!("{}", csv_all(&tables)),
        }
    } else {
        print!("{}", render_all(&tables));
    }
    Ok(ExitCode::SUCCESS)
}

fn load_taxonomy(path: Option<&Path>) -> anyhow::Result<Taxonomy> {
    Ok(match path {
        Some(p) => Taxonomy::load(p)?,
        None => Taxonomy::builtin(),
    })
}

fn load_all(
    files: &[PathBuf],
    tax: &Taxonomy,
    opts: &CollectOptions,
) -> anyhow::Result<Vec<TraceData>> {
    let progress = Progress::stderr("reading traces");
    let res = collect_many(files, tax, opts, &progress);
    progress.finish();
    res.into_iter()
        .zip(files)
        .map(|(r, f)| r.with_context(|| format!("cannot analyse {}", f.display())))
        .collect()
}

fn run_summary(a: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    let files = a.input.resolve()?;
    let tax = load_taxonomy(a.taxonomy.as_deref())?;
    let data = load_all(&files, &tax, &a.collect_options())?;
    let rep = summarize(&data, &tax, &SummaryOptions { top: a.top });
    print(
        &a.out,
        || Ok(serde_json::to_string_pretty(&rep)?),
        rep.tables(),
    )
}

fn run_ranks(a: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    let files = a.input.resolve()?;
    if files.len() < 2 {
        bail!("`trace ranks` compares ranks: pass at least two per-rank traces");
    }
    let tax = load_taxonomy(a.taxonomy.as_deref())?;
    let data = load_all(&files, &tax, &a.collect_options())?;
    let rep = compare_ranks(&data, &RanksOptions { top: a.top })?;
    for note in &rep.notes {
        eprintln!("note: {note}");
    }
    if !a.out.json && !a.out.csv && !rep.straggler.is_empty() {
        let at = match rep.kind {
            RankKind::GpuKernels => "",
            RankKind::CpuCollectives => " at CPU collectives",
        };
        eprintln!(
            "straggler (others wait for it{at}): {}",
            rep.straggler.join(", ")
        );
    }
    print(
        &a.out,
        || Ok(serde_json::to_string_pretty(&rep)?),
        rep.tables(),
    )
}

/// From now until the process ends, SIGINT (Ctrl-C) and SIGTERM remove the temporary
/// `.inferperf-*.part` files of unfinished trace outputs, then end the process with 128 + the
/// signal number (130, 143), as a shell reports a process killed by that signal. Without this
/// the default action ends the process at once and leaves the temporary files behind.
///
/// Returns once the handlers are installed, so that no signal can slip in before them; if they
/// cannot be installed the command still runs, with a warning.
fn remove_partial_outputs_on_signal() {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("trace-signals".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch for Ctrl-C/SIGTERM: an interrupted run may leave .inferperf-*.part files");
                    return;
                }
            };
            rt.block_on(async move {
                let code = match wait_for_stop_signal(ready_tx).await {
                    Some(code) => code,
                    None => return,
                };
                let removed = inferperf_trace::writer::remove_unfinished_outputs();
                for part in &removed {
                    eprintln!("interrupted: removed unfinished {}", part.display());
                }
                std::process::exit(code);
            });
        });
    match spawned {
        // The thread reports back once its handlers are in place (or it gave up).
        Ok(_) => {
            let _ = ready_rx.recv();
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch for Ctrl-C/SIGTERM: an interrupted run may leave .inferperf-*.part files");
        }
    }
}

/// Installs the SIGINT and SIGTERM handlers, says so on `ready`, and waits for either signal:
/// returns the exit code for it (`None` if no handler could be installed).
#[cfg(unix)]
async fn wait_for_stop_signal(ready: std::sync::mpsc::Sender<()>) -> Option<i32> {
    use tokio::signal::unix::{signal, SignalKind};
    let int = signal(SignalKind::interrupt());
    let term = signal(SignalKind::terminate());
    let _ = ready.send(());
    match (int, term) {
        (Ok(mut int), Ok(mut term)) => Some(tokio::select! {
            _ = int.recv() => 130,
            _ = term.recv() => 143,
        }),
        (Ok(mut int), Err(e)) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM");
            int.recv().await.map(|_| 130)
        }
        (Err(e), Ok(mut term)) => {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            term.recv().await.map(|_| 143)
        }
        (Err(e), Err(_)) => {
            tracing::warn!(error = %e, "cannot watch for Ctrl-C/SIGTERM: an interrupted run may leave .inferperf-*.part files");
            None
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_stop_signal(ready: std::sync::mpsc::Sender<()>) -> Option<i32> {
    let _ = ready.send(());
    match tokio::signal::ctrl_c().await {
        Ok(()) => Some(130),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            None
        }
    }
}

fn run_merge(a: MergeArgs) -> anyhow::Result<ExitCode> {
    remove_partial_outputs_on_signal();
    let files = a.input.resolve()?;
    let output = match (&a.output, &a.input.profile_id) {
        (Some(o), _) => o.clone(),
        (None, Some(id)) => a.input.dir.join(format!("merged-{id}.trace.json.gz")),
        (None, None) => PathBuf::from("merged.trace.json.gz"),
    };
    let rank_map = match &a.rank_map {
        Some(p) => Some(RankMap::load(p)?),
        None => None,
    };
    let opts = MergeOptions {
        rank_map,
        align_clocks: a.align_clocks,
        perfetto_fix: a.perfetto_fix,
        skip_bad: a.skip_bad,
        drop_categories: a.drop_cat.clone(),
        write: WriteOptions {
            gzip: None,
            level: a.level,
        },
        client: a.client.clone(),
    };
    let progress = Progress::stderr("merging");
    let rep = merge_with_progress(&files, &output, &opts, &progress)
        .with_context(|| format!("merge into {} failed", output.display()))?;
    progress.finish();
    for (f, why) in &rep.skipped {
        eprintln!("warning: skipped rank file {}: {why}", f.display());
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rep)?);
    } else {
        let mut t = Table::new(
            "merge",
            &format!(
                "Merged {} ranks into {}",
                rep.ranks.len(),
                rep.output.display()
            ),
            &["rank", "file", "events", "clock offset µs", "note"],
        );
        for r in &rep.ranks {
            t.push(vec![
                r.label.clone(),
                r.file.display().to_string(),
                r.events_in.to_string(),
                format!("{:.3}", r.clock_offset_us),
                [
                    r.truncated.then(|| "truncated input".to_string()),
                    (r.bad_events > 0).then(|| format!("{} invalid events skipped", r.bad_events)),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; "),
            ]);
        }
        print!("{}", t.render());
        println!(
            "events: {} in, {} out ({} synthesized metadata, {} dropped, {} moved by perfetto-fix)",
            rep.events_in,
            rep.events_out,
            rep.synthesized_metadata,
            rep.dropped,
            rep.moved_overlapping
        );
        if let Some(c) = &rep.client {
            println!(
                "client {} ({}): {} requests, {} linked to server steps, {} unmatched, {} flow events",
                c.file.display(),
                c.process,
                c.requests,
                c.linked,
                c.unmatched,
                c.flow_events
            );
            println!(
                "client clock: {} (offset {} ns{}{})",
                c.alignment.source,
                c.alignment.offset_ns,
                c.alignment
                    .uncertainty_ns
                    .map(|u| format!(", ±{u} ns"))
                    .unwrap_or_default(),
                c.alignment
                    .drift_ns
                    .map(|d| format!(", drift {d} ns"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(if rep.skipped.is_empty() && rep.bad_events == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn run_trim(a: TrimArgs) -> anyhow::Result<ExitCode> {
    remove_partial_outputs_on_signal();
    let opts = TrimOptions {
        start_ms: a.start_ms,
        end_ms: a.end_ms,
        profiler_steps: a.profiler_steps,
        steps: a.steps.map(|(x, y)| (x as usize, y as usize)),
        drop_categories: a.drop_cat.clone(),
        max_size: a.max_size,
        write: WriteOptions {
            gzip: None,
            level: a.level,
        },
    };
    let progress = Progress::stderr("trimming");
    let rep = trim(&a.input, &a.output, &opts, &progress)
        .with_context(|| format!("trim {} failed", a.input.display()))?;
    progress.finish();
    print(
        &a.out,
        || Ok(serde_json::to_string_pretty(&rep)?),
        rep.tables(),
    )
}

fn run_diff(a: DiffArgs) -> anyhow::Result<ExitCode> {
    let tax = load_taxonomy(a.taxonomy.as_deref())?;
    let data = load_all(
        &[a.a.clone(), a.b.clone()],
        &tax,
        &CollectOptions::default(),
    )?;
    let rep = diff(
        &data[0],
        &data[1],
        &DiffOptions {
            raw_names: a.raw_names,
            top: Some(a.top),
        },
    );
    print(
        &a.out,
        || Ok(serde_json::to_string_pretty(&rep)?),
        rep.tables(Some(a.top)),
    )
}
