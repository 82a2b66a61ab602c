//! Kineto-compatible Chrome trace JSON, written event by event.
//!
//! Layout follows torch's `export_chrome_trace`: top-level `schemaVersion`, `deviceProperties`,
//! `distributedInfo`, `displayTimeUnit`, `baseTimeNanoseconds`, `traceEvents`, `traceName`;
//! `ts`/`dur` in microseconds with three decimals (nanosecond precision) relative to
//! `baseTimeNanoseconds`; one event per line.
//!
//! Two details matter to HTA: `distributedInfo` comes before `traceEvents` and is written as
//! `"rank": N` **with a space** (HTA finds a file's rank with the regex `"rank":\s+(\d+)`, so
//! compact serde output would make every file rank 0), and iterations are `ProfilerStep#N`.
//!
//! Request tracks are nestable async events (`ph` `b`, `n`, `e`, `cat: "request"`, `id` a hex
//! string). Every file is balanced on its own: a track whose `b` fell outside the file's window
//! gets one at its first event, and a track still open at the end gets its `e` at the file's
//! last timestamp (with `args.unfinished: true`), so Perfetto never sees a dangling slice.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, Write};

use crate::event::{Event, Kind, TraceClock};
use crate::naming::RankInfo;

/// Per-file facts that are not events.
#[derive(Clone, Debug)]
pub(crate) struct TraceMeta {
    pub rank: RankInfo,
    pub pid: u32,
    /// OS thread id of the engine (scheduler) thread.
    pub tid: u64,
    /// `process_name` metadata, e.g. `inferperf::scheduler`.
    pub process_name: String,
    /// `thread_name` metadata.
    pub thread_name: String,
    /// `traceName`: the final path of the file.
    pub trace_name: String,
    pub profile_id: String,
    pub with_stack: bool,
    pub record_shapes: bool,
    pub profile_memory: bool,
}

fn write_us(out: &mut impl Write, ns: i128) -> io::Result<()> {
    let sign = if ns < 0 { "-" } else { "" };
    let abs = ns.unsigned_abs();
    write!(out, "{sign}{}.{:03}", abs / 1000, abs % 1000)
}

fn write_json_str(out: &mut impl Write, s: &str) -> io::Result<()> {
    serde_json::to_writer(&mut *out, s).map_err(io::Error::other)
}

fn write_metadata(
    out: &mut impl Write,
    name: &str,
    meta: &TraceMeta,
    tid: u64,
    ts_ns: i128,
    args: serde_json::Value,
) -> io::Result<()> {
    write!(out, "{{\"name\": \"{name}\", \"ph\": \"M\", \"ts\": ")?;
    write_us(out, ts_ns)?;
    write!(out, ", \"pid\": {}, \"tid\": {tid}, \"args\": ", meta.pid)?;
    serde_json::to_writer(&mut *out, &args).map_err(io::Error::other)?;
    out.write_all(b"}")
}

fn write_event(
    out: &mut impl Write,
    meta: &TraceMeta,
    e: &Event,
    clock: &TraceClock,
) -> io::Result<()> {
    let ph = match e.kind {
        Kind::Complete => "X",
        Kind::Counter => "C",
        Kind::Instant => "i",
        Kind::AsyncBegin(_) => "b",
        Kind::AsyncInstant(_) => "n",
        Kind::AsyncEnd(_) => "e",
    };
    write!(
        out,
        "{{\"ph\": \"{ph}\", \"cat\": \"{}\", \"name\": ",
        e.cat
    )?;
    write_json_str(out, &e.name)?;
    write!(
        out,
        ", \"pid\": {}, \"tid\": {}, \"ts\": ",
        meta.pid, meta.tid
    )?;
    write_us(out, clock.rel_ns(e.start))?;
    match e.kind {
        Kind::Complete => {
            out.write_all(b", \"dur\": ")?;
            write_us(out, e.dur.as_nanos() as i128)?;
        }
        Kind::Instant => out.write_all(b", \"s\": \"t\"")?,
        Kind::Counter => {}
        Kind::AsyncBegin(id) | Kind::AsyncInstant(id) | Kind::AsyncEnd(id) => {
            write!(out, ", \"id\": \"0x{id:016x}\"")?;
        }
    }
    if let Some(args) = &e.args {
        out.write_all(b", \"args\": ")?;
        serde_json::to_writer(&mut *out, args).map_err(io::Error::other)?;
    }
    out.write_all(b"}")
}

/// `events` with every request track balanced: a missing `b` is added at the track's first
/// event, a missing `e` at the last timestamp of the file. Borrowed when nothing is missing.
fn balance_async(events: &[Event]) -> Cow<'_, [Event]> {
    // Per track: (index of its first event, has a b, has an e).
    let mut tracks: HashMap<u64, (usize, bool, bool)> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        if let Some(id) = e.kind.async_id() {
            let t = tracks.entry(id).or_insert((i, false, false));
            match e.kind {
                Kind::AsyncBegin(_) => t.1 = true,
                Kind::AsyncEnd(_) => t.2 = true,
                _ => {}
            }
        }
    }
    if tracks.values().all(|&(_, b, e)| b && e) {
        return Cow::Borrowed(events);
    }
    let last = events.iter().map(|e| e.start + e.dur).max();
    let mut out = Vec::with_capacity(events.len() + tracks.len());
    let mut missing_begin: HashMap<usize, u64> = tracks
        .iter()
        .filter(|(_, t)| !t.1)
        .map(|(&id, t)| (t.0, id))
        .collect();
    for (i, e) in events.iter().enumerate() {
        if let Some(id) = missing_begin.remove(&i) {
            out.push(Event {
                name: track_name(e),
                cat: e.cat,
                kind: Kind::AsyncBegin(id),
                start: e.start,
                dur: std::time::Duration::ZERO,
                args: Some(rid_args(e)),
            });
        }
        out.push(e.clone());
    }
    let mut open: Vec<(usize, u64)> = tracks
        .iter()
        .filter(|(_, t)| !t.2)
        .map(|(&id, t)| (t.0, id))
        .collect();
    open.sort_unstable();
    for (first, id) in open {
        let (Some(e), Some(at)) = (events.get(first), last) else {
            continue;
        };
        let mut args = rid_args(e);
        args.insert("unfinished".into(), true.into());
        out.push(Event {
            name: track_name(e),
            cat: e.cat,
            kind: Kind::AsyncEnd(id),
            start: at,
            dur: std::time::Duration::ZERO,
            args: Some(args),
        });
    }
    Cow::Owned(out)
}

/// The slice name of the track `e` is on: its rid (`args.rid`), else `request`.
fn track_name(e: &Event) -> Cow<'static, str> {
    match e
        .args
        .as_ref()
        .and_then(|a| a.get("rid"))
        .and_then(|r| r.as_str())
    {
        Some(rid) => Cow::Owned(rid.to_string()),
        None => Cow::Borrowed("request"),
    }
}

/// `{"rid": …}` of the track `e` is on (empty if it has none).
fn rid_args(e: &Event) -> serde_json::Map<String, serde_json::Value> {
    let mut args = serde_json::Map::new();
    if let Some(rid) = e.args.as_ref().and_then(|a| a.get("rid")) {
        args.insert("rid".into(), rid.clone());
    }
    args
}

/// Write one complete trace document.
pub(crate) fn write_trace(
    out: &mut impl Write,
    meta: &TraceMeta,
    events: &[Event],
) -> io::Result<()> {
    let events = balance_async(events);
    let events = events.as_ref();
    let clock = TraceClock::global();
    let flag = |b: bool| if b { 1 } else { 0 };
    writeln!(out, "{{")?;
    writeln!(out, "  \"schemaVersion\": 1,")?;
    writeln!(out, "  \"deviceProperties\": [],")?;
    writeln!(
        out,
        "  \"distributedInfo\": {{\"backend\": \"none\", \"rank\": {}, \"world_size\": {}}},",
        meta.rank.global_rank(),
        meta.rank.world_size()
    )?;
    writeln!(out, "  \"record_shapes\": {},", flag(meta.record_shapes))?;
    writeln!(out, "  \"with_stack\": {},", flag(meta.with_stack))?;
    writeln!(out, "  \"profile_memory\": {},", flag(meta.profile_memory))?;
    write!(out, "  \"trace_id\": ")?;
    write_json_str(out, &meta.profile_id)?;
    writeln!(out, ",")?;
    writeln!(out, "  \"displayTimeUnit\": \"ms\",")?;
    writeln!(out, "  \"baseTimeNanoseconds\": {},", clock.base_ns())?;
    writeln!(out, "  \"traceEvents\": [")?;
    let first_ts = events
        .iter()
        .map(|e| clock.rel_ns(e.start))
        .min()
        .unwrap_or(0);
    let label = meta.rank.label();
    let metas = [
        (
            "process_name",
            0,
            serde_json::json!({ "name": meta.process_name }),
        ),
        (
            "process_labels",
            0,
            serde_json::json!({ "labels": format!("CPU [{label}]") }),
        ),
        (
            "process_sort_index",
            0,
            serde_json::json!({ "sort_index": meta.rank.global_rank() }),
        ),
        (
            "thread_name",
            meta.tid,
            serde_json::json!({ "name": meta.thread_name }),
        ),
        (
            "thread_sort_index",
            meta.tid,
            serde_json::json!({ "sort_index": meta.tid }),
        ),
    ];
    for (i, (name, tid, args)) in metas.into_iter().enumerate() {
        if i > 0 {
            out.write_all(b",\n")?;
        }
        out.write_all(b"  ")?;
        write_metadata(out, name, meta, tid, first_ts, args)?;
    }
    for e in events {
        out.write_all(b",\n  ")?;
        write_event(out, meta, e, clock)?;
    }
    writeln!(out, "\n  ],")?;
    write!(out, "  \"traceName\": ")?;
    write_json_str(out, &meta.trace_name)?;
    writeln!(out, "\n}}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;
    use std::time::{Duration, Instant};

    fn meta() -> TraceMeta {
        TraceMeta {
            rank: RankInfo::tp(1, 2),
            pid: 42,
            tid: 7,
            process_name: "inferperf::scheduler".into(),
            thread_name: "thread 7 (scheduler TP01)".into(),
            trace_name: "/tmp/x.trace.json.gz".into(),
            profile_id: "1.5".into(),
            with_stack: true,
            record_shapes: false,
            profile_memory: false,
        }
    }

    #[test]
    fn document_shape() {
        let t0 = Instant::now();
        let mut args = serde_json::Map::new();
        args.insert("used".into(), 3.into());
        let events = vec![
            Event {
                name: Cow::Borrowed("ProfilerStep#3"),
                cat: crate::event::cat::USER_ANNOTATION,
                kind: Kind::Complete,
                start: t0,
                dur: Duration::from_nanos(1_234_567),
                args: None,
            },
            Event {
                name: Cow::Owned("kv \"cache\"".into()),
                cat: crate::event::cat::USER_ANNOTATION,
                kind: Kind::Counter,
                start: t0 + Duration::from_nanos(5),
                dur: Duration::ZERO,
                args: Some(args),
            },
        ];
        let mut buf = Vec::new();
        write_trace(&mut buf, &meta(), &events).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.contains(
            "\"distributedInfo\": {\"backend\": \"none\", \"rank\": 1, \"world_size\": 2}"
        ));
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        for key in [
            "schemaVersion",
            "deviceProperties",
            "distributedInfo",
            "displayTimeUnit",
            "traceName",
            "baseTimeNanoseconds",
        ] {
            assert!(doc.get(key).is_some(), "{key}");
        }
        let evs = doc["traceEvents"].as_array().unwrap();
        assert_eq!(evs.len(), 7);
        assert_eq!(evs.iter().filter(|e| e["ph"] == "M").count(), 5);
        let step = &evs[5];
        assert_eq!(step["ph"], "X");
        assert_eq!(step["name"], "ProfilerStep#3");
        assert_eq!(step["dur"].as_f64().unwrap(), 1234.567);
        assert_eq!(step["pid"], 42);
        assert_eq!(step["tid"], 7);
        let counter = &evs[6];
        assert_eq!(counter["ph"], "C");
        assert_eq!(counter["name"], "kv \"cache\"");
        assert_eq!(counter["args"]["used"], 3);
        let dt = counter["ts"].as_f64().unwrap() - step["ts"].as_f64().unwrap();
        // f64 microseconds at ~1e12 keep about 1 ns of precision (the same as Kineto).
        assert!((dt - 0.005).abs() < 0.002, "{dt}");
    }

    #[test]
    fn request_tracks_are_balanced_per_file() {
        let t0 = Instant::now();
        let ev = |name: &'static str, kind: Kind, ms: u64, rid: &str| Event {
            name: Cow::Borrowed(name),
            cat: crate::event::cat::REQUEST,
            kind,
            start: t0 + Duration::from_millis(ms),
            dur: Duration::ZERO,
            args: Some(
                [("rid".to_string(), serde_json::Value::from(rid))]
                    .into_iter()
                    .collect(),
            ),
        };
        // `a` began before this window (no b); `b` is still running at its end (no e).
        let events = vec![
            ev("first_token", Kind::AsyncInstant(1), 1, "a"),
            ev("a", Kind::AsyncEnd(1), 2, "a"),
            ev("b", Kind::AsyncBegin(2), 3, "b"),
            ev("tokenized", Kind::AsyncInstant(2), 4, "b"),
        ];
        let mut buf = Vec::new();
        write_trace(&mut buf, &meta(), &events).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        let evs: Vec<&serde_json::Value> = doc["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["cat"] == "request")
            .collect();
        let phases: Vec<(&str, &str, &str)> = evs
            .iter()
            .map(|e| {
                (
                    e["ph"].as_str().unwrap(),
                    e["name"].as_str().unwrap(),
                    e["id"].as_str().unwrap(),
                )
            })
            .collect();
        let a = "0x0000000000000001";
        let b = "0x0000000000000002";
        assert_eq!(
            phases,
            vec![
                ("b", "a", a),
                ("n", "first_token", a),
                ("e", "a", a),
                ("b", "b", b),
                ("n", "tokenized", b),
                ("e", "b", b),
            ]
        );
        assert_eq!(evs[5]["args"]["unfinished"], true);
        assert_eq!(evs[5]["args"]["rid"], "b");
        assert!(evs[5]["ts"].as_f64().unwrap() >= evs[4]["ts"].as_f64().unwrap());
    }

    #[test]
    fn microseconds_formatting() {
        let mut b = Vec::new();
        write_us(&mut b, 1_234_005).unwrap();
        b.push(b' ');
        write_us(&mut b, -1_500).unwrap();
        assert_eq!(String::from_utf8(b).unwrap(), "1234.005 -1.500");
    }
}
