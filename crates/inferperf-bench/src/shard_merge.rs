//! `bench merge`: one run's result from its shards' record files, computed as one ideal client
//! would have computed it -- the same metrics code ([`MetricsAccumulator`],
//! [`SteadyStateAccumulator`]), the same console table and JSONL keys, the validity of the worst
//! shard (named). Shards of different runs, a shard given twice, missing shards and records that
//! belong to another shard are refused, naming the files.
//!
//! Two streaming passes over the files keep memory to one number per request and per
//! inter-token gap (what exact percentiles need), never the records: the first checks the files
//! and finds the time origin and the steady-state window, the second feeds the accumulators.
//! Times go onto one clock: the server's when every shard measured its offset against it
//! (shards on different hosts; the uncertainty is reported), otherwise the shards' wall clocks
//! (one host, or NTP-disciplined hosts).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use inferperf_loadgen::error::BenchError;
use inferperf_loadgen::metrics::{BenchmarkMetrics, MetricSettings, MetricsAccumulator};
use inferperf_loadgen::records_file::{
    RecordsFileError, RecordsFooter, RecordsHeader, RecordsReader, RunSettings,
};
use inferperf_loadgen::steady_state::{
    interval_of, window_by_rule, SteadyStateAccumulator, SteadyStateError, SteadyStateMetrics,
};
use inferperf_loadgen::table::{extra_table, py_float, sglang_table, TableContext};
use inferperf_loadgen::validity::{render, Validity};
use serde_json::json;

/// What `bench merge` reads and writes.
#[derive(Clone, Debug, Default)]
pub struct MergeConfig {
    /// Record files, or directories whose `*.records.jsonl` files are all read.
    pub inputs: Vec<PathBuf>,
    /// JSONL file the merged record is appended to (`None`: not written).
    pub output_file: Option<PathBuf>,
}

/// Why shards could not be merged; every variant names the files.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error(transparent)]
    Records(#[from] RecordsFileError),
    #[error("{0}")]
    NoInputs(String),
    #[error(
        "{} and {} are shards of different runs ({what}: {a} vs {b}); merge the shards of one run",
        first.display(),
        second.display()
    )]
    DifferentRuns {
        first: PathBuf,
        second: PathBuf,
        what: &'static str,
        a: String,
        b: String,
    },
    #[error("shard {index} is given twice: {} and {}", first.display(), second.display())]
    DuplicateShard {
        index: usize,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("shard(s) {missing:?} of {num_shards} are missing (got {})", got.join(", "))]
    MissingShards {
        missing: Vec<usize>,
        num_shards: usize,
        got: Vec<String>,
    },
    #[error(
        "{}: request {index} does not belong to shard {shard} of {num_shards} (index mod shards \
         differs): the file was edited or mislabelled",
        path.display()
    )]
    ForeignRecord {
        path: PathBuf,
        index: usize,
        shard: usize,
        num_shards: usize,
    },
    #[error("{}: request {index} appears twice", path.display())]
    DuplicateRecord { path: PathBuf, index: usize },
    #[error(
        "{}: holds {found} requests plus {not_started} never started, but shard {shard} planned \
         {planned}: requests are missing",
        path.display()
    )]
    Gap {
        path: PathBuf,
        shard: usize,
        found: usize,
        not_started: usize,
        planned: usize,
    },
    #[error(transparent)]
    Output(#[from] BenchError),
}

/// One shard as the merge saw it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ShardSummary {
    pub shard_index: usize,
    pub path: PathBuf,
    pub records: usize,
    /// Its clock's zero on the merged time line, and how late it started against `--start-at`.
    pub offset_ms: f64,
    pub start_late_ms: f64,
    pub verdict: String,
}

/// The merged run.
pub struct MergeOutcome {
    pub metrics: BenchmarkMetrics,
    pub validity: Validity,
    pub steady_state: Option<Result<SteadyStateMetrics, SteadyStateError>>,
    pub shards: Vec<ShardSummary>,
    /// `server` (offsets measured against the server) or `wall` (the hosts' wall clocks).
    pub clock: &'static str,
    /// Largest offset uncertainty of the shards (server clock only).
    pub clock_uncertainty_ms: Option<f64>,
    pub console_report: String,
    pub record_line: String,
}

/// Merge the shards' records (see the module docs).
pub fn merge(cfg: &MergeConfig) -> Result<MergeOutcome, MergeError> {
    let files = expand_inputs(&cfg.inputs)?;
    if let Some(out) = &cfg.output_file {
        inferperf_loadgen::jsonl::check_appendable(out)?;
    }
    let headers = files
        .iter()
        .map(|f| RecordsReader::open(f).map(|r| (f.clone(), r.header)))
        .collect::<Result<Vec<_>, _>>()?;
    check_one_run(&headers)?;
    let first = &headers[0].1;
    let num_shards = first.shard.num_shards;
    let planned = first.shard.planned_requests;

    // One clock: the server's when every shard measured it, else the wall clocks.
    let server = headers.iter().all(|(_, h)| h.clock.server_clock.is_some());
    let zero_of = |h: &RecordsHeader| -> i128 {
        let offset = if server {
            h.clock.server_clock.map_or(0, |c| c.offset_ns)
        } else {
            0
        };
        h.clock.unix_ns_at_start as i128 + offset as i128
    };
    let origin = headers.iter().map(|(_, h)| zero_of(h)).min().unwrap_or(0);
    let shifts: Vec<u64> = headers
        .iter()
        .map(|(_, h)| (zero_of(h) - origin) as u64)
        .collect();

    // Pass 1: check every record, find the time origin, duration and steady-state window.
    let mut seen = vec![false; planned];
    let mut intervals = Vec::new();
    let mut first_send: Option<u64> = None;
    let mut first_scheduled: Option<u64> = None;
    let mut last_end = 0u64;
    let mut footers: Vec<RecordsFooter> = Vec::new();
    let mut counts = Vec::new();
    for ((path, h), &shift) in headers.iter().zip(&shifts) {
        let mut rd = RecordsReader::open(path)?;
        let mut found = 0usize;
        while let Some(saved) = rd.next_record()? {
            if saved.index % num_shards != h.shard.shard_index {
                return Err(MergeError::ForeignRecord {
                    path: path.clone(),
                    index: saved.index,
                    shard: h.shard.shard_index,
                    num_shards,
                });
            }
            let (r, _) = saved.into_record(shift);
            if r.turn == 0 {
                match seen.get_mut(r.index) {
                    Some(s) if !*s => *s = true,
                    _ => {
                        return Err(MergeError::DuplicateRecord {
                            path: path.clone(),
                            index: r.index,
                        })
                    }
                }
                found += 1;
            }
            first_scheduled =
                Some(first_scheduled.map_or(r.scheduled_ns, |t| t.min(r.scheduled_ns)));
            last_end = last_end.max(r.last_ns);
            if r.success() && !r.warmup {
                first_send = Some(first_send.map_or(r.sent_ns, |t| t.min(r.sent_ns)));
            }
            if let Some(iv) = interval_of(&r) {
                intervals.push(iv);
            }
        }
        let footer = rd.footer().cloned().unwrap_or_default();
        if found + footer.not_started != h.shard.shard_requests {
            return Err(MergeError::Gap {
                path: path.clone(),
                shard: h.shard.shard_index,
                found,
                not_started: footer.not_started,
                planned: h.shard.shard_requests,
            });
        }
        counts.push(found);
        footers.push(footer);
    }
    drop(seen);
    let settings = &first.settings;
    let window = settings
        .steady_state
        .map(|rule| window_by_rule(intervals.drain(..), rule).map(|w| (w, rule)));
    drop(intervals);

    // Pass 2: the accumulators.
    let mut metrics_acc = MetricsAccumulator::new(first_send);
    let mut steady_acc = match &window {
        Some(Ok((w, rule))) => Some(SteadyStateAccumulator::with_rule(*w, *rule)),
        _ => None,
    };
    for ((path, _), &shift) in headers.iter().zip(&shifts) {
        let mut rd = RecordsReader::open(path)?;
        while let Some(saved) = rd.next_record()? {
            let (r, retok) = saved.into_record(shift);
            metrics_acc.add(&r, retok);
            if let Some(acc) = steady_acc.as_mut() {
                acc.add(&r, retok);
            }
        }
    }
    let duration_s = last_end.saturating_sub(first_scheduled.unwrap_or(0)) as f64 * 1e-9;
    let (metrics, timeline) = metrics_acc.finish_with_timeline(&MetricSettings {
        duration_s,
        server_added_prompt_tokens: settings.server_added_prompt_tokens,
        slo: &settings.slo,
        percentile_metrics: &settings.percentile_metrics,
        metric_percentiles: &settings.metric_percentiles,
    });
    let steady_state = match (window, steady_acc) {
        (Some(Ok(_)), Some(acc)) => Some(Ok(acc.finish())),
        (Some(Err(e)), _) => Some(Err(e)),
        _ => None,
    };

    let shards: Vec<ShardSummary> = headers
        .iter()
        .zip(&shifts)
        .zip(footers.iter().zip(&counts))
        .map(|(((path, h), &shift), (f, &n))| ShardSummary {
            shard_index: h.shard.shard_index,
            path: path.clone(),
            records: n,
            offset_ms: shift as f64 / 1e6,
            start_late_ms: h.clock.start_late_ns as f64 / 1e6,
            verdict: f.validity.verdict.clone(),
        })
        .collect();
    let validity = worst_validity(&headers, &footers);
    let clock_uncertainty_ms = server.then(|| {
        headers
            .iter()
            .filter_map(|(_, h)| h.clock.server_clock.map(|c| c.uncertainty_ns))
            .max()
            .unwrap_or(0) as f64
            / 1e6
    });
    let clock = if server { "server" } else { "wall" };
    let abort_reason = footers.iter().find_map(|f| f.abort_reason.clone());
    // Every shard read the same server after its run; the last file's reading is kept.
    let accept_length = headers
        .iter()
        .rev()
        .find_map(|(_, h)| h.settings.accept_length);

    let merged_settings = RunSettings {
        accept_length,
        // Per-request arrays are not kept in memory by the merge.
        output_details: false,
        ..settings.clone()
    };
    let mut rec = inferperf_loadgen::result::build(
        &merged_settings.record_context(None, duration_s, abort_reason.as_deref(), None),
        &metrics,
        &validity,
        &[],
    );
    crate::steady_report::put_keys(&mut rec, &steady_state, &timeline);
    rec.put(
        "shards",
        json!({
            "run_id": first.shard.run_id,
            "num_shards": num_shards,
            "clock": clock,
            "clock_uncertainty_ms": clock_uncertainty_ms,
            "shards": shards,
        }),
    );
    let record_line = rec.to_line();

    let mut console = sglang_table(
        &metrics,
        &TableContext {
            backend: &settings.backend,
            request_rate: settings
                .request_rate
                .map_or_else(|| "trace".to_owned(), py_float),
            max_concurrency: settings.max_concurrency,
            duration_s,
            accept_length,
            cache_report: settings.cache_report,
        },
    );
    console.push_str(&extra_table(&metrics));
    console.push_str(&shards_table(&shards, clock, clock_uncertainty_ms));
    console.push_str(&render(&validity));
    console.push_str(&crate::steady_report::console(&steady_state, duration_s));
    if let Some(out) = &cfg.output_file {
        inferperf_loadgen::jsonl::append_line(out, &record_line)?;
    }
    Ok(MergeOutcome {
        metrics,
        validity,
        steady_state,
        shards,
        clock,
        clock_uncertainty_ms,
        console_report: console,
        record_line,
    })
}

/// Files from the arguments: a directory stands for its `*.records.jsonl` files (sorted).
fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, MergeError> {
    let mut files = Vec::new();
    for p in inputs {
        if p.is_dir() {
            let entries = std::fs::read_dir(p)
                .map_err(|e| BenchError::io(format!("cannot list {}", p.display()), e))?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|f| {
                    f.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.ends_with(".records.jsonl"))
                })
                .collect();
            if found.is_empty() {
                return Err(MergeError::NoInputs(format!(
                    "{} holds no *.records.jsonl file",
                    p.display()
                )));
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    if files.is_empty() {
        return Err(MergeError::NoInputs(
            "no records file given (bench serving --save-records writes them)".into(),
        ));
    }
    Ok(files)
}

/// Every file is a shard of the same run, each shard once, none missing.
fn check_one_run(headers: &[(PathBuf, RecordsHeader)]) -> Result<(), MergeError> {
    let (p0, h0) = &headers[0];
    for (p, h) in &headers[1..] {
        let differ = |what: &'static str, a: String, b: String| MergeError::DifferentRuns {
            first: p0.clone(),
            second: p.clone(),
            what,
            a,
            b,
        };
        if h.shard.run_id != h0.shard.run_id {
            return Err(differ(
                "run id (plan, seed, shard count or start time)",
                h0.shard.run_id.clone(),
                h.shard.run_id.clone(),
            ));
        }
        if h.shard.num_shards != h0.shard.num_shards {
            return Err(differ(
                "shard count",
                h0.shard.num_shards.to_string(),
                h.shard.num_shards.to_string(),
            ));
        }
        // The spec-decoding accept length is each shard's own reading of the server after
        // its run; everything else must be the same.
        let comparable = |h: &RecordsHeader| RunSettings {
            accept_length: None,
            ..h.settings.clone()
        };
        if comparable(h) != comparable(h0) {
            return Err(differ(
                "settings (backend, dataset, rate, concurrency, SLO, ...)",
                format!("{:?}", h0.settings),
                format!("{:?}", h.settings),
            ));
        }
    }
    let mut by_index: BTreeMap<usize, &Path> = BTreeMap::new();
    for (p, h) in headers {
        if let Some(prev) = by_index.insert(h.shard.shard_index, p) {
            return Err(MergeError::DuplicateShard {
                index: h.shard.shard_index,
                first: prev.to_path_buf(),
                second: p.clone(),
            });
        }
    }
    let n = h0.shard.num_shards;
    let missing: Vec<usize> = (0..n).filter(|i| !by_index.contains_key(i)).collect();
    if !missing.is_empty() {
        return Err(MergeError::MissingShards {
            missing,
            num_shards: n,
            got: headers
                .iter()
                .map(|(p, _)| p.display().to_string())
                .collect(),
        });
    }
    Ok(())
}

/// The validity of the worst shard (`SERVER-FAILED` over `CLIENT-BOUND` over `OK`, then the
/// highest pacing lag), its reasons prefixed with the shard and file; `not_started` and the
/// CPU seconds of all shards added up.
fn worst_validity(headers: &[(PathBuf, RecordsHeader)], footers: &[RecordsFooter]) -> Validity {
    let rank = |v: &str| match v {
        "SERVER-FAILED" => 2,
        "CLIENT-BOUND" => 1,
        _ => 0,
    };
    // Among equal verdicts, the shard whose arrivals left latest.
    let worst = footers
        .iter()
        .enumerate()
        .max_by(|(_, a), (_, b)| {
            rank(&a.validity.verdict)
                .cmp(&rank(&b.validity.verdict))
                .then(
                    a.validity
                        .pacing_lag_p99_ms
                        .total_cmp(&b.validity.pacing_lag_p99_ms),
                )
        })
        .map(|(i, _)| i)
        .unwrap_or(0);
    let mut v = footers
        .get(worst)
        .map(|f| f.validity.clone())
        .unwrap_or_default();
    let (path, h) = &headers[worst];
    let who = format!("shard {} ({})", h.shard.shard_index, path.display());
    v.reasons = v.reasons.iter().map(|r| format!("{who}: {r}")).collect();
    v.not_started = footers.iter().map(|f| f.not_started).sum();
    v.client_cpu_s = footers.iter().map(|f| f.validity.client_cpu_s).sum();
    v.process_cpu_s = footers.iter().map(|f| f.validity.process_cpu_s).sum();
    v
}

/// The per-shard lines after the tables.
fn shards_table(shards: &[ShardSummary], clock: &str, uncertainty_ms: Option<f64>) -> String {
    use std::fmt::Write as _;
    let mut o = format!(
        "{:=^50}\nClock: {clock}{}\n",
        " Shards ",
        uncertainty_ms.map_or(String::new(), |u| format!(" (offsets within {u:.3} ms)"))
    );
    for s in shards {
        let _ = writeln!(
            o,
            "shard {:<3} {:>8} requests  zero at +{:.3} ms  started {:.3} ms late  {}  {}",
            s.shard_index,
            s.records,
            s.offset_ms,
            s.start_late_ms,
            s.verdict,
            s.path.display()
        );
    }
    o.push_str(&"=".repeat(50));
    o.push('\n');
    o
}
