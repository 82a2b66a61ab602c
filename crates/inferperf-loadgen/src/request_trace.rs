//! The client's side of a run as a Chrome/Kineto trace: one slice per request, on the same
//! kind of time axis as the server's profiler traces, so `trace merge` and Perfetto can put
//! the two on one timeline.
//!
//! Layout:
//! - Top level as torch's `export_chrome_trace` (and our profiler): `schemaVersion`,
//!   `displayTimeUnit`, `baseTimeNanoseconds`, `traceEvents`, `traceName`; `ts`/`dur` in
//!   microseconds (three decimals) after `baseTimeNanoseconds`, which is Unix time. Client
//!   times are monotonic readings mapped to Unix time once per run ([`Clock::unix_ns`]); both
//!   readings of that mapping are in `inferperfRequestTrace.clock`, and the server's clock
//!   offset, when measured, in `inferperfRequestTrace.server_clock`.
//! - One process (`inferperf client`), and one thread per *lane*: a request goes to the lowest
//!   lane free at its scheduled time, so lanes are as many as requests were ever in flight at
//!   once (not one thread per request: 100k threads would stall Perfetto) and every request's
//!   slices nest on one thread, where flow arrows can bind to them.
//! - Per request a `request` slice (scheduled to done) with `args.rid`, and nested phase slices
//!   `queued` (scheduled to sent: pacing and the concurrency limit), `awaiting headers`
//!   (sent to response headers), `awaiting first token` and `streaming` (first to last
//!   chunk); an instant `chunk` per content chunk; a failed request says why in its args.

use std::collections::{BTreeSet, BinaryHeap};
use std::io::{self, Write};
use std::path::Path;

use inferperf_protocol::fs::AtomicWriteError;
use serde::Serialize;

use crate::clock::Clock;
use crate::record::RequestRecord;

/// The server's wall clock relative to ours, estimated NTP-style from probes before and after
/// the run: `offset_ns = server − client`, from the probe with the smallest round trip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ServerClock {
    pub offset_ns: i64,
    /// Half the round trip of the probe used: the offset is within this of the truth.
    pub uncertainty_ns: u64,
    /// Offset after the run minus offset before it (clock drift plus noise).
    pub drift_ns: i64,
    /// Probes that answered.
    pub samples: usize,
}

/// What the trace says about its run besides the requests.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RequestTraceInfo {
    /// The request-id prefix of the run (ids are `{run_tag}-{index}`).
    pub run_tag: String,
    pub backend: String,
    pub base_url: String,
    /// `None` when the server reports no clock (`server_time_ns` in `/server_info`).
    pub server_clock: Option<ServerClock>,
}

/// `displayTimeUnit` etc. are torch's; this key holds ours (and marks a client trace).
pub const INFO_KEY: &str = "inferperfRequestTrace";

/// Write `records` (warm-up requests skipped) as a request trace at `path`, atomically (the
/// directory is created when missing).
pub fn write(
    path: &Path,
    records: &[RequestRecord],
    clock: &Clock,
    info: &RequestTraceInfo,
) -> Result<(), AtomicWriteError> {
    inferperf_protocol::fs::write_atomic_with(path, |file| {
        let mut out = io::BufWriter::with_capacity(1 << 20, file);
        write_to(&mut out, path, records, clock, info)?;
        out.flush()
    })
}

/// Lane of each request (by position in `order`) and the number of lanes.
fn assign_lanes(spans: &[(u64, u64)]) -> (Vec<usize>, usize) {
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by_key(|&i| (spans[i].0, i));
    let mut lanes = vec![0; spans.len()];
    // Busy lanes by end time (min-heap through Reverse), free lanes lowest first.
    let mut busy: BinaryHeap<std::cmp::Reverse<(u64, usize)>> = BinaryHeap::new();
    let mut free: BTreeSet<usize> = BTreeSet::new();
    let mut count = 0;
    for i in order {
        let (start, end) = spans[i];
        while let Some(std::cmp::Reverse((e, lane))) = busy.peek().copied() {
            if e > start {
                break;
            }
            busy.pop();
            free.insert(lane);
        }
        let lane = match free.pop_first() {
            Some(l) => l,
            None => {
                count += 1;
                count - 1
            }
        };
        lanes[i] = lane;
        busy.push(std::cmp::Reverse((end.max(start), lane)));
    }
    (lanes, count)
}

/// When a request's slice ends: its last event.
fn end_of(r: &RequestRecord) -> u64 {
    [
        r.scheduled_ns,
        r.released_ns,
        r.sent_ns,
        r.first_byte_ns,
        r.first_token_ns,
        r.last_ns,
    ]
    .into_iter()
    .chain(r.chunk_ns.last().copied())
    .max()
    .unwrap_or_default()
}

fn write_to(
    out: &mut impl Write,
    path: &Path,
    records: &[RequestRecord],
    clock: &Clock,
    info: &RequestTraceInfo,
) -> io::Result<()> {
    let records: Vec<&RequestRecord> = records.iter().filter(|r| !r.warmup).collect();
    let anchor = clock.unix_ns_at_start();
    // Whole seconds, like Kineto's floored base time; every ts is after it.
    let base = anchor - anchor % 1_000_000_000;
    let offset = anchor - base;
    let pid = std::process::id();
    let spans: Vec<(u64, u64)> = records
        .iter()
        .map(|r| (r.scheduled_ns, end_of(r)))
        .collect();
    let (lanes, lane_count) = assign_lanes(&spans);

    let meta = serde_json::json!({
        "version": 1,
        "kind": "client_requests",
        "clock": {
            "monotonic": "nanoseconds since the run's start instant",
            "monotonic_ns_at_anchor": 0,
            "unix_ns_at_anchor": anchor,
        },
        "run_tag": info.run_tag,
        "backend": info.backend,
        "base_url": info.base_url,
        "server_clock": info.server_clock,
        "requests": records.len(),
        "lanes": lane_count,
    });
    writeln!(out, "{{")?;
    writeln!(out, "  \"schemaVersion\": 1,")?;
    writeln!(out, "  \"displayTimeUnit\": \"ms\",")?;
    writeln!(out, "  \"baseTimeNanoseconds\": {base},")?;
    writeln!(out, "  \"{INFO_KEY}\": {meta},")?;
    writeln!(out, "  \"traceEvents\": [")?;
    let mut first = true;
    let mut sep = |out: &mut dyn Write| -> io::Result<()> {
        if first {
            first = false;
            Ok(())
        } else {
            out.write_all(b",\n")
        }
    };
    sep(out)?;
    write!(
        out,
        "  {{\"name\": \"process_name\", \"ph\": \"M\", \"ts\": 0, \"pid\": {pid}, \"tid\": 0, \"args\": {{\"name\": \"inferperf client\"}}}}"
    )?;
    for lane in 0..lane_count {
        sep(out)?;
        write!(
            out,
            "  {{\"name\": \"thread_name\", \"ph\": \"M\", \"ts\": 0, \"pid\": {pid}, \"tid\": {}, \"args\": {{\"name\": \"requests lane {lane}\"}}}}",
            lane + 1
        )?;
    }
    let us = |ns: u64| {
        let t = ns + offset;
        format!("{}.{:03}", t / 1000, t % 1000)
    };
    let dur = |a: u64, b: u64| {
        let d = b.saturating_sub(a);
        format!("{}.{:03}", d / 1000, d % 1000)
    };
    for (r, &lane) in records.iter().zip(&lanes) {
        let tid = lane + 1;
        let end = end_of(r);
        let mut args = serde_json::json!({
            "rid": r.rid,
            "index": r.index,
            "status": if r.success() { "ok" } else { "failed" },
            "prompt_len": r.prompt_len,
            "output_len": r.output_len,
        });
        if r.turn > 0 {
            args["turn"] = r.turn.into();
        }
        if let Some(e) = &r.error {
            args["error_kind"] = serde_json::to_value(e.kind).unwrap_or_default();
            args["error"] = e.message.clone().into();
        }
        sep(out)?;
        write!(
            out,
            "  {{\"ph\": \"X\", \"cat\": \"client_request\", \"name\": \"request\", \"pid\": {pid}, \"tid\": {tid}, \"ts\": {}, \"dur\": {}, \"args\": {args}}}",
            us(r.scheduled_ns),
            dur(r.scheduled_ns, end)
        )?;
        let phases = [
            ("queued", r.scheduled_ns, r.sent_ns),
            ("awaiting headers", r.sent_ns, r.first_byte_ns),
            ("awaiting first token", r.first_byte_ns, r.first_token_ns),
            ("streaming", r.first_token_ns, r.last_ns),
        ];
        for (name, a, b) in phases {
            if a == 0 || b == 0 || b < a {
                continue;
            }
            sep(out)?;
            write!(
                out,
                "  {{\"ph\": \"X\", \"cat\": \"client_phase\", \"name\": \"{name}\", \"pid\": {pid}, \"tid\": {tid}, \"ts\": {}, \"dur\": {}, \"args\": {{\"rid\": {}}}}}",
                us(a),
                dur(a, b),
                serde_json::Value::from(r.rid.as_str())
            )?;
        }
        for (k, &t) in r.chunk_ns.iter().enumerate() {
            sep(out)?;
            match r.chunk_tokens.get(k) {
                Some(n) => write!(
                    out,
                    "  {{\"ph\": \"i\", \"s\": \"t\", \"cat\": \"client_chunk\", \"name\": \"chunk\", \"pid\": {pid}, \"tid\": {tid}, \"ts\": {}, \"args\": {{\"tokens\": {n}}}}}",
                    us(t)
                )?,
                None => write!(
                    out,
                    "  {{\"ph\": \"i\", \"s\": \"t\", \"cat\": \"client_chunk\", \"name\": \"chunk\", \"pid\": {pid}, \"tid\": {tid}, \"ts\": {}}}",
                    us(t)
                )?,
            }
        }
    }
    writeln!(out, "\n  ],")?;
    writeln!(
        out,
        "  \"traceName\": {}",
        serde_json::Value::from(path.to_string_lossy().as_ref())
    )?;
    writeln!(out, "}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_hold_no_two_overlapping_requests_and_are_reused() {
        let spans = vec![(0, 10), (5, 20), (10, 30), (25, 26), (40, 50)];
        let (lanes, count) = assign_lanes(&spans);
        assert_eq!(count, 2);
        for i in 0..spans.len() {
            for j in 0..i {
                if lanes[i] == lanes[j] {
                    let (a, b) = (spans[i], spans[j]);
                    assert!(a.1 <= b.0 || b.1 <= a.0, "{a:?} and {b:?} share lane");
                }
            }
        }
        // The last request starts when everything is done: lane 0 again.
        assert_eq!(lanes[4], 0);
    }
}
