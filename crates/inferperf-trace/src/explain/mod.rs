//! `trace explain`: why each slow request was slow. Joins a client request trace with the
//! reference server's view of the same requests (its `--log-requests` file or its profiler
//! traces) on the request id, puts both on the server's clock (the offset the client measured,
//! else one host's clock), and splits every request's latency into parts that add up to it:
//!
//! TTFT (client send to first chunk) = `send` (client send to server arrival) + `admission`
//! (arrival to the waiting queue: tokenizing) + `queue_wait` (queue to its first step) +
//! `prefill_own` (its share of the steps that computed its prompt: step time x its tokens /
//! the step's tokens) + `prefill_interference` (the rest of the time to its first token:
//! other requests' tokens in its steps, and steps without it between its chunks) +
//! `first_token_delivery` (first token sampled to the client holding it).
//!
//! E2E - TTFT = `decode_own` + `decode_interference` (the same split of first token to
//! finish) + `stream_tail` (how much later the last chunk reached the client than the first,
//! beyond the server's own time). `client_queue` (scheduled to sent) is reported beside.
//!
//! For the slowest requests by TTFT, by largest chunk gap and by E2E it names the steps that
//! delayed them, with their batches.
//!
//! Servers whose traces name no requests (SGLang's and vLLM's today) are explained by time
//! overlap, and the report says so (`attribution`): only "server steps running" and "no step
//! running" are known of each window, and the steps named are those that ran in it.

pub mod client;
pub mod server;

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::table::Table;
use crate::TraceError;
use client::{ClientRequest, ClientTrace};
use server::{ServerRequest, ServerView, Step};

/// What to explain.
#[derive(Clone, Debug, Default)]
pub struct ExplainOptions {
    /// The client request trace (`bench serving --request-trace`).
    pub client: PathBuf,
    /// The server's `--log-requests` file.
    pub request_log: Option<PathBuf>,
    /// The server's profiler traces (rank 0; by-stage files joined).
    pub server_traces: Vec<PathBuf>,
    /// How many slowest requests to list per measure.
    pub top: usize,
    /// How many delaying steps to name per slow request.
    pub steps_per_request: usize,
}

/// How the client's times were put on the server's clock.
#[derive(Clone, Debug, Serialize)]
pub struct Alignment {
    /// Added to client times (server minus client).
    pub offset_ns: i64,
    pub uncertainty_ns: u64,
    /// `measured` (NTP-style, by the client) or `same host` (assumed: no measurement).
    pub source: String,
}

/// The parts of one request's latency, ns (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Components {
    pub send: i64,
    pub admission: i64,
    pub queue_wait: i64,
    pub prefill_own: i64,
    pub prefill_interference: i64,
    pub first_token_delivery: i64,
    pub decode_own: i64,
    pub decode_interference: i64,
    pub stream_tail: i64,
}

impl Components {
    /// Names and values of the TTFT parts, in order.
    pub fn ttft_parts(&self) -> [(&'static str, i64); 6] {
        [
            ("send", self.send),
            ("admission", self.admission),
            ("queue_wait", self.queue_wait),
            ("prefill_own", self.prefill_own),
            ("prefill_interference", self.prefill_interference),
            ("first_token_delivery", self.first_token_delivery),
        ]
    }

    /// The TTFT parts' sum (equals the measured TTFT by construction).
    pub fn ttft(&self) -> i64 {
        self.ttft_parts().iter().map(|p| p.1).sum()
    }

    /// All parts' sum (equals the measured E2E).
    pub fn e2e(&self) -> i64 {
        self.ttft() + self.decode_own + self.decode_interference + self.stream_tail
    }
}

/// One request, explained.
#[derive(Clone, Debug, Serialize)]
pub struct RequestExplanation {
    pub rid: String,
    pub ttft_ns: i64,
    pub e2e_ns: i64,
    pub client_queue_ns: i64,
    pub largest_chunk_gap_ns: i64,
    pub components: Components,
}

/// A step that held a request back.
#[derive(Clone, Debug, Serialize)]
pub struct DelayingStep {
    pub forward_ct: Option<u64>,
    pub mode: String,
    /// Start, ms after the request was sent (server clock).
    pub start_ms: f64,
    pub dur_ns: i64,
    /// The part of the step that was not this request's own work.
    pub delay_ns: i64,
    /// Whether the request was in this step's batch.
    pub holds_request: bool,
    pub rids: Vec<String>,
    pub extend_lens: Vec<u64>,
}

/// A slow request and the steps that delayed it.
#[derive(Clone, Debug, Serialize)]
pub struct SlowRequest {
    pub rid: String,
    /// The measure it is slow by (TTFT, largest chunk gap or E2E), ns.
    pub value_ns: i64,
    pub components: Components,
    /// Every step in the window the measure covers, in a few numbers.
    pub window: WindowSummary,
    pub delaying_steps: Vec<DelayingStep>,
}

/// The steps the server ran during a slow request's window: how many did not include it
/// (it waited: queued, or left out of decode batches while prefills ran) and how long
/// they took.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct WindowSummary {
    pub steps: usize,
    pub steps_without_request: usize,
    /// Of those, prefill (`EXTEND`/`MIXED`) steps.
    pub prefill_steps_without_request: usize,
    pub time_without_request_ns: i64,
}

/// The TTFT parts' shares around one percentile.
#[derive(Clone, Debug, Serialize)]
pub struct PercentileShares {
    pub percentile: f64,
    /// Mean TTFT of the requests around the percentile.
    pub ttft_ns: i64,
    /// Requests averaged (the nearest rank and its neighbours).
    pub requests: usize,
    pub shares: Vec<(String, f64)>,
}

/// `trace explain`'s result.
#[derive(Clone, Debug, Serialize)]
pub struct ExplainReport {
    /// `request id` (the server's steps name their requests) or `time overlap` (they do not:
    /// a step that ran during a request's window is counted against it, held or not).
    pub attribution: String,
    pub alignment: Alignment,
    /// Where the server's side came from.
    pub server_source: String,
    pub requests: Vec<RequestExplanation>,
    pub slowest_ttft: Vec<SlowRequest>,
    pub slowest_chunk_gap: Vec<SlowRequest>,
    pub slowest_e2e: Vec<SlowRequest>,
    pub ttft_shares: Vec<PercentileShares>,
    pub notes: Vec<String>,
}

/// Read the inputs and explain every request both sides saw.
pub fn explain(o: &ExplainOptions) -> Result<ExplainReport, TraceError> {
    let client = client::read(&o.client)?;
    let (view, server_source) = match (&o.request_log, o.server_traces.is_empty()) {
        (Some(log), true) => (
            server::read_request_log(log)?,
            format!("request log {}", log.display()),
        ),
        (None, false) => {
            let paths: Vec<&std::path::Path> =
                o.server_traces.iter().map(PathBuf::as_path).collect();
            (
                server::read_server_traces(&paths)?,
                format!("{} server trace file(s)", paths.len()),
            )
        }
        _ => {
            return Err(TraceError::Config(
                "give the server's side as either --request-log FILE or trace files, not both \
                 and not neither"
                    .into(),
            ))
        }
    };
    explain_views(o, &client, &view, server_source)
}

/// [`explain`] on inputs already read.
pub fn explain_views(
    o: &ExplainOptions,
    client: &ClientTrace,
    view: &ServerView,
    server_source: String,
) -> Result<ExplainReport, TraceError> {
    let mut notes = Vec::new();
    let alignment = match client.server_clock {
        Some(m) => Alignment {
            offset_ns: m.offset_ns,
            uncertainty_ns: m.uncertainty_ns,
            source: "measured".into(),
        },
        None => {
            notes.push(
                "the client measured no server clock offset (the server reports no \
                 server_time_ns): both sides are assumed to share one host's clock"
                    .into(),
            );
            Alignment {
                offset_ns: 0,
                uncertainty_ns: 0,
                source: "same host".into(),
            }
        }
    };
    if view.without_rids {
        return Ok(by_overlap(o, client, view, server_source, alignment, notes));
    }
    let joined: Vec<(&ClientRequest, &ServerRequest)> = client
        .requests
        .iter()
        .filter_map(|c| view.requests.get(&c.rid).map(|s| (c, s)))
        .collect();
    if joined.is_empty() {
        let sample = |it: &mut dyn Iterator<Item = &String>| {
            it.take(3).cloned().collect::<Vec<_>>().join(", ")
        };
        return Err(TraceError::Empty(format!(
            "{}: none of its {} request ids appear in the {server_source} (client ids like \
             [{}], server ids like [{}]): are they from different runs?",
            o.client.display(),
            client.requests.len(),
            sample(&mut client.requests.iter().map(|r| &r.rid)),
            sample(&mut view.requests.keys()),
        )));
    }
    let missing = client.requests.len() - joined.len();
    if missing > 0 {
        notes.push(format!(
            "{missing} of {} client requests have no server record (outside the profile window, \
             or another server); they are not explained",
            client.requests.len()
        ));
    }
    let off = alignment.offset_ns;
    let mut explained: Vec<(RequestExplanation, &ClientRequest, &ServerRequest)> = Vec::new();
    let mut incomplete = 0;
    for (c, s) in joined {
        match decompose(c, s, view, off) {
            Some(e) => explained.push((e, c, s)),
            None => incomplete += 1,
        }
    }
    if incomplete > 0 {
        notes.push(format!(
            "{incomplete} requests failed or lack a lifecycle time on one side; not explained"
        ));
    }
    let top = o.top.max(1);
    let per = o.steps_per_request.max(1);
    let slowest =
        |key: &dyn Fn(&RequestExplanation) -> i64,
         window: &dyn Fn(&ClientRequest, &ServerRequest) -> (i64, i64)| {
            slowest_first(explained.len(), top, |i| key(&explained[i].0))
                .into_iter()
                .map(|i| {
                    let (e, c, s) = &explained[i];
                    let (from, to) = window(c, s);
                    SlowRequest {
                        rid: e.rid.clone(),
                        value_ns: key(e),
                        components: e.components,
                        window: window_summary(view, &e.rid, from, to),
                        delaying_steps: delaying_steps(
                            view,
                            &e.rid,
                            (from, to),
                            c.sent + off,
                            per,
                            // Not its own work: the others' share of a step, or all of one
                            // without it.
                            &|st| st.dur() - own_share(st, &e.rid),
                        ),
                    }
                })
                .collect::<Vec<_>>()
        };
    let slowest_ttft = slowest(&|e| e.ttft_ns, &|_, s| (s.enqueued, s.first_token));
    let slowest_chunk_gap = slowest(&|e| e.largest_chunk_gap_ns, &|c, _| {
        c.max_chunk_gap()
            .map_or((0, 0), |(_, a, b)| (a + off, b + off))
    });
    let slowest_e2e = slowest(&|e| e.e2e_ns, &|_, s| (s.enqueued, s.finished));
    let requests: Vec<RequestExplanation> = explained.into_iter().map(|(e, _, _)| e).collect();
    let ttft_shares = ttft_shares(&requests);
    Ok(ExplainReport {
        attribution: "request id".into(),
        alignment,
        server_source,
        requests,
        slowest_ttft,
        slowest_chunk_gap,
        slowest_e2e,
        ttft_shares,
        notes,
    })
}

/// The report for servers whose steps name no requests: each request's TTFT and E2E windows
/// are matched with the steps that ran during them. What can be said honestly: how much of
/// the window the server was running steps (`prefill_interference` for the TTFT window,
/// `decode_interference` for the rest, since none of it is known to be the request's own),
/// how much it ran none (`queue_wait` for TTFT: waiting, network, admission; `stream_tail`
/// after), and which steps overlapped most.
fn by_overlap(
    o: &ExplainOptions,
    client: &ClientTrace,
    view: &ServerView,
    server_source: String,
    alignment: Alignment,
    mut notes: Vec<String>,
) -> ExplainReport {
    notes.push(
        "the server's steps name no request ids (SGLang's and vLLM's traces do not): requests \
         are attributed by time overlap, so a step that ran during a request's window is \
         counted against it whether or not it held it"
            .into(),
    );
    let off = alignment.offset_ns;
    let busy = |from: i64, to: i64| -> i64 {
        view.steps_within(from, to)
            .map(|i| overlap(&view.steps[i], from, to))
            .sum()
    };
    let mut explained: Vec<(RequestExplanation, &ClientRequest)> = Vec::new();
    for c in &client.requests {
        let (Some(ttft), Some(e2e), true) = (c.ttft(), c.e2e(), c.ok) else {
            continue;
        };
        let (sent, first, last) = (c.sent + off, c.first_token + off, c.last + off);
        let ttft_busy = busy(sent, first);
        let rest_busy = busy(first, last);
        explained.push((
            RequestExplanation {
                rid: c.rid.clone(),
                ttft_ns: ttft,
                e2e_ns: e2e,
                client_queue_ns: (c.sent - c.scheduled).max(0),
                largest_chunk_gap_ns: c.max_chunk_gap().map_or(0, |g| g.0),
                components: Components {
                    queue_wait: ttft - ttft_busy,
                    prefill_interference: ttft_busy,
                    decode_interference: rest_busy,
                    stream_tail: (e2e - ttft) - rest_busy,
                    ..Default::default()
                },
            },
            c,
        ));
    }
    let top = o.top.max(1);
    let per = o.steps_per_request.max(1);
    let slowest = |key: &dyn Fn(&RequestExplanation) -> i64,
                   window: &dyn Fn(&ClientRequest) -> (i64, i64)| {
        slowest_first(explained.len(), top, |i| key(&explained[i].0))
            .into_iter()
            .map(|i| {
                let (e, c) = &explained[i];
                let (from, to) = window(c);
                // By overlap, a step delays the request by the part of it inside the window.
                let steps = delaying_steps(view, &e.rid, (from, to), c.sent + off, per, &|st| {
                    overlap(st, from, to)
                });
                SlowRequest {
                    rid: e.rid.clone(),
                    value_ns: key(e),
                    components: e.components,
                    window: window_summary(view, &e.rid, from, to),
                    delaying_steps: steps,
                }
            })
            .collect::<Vec<_>>()
    };
    let slowest_ttft = slowest(&|e| e.ttft_ns, &|c| (c.sent + off, c.first_token + off));
    let slowest_chunk_gap = slowest(&|e| e.largest_chunk_gap_ns, &|c| {
        c.max_chunk_gap()
            .map_or((0, 0), |(_, a, b)| (a + off, b + off))
    });
    let slowest_e2e = slowest(&|e| e.e2e_ns, &|c| (c.sent + off, c.last + off));
    let requests: Vec<RequestExplanation> = explained.into_iter().map(|(e, _)| e).collect();
    let ttft_shares = ttft_shares(&requests);
    ExplainReport {
        attribution: "time overlap".into(),
        alignment,
        server_source,
        requests,
        slowest_ttft,
        slowest_chunk_gap,
        slowest_e2e,
        ttft_shares,
        notes,
    }
}

/// The indices of the `top` largest of `n` values by `key`, largest first.
fn slowest_first(n: usize, top: usize, key: impl Fn(usize) -> i64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(key(i)));
    order.truncate(top);
    order
}

/// The TTFT parts' shares at p50, p90 and p99.
fn ttft_shares(requests: &[RequestExplanation]) -> Vec<PercentileShares> {
    [50.0, 90.0, 99.0]
        .iter()
        .filter_map(|&p| shares_at(requests, p))
        .collect()
}

/// The part of `step` inside `[from, to)`, ns.
fn overlap(step: &Step, from: i64, to: i64) -> i64 {
    (step.end.min(to) - step.start.max(from)).max(0)
}

/// Own work of `rid` in `step`, ns: the step's time times its share of the step's tokens.
fn own_share(step: &Step, rid: &str) -> i64 {
    let tokens = step.tokens();
    if tokens == 0 {
        return 0;
    }
    (step.dur() as f64 * step.tokens_of(rid) as f64 / tokens as f64).round() as i64
}

/// Split one request's latency (see the module docs); `None` when a needed time is missing.
fn decompose(
    c: &ClientRequest,
    s: &ServerRequest,
    view: &ServerView,
    off: i64,
) -> Option<RequestExplanation> {
    let ttft = c.ttft()?;
    let e2e = c.e2e()?;
    if !c.ok || s.created == 0 || s.enqueued == 0 || s.first_token == 0 || s.finished == 0 {
        return None;
    }
    let steps: Vec<&Step> = s.steps.iter().map(|&i| &view.steps[i]).collect();
    let forward_entry = steps.first().map_or(s.first_token, |st| st.start);
    let (mut prefill_own, mut decode_own) = (0, 0);
    for st in &steps {
        if st.start < s.first_token {
            prefill_own += own_share(st, &s.rid);
        } else {
            decode_own += own_share(st, &s.rid);
        }
    }
    let components = Components {
        send: s.created - (c.sent + off),
        admission: s.enqueued - s.created,
        queue_wait: forward_entry - s.enqueued,
        prefill_own,
        prefill_interference: (s.first_token - forward_entry) - prefill_own,
        first_token_delivery: (c.first_token + off) - s.first_token,
        decode_own,
        decode_interference: (s.finished - s.first_token) - decode_own,
        stream_tail: (c.last - c.first_token) - (s.finished - s.first_token),
    };
    Some(RequestExplanation {
        rid: c.rid.clone(),
        ttft_ns: ttft,
        e2e_ns: e2e,
        client_queue_ns: (c.sent - c.scheduled).max(0),
        largest_chunk_gap_ns: c.max_chunk_gap().map_or(0, |g| g.0),
        components,
    })
}

/// The steps overlapping `[from, to)` ranked by how much each delayed `rid` (`delay`), the
/// first `n`.
fn delaying_steps(
    view: &ServerView,
    rid: &str,
    (from, to): (i64, i64),
    sent: i64,
    n: usize,
    delay: &dyn Fn(&Step) -> i64,
) -> Vec<DelayingStep> {
    if to <= from {
        return Vec::new();
    }
    let mut steps: Vec<DelayingStep> = view
        .steps_within(from, to)
        .map(|i| {
            let st = &view.steps[i];
            let holds = st.tokens_of(rid) > 0;
            DelayingStep {
                forward_ct: st.forward_ct,
                mode: st.mode.clone(),
                start_ms: (st.start - sent) as f64 / 1e6,
                dur_ns: st.dur(),
                delay_ns: delay(st),
                holds_request: holds,
                rids: st.rids.clone(),
                extend_lens: st.extend_lens.clone(),
            }
        })
        .collect();
    steps.sort_by_key(|s| std::cmp::Reverse(s.delay_ns));
    steps.truncate(n);
    steps
}

/// The steps overlapping `[from, to)`, counted by whether they held `rid`.
fn window_summary(view: &ServerView, rid: &str, from: i64, to: i64) -> WindowSummary {
    let mut w = WindowSummary::default();
    if to <= from {
        return w;
    }
    for i in view.steps_within(from, to) {
        let st = &view.steps[i];
        w.steps += 1;
        if st.tokens_of(rid) == 0 {
            w.steps_without_request += 1;
            w.time_without_request_ns += st.dur();
            if st.mode != "DECODE" {
                w.prefill_steps_without_request += 1;
            }
        }
    }
    w
}

/// Mean TTFT parts of the requests around percentile `p` (nearest rank, with 2 % of the
/// requests on each side), as shares of their mean TTFT.
fn shares_at(requests: &[RequestExplanation], p: f64) -> Option<PercentileShares> {
    if requests.is_empty() {
        return None;
    }
    let mut order: Vec<&RequestExplanation> = requests.iter().collect();
    order.sort_by_key(|r| r.ttft_ns);
    let n = order.len();
    let k = ((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1;
    let w = n / 50;
    let band = &order[k.saturating_sub(w)..(k + w + 1).min(n)];
    let mean = |f: &dyn Fn(&RequestExplanation) -> i64| {
        band.iter().map(|r| f(r) as f64).sum::<f64>() / band.len() as f64
    };
    let ttft = mean(&|r| r.ttft_ns);
    let shares = Components::default()
        .ttft_parts()
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            let part = mean(&|r| r.components.ttft_parts()[i].1);
            (name.to_string(), if ttft > 0.0 { part / ttft } else { 0.0 })
        })
        .collect();
    Some(PercentileShares {
        percentile: p,
        ttft_ns: ttft.round() as i64,
        requests: band.len(),
        shares,
    })
}

fn ms(ns: i64) -> String {
    format!("{:.2}", ns as f64 / 1e6)
}

/// A batch in a few words: `EXTEND 3 reqs 512 tok [a-0:448, a-3:32, ...]`.
fn describe(step: &DelayingStep) -> String {
    let listed: Vec<String> = step
        .rids
        .iter()
        .zip(&step.extend_lens)
        .take(4)
        .map(|(r, n)| format!("{r}:{n}"))
        .collect();
    let more = step.rids.len().saturating_sub(4);
    format!(
        "{}{} {} reqs {} tok [{}{}]",
        step.mode,
        step.forward_ct
            .map(|f| format!(" #{f}"))
            .unwrap_or_default(),
        step.rids.len(),
        step.extend_lens.iter().sum::<u64>(),
        listed.join(", "),
        if more > 0 {
            format!(", +{more}")
        } else {
            String::new()
        }
    )
}

impl ExplainReport {
    /// Human tables: the TTFT composition at p50/p90/p99, then the slowest requests by each
    /// measure with the step that delayed each most.
    pub fn tables(&self) -> Vec<Table> {
        let mut out = Vec::new();
        let mut t = Table::new(
            "ttft_shares",
            &format!(
                "TTFT composition ({} requests, attributed by {}; client clock {} to the server's by {} ms ± {} ms)",
                self.requests.len(),
                self.attribution,
                if self.alignment.source == "measured" {
                    "mapped"
                } else {
                    "assumed equal"
                },
                ms(self.alignment.offset_ns),
                ms(self.alignment.uncertainty_ns as i64)
            ),
            &["part", "p50", "p90", "p99"],
        );
        let by_overlap = self.attribution == "time overlap";
        let names = Components::default().ttft_parts().map(|p| p.0);
        let mut ttft_row = vec!["TTFT (ms)".to_string()];
        ttft_row.extend(self.ttft_shares.iter().map(|s| ms(s.ttft_ns)));
        t.push(ttft_row);
        for (i, name) in names.iter().enumerate() {
            // By overlap only two parts are known: steps running, and none running.
            let name = match (by_overlap, *name) {
                (false, n) => n,
                (true, "queue_wait") => "no server step running",
                (true, "prefill_interference") => "server steps running",
                (true, _) => continue,
            };
            let mut row = vec![name.to_string()];
            row.extend(
                self.ttft_shares
                    .iter()
                    .map(|s| format!("{:.1}%", 100.0 * s.shares[i].1)),
            );
            t.push(row);
        }
        out.push(t);
        for (name, title, list) in [
            ("slowest_ttft", "Slowest by TTFT", &self.slowest_ttft),
            (
                "slowest_chunk_gap",
                "Slowest by largest gap between chunks",
                &self.slowest_chunk_gap,
            ),
            ("slowest_e2e", "Slowest by E2E latency", &self.slowest_e2e),
        ] {
            let mut t = Table::new(
                name,
                title,
                &[
                    "rid",
                    "ms",
                    "queue",
                    "prefill own",
                    "prefill interf.",
                    "decode interf.",
                    if by_overlap {
                        "steps in window (prefill), ms"
                    } else {
                        "steps without it (prefill), ms"
                    },
                    "most delaying step (ms, batch)",
                ],
            );
            for s in list {
                let c = &s.components;
                t.push(vec![
                    s.rid.clone(),
                    ms(s.value_ns),
                    ms(c.queue_wait),
                    ms(c.prefill_own),
                    ms(c.prefill_interference),
                    ms(c.decode_interference),
                    format!(
                        "{} ({}), {}",
                        s.window.steps_without_request,
                        s.window.prefill_steps_without_request,
                        ms(s.window.time_without_request_ns)
                    ),
                    s.delaying_steps
                        .first()
                        .map(|d| format!("{} {}", ms(d.delay_ns), describe(d)))
                        .unwrap_or_default(),
                ]);
            }
            out.push(t);
        }
        out
    }
}

/// Requests by rid, for tests and callers that look one up.
pub fn by_rid(report: &ExplainReport) -> HashMap<&str, &RequestExplanation> {
    report
        .requests
        .iter()
        .map(|r| (r.rid.as_str(), r))
        .collect()
}
