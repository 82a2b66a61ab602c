//! `trace merge`: streams per-rank traces into one viewable trace.
//!
//! Per rank: integer pids are moved into a rank-specific range and labelled with
//! `process_name` / `process_sort_index` (`[TP01 DP00 PP00 EP00] GPU 1`); flow ids, correlation
//! ids and external ids are offset so that arrows and links never cross ranks; timestamps are
//! rebased when ranks use different `baseTimeNanoseconds` and, with `align_clocks`, corrected by
//! the collective end-time offset; every rank's metadata is kept. An unreadable rank is an error
//! (or, with `skip_bad`, a loud warning and a report entry) -- never a silent gap.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::value::RawValue;

use crate::align::{self, ClockAlignment};
use crate::collect::{self, BadEvents, CollectOptions};
use crate::error::TraceError;
use crate::event::{is_gpu_category, EventParser, Id, Nanos};
use crate::fastscan::{self, Member};
use crate::merge_client::{self as mc, ClientPlan, ClientReport, PendingRequest, StepLinks};
use crate::micros;
use crate::naming::{self, RankId, RankMap};
use crate::object::RawObject;
use crate::prefetch::Prefetch;
use crate::progress::Progress;
use crate::reader::TraceReader;
use crate::taxonomy::Taxonomy;
use crate::writer::{TraceWriter, WriteOptions};

/// Pid range per rank: rank `i` maps pid `p` to `i * PID_STRIDE + p` (kept below 2^31 for
/// viewers that store pids as 32-bit integers, up to 200 ranks).
pub const PID_STRIDE: i64 = 10_000_000;
/// Id range per rank for flow ids, correlation ids and external ids.
pub const ID_STRIDE: i64 = 1_000_000_000_000;

/// How to merge.
#[derive(Debug, Clone, Default)]
pub struct MergeOptions {
    /// Fallback rank identities by file name.
    pub rank_map: Option<RankMap>,
    /// Correct per-rank clock offsets from collective end times (recorded in the output).
    pub align_clocks: bool,
    /// Move partially overlapping GPU events to synthetic tracks so Perfetto draws them.
    pub perfetto_fix: bool,
    /// Skip unreadable ranks, and invalid events (counted), with a warning instead of failing.
    pub skip_bad: bool,
    /// Event categories to leave out (e.g. `python_function`).
    pub drop_categories: Vec<String>,
    /// Output encoding.
    pub write: WriteOptions,
    /// A client request trace to put on the same clock, with flows from its requests to the
    /// server steps that hold their rids (see `merge_client`).
    pub client: Option<PathBuf>,
}

/// One rank in the merged output.
#[derive(Debug, Clone, Serialize)]
pub struct MergedRank {
    /// Source file.
    pub file: PathBuf,
    /// Resolved identity.
    pub id: RankId,
    /// Label used in process names.
    pub label: String,
    /// Position in the output (pid range index).
    pub index: usize,
    /// Events read from the file.
    pub events_in: u64,
    /// Events written for it (excluding synthesized metadata).
    pub events_out: u64,
    /// Clock correction applied (µs, subtracted from its timestamps).
    pub clock_offset_us: f64,
    /// The file ended early; only complete events were merged.
    pub truncated: bool,
    /// Invalid events left out (only with `skip_bad`; otherwise the first one is an error).
    pub bad_events: u64,
}

/// What the merge did.
#[derive(Debug, Clone, Serialize)]
pub struct MergeReport {
    /// The merged file.
    pub output: PathBuf,
    /// Merged ranks in output order.
    pub ranks: Vec<MergedRank>,
    /// Inputs skipped with `skip_bad`, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// Events read from all merged inputs.
    pub events_in: u64,
    /// Events written (input events kept + synthesized metadata).
    pub events_out: u64,
    /// Metadata events added (labels for processes without them, perfetto-fix tracks).
    pub synthesized_metadata: u64,
    /// Events dropped by category.
    pub dropped: u64,
    /// Invalid events left out with `skip_bad`, over all ranks.
    pub bad_events: u64,
    /// GPU events moved to overlap tracks by `perfetto_fix`.
    pub moved_overlapping: u64,
    /// Clock alignment, when requested.
    pub alignment: Option<ClockAlignment>,
    /// Uncompressed output size in bytes.
    pub bytes: u64,
    /// Warnings (truncated inputs, invalid UTF-8...).
    pub warnings: Vec<String>,
    /// The client request trace merged with `client`.
    pub client: Option<ClientReport>,
}

struct Planned {
    path: PathBuf,
    id: RankId,
    base_ns: Option<i64>,
    header: Vec<(String, Box<RawValue>)>,
    device_ids: HashSet<i64>,
}

/// Merges `inputs` (one trace per rank) into `output` (gzip if it ends in `.gz`).
///
/// This is the library entry point used by the CLI and by the profiler for
/// `merge_profiles: true`.
pub fn merge_files(
    inputs: &[PathBuf],
    output: &Path,
    opts: &MergeOptions,
) -> Result<MergeReport, TraceError> {
    merge_with_progress(inputs, output, opts, &Progress::hidden())
}

/// `merge_files` with a progress display.
pub fn merge_with_progress(
    inputs: &[PathBuf],
    output: &Path,
    opts: &MergeOptions,
    progress: &Progress,
) -> Result<MergeReport, TraceError> {
    merge_impl(inputs, output, opts, progress, true)
}

/// `merge_files` with every event parsed and re-serialized by the general path (no byte-level
/// fast path). Its output is byte-identical to `merge_files`'; it exists so tests can check that.
#[doc(hidden)]
pub fn merge_files_general_path(
    inputs: &[PathBuf],
    output: &Path,
    opts: &MergeOptions,
) -> Result<MergeReport, TraceError> {
    merge_impl(inputs, output, opts, &Progress::hidden(), false)
}

fn merge_impl(
    inputs: &[PathBuf],
    output: &Path,
    opts: &MergeOptions,
    progress: &Progress,
    fast: bool,
) -> Result<MergeReport, TraceError> {
    if inputs.is_empty() {
        return Err(TraceError::Empty("merge: no input files".into()));
    }
    let mut skipped = Vec::new();
    let mut warnings = Vec::new();
    let mut planned = Vec::new();
    for path in inputs {
        if path.as_path() == output {
            return Err(TraceError::Config(format!(
                "{}: the output file is also an input",
                path.display()
            )));
        }
        match plan(path, opts) {
            Ok(p) => planned.push(p),
            Err(e) if opts.skip_bad => {
                let msg = e.to_string();
                tracing::warn!("skipping unreadable rank {}: {msg}", path.display());
                warnings.push(format!("skipped {}: {msg}", path.display()));
                skipped.push((path.clone(), msg));
            }
            Err(e) => return Err(e),
        }
    }
    if planned.is_empty() {
        return Err(TraceError::Empty("merge: no readable input traces".into()));
    }
    let client = match &opts.client {
        Some(c) if c.as_path() == output => {
            return Err(TraceError::Config(format!(
                "{}: the output file is also the --client input",
                c.display()
            )))
        }
        Some(c) => Some(ClientPlan::open(c)?),
        None => None,
    };
    // Identity checks: every rank known and unique.
    for p in &planned {
        if p.id.is_unknown() {
            return Err(TraceError::Rank(format!(
                "{}: cannot tell which rank this is (no distributedInfo.rank, no TP-/rank/worker number in the file name, not a vLLM front-end *.async_llm.* trace); pass a rank map",
                p.path.display()
            )));
        }
    }
    planned.sort_by(|a, b| a.id.cmp(&b.id));
    for w in planned.windows(2) {
        if w[0].id == w[1].id {
            return Err(TraceError::Rank(format!(
                "{} and {} both claim rank {}",
                w[0].path.display(),
                w[1].path.display(),
                w[0].id.label()
            )));
        }
    }

    // Clock alignment needs one analysis pass per rank first.
    let alignment = if opts.align_clocks && planned.len() > 1 {
        let tax = Taxonomy::builtin();
        let mut seqs = Vec::new();
        let collect_opts = CollectOptions {
            skip_bad: opts.skip_bad,
            ..Default::default()
        };
        for p in &planned {
            let d = collect::collect(&p.path, &tax, &collect_opts, progress)?;
            seqs.push(align::comm_kernels(&d));
        }
        Some(align::estimate(&seqs))
    } else {
        None
    };

    let rank_base = planned.iter().filter_map(|p| p.base_ns).min();
    // The client's base counts when the ranks have one (without, their times are taken as
    // they are and the client's are written as Unix µs).
    let out_base = match (rank_base, &client) {
        (Some(b), Some(c)) => Some(b.min(c.aligned_base_ns())),
        (b, _) => b,
    };
    let mut header = output_header(&planned, out_base, alignment.as_ref());
    if let Some(c) = &client {
        add_client_header(&mut header, c, planned.len());
        if c.alignment.source == "none" {
            tracing::warn!("{}: {}", c.path.display(), c.alignment.note);
        }
    }
    let mut links = client.as_ref().map(|_| StepLinks::new());
    let mut writer = TraceWriter::create(output, &header, opts.write)?;
    let mut state = MergeState {
        synthesized: 0,
        dropped: 0,
        moved: 0,
    };
    let mut ranks = Vec::new();
    let mut rank_metadata = Vec::new();
    let mut events_in = 0;
    let mut bad_events = 0;
    // Each rank's reading starts while the previous rank is being written (bounded: a few
    // batches), so the pipeline does not drain between ranks. Errors surface in rank order.
    let open = |p: &Planned| Prefetch::spawn(TraceReader::open(&p.path)?, fast);
    let mut next_events = planned.first().map(open);
    for (index, p) in planned.iter().enumerate() {
        let events = next_events.take().unwrap_or_else(|| open(p))?;
        next_events = planned.get(index + 1).map(open);
        let offset_ns = alignment
            .as_ref()
            .filter(|a| a.applied.get(index).copied().unwrap_or(false))
            .and_then(|a| a.offsets_ns.get(index).copied())
            .unwrap_or(0);
        let rebase = match (p.base_ns, out_base) {
            (Some(b), Some(o)) => b - o,
            _ => 0,
        };
        progress.set_message(&format!("merging {}", p.path.display()));
        let r = merge_rank(
            p,
            events,
            index,
            rebase - offset_ns,
            opts,
            &mut writer,
            &mut state,
            progress,
            fast,
            links.as_mut(),
        )?;
        events_in += r.events_in;
        bad_events += r.bad_events;
        warnings.extend(
            r.warnings
                .iter()
                .map(|w| format!("{}: {w}", p.path.display())),
        );
        let meta: Vec<String> = r
            .metadata
            .iter()
            .map(|(k, v)| format!("{}:{}", json_str(k), v.get()))
            .collect();
        rank_metadata.push(format!(
            "{{\"label\":{},\"file\":{},\"metadata\":{{{}}}}}",
            json_str(&p.id.label()),
            json_str(&p.path.display().to_string()),
            meta.join(",")
        ));
        ranks.push(MergedRank {
            file: p.path.clone(),
            id: p.id.clone(),
            label: p.id.label(),
            index,
            events_in: r.events_in,
            events_out: r.events_out,
            clock_offset_us: offset_ns as f64 / 1000.0,
            truncated: r.truncated,
            bad_events: r.bad_events,
        });
    }
    let mut trailer = vec![(
        "inferperfRankMetadata".to_string(),
        format!("[{}]", rank_metadata.join(",")),
    )];
    let client_report = match (&client, &links) {
        (Some(c), Some(links)) => {
            let shift = c.aligned_base_ns() - out_base.unwrap_or(0);
            let (rep, client_warnings) = merge_client(
                c,
                planned.len(),
                shift,
                links,
                opts,
                &mut writer,
                &mut state,
                progress,
                fast,
            )?;
            warnings.extend(client_warnings);
            check_client_links(c, &rep, &planned, links, &mut warnings)?;
            events_in += rep.events_in;
            trailer.push((
                "inferperfClientLinks".to_string(),
                serde_json::json!({
                    "file": c.path.display().to_string(),
                    "requests": rep.requests,
                    "linked": rep.linked,
                    "unmatched": rep.unmatched,
                    "flow_events": rep.flow_events,
                })
                .to_string(),
            ));
            if c.alignment.source == "none" {
                warnings.push(format!("{}: {}", c.path.display(), c.alignment.note));
            }
            Some(rep)
        }
        _ => None,
    };
    let events_out = writer.events();
    let bytes = writer.finish(&trailer)?;
    Ok(MergeReport {
        output: output.to_path_buf(),
        ranks,
        skipped,
        events_in,
        events_out,
        synthesized_metadata: state.synthesized,
        dropped: state.dropped,
        bad_events,
        moved_overlapping: state.moved,
        alignment,
        bytes,
        warnings,
        client: client_report,
    })
}

/// `inferperfMerge.client` in the output header: where the client is and how its clock was
/// aligned (the link counts are in the trailer, `inferperfClientLinks`).
fn add_client_header(header: &mut [(String, String)], c: &ClientPlan, ranks: usize) {
    let Some((_, info)) = header.iter_mut().find(|(k, _)| k == "inferperfMerge") else {
        return;
    };
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(info) else {
        return;
    };
    v["client"] = serde_json::json!({
        "file": c.path.display().to_string(),
        "run_tag": c.run_tag,
        "process": c.process_name(),
        "pid_offset": mc::pid_base(ranks),
        "flow_id_offset": mc::flow_id_base(ranks),
        "base_time_ns": c.base_ns,
        "clock_alignment": c.alignment,
        "flows": format!(
            "cat {}, name {}: s on the client request (at its send), t/f (bp e) on the \
             server steps of the first rank that ran the rid: first step, prefill chunks, last step",
            mc::FLOW_CAT,
            mc::FLOW_NAME
        ),
    });
    *info = v.to_string();
}

/// A client whose rids match no server step cannot be joined: an error naming both sides. A
/// partial match is a warning with counts (the profile window usually holds part of a run).
fn check_client_links(
    c: &ClientPlan,
    rep: &ClientReport,
    planned: &[Planned],
    links: &StepLinks,
    warnings: &mut Vec<String>,
) -> Result<(), TraceError> {
    let servers = planned
        .iter()
        .map(|p| p.path.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if rep.requests == 0 {
        let w = format!(
            "{}: the client trace has no request slices; nothing to link",
            c.path.display()
        );
        tracing::warn!("{w}");
        warnings.push(w);
        return Ok(());
    }
    if rep.linked == 0 {
        let why = if links.steps == 0 {
            format!(
                "the server traces ({servers}) have no step[...] spans with args.rids (recorded by \
                 a server that does not log rids?)"
            )
        } else {
            format!(
                "none of its {} request ids appears in the {} rids of the server traces' step \
                 spans ({servers}); the client and the server traces may be from different runs \
                 (client run_tag {:?})",
                rep.requests,
                links.rids(),
                c.run_tag
            )
        };
        return Err(TraceError::format(
            &c.path,
            format!("--client: cannot join: {why}"),
        ));
    }
    if rep.unmatched > 0 {
        let w = format!(
            "{}: {} of {} client requests match no server step (outside the profile window, \
             failed before reaching the server, or another run); they have no flow arrows",
            c.path.display(),
            rep.unmatched,
            rep.requests
        );
        tracing::warn!("{w}");
        warnings.push(w);
    }
    Ok(())
}

#[derive(serde::Deserialize)]
struct RidArgs {
    #[serde(default)]
    rid: String,
}

/// Writes the client trace's events as one more process (after the ranks), on the merged
/// clock, then the flows of each request as soon as its phases are read.
#[allow(clippy::too_many_arguments)]
fn merge_client(
    c: &ClientPlan,
    ranks: usize,
    shift_ns: i64,
    links: &StepLinks,
    opts: &MergeOptions,
    writer: &mut TraceWriter,
    state: &mut MergeState,
    progress: &Progress,
    fast: bool,
) -> Result<(ClientReport, Vec<String>), TraceError> {
    let path = &c.path;
    progress.set_message(&format!("merging client {}", path.display()));
    let no_devices = HashSet::new();
    let mut rw = Rewriter {
        index: ranks as i64,
        label: c.process_name(),
        device_ids: &no_devices,
        pid_map: HashMap::new(),
        next_dense: 0,
        labelled: HashMap::new(),
        cpu_named: false,
        plain_label: true,
        shift_ns,
        perfetto_fix: opts.perfetto_fix,
        lanes: HashMap::new(),
        lane_named: HashSet::new(),
    };
    let drop: HashSet<&str> = opts.drop_categories.iter().map(String::as_str).collect();
    let mut rep = ClientReport {
        file: path.clone(),
        run_tag: c.run_tag.clone(),
        process: c.process_name(),
        pid_offset: mc::pid_base(ranks),
        alignment: c.alignment.clone(),
        events_in: 0,
        requests: 0,
        linked: 0,
        unmatched: 0,
        flow_events: 0,
        server_rids: links.rids() as u64,
    };
    let flow_base = mc::flow_id_base(ranks);
    let mut parser = EventParser::default();
    let mut extra: Vec<String> = Vec::new();
    let mut flows = mc::FlowBuffer::default();
    let mut pending: Option<PendingRequest> = None;
    let mut flush = |p: Option<PendingRequest>,
                     rep: &mut ClientReport,
                     writer: &mut TraceWriter|
     -> Result<(), TraceError> {
        let Some(p) = p else { return Ok(()) };
        flows.clear();
        let n = mc::flow_events(links, &p, flow_base + rep.linked as i64, &mut flows);
        if n == 0 {
            rep.unmatched += 1;
        } else {
            rep.linked += 1;
            rep.flow_events += n as u64;
            for f in flows.events() {
                writer.write_raw_event(f)?;
            }
        }
        Ok(())
    };
    // Read and scanned on a helper thread; most events take the byte-level fast path.
    let mut events = Prefetch::spawn(TraceReader::open(path)?, true)?;
    let mut members = Vec::new();
    let mut scratch = FastScratch::new();
    while let Some((raw, scanned)) = events.next_event(&mut members)? {
        let index = rep.events_in;
        rep.events_in += 1;
        // Only `request` and `awaiting headers` slices matter for the flows; the scanner's
        // members tell the others apart without building an event view (most events are
        // phases and chunks).
        let maybe_linked = !scanned
            || crate::fastscan::find(raw, &members, b"name")
                .is_some_and(|m| matches!(m.value(raw), b"\"request\"" | b"\"awaiting headers\""));
        let (mut is_request, mut is_sent) = (false, false);
        let mut rid = String::new();
        let mut pid_tid = None;
        let (mut ts, mut dur) = (0, 0);
        if maybe_linked {
            let view = if scanned {
                parser.parse_scanned(raw, &members)
            } else {
                parser.parse(raw)
            }
            .map_err(|e| TraceError::format(path, format!("event {index}: {e}")))?;
            is_request =
                view.ph == "X" && view.name == "request" && view.category() == "client_request";
            is_sent = view.ph == "X" && view.name == "awaiting headers";
            if is_request || is_sent {
                rid = view
                    .args
                    .as_ref()
                    .and_then(|a| serde_json::from_str::<RidArgs>(a.get()).ok())
                    .map(|a| a.rid)
                    .unwrap_or_default();
                let tid = match &view.tid {
                    Some(Id::Str(t)) => json_str(t),
                    Some(t) => t.to_string(),
                    None => "0".into(),
                };
                pid_tid = view.pid.as_ref().map(|p| (p.to_owned_id(), tid));
            }
            ts = view.ts.map(|t| t.0 + shift_ns).unwrap_or(0);
            dur = view.dur.map(|d| d.0).unwrap_or(0).max(0);
        }
        let mut invalid_utf8 = 0;
        let emitted = emit_event(
            &mut rw,
            raw,
            scanned,
            fast,
            &drop,
            &mut scratch,
            &mut members,
            &mut extra,
            state,
            writer,
            &mut invalid_utf8,
        )
        .map_err(|e| e.at(path, index))?;
        if emitted == Emitted::Dropped {
            continue;
        }
        if is_request && !rid.is_empty() {
            rep.requests += 1;
            let (pid, tid) = match pid_tid {
                Some((p, t)) => (rw.map_pid(&p), t),
                None => (mc::pid_base(ranks), "0".to_string()),
            };
            let next = PendingRequest {
                rid,
                pid,
                tid,
                ts_ns: ts,
                dur_ns: dur,
                sent: None,
            };
            flush(pending.replace(next), &mut rep, writer)?;
        } else if is_sent {
            if let Some(p) = pending.as_mut().filter(|p| p.rid == rid) {
                p.sent = Some((ts, dur));
            }
        }
    }
    flush(pending.take(), &mut rep, writer)?;
    let reader = events.finish()?;
    progress.inc(reader.position());
    let warnings = reader
        .warnings()
        .iter()
        .map(|w| format!("{}: {w}", path.display()))
        .collect();
    Ok((rep, warnings))
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn plan(path: &Path, opts: &MergeOptions) -> Result<Planned, TraceError> {
    let mut reader = TraceReader::open(path)?;
    if opts.skip_bad {
        // Read the whole file now so that an unreadable rank is skipped whole, never
        // half-merged. (Events that are only invalid are left out one by one while merging.)
        reader.skip_events()?;
    } else if reader.meta("distributedInfo").is_none()
        && reader.metadata_before_events() == reader.metadata().len()
    {
        // Rank identity may be written after the events: skim to the end for it.
        reader.skip_events()?;
    }
    let header: Vec<(String, Box<RawValue>)> = reader.metadata().to_vec();
    let get = |k: &str| {
        header
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.get())
    };
    let dist_rank = get("distributedInfo")
        .and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok())
        .and_then(|d| d.get("rank").and_then(|r| r.as_i64()));
    let base_ns = get("baseTimeNanoseconds").and_then(|v| serde_json::from_str::<i64>(v).ok());
    let device_ids = get("deviceProperties")
        .and_then(|v| serde_json::from_str::<Vec<serde_json::Value>>(v).ok())
        .map(|devs| {
            devs.iter()
                .filter_map(|d| d.get("id").and_then(|i| i.as_i64()))
                .collect()
        })
        .unwrap_or_default();
    let id = naming::resolve(dist_rank, path, opts.rank_map.as_ref());
    Ok(Planned {
        path: path.to_path_buf(),
        id,
        base_ns,
        header,
        device_ids,
    })
}

fn output_header(
    planned: &[Planned],
    out_base: Option<i64>,
    alignment: Option<&ClockAlignment>,
) -> Vec<(String, String)> {
    let mut header: Vec<(String, String)> = Vec::new();
    // First rank's keys, as SGLang's merger keeps them (the full set of every rank is in the
    // trailer `inferperfRankMetadata`).
    if let Some(first) = planned.first() {
        for (k, v) in &first.header {
            if matches!(k.as_str(), "deviceProperties" | "baseTimeNanoseconds") {
                continue;
            }
            header.push((k.clone(), v.get().to_string()));
        }
    }
    // Union of deviceProperties (deduplicated by their JSON).
    let mut seen = HashSet::new();
    let mut devices = Vec::new();
    for p in planned {
        if let Some((_, v)) = p.header.iter().find(|(k, _)| k == "deviceProperties") {
            if let Ok(list) = serde_json::from_str::<Vec<&RawValue>>(v.get()) {
                for d in list {
                    if seen.insert(d.get().to_string()) {
                        devices.push(d.get().to_string());
                    }
                }
            }
        }
    }
    if !devices.is_empty() {
        header.push((
            "deviceProperties".into(),
            format!("[{}]", devices.join(",")),
        ));
    }
    if let Some(b) = out_base {
        header.push(("baseTimeNanoseconds".into(), b.to_string()));
    }
    let ranks: Vec<serde_json::Value> = planned
        .iter()
        .enumerate()
        .map(|(i, p)| {
            serde_json::json!({
                "index": i,
                "label": p.id.label(),
                "id": p.id,
                "file": p.path.display().to_string(),
                "pid_offset": i as i64 * PID_STRIDE,
                "id_offset": i as i64 * ID_STRIDE,
                "base_time_ns": p.base_ns,
                "clock_offset_us": alignment
                    .filter(|a| a.applied.get(i).copied().unwrap_or(false))
                    .and_then(|a| a.offsets_ns.get(i))
                    .map(|o| *o as f64 / 1000.0)
                    .unwrap_or(0.0),
            })
        })
        .collect();
    let info = serde_json::json!({
        "tool": "inferperf",
        "version": env!("CARGO_PKG_VERSION"),
        "ranks": ranks,
        "clock_alignment": alignment,
    });
    header.push(("inferperfMerge".into(), info.to_string()));
    header
}

struct MergeState {
    synthesized: u64,
    dropped: u64,
    moved: u64,
}

struct RankResult {
    events_in: u64,
    bad_events: u64,
    events_out: u64,
    truncated: bool,
    warnings: Vec<String>,
    metadata: Vec<(String, Box<RawValue>)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Cpu,
    Gpu(i64),
}

/// Per-rank rewriting state.
struct Rewriter<'p> {
    index: i64,
    label: String,
    device_ids: &'p HashSet<i64>,
    pid_map: HashMap<String, i64>,
    next_dense: i64,
    labelled: HashMap<i64, Kind>,
    cpu_named: bool,
    /// The first CPU process is labelled with `label` alone (the client's process).
    plain_label: bool,
    shift_ns: i64,
    perfetto_fix: bool,
    lanes: HashMap<(i64, String), Vec<i64>>,
    lane_named: HashSet<(i64, String)>,
}

impl Rewriter<'_> {
    fn map_pid(&mut self, id: &Id<'_>) -> i64 {
        match id {
            Id::Int(p) if (0..PID_STRIDE).contains(p) => self.index * PID_STRIDE + p,
            other => {
                let key = format!("{other:?}");
                if let Some(v) = self.pid_map.get(&key) {
                    return *v;
                }
                self.next_dense += 1;
                let v = self.index * PID_STRIDE + PID_STRIDE - self.next_dense;
                self.pid_map.insert(key, v);
                v
            }
        }
    }

    fn map_id(&self, raw: &str) -> Option<String> {
        if self.index == 0 {
            return None;
        }
        let id = match fastscan::small_uint(raw.as_bytes()) {
            Some(v) => Id::Int(v),
            None => serde_json::from_str::<Id<'_>>(raw).ok()?,
        };
        match id {
            Id::Int(v) if (0..ID_STRIDE).contains(&v) => {
                Some((v + self.index * ID_STRIDE).to_string())
            }
            Id::Int(v) => Some(json_str(&format!("r{}:{v}", self.index))),
            Id::Float(v) => Some(json_str(&format!("r{}:{v}", self.index))),
            Id::Str(s) => Some(json_str(&format!("r{}:{s}", self.index))),
        }
    }

    fn process_label(&mut self, kind: Kind, orig: &Id<'_>) -> String {
        match (kind, orig) {
            (Kind::Gpu(d), _) => format!("{} GPU {d}", self.label),
            (Kind::Cpu, Id::Str(s)) => format!("{} {s}", self.label),
            (Kind::Cpu, Id::Int(p)) => {
                if self.cpu_named {
                    format!("{} CPU {p}", self.label)
                } else if self.plain_label {
                    self.cpu_named = true;
                    self.label.clone()
                } else {
                    self.cpu_named = true;
                    format!("{} CPU", self.label)
                }
            }
            (Kind::Cpu, other) => format!("{} {other}", self.label),
        }
    }

    fn sort_index(&self, kind: Kind, new_pid: i64) -> i64 {
        let local = new_pid - self.index * PID_STRIDE;
        self.index * 1000
            + match kind {
                Kind::Cpu => 0,
                Kind::Gpu(d) => 100 + d.clamp(0, 800),
            }
            + if kind == Kind::Cpu && local >= PID_STRIDE - 100 {
                50
            } else {
                0
            }
    }
}

fn meta_event(name: &str, pid: i64, tid: &str, args: String) -> String {
    format!(
        "{{\"name\":{},\"ph\":\"M\",\"pid\":{pid},\"tid\":{tid},\"ts\":0,\"args\":{args}}}",
        json_str(name)
    )
}

#[allow(clippy::too_many_arguments)]
fn merge_rank(
    p: &Planned,
    mut events: Prefetch,
    index: usize,
    shift_ns: i64,
    opts: &MergeOptions,
    writer: &mut TraceWriter,
    state: &mut MergeState,
    progress: &Progress,
    fast: bool,
    mut links: Option<&mut StepLinks>,
) -> Result<RankResult, TraceError> {
    // `events` are delimited (and, on the fast path, scanned) on a helper thread.
    let path = &p.path;
    let mut rw = Rewriter {
        index: index as i64,
        label: p.id.label(),
        device_ids: &p.device_ids,
        pid_map: HashMap::new(),
        next_dense: 0,
        labelled: HashMap::new(),
        cpu_named: false,
        plain_label: false,
        shift_ns,
        perfetto_fix: opts.perfetto_fix,
        lanes: HashMap::new(),
        lane_named: HashSet::new(),
    };
    let drop: HashSet<&str> = opts.drop_categories.iter().map(String::as_str).collect();
    let mut events_in = 0u64;
    let mut events_out = 0u64;
    let mut invalid_utf8 = 0u64;
    let mut extra: Vec<String> = Vec::new();
    let mut last_pos = 0u64;
    let mut scratch = FastScratch::new();
    let mut members = Vec::new();
    let mut parser = EventParser::default();
    let mut bad = BadEvents::default();
    while let Some((raw, scanned)) = events.next_event(&mut members)? {
        // The same judgement of each event as `trace summary`'s, so that a merged trace is
        // always one the analyses accept.
        if let Err(e) = parser.check(raw, scanned, &members) {
            bad.note(path, events_in, &e, opts.skip_bad)?;
            events_in += 1;
            continue;
        }
        // Read before `emit_event` takes the members.
        let hint = match (&links, scanned) {
            (None, _) => mc::StepHint::NotStep,
            (Some(_), true) => mc::step_hint(raw, &members),
            (Some(_), false) => mc::StepHint::Unknown,
        };
        let emitted = emit_event(
            &mut rw,
            raw,
            scanned,
            fast,
            &drop,
            &mut scratch,
            &mut members,
            &mut extra,
            state,
            writer,
            &mut invalid_utf8,
        )
        .map_err(|e| e.at(path, events_in))?;
        events_in += 1;
        if emitted == Emitted::Dropped {
            continue;
        }
        events_out += 1;
        if let Some(l) = links.as_deref_mut() {
            l.observe(raw, hint, index, shift_ns, |id| rw.map_pid(id));
        }
        let pos = events.position();
        if pos - last_pos > 1 << 20 {
            progress.inc(pos - last_pos);
            last_pos = pos;
        }
    }
    let reader = events.finish()?;
    progress.inc(reader.position().saturating_sub(last_pos));
    let mut warnings = reader.warnings().to_vec();
    warnings.extend(bad.warning(path));
    if invalid_utf8 > 0 {
        warnings.push(format!(
            "{invalid_utf8} events had invalid UTF-8 (replacement characters written)"
        ));
    }
    Ok(RankResult {
        events_in,
        bad_events: bad.count,
        events_out,
        truncated: reader.truncated(),
        warnings,
        metadata: reader.metadata().to_vec(),
    })
}

/// What became of one input event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Emitted {
    /// Its category is dropped (`drop_categories`).
    Dropped,
    Written,
}

/// Why one input event could not be written.
enum EmitError {
    /// The event itself (bad JSON, a field the rewrite cannot take).
    Event(String),
    /// Writing the output.
    Write(TraceError),
}

impl EmitError {
    /// The error, placed at event `index` of `path`.
    fn at(self, path: &Path, index: u64) -> TraceError {
        match self {
            EmitError::Event(m) => TraceError::format(path, format!("event {index}: {m}")),
            EmitError::Write(e) => e,
        }
    }
}

impl From<TraceError> for EmitError {
    fn from(e: TraceError) -> Self {
        EmitError::Write(e)
    }
}

/// Rewrite one input event for the merged file (rank's or client's pid, shifted times) and
/// write it, with the metadata events it needs first: by the byte-level fast path when `fast`
/// and the event allows it, else through the general parser (`invalid_utf8` counts events
/// read with replacement characters there).
#[allow(clippy::too_many_arguments)]
fn emit_event(
    rw: &mut Rewriter<'_>,
    raw: &[u8],
    scanned: bool,
    fast: bool,
    drop: &HashSet<&str>,
    scratch: &mut FastScratch,
    members: &mut Vec<Member>,
    extra: &mut Vec<String>,
    state: &mut MergeState,
    writer: &mut TraceWriter,
    invalid_utf8: &mut u64,
) -> Result<Emitted, EmitError> {
    extra.clear();
    if fast {
        if scanned {
            std::mem::swap(members, &mut scratch.members);
        }
        match fast_rewrite(rw, raw, scanned, drop, scratch, extra, state) {
            Fast::Unsupported => {}
            Fast::Dropped => {
                state.dropped += 1;
                return Ok(Emitted::Dropped);
            }
            Fast::Rewritten => {
                for e in extra.iter() {
                    writer.write_raw_event(e.as_bytes())?;
                }
                scratch.write_event(raw, writer.begin_event());
                writer.end_event()?;
                return Ok(Emitted::Written);
            }
        }
    }
    let lossy: String;
    let text: &str = match std::str::from_utf8(raw) {
        Ok(t) => t,
        Err(_) => {
            *invalid_utf8 += 1;
            lossy = String::from_utf8_lossy(raw).into_owned();
            &lossy
        }
    };
    let mut obj = RawObject::parse(text).map_err(|e| EmitError::Event(e.to_string()))?;
    let cat: Option<String> = obj.get_as("cat");
    if cat.as_deref().is_some_and(|c| drop.contains(c)) {
        state.dropped += 1;
        return Ok(Emitted::Dropped);
    }
    extra.clear();
    rewrite(rw, &mut obj, cat.as_deref(), extra, state).map_err(EmitError::Event)?;
    // Synthesized metadata goes before the event it describes.
    for e in extra.iter() {
        writer.write_raw_event(e.as_bytes())?;
    }
    obj.write_to(writer.begin_event());
    writer.end_event()?;
    Ok(Emitted::Written)
}

fn rewrite(
    rw: &mut Rewriter<'_>,
    obj: &mut RawObject<'_>,
    cat: Option<&str>,
    extra: &mut Vec<String>,
    state: &mut MergeState,
) -> Result<(), String> {
    let ph: String = obj.get_as("ph").unwrap_or_default();
    let name: String = if ph == "M" {
        obj.get_as("name").unwrap_or_default()
    } else {
        String::new()
    };
    let is_gpu = ph == "X" && cat.is_some_and(is_gpu_category);

    // Timestamps.
    if rw.shift_ns != 0 {
        if let Some(raw) = obj.get("ts") {
            let text = shift_ts(raw, rw.shift_ns)?;
            obj.set("ts", text);
        }
    }

    // Flow / async ids.
    if let Some(raw) = obj.get("id") {
        if let Some(new) = rw.map_id(raw) {
            obj.set("id", new);
        }
    }

    // args: correlation and external ids; metadata labels.
    let mut device: Option<i64> = None;
    let mut labels_kind: Option<Kind> = None;
    if let Some(args_raw) = obj.get("args") {
        let needs =
            rw.index > 0 && (args_raw.contains("correlation") || args_raw.contains("External id"));
        if needs || is_gpu || ph == "M" {
            let mut args = RawObject::parse(args_raw).map_err(|e| format!("bad args: {e}"))?;
            if is_gpu {
                device = args.get_as("device");
            }
            if name == "process_labels" {
                let l: String = args.get_as("labels").unwrap_or_default();
                labels_kind = Some(labels_kind_of(&l));
            }
            if rw.index > 0 {
                for key in ["correlation", "External id"] {
                    if let Some(v) = args.get(key) {
                        if let Some(new) = rw.map_id(v) {
                            args.set(key, new);
                        }
                    }
                }
            }
            let json = args.to_json();
            obj.set("args", json);
        }
    }

    // pid.
    let Some(pid_raw) = obj.get("pid") else {
        return Ok(());
    };
    let orig: Id<'_> = serde_json::from_str::<Id<'_>>(pid_raw)
        .map_err(|e| format!("bad pid: {e}"))?
        .to_owned_id();
    let new_pid = rw.map_pid(&orig);
    obj.set("pid", new_pid.to_string());
    if let Some(args) = label_process(
        rw,
        &ph,
        &name,
        is_gpu,
        device,
        labels_kind,
        &orig,
        new_pid,
        extra,
        state,
    ) {
        obj.set("args", args);
    }

    // Perfetto fix: partially overlapping GPU events go to extra lanes of their stream.
    if rw.perfetto_fix && is_gpu {
        perfetto_fix(rw, obj, new_pid, extra, state);
    }
    Ok(())
}

/// The `ts` text of `raw` moved by `shift_ns` (integers stay integers when they can).
fn shift_ts(raw: &str, shift_ns: i64) -> Result<String, String> {
    let mut out = Vec::with_capacity(raw.len() + 4);
    shift_ts_into(raw.as_bytes(), shift_ns, &mut out)?;
    Ok(String::from_utf8(out).unwrap_or_default())
}

/// [`shift_ts`], appended to `out`: exact (decimal µs are read to the nanosecond, which an
/// `f64` cannot do for Unix-µs times) and without allocating -- it runs on every event of a
/// shifted file.
fn shift_ts_into(raw: &[u8], shift_ns: i64, out: &mut Vec<u8>) -> Result<(), String> {
    let ns = match micros::parse_us(raw) {
        Some(ns) => ns,
        None => {
            serde_json::from_slice::<Nanos>(raw)
                .map_err(|e| format!("bad ts: {e}"))?
                .0
        }
    };
    let ns = ns
        .checked_add(shift_ns)
        .ok_or_else(|| format!("ts {} out of range after the clock shift", span_str(raw)))?;
    micros::write_us_compact(ns, !raw.contains(&b'.'), out);
    Ok(())
}

/// The process kind named by a `process_labels` value (`GPU 3`, `CPU`...).
fn labels_kind_of(labels: &str) -> Kind {
    if let Some(n) = labels.strip_prefix("GPU ") {
        Kind::Gpu(n.trim().parse().unwrap_or(0))
    } else {
        Kind::Cpu
    }
}

/// Labels the process `new_pid` (mapped from `orig`) the first time it is seen, pushing
/// synthesized `process_name`/`process_sort_index` events to `extra`. For a `process_name` or
/// `process_sort_index` metadata event, returns its new `args`.
#[allow(clippy::too_many_arguments)]
fn label_process(
    rw: &mut Rewriter<'_>,
    ph: &str,
    name: &str,
    is_gpu: bool,
    device: Option<i64>,
    labels_kind: Option<Kind>,
    orig: &Id<'_>,
    new_pid: i64,
    extra: &mut Vec<String>,
    state: &mut MergeState,
) -> Option<String> {
    let guess = |rw: &Rewriter<'_>| match orig {
        Id::Int(p) if rw.device_ids.contains(p) => Kind::Gpu(*p),
        _ => Kind::Cpu,
    };
    if ph == "M" && (name == "process_name" || name == "process_sort_index") {
        let g = guess(rw);
        let kind = *rw.labelled.entry(new_pid).or_insert(g);
        let mut args = RawObject::default();
        if name == "process_name" {
            let label = rw.process_label(kind, orig);
            args.set_value("name", &label);
            if rw.plain_label {
                // The client's process: sorted after every rank even if its file has no sort
                // index (its own, if any, is rewritten to the same value).
                extra.push(meta_event(
                    "process_sort_index",
                    new_pid,
                    "0",
                    format!("{{\"sort_index\":{}}}", rw.sort_index(kind, new_pid)),
                ));
                state.synthesized += 1;
            }
        } else {
            args.set_value("sort_index", &rw.sort_index(kind, new_pid));
        }
        return Some(args.to_json());
    } else if let Some(kind) = labels_kind {
        let prev = rw.labelled.insert(new_pid, kind);
        if prev.is_some() && prev != Some(kind) {
            // The earlier guess was wrong: relabel.
            let label = rw.process_label(kind, orig);
            extra.push(meta_event(
                "process_name",
                new_pid,
                "0",
                format!("{{\"name\":{}}}", json_str(&label)),
            ));
            extra.push(meta_event(
                "process_sort_index",
                new_pid,
                "0",
                format!("{{\"sort_index\":{}}}", rw.sort_index(kind, new_pid)),
            ));
            state.synthesized += 2;
        }
    } else if !rw.labelled.contains_key(&new_pid) {
        let kind = if is_gpu {
            Kind::Gpu(device.unwrap_or(orig.as_int().unwrap_or(0)))
        } else {
            guess(rw)
        };
        rw.labelled.insert(new_pid, kind);
        let label = rw.process_label(kind, orig);
        extra.push(meta_event(
            "process_name",
            new_pid,
            "0",
            format!("{{\"name\":{}}}", json_str(&label)),
        ));
        extra.push(meta_event(
            "process_sort_index",
            new_pid,
            "0",
            format!("{{\"sort_index\":{}}}", rw.sort_index(kind, new_pid)),
        ));
        state.synthesized += 2;
    }
    None
}

/// Moves a GPU event that partially overlaps an earlier one on its stream to an extra lane.
fn perfetto_fix(
    rw: &mut Rewriter<'_>,
    obj: &mut RawObject<'_>,
    new_pid: i64,
    extra: &mut Vec<String>,
    state: &mut MergeState,
) {
    {
        let tid_raw = obj.get("tid").unwrap_or("0").to_string();
        let ts: Option<Nanos> = obj.get("ts").and_then(|t| serde_json::from_str(t).ok());
        let dur: Option<Nanos> = obj.get("dur").and_then(|t| serde_json::from_str(t).ok());
        if let (Some(ts), Some(dur)) = (ts, dur) {
            let lanes = rw.lanes.entry((new_pid, tid_raw.clone())).or_default();
            let lane = match lanes.iter().position(|end| ts.0 >= *end) {
                Some(l) => l,
                None => {
                    lanes.push(i64::MIN);
                    lanes.len() - 1
                }
            };
            lanes[lane] = ts.0 + dur.0;
            if lane > 0 {
                state.moved += 1;
                let new_tid = match serde_json::from_str::<Id<'_>>(&tid_raw) {
                    Ok(Id::Int(t)) => (t + 1_000_000 * lane as i64).to_string(),
                    _ => json_str(&format!("{} overlap {lane}", tid_raw.trim_matches('"'))),
                };
                if rw.lane_named.insert((new_pid, new_tid.clone())) {
                    let tname = format!("stream {} (overlap {lane})", tid_raw.trim_matches('"'));
                    extra.push(meta_event(
                        "thread_name",
                        new_pid,
                        &new_tid,
                        format!("{{\"name\":{}}}", json_str(&tname)),
                    ));
                    state.synthesized += 1;
                }
                obj.set("tid", new_tid);
            }
        }
    }
}

/// Outcome of the fast path for one event.
enum Fast {
    /// Not handled (unusual form, invalid UTF-8 or JSON, `perfetto_fix` on a GPU event): use
    /// the general path, which handles it or reports the error. Nothing was changed.
    Unsupported,
    /// Dropped by category.
    Dropped,
    /// Rewritten: `FastScratch::write_event` writes it.
    Rewritten,
}

/// Reusable buffers of the byte-level fast path: the event's member spans and the replacement
/// JSON of the members it changes (`ts`, `id`, `args`, `pid`).
struct FastScratch {
    correlation: memchr::memmem::Finder<'static>,
    external_id: memchr::memmem::Finder<'static>,
    members: Vec<Member>,
    args_members: Vec<Member>,
    /// (member index, range in `text`) of each replaced member.
    patches: Vec<(usize, usize, usize)>,
    /// `args` to append when the event has none (range in `text`).
    append_args: Option<(usize, usize)>,
    text: Vec<u8>,
}

impl FastScratch {
    fn new() -> Self {
        FastScratch {
            correlation: memchr::memmem::Finder::new(b"correlation"),
            external_id: memchr::memmem::Finder::new(b"External id"),
            members: Vec::new(),
            args_members: Vec::new(),
            patches: Vec::new(),
            append_args: None,
            text: Vec::new(),
        }
    }

    fn patch(&mut self, member: usize, json: &[u8]) {
        let start = self.text.len();
        self.text.extend_from_slice(json);
        self.patches.retain(|p| p.0 != member);
        self.patches.push((member, start, self.text.len()));
    }

    /// Writes the rewritten event as compact JSON: members in input order, keys and untouched
    /// values copied byte for byte, patched values replaced -- the bytes the general path
    /// (`RawObject::write_to`) produces for the same event.
    fn write_event(&mut self, raw: &[u8], out: &mut Vec<u8>) {
        self.patches.sort_unstable();
        let mut patches = self.patches.iter().peekable();
        out.push(b'{');
        for (i, m) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&raw[m.key_start..m.key_end]);
            out.push(b':');
            match patches.next_if(|p| p.0 == i) {
                Some(&(_, a, b)) => out.extend_from_slice(&self.text[a..b]),
                None => out.extend_from_slice(m.value(raw)),
            }
        }
        if let Some((a, b)) = self.append_args {
            if !self.members.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(b"\"args\":");
            out.extend_from_slice(&self.text[a..b]);
        }
        out.push(b'}');
    }
}

/// The value of a JSON string (what `get_as::<String>` gives): `None` for other JSON values.
fn json_string(v: &[u8]) -> Option<Cow<'_, str>> {
    if let Some(s) = fastscan::plain_str(v) {
        return Some(Cow::Borrowed(s));
    }
    if v.first() != Some(&b'"') {
        return None;
    }
    serde_json::from_slice::<String>(v).ok().map(Cow::Owned)
}

/// Bytes as `str`; only called on spans of an event already checked to be UTF-8, cut at ASCII
/// delimiters.
fn span_str(v: &[u8]) -> &str {
    std::str::from_utf8(v).unwrap_or("")
}

/// The byte-level fast path of `rewrite`: the same decisions on the same fields, but the event
/// is scanned once without building an object, and only changed members are re-created
/// (untouched members are copied as they are, whitespace between members dropped, exactly as
/// the general path writes them). Returns `Unsupported` -- before changing any state -- for
/// anything it does not handle, so the general path can take over.
#[allow(clippy::too_many_arguments)]
fn fast_rewrite(
    rw: &mut Rewriter<'_>,
    raw: &[u8],
    scanned: bool,
    drop: &HashSet<&str>,
    s: &mut FastScratch,
    extra: &mut Vec<String>,
    state: &mut MergeState,
) -> Fast {
    // `scanned`: `s.members` holds the members and `raw` is valid UTF-8 (checked on the
    // reading thread).
    if !scanned
        && (std::str::from_utf8(raw).is_err() || !fastscan::scan_object(raw, &mut s.members))
    {
        return Fast::Unsupported;
    }
    s.patches.clear();
    s.append_args = None;
    s.text.clear();
    let members = std::mem::take(&mut s.members);
    // The first member of each name the rewrite reads (as `RawObject::get` finds them).
    let mut at: [Option<usize>; 7] = [None; 7];
    for (i, m) in members.iter().enumerate() {
        let slot = match m.key(raw) {
            b"cat" => 0,
            b"ph" => 1,
            b"name" => 2,
            b"ts" => 3,
            b"id" => 4,
            b"args" => 5,
            b"pid" => 6,
            _ => continue,
        };
        at[slot].get_or_insert(i);
    }
    let first = |key: &[u8]| match key {
        b"cat" => at[0],
        b"ph" => at[1],
        b"name" => at[2],
        b"ts" => at[3],
        b"id" => at[4],
        b"args" => at[5],
        b"pid" => at[6],
        _ => members.iter().position(|m| m.key(raw) == key),
    };
    let value = |i: usize| members[i].value(raw);

    let cat = first(b"cat").and_then(|i| json_string(value(i)));
    if let Some(c) = &cat {
        if drop.contains(c.as_ref()) {
            s.members = members;
            return Fast::Dropped;
        }
    }
    let ph = first(b"ph")
        .and_then(|i| json_string(value(i)))
        .unwrap_or_default();
    let name = if ph == "M" {
        first(b"name")
            .and_then(|i| json_string(value(i)))
            .unwrap_or_default()
    } else {
        Cow::Borrowed("")
    };
    let is_gpu = ph == "X" && cat.as_deref().is_some_and(is_gpu_category);
    let pid_at = first(b"pid");
    // Everything that can fail is decided before any state changes.
    let orig: Option<Id<'static>> = match pid_at.map(value) {
        None => None,
        Some(v) => match fastscan::small_uint(v) {
            Some(p) => Some(Id::Int(p)),
            None => match serde_json::from_slice::<Id<'_>>(v) {
                Ok(id) => Some(id.to_owned_id()),
                Err(_) => {
                    s.members = members;
                    return Fast::Unsupported;
                }
            },
        },
    };
    // The shifted `ts` goes straight into the patch text (nothing else is there yet).
    let ts_new = match first(b"ts") {
        Some(i) if rw.shift_ns != 0 => match shift_ts_into(value(i), rw.shift_ns, &mut s.text) {
            Ok(()) => Some((i, 0, s.text.len())),
            Err(_) => None,
        },
        _ => None,
    };
    let bad_ts = rw.shift_ns != 0 && first(b"ts").is_some() && ts_new.is_none();
    if bad_ts || (rw.perfetto_fix && is_gpu) {
        s.members = members;
        return Fast::Unsupported;
    }
    let args_at = first(b"args");
    let args_raw = args_at.map(value).unwrap_or_default();
    let args_rewrite = args_at.is_some()
        && ((rw.index > 0
            && (s.correlation.find(args_raw).is_some() || s.external_id.find(args_raw).is_some()))
            || is_gpu
            || ph == "M");
    if args_rewrite && !fastscan::scan_object(args_raw, &mut s.args_members) {
        s.members = members;
        return Fast::Unsupported;
    }

    // Timestamps.
    if let Some(patch) = ts_new {
        s.patches.push(patch);
    }
    // Flow / async ids.
    if let Some(i) = first(b"id") {
        if let Some(new) = rw.map_id(span_str(value(i))) {
            s.patch(i, new.as_bytes());
        }
    }
    // args: correlation and external ids; metadata labels.
    let mut device: Option<i64> = None;
    let mut labels_kind: Option<Kind> = None;
    if let (true, Some(at)) = (args_rewrite, args_at) {
        let am = std::mem::take(&mut s.args_members);
        let afirst = |key: &[u8]| am.iter().position(|m| m.key(args_raw) == key);
        if is_gpu {
            device = afirst(b"device")
                .and_then(|i| serde_json::from_slice::<i64>(am[i].value(args_raw)).ok());
        }
        if name == "process_labels" {
            let l = afirst(b"labels")
                .and_then(|i| json_string(am[i].value(args_raw)))
                .unwrap_or_default();
            labels_kind = Some(labels_kind_of(&l));
        }
        let (corr, ext) = if rw.index > 0 {
            (afirst(b"correlation"), afirst(b"External id"))
        } else {
            (None, None)
        };
        let start = s.text.len();
        s.text.push(b'{');
        for (i, m) in am.iter().enumerate() {
            if i > 0 {
                s.text.push(b',');
            }
            s.text.extend_from_slice(&args_raw[m.key_start..m.key_end]);
            s.text.push(b':');
            let v = m.value(args_raw);
            match (Some(i) == corr || Some(i) == ext)
                .then(|| rw.map_id(span_str(v)))
                .flatten()
            {
                Some(new) => s.text.extend_from_slice(new.as_bytes()),
                None => s.text.extend_from_slice(v),
            }
        }
        s.text.push(b'}');
        s.patches.push((at, start, s.text.len()));
        s.args_members = am;
    }

    // pid.
    if let (Some(at), Some(orig)) = (pid_at, orig) {
        let new_pid = rw.map_pid(&orig);
        s.patch(at, itoa::Buffer::new().format(new_pid).as_bytes());
        if let Some(args) = label_process(
            rw,
            &ph,
            &name,
            is_gpu,
            device,
            labels_kind,
            &orig,
            new_pid,
            extra,
            state,
        ) {
            match args_at {
                Some(i) => s.patch(i, args.as_bytes()),
                None => {
                    let start = s.text.len();
                    s.text.extend_from_slice(args.as_bytes());
                    s.append_args = Some((start, s.text.len()));
                }
            }
        }
    }
    s.members = members;
    Fast::Rewritten
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifted_times_are_exact_even_in_unix_microseconds() {
        assert_eq!(shift_ts("1.5", 1).unwrap(), "1.501");
        assert_eq!(shift_ts("-2.5", 1_000).unwrap(), "-1.500");
        assert_eq!(
            shift_ts("1669783687464181.123", 1).unwrap(),
            "1669783687464181.124"
        );
        assert_eq!(shift_ts("1.5e3", 0).unwrap(), "1500.000");
        assert!(shift_ts("9223372036854775", 1_000).is_err());
        assert_eq!(shift_ts("2", 1_000).unwrap(), "3");
        assert_eq!(
            shift_ts("998500.123", 1_669_782_686_000_000_000).unwrap(),
            "1669782686998500.123"
        );
    }
}
