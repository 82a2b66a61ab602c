//! The server's side of a run for `trace explain`: each request's lifecycle and the steps
//! (with their batches) it ran in, from the reference server's `--log-requests` file or from
//! its profiler traces (`step[...]` spans with `rids`/`extend_lens`, `request` async tracks).
//! Names are in docs/trace-conventions.md "Requests (reference server)". Times are Unix ns on
//! the server's clock; 0 means "not seen".

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::Path;

use serde::Deserialize;

use crate::event::EventParser;
use crate::reader::TraceReader;
use crate::TraceError;

/// One engine step and its batch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Step {
    /// The engine's step counter, when the source names it (the request log does).
    pub forward_ct: Option<u64>,
    /// `EXTEND`, `DECODE` or `MIXED`.
    pub mode: String,
    pub start: i64,
    pub end: i64,
    /// The batch's rids and, parallel, the tokens each computes in this step.
    pub rids: Vec<String>,
    pub extend_lens: Vec<u64>,
}

impl Step {
    pub fn dur(&self) -> i64 {
        (self.end - self.start).max(0)
    }

    pub fn tokens(&self) -> u64 {
        self.extend_lens.iter().sum()
    }

    /// Tokens `rid` computes in this step (0 when it is not in the batch).
    pub fn tokens_of(&self, rid: &str) -> u64 {
        self.rids
            .iter()
            .position(|r| r == rid)
            .map_or(0, |i| self.extend_lens.get(i).copied().unwrap_or(0))
    }
}

/// One request as the server saw it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerRequest {
    pub rid: String,
    /// Arrival at the server.
    pub created: i64,
    /// Put in the waiting queue.
    pub enqueued: i64,
    /// First output token sampled.
    pub first_token: i64,
    /// Finished or aborted.
    pub finished: i64,
    /// Indices into [`ServerView::steps`] of the steps it ran in, in time order.
    pub steps: Vec<usize>,
}

/// Requests by rid and every step, ordered by start.
#[derive(Clone, Debug, Default)]
pub struct ServerView {
    pub requests: HashMap<String, ServerRequest>,
    pub steps: Vec<Step>,
    /// The steps name no request ids (SGLang's and vLLM's traces today): requests can only be
    /// related to steps by time overlap, and `requests` is empty.
    pub without_rids: bool,
}

impl ServerView {
    /// Steps that overlap `[from, to)`, by index.
    pub fn steps_within(&self, from: i64, to: i64) -> impl Iterator<Item = usize> + '_ {
        // Steps are sorted by start; a step overlaps when it starts before `to` and ends after
        // `from`.
        let first = self.steps.partition_point(|s| s.end <= from);
        (first..self.steps.len())
            .take_while(move |&i| self.steps[i].start < to)
            .filter(move |&i| self.steps[i].end > from)
    }

    fn finish(mut self) -> Self {
        self.steps.sort_by_key(|s| (s.start, s.end));
        let mut by_rid: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, s) in self.steps.iter().enumerate() {
            for r in &s.rids {
                by_rid.entry(r.as_str()).or_default().push(i);
            }
        }
        for (rid, req) in self.requests.iter_mut() {
            req.steps = by_rid.get(rid.as_str()).cloned().unwrap_or_default();
        }
        self
    }
}

fn unix_ns(seconds: Option<f64>) -> i64 {
    seconds.map_or(0, |s| (s * 1e9).round() as i64)
}

#[derive(Deserialize)]
struct LoggedStep {
    forward_ct: u64,
    forward_mode: String,
    extend_tokens: u64,
    start_time: f64,
    end_time: f64,
}

#[derive(Deserialize)]
struct LoggedRequest {
    rid: String,
    created_time: Option<f64>,
    wait_queue_entry_time: Option<f64>,
    first_token_time: Option<f64>,
    finished_time: Option<f64>,
    #[serde(default)]
    steps: Vec<LoggedStep>,
}

/// Read `serve --log-requests` JSON Lines. Lines of other shapes are an error naming the
/// line; steps shared by several requests are joined on `forward_ct`.
pub fn read_request_log(path: &Path) -> Result<ServerView, TraceError> {
    let file = std::fs::File::open(path).map_err(|e| TraceError::io(path, e))?;
    let mut view = ServerView::default();
    let mut steps: BTreeMap<u64, Step> = BTreeMap::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| TraceError::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let r: LoggedRequest = serde_json::from_str(&line).map_err(|e| {
            TraceError::format(
                path,
                format!("line {}: not a --log-requests record: {e}", n + 1),
            )
        })?;
        for s in &r.steps {
            let step = steps.entry(s.forward_ct).or_insert_with(|| Step {
                forward_ct: Some(s.forward_ct),
                mode: s.forward_mode.clone(),
                start: unix_ns(Some(s.start_time)),
                end: unix_ns(Some(s.end_time)),
                ..Default::default()
            });
            step.rids.push(r.rid.clone());
            step.extend_lens.push(s.extend_tokens);
        }
        view.requests.insert(
            r.rid.clone(),
            ServerRequest {
                rid: r.rid,
                created: unix_ns(r.created_time),
                enqueued: unix_ns(r.wait_queue_entry_time),
                first_token: unix_ns(r.first_token_time),
                finished: unix_ns(r.finished_time),
                steps: Vec::new(),
            },
        );
    }
    if view.requests.is_empty() {
        return Err(TraceError::Empty(format!(
            "{}: the request log holds no requests",
            path.display()
        )));
    }
    view.steps = steps.into_values().collect();
    Ok(view.finish())
}

/// A step span of a server that names no rids, as `trace summary` reads it: its mode and,
/// when the name says, its tokens.
fn unnamed_step(cat: Option<&str>, name: &str, start: i64, end: i64) -> Option<Step> {
    let span = crate::collect::parse_step(cat.unwrap_or(""), name, start, end)?;
    Some(Step {
        forward_ct: None,
        mode: span.stage.to_ascii_uppercase(),
        start,
        end,
        rids: Vec::new(),
        extend_lens: span.toks.into_iter().collect(),
    })
}

#[derive(Deserialize, Default)]
struct StepArgs {
    #[serde(default)]
    forward_mode: String,
    #[serde(default)]
    rids: Vec<String>,
    #[serde(default)]
    extend_lens: Vec<u64>,
}

#[derive(Deserialize, Default)]
struct RequestEventArgs {
    #[serde(default)]
    rid: String,
}

#[derive(Deserialize)]
struct Distributed {
    #[serde(default)]
    rank: Option<i64>,
}

/// Read the server's profiler traces of rank 0 (files of other ranks repeat the same steps
/// and are skipped; by-stage files of one rank are joined). The reference server's steps name
/// their rids; other servers' steps do not, and the view says so (`without_rids`). Traces
/// without any step span are an error naming the files.
pub fn read_server_traces(paths: &[&Path]) -> Result<ServerView, TraceError> {
    let mut view = ServerView::default();
    let mut with_rids = 0;
    // Steps of servers that name no rids (`step[...]` of SGLang, vLLM's `execute_...`).
    let mut unnamed: Vec<Step> = Vec::new();
    for path in paths {
        let mut reader = TraceReader::open(path)?;
        let rank = reader
            .meta("distributedInfo")
            .and_then(|v| serde_json::from_str::<Distributed>(v.get()).ok())
            .and_then(|d| d.rank)
            .unwrap_or(0);
        if rank != 0 {
            continue;
        }
        let base: i64 = reader
            .meta("baseTimeNanoseconds")
            .and_then(|v| v.get().parse().ok())
            .unwrap_or(0);
        let mut parser = EventParser::default();
        let mut index = 0u64;
        while let Some(raw) = reader.next_event()? {
            index += 1;
            let e = parser
                .parse(raw)
                .map_err(|err| TraceError::format(*path, format!("event {index}: {err}")))?;
            let Some(ts) = e.ts else { continue };
            let at = base + ts.0;
            let bad = |err: serde_json::Error| {
                TraceError::format(*path, format!("event {index}: args: {err}"))
            };
            if e.ph == "X" && e.name.starts_with("step[") {
                let args: StepArgs = match e.args {
                    Some(a) => serde_json::from_str(a.get()).map_err(bad)?,
                    None => StepArgs::default(),
                };
                if args.rids.is_empty() {
                    let end = at + e.dur.map_or(0, |d| d.0);
                    if let Some(step) = unnamed_step(e.cat.as_deref(), &e.name, at, end) {
                        unnamed.push(step);
                    }
                    continue;
                }
                with_rids += 1;
                view.steps.push(Step {
                    forward_ct: None,
                    mode: args.forward_mode,
                    start: at,
                    end: at + e.dur.map_or(0, |d| d.0),
                    rids: args.rids,
                    extend_lens: args.extend_lens,
                });
            } else if e.ph == "X" && e.name.starts_with("execute_") {
                let end = at + e.dur.map_or(0, |d| d.0);
                if let Some(step) = unnamed_step(e.cat.as_deref(), &e.name, at, end) {
                    unnamed.push(step);
                }
            } else if e.cat.as_deref() == Some("request") {
                let args: RequestEventArgs = match e.args {
                    Some(a) => serde_json::from_str(a.get()).map_err(bad)?,
                    None => RequestEventArgs::default(),
                };
                if args.rid.is_empty() {
                    continue;
                }
                let r = view
                    .requests
                    .entry(args.rid.clone())
                    .or_insert_with(|| ServerRequest {
                        rid: args.rid.clone(),
                        ..Default::default()
                    });
                let first = |slot: &mut i64| {
                    if *slot == 0 || at < *slot {
                        *slot = at;
                    }
                };
                match (e.ph.as_ref(), e.name.as_ref()) {
                    ("b", _) => first(&mut r.created),
                    ("n", "enqueued") => first(&mut r.enqueued),
                    ("n", "first_token") => first(&mut r.first_token),
                    ("n", "finish") => r.finished = r.finished.max(at),
                    _ => {}
                }
            }
        }
    }
    if with_rids == 0 && !unnamed.is_empty() {
        // Steps without request ids (SGLang, vLLM): keep them for attribution by overlap.
        view.steps = unnamed;
        view.requests.clear();
        view.without_rids = true;
        return Ok(view.finish());
    }
    if with_rids == 0 {
        return Err(TraceError::Empty(format!(
            "no engine step spans (`step[...]`, vLLM's `execute_...`) in {}: explain needs the \
             server's rank-0 traces of the run (or the reference server's --log-requests file)",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(view.finish())
}
