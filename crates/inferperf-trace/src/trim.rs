//! `trace trim`: cut a trace to a time window, a `ProfilerStep#N` range or a range of step spans
//! (SGLang `step[...]`, vLLM `execute_context_...`; see [`crate::collect::parse_step`]),
//! drop categories (e.g. `python_function`), and optionally fit a size budget so Perfetto can
//! open the result. Metadata events and all top-level keys are kept; output is atomic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::collect::{keep_one_step_convention, parse_step};
use crate::error::TraceError;
use crate::event::{sanitize, EventParser};
use crate::progress::Progress;
use crate::reader::TraceReader;
use crate::table::Table;
use crate::writer::{TraceWriter, WriteOptions};

/// Categories dropped, in this order, when the output must shrink to `max_size`: the bulkiest
/// and least needed for a timeline first.
pub const SHRINK_ORDER: &[&str] = &["python_function", "cpu_instant_event", "fwdbwd", "ac2g"];

/// What to keep.
#[derive(Debug, Clone, Default)]
pub struct TrimOptions {
    /// Window start, ms after the first event.
    pub start_ms: Option<f64>,
    /// Window end, ms after the first event.
    pub end_ms: Option<f64>,
    /// Inclusive `ProfilerStep#N` range (by N).
    pub profiler_steps: Option<(u64, u64)>,
    /// Inclusive range of step spans (SGLang `step[...]`, vLLM `execute_context_...`; 0-based,
    /// in time order).
    pub steps: Option<(usize, usize)>,
    /// Categories to drop.
    pub drop_categories: Vec<String>,
    /// Uncompressed size budget in bytes.
    pub max_size: Option<u64>,
    /// Output encoding.
    pub write: WriteOptions,
}

/// What the trim did.
#[derive(Debug, Clone, Serialize)]
pub struct TrimReport {
    /// Input file.
    pub input: PathBuf,
    /// Output file.
    pub output: PathBuf,
    /// Kept window in ns relative to the first event (None = everything).
    pub window_ns: Option<(i64, i64)>,
    /// Events read.
    pub events_in: u64,
    /// Events written.
    pub events_out: u64,
    /// Events dropped by category.
    pub dropped_by_category: BTreeMap<String, u64>,
    /// Events dropped for lying outside the window.
    pub dropped_outside_window: u64,
    /// Categories dropped to meet `max_size` (beyond those requested).
    pub size_dropped_categories: Vec<String>,
    /// The window end was moved earlier to meet `max_size`.
    pub window_shortened: bool,
    /// Uncompressed output size.
    pub bytes: u64,
    /// Warnings from reading.
    pub warnings: Vec<String>,
}

struct Scan {
    first_ts: i64,
    /// (start, end) of the step spans other than `ProfilerStep#N`.
    steps: Vec<(i64, i64)>,
    profiler_steps: Vec<(u64, i64, i64)>,
    /// (ts, end, bytes, category) of every event, only for size planning.
    sizes: Vec<(i64, i64, u32, u16)>,
    cats: Vec<String>,
}

fn scan(path: &Path, want_sizes: bool) -> Result<Scan, TraceError> {
    let mut r = TraceReader::open(path)?;
    let mut p = EventParser::default();
    let mut s = Scan {
        first_ts: i64::MAX,
        steps: Vec::new(),
        profiler_steps: Vec::new(),
        sizes: Vec::new(),
        cats: Vec::new(),
    };
    let mut i = 0u64;
    let mut steps = Vec::new();
    while let Some(raw) = r.next_event()? {
        let len = raw.len() as u32;
        let ev = p
            .parse(raw)
            .map_err(|e| TraceError::format(path, format!("event {i}: {e}")))?;
        i += 1;
        let ts = ev.ts.map(|t| t.0);
        if ev.ph != "M" {
            if let Some(t) = ts {
                s.first_ts = s.first_ts.min(t);
            }
        }
        if ev.ph == "X" {
            if let (Some(t), Some(e)) = (ts, ev.end()) {
                if let Some(step) = parse_step(ev.category(), &ev.name, t, e.0) {
                    match step.profiler_step {
                        Some(n) => s.profiler_steps.push((n, t, e.0)),
                        None => steps.push(step),
                    }
                }
            }
        }
        if want_sizes {
            let cat = ev.category();
            let ci = match s.cats.iter().position(|c| c == cat) {
                Some(c) => c,
                None => {
                    s.cats.push(cat.to_string());
                    s.cats.len() - 1
                }
            };
            let t = if ev.ph == "M" {
                i64::MIN
            } else {
                ts.unwrap_or(i64::MIN)
            };
            let end = ev.end().map_or(t, |e| e.0);
            s.sizes.push((t, end, len + 2, ci as u16));
        }
    }
    if s.first_ts == i64::MAX {
        s.first_ts = 0;
    }
    keep_one_step_convention(&mut steps);
    s.steps = steps.iter().map(|st| (st.start, st.end)).collect();
    s.steps.sort_unstable();
    s.profiler_steps.sort_unstable();
    Ok(s)
}

fn overlaps(ts: i64, end: i64, w: (i64, i64)) -> bool {
    if ts == i64::MIN {
        return true;
    }
    end >= w.0 && ts <= w.1
}

/// Trims `input` into `output`.
pub fn trim(
    input: &Path,
    output: &Path,
    opts: &TrimOptions,
    progress: &Progress,
) -> Result<TrimReport, TraceError> {
    if input == output {
        return Err(TraceError::Config(format!(
            "{}: output must differ from input",
            input.display()
        )));
    }
    let need_scan = opts.start_ms.is_some()
        || opts.end_ms.is_some()
        || opts.profiler_steps.is_some()
        || opts.steps.is_some()
        || opts.max_size.is_some();
    let mut window: Option<(i64, i64)> = None; // absolute ns
    let mut drop: Vec<String> = opts.drop_categories.clone();
    let mut size_dropped = Vec::new();
    let mut shortened = false;
    let mut first_ts = 0;
    if need_scan {
        let s = scan(input, opts.max_size.is_some())?;
        first_ts = s.first_ts;
        if opts.start_ms.is_some() || opts.end_ms.is_some() {
            let a = opts
                .start_ms
                .map_or(i64::MIN, |m| s.first_ts + (m * 1e6) as i64);
            let b = opts
                .end_ms
                .map_or(i64::MAX, |m| s.first_ts + (m * 1e6) as i64);
            if b < a {
                return Err(TraceError::Config(format!(
                    "time window end ({:?} ms) is before its start ({:?} ms)",
                    opts.end_ms, opts.start_ms
                )));
            }
            window = Some((a, b));
        }
        if let Some((a, b)) = opts.profiler_steps {
            let sel: Vec<_> = s
                .profiler_steps
                .iter()
                .filter(|(n, _, _)| *n >= a && *n <= b)
                .collect();
            let (Some(lo), Some(hi)) =
                (sel.iter().map(|x| x.1).min(), sel.iter().map(|x| x.2).max())
            else {
                let have: Vec<u64> = s.profiler_steps.iter().map(|x| x.0).collect();
                let hint = if have.is_empty() && !s.steps.is_empty() {
                    format!(
                        "; it has {} engine step spans (SGLang step[...] or vLLM execute_context_...): select them with --steps 0..{}",
                        s.steps.len(),
                        s.steps.len() - 1
                    )
                } else {
                    String::new()
                };
                return Err(TraceError::Config(format!(
                    "{}: no ProfilerStep#{a}..{b} (available: {have:?}){hint}",
                    input.display()
                )));
            };
            window = Some(intersect(window, (lo, hi)));
        }
        if let Some((a, b)) = opts.steps {
            if s.steps.is_empty() || a >= s.steps.len() || b < a {
                return Err(TraceError::Config(format!(
                    "{}: step range {a}..{b} not available ({} engine step spans: SGLang step[...] or vLLM execute_context_...; {} ProfilerStep#N)",
                    input.display(),
                    s.steps.len(),
                    s.profiler_steps.len()
                )));
            }
            let b = b.min(s.steps.len() - 1);
            let lo = s.steps[a].0;
            let hi = s.steps[a..=b].iter().map(|x| x.1).max().unwrap_or(lo);
            window = Some(intersect(window, (lo, hi)));
        }
        if let Some(max) = opts.max_size {
            let w = window.unwrap_or((i64::MIN, i64::MAX));
            let est = |drop: &[String]| -> u64 {
                s.sizes
                    .iter()
                    .filter(|(t, e, _, c)| {
                        overlaps(*t, *e, w) && !drop.contains(&s.cats[*c as usize])
                    })
                    .map(|x| x.2 as u64)
                    .sum()
            };
            for cat in SHRINK_ORDER {
                if est(&drop) <= max {
                    break;
                }
                if !drop.iter().any(|d| d == cat) && s.cats.iter().any(|c| c == cat) {
                    drop.push(cat.to_string());
                    size_dropped.push(cat.to_string());
                }
            }
            if est(&drop) > max {
                // Keep the earliest part of the window that fits.
                let mut kept: Vec<(i64, u32)> = s
                    .sizes
                    .iter()
                    .filter(|(t, e, _, c)| {
                        overlaps(*t, *e, w) && !drop.contains(&s.cats[*c as usize])
                    })
                    .map(|x| (x.0, x.2))
                    .collect();
                kept.sort_unstable();
                let mut total = 0u64;
                let mut end = w.1;
                for (t, b) in kept {
                    total += b as u64;
                    if total > max && t != i64::MIN {
                        end = t - 1;
                        break;
                    }
                }
                let start = if w.0 == i64::MIN { s.first_ts } else { w.0 };
                window = Some((start, end));
                shortened = true;
            }
        }
    }

    let mut reader = TraceReader::open(input)?;
    let header: Vec<(String, String)> = reader
        .metadata()
        .iter()
        .map(|(k, v)| (k.clone(), v.get().to_string()))
        .collect();
    let mut writer = TraceWriter::create(output, &header, opts.write)?;
    let mut parser = EventParser::default();
    let mut dropped: BTreeMap<String, u64> = BTreeMap::new();
    let mut outside = 0u64;
    let mut events_in = 0u64;
    let mut last_pos = 0u64;
    while let Some(raw) = reader.next_event()? {
        let ev = parser
            .parse(raw)
            .map_err(|e| TraceError::format(input, format!("event {events_in}: {e}")))?;
        events_in += 1;
        let cat = ev.category();
        if drop.iter().any(|d| d == cat) {
            *dropped.entry(cat.to_string()).or_default() += 1;
            continue;
        }
        if let Some(w) = window {
            if ev.ph != "M" {
                if let Some(ts) = ev.ts {
                    let end = ev.end().map_or(ts.0, |e| e.0);
                    if !overlaps(ts.0, end, w) {
                        outside += 1;
                        continue;
                    }
                }
            }
        }
        let bytes = sanitize(raw);
        writer.write_raw_event(&bytes)?;
        let pos = reader.position();
        if pos - last_pos > 1 << 20 {
            progress.inc(pos - last_pos);
            last_pos = pos;
        }
    }
    let events_out = writer.events();
    let trailer: Vec<(String, String)> = reader.metadata()[reader.metadata_before_events()..]
        .iter()
        .map(|(k, v)| (k.clone(), v.get().to_string()))
        .collect();
    let bytes = writer.finish(&trailer)?;
    Ok(TrimReport {
        input: input.to_path_buf(),
        output: output.to_path_buf(),
        window_ns: window.map(|(a, b)| {
            (
                if a == i64::MIN { 0 } else { a - first_ts },
                if b == i64::MAX {
                    i64::MAX
                } else {
                    b - first_ts
                },
            )
        }),
        events_in,
        events_out,
        dropped_by_category: dropped,
        dropped_outside_window: outside,
        size_dropped_categories: size_dropped,
        window_shortened: shortened,
        bytes,
        warnings: reader.warnings().to_vec(),
    })
}

fn intersect(w: Option<(i64, i64)>, x: (i64, i64)) -> (i64, i64) {
    match w {
        Some((a, b)) => (a.max(x.0), b.min(x.1)),
        None => x,
    }
}

impl TrimReport {
    /// Human/CSV table.
    pub fn tables(&self) -> Vec<Table> {
        let mut t = Table::new("trim", "Trim result", &["item", "value"]);
        t.push(vec!["output".into(), self.output.display().to_string()]);
        t.push(vec!["events in".into(), self.events_in.to_string()]);
        t.push(vec!["events out".into(), self.events_out.to_string()]);
        t.push(vec![
            "bytes out (uncompressed)".into(),
            self.bytes.to_string(),
        ]);
        if let Some((a, b)) = self.window_ns {
            let end = if b == i64::MAX {
                "end".to_string()
            } else {
                format!("{:.3} ms", b as f64 / 1e6)
            };
            t.push(vec![
                "window (after first event)".into(),
                format!("{:.3} ms .. {end}", a as f64 / 1e6),
            ]);
        }
        t.push(vec![
            "dropped outside window".into(),
            self.dropped_outside_window.to_string(),
        ]);
        for (c, n) in &self.dropped_by_category {
            t.push(vec![format!("dropped category {c}"), n.to_string()]);
        }
        if !self.size_dropped_categories.is_empty() {
            t.push(vec![
                "dropped to fit max size".into(),
                self.size_dropped_categories.join(", "),
            ]);
        }
        if self.window_shortened {
            t.push(vec![
                "window shortened to fit max size".into(),
                "yes".into(),
            ]);
        }
        vec![t]
    }
}
