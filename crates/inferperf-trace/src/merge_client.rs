//! The client side of `trace merge --client FILE`: a client request trace (docs/trace-conventions.md,
//! "Client request traces") becomes one more process of the merged file, on the server's clock,
//! with a flow arrow from each client `request` slice to the server `step[...]` spans that hold
//! its rid ("Merged timelines").
//!
//! Memory stays bounded while streaming: during the rank pass, each rid keeps its first step,
//! its prefill steps (`extend_lens` > 1: prompt chunks) and its last step -- never every decode
//! step; during the client pass, one request at a time is pending. Flow events are written right
//! after their request's events, i.e. after every rank's events.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::event::{Id, Nanos};
use crate::merge::{ID_STRIDE, PID_STRIDE};
use crate::reader::TraceReader;
use crate::TraceError;

/// The key of a client request trace's description.
pub use crate::explain::client::INFO_KEY as CLIENT_INFO_KEY;
/// `cat` of the flow events linking client requests to server steps.
pub const FLOW_CAT: &str = "inferperf_request_flow";
/// `name` of those flow events.
pub const FLOW_NAME: &str = "request";

/// How the client's clock was put on the server's.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClientAlignment {
    /// `server_clock`: shifted by the offset the client measured; `none`: no offset known, the
    /// client and the server are assumed to share one wall clock (same host).
    pub source: String,
    /// Added to every client time (server minus client), ns.
    pub offset_ns: i64,
    /// Half the round trip of the probe the offset came from, ns (`None`: not measured).
    pub uncertainty_ns: Option<u64>,
    /// Offset after the run minus before, ns (`None`: not measured).
    pub drift_ns: Option<i64>,
    /// Probes behind the offset.
    pub samples: usize,
    /// In words.
    pub note: String,
}

/// What `--client` did.
#[derive(Debug, Clone, Serialize)]
pub struct ClientReport {
    /// The client request trace.
    pub file: PathBuf,
    /// Its `inferperfRequestTrace.run_tag`.
    pub run_tag: String,
    /// Its process name in the merged file.
    pub process: String,
    /// Pid range of its process(es) (pid = `pid_offset` + its own pid).
    pub pid_offset: i64,
    /// Clock alignment.
    pub alignment: ClientAlignment,
    /// Events read from the client trace.
    pub events_in: u64,
    /// Client `request` slices.
    pub requests: u64,
    /// Requests with at least one flow arrow to a server step.
    pub linked: u64,
    /// Requests whose rid is in no server step span.
    pub unmatched: u64,
    /// Flow events written (`s`, `t`, `f`).
    pub flow_events: u64,
    /// Server step spans that carry rids (first rank that ran each rid).
    pub server_rids: u64,
}

/// A client request trace checked before merging.
pub(crate) struct ClientPlan {
    pub path: PathBuf,
    pub run_tag: String,
    pub base_ns: i64,
    pub alignment: ClientAlignment,
}

impl ClientPlan {
    /// Reads and checks the client trace's description: it must be a client request trace with
    /// a wall-clock anchor and a Unix `baseTimeNanoseconds`.
    pub fn open(path: &Path) -> Result<ClientPlan, TraceError> {
        let mut reader = TraceReader::open(path)?;
        if reader.meta(CLIENT_INFO_KEY).is_none()
            && reader.metadata_before_events() == reader.metadata().len()
        {
            reader.skip_events()?;
        }
        let header = crate::explain::client::read_header(&reader, path).map_err(|e| match e {
            TraceError::Format { path, message } => TraceError::Format {
                path,
                message: format!("--client: {message}"),
            },
            other => other,
        })?;
        let base_ns = header.base_ns;
        let alignment = match header.server_clock {
            Some(m) => ClientAlignment {
                source: "server_clock".into(),
                offset_ns: m.offset_ns,
                uncertainty_ns: Some(m.uncertainty_ns),
                drift_ns: Some(m.drift_ns),
                samples: m.samples,
                note: format!(
                    "client times shifted by the offset the client measured ({} ns, ±{} ns, drift {} ns over the run, {} probes)",
                    m.offset_ns, m.uncertainty_ns, m.drift_ns, m.samples
                ),
            },
            None => ClientAlignment {
                source: "none".into(),
                offset_ns: 0,
                uncertainty_ns: None,
                drift_ns: None,
                samples: 0,
                note: "no server clock offset in the client trace (server_clock: null): \
                       client and server assumed to share one host clock; no correction applied"
                    .into(),
            },
        };
        Ok(ClientPlan {
            path: path.to_path_buf(),
            run_tag: header.run_tag,
            base_ns,
            alignment,
        })
    }

    /// The client's base time on the server's clock.
    pub fn aligned_base_ns(&self) -> i64 {
        self.base_ns + self.alignment.offset_ns
    }

    /// The client's process name in the merged file.
    pub fn process_name(&self) -> String {
        if self.run_tag.is_empty() {
            "client".into()
        } else {
            format!("client ({})", self.run_tag)
        }
    }
}

/// One server step span, as written in the merged file.
#[derive(Clone, Copy, Debug, PartialEq)]
struct StepRef {
    pid: i64,
    /// Index of the `tid` JSON (as written) in `StepLinks::tids`.
    tid: u32,
    ts_ns: i64,
    dur_ns: i64,
}

struct RidSteps {
    rank: usize,
    first: StepRef,
    /// Steps where the rid computed more than one token (prompt chunks), in file order.
    prefill: Vec<StepRef>,
    last: StepRef,
}

#[derive(Deserialize)]
struct StepEvent<'a> {
    #[serde(default, borrow)]
    ph: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    name: std::borrow::Cow<'a, str>,
    ts: Option<Nanos>,
    dur: Option<Nanos>,
    #[serde(borrow)]
    pid: Option<Id<'a>>,
    #[serde(borrow)]
    tid: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    args: Option<StepArgs<'a>>,
}

#[derive(Deserialize)]
struct StepArgs<'a> {
    #[serde(default, borrow)]
    rids: Vec<RidStr<'a>>,
    #[serde(default)]
    extend_lens: Vec<i64>,
    #[serde(default, borrow)]
    forward_mode: std::borrow::Cow<'a, str>,
}

/// The key of the `rids` array whose key `"rids"` starts at `at`: its length and the FNV-1a
/// [`list_hash`] of its bytes as written; `None` when what follows is not `: [...]` (then the event is
/// parsed as usual).
fn rids_list_key(raw: &[u8], at: usize) -> Option<(usize, u64)> {
    let i = crate::fastscan::skip_ws(raw, at + b"\"rids\"".len());
    if raw.get(i) != Some(&b':') {
        return None;
    }
    let start = crate::fastscan::skip_ws(raw, i + 1);
    if raw.get(start) != Some(&b'[') {
        return None;
    }
    let end = array_of_strings_end(raw, start)?;
    let bytes = &raw[start..end];
    Some((bytes.len(), list_hash(bytes)))
}

/// End of the array at `start` read as an array of strings: the first `]` outside a string.
/// Not a validation -- a list whose full parse fails is never recorded, so a malformed list
/// can only match nothing -- but two to three times quicker than one, and run on every step
/// of every rank.
fn array_of_strings_end(raw: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        i += memchr::memchr2(b'"', b']', raw.get(i..)?)?;
        if raw[i] == b']' {
            return Some(i + 1);
        }
        // Inside a string: to its closing quote, past escaped characters.
        i += 1;
        loop {
            i += memchr::memchr2(b'"', b'\\', raw.get(i..)?)?;
            if raw[i] == b'"' {
                i += 1;
                break;
            }
            i += 2;
        }
    }
}

/// A fast non-cryptographic hash of a rid list's bytes, eight bytes a step (FxHash's
/// rotate-xor-multiply): lists are hashed once per step per rank, where a byte-at-a-time
/// hash cost a tenth of the join.
fn list_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let mut h: u64 = 0;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    let mut w = [0u8; 8];
    w[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K)
}

/// A rid borrowed from the event's bytes when it has no escapes (serde's `borrow` does not
/// reach inside a `Vec<Cow<str>>`: every rid would be a fresh `String`, one allocation per
/// rid per step per rank -- most of the cost of joining a client trace).
struct RidStr<'a>(std::borrow::Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for RidStr<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = RidStr<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a request id string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(RidStr(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RidStr(std::borrow::Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(Visit(std::marker::PhantomData))
    }
}

/// What the scanner tells of a rank event before [`StepLinks::observe`] looks at it.
pub(crate) enum StepHint {
    /// Not a step span with args: nothing to link (most events).
    NotStep,
    /// Maybe a step span; its `args` value is at this range of the event.
    Args(std::ops::Range<usize>),
    /// Not scanned: the event itself is searched.
    Unknown,
}

/// The [`StepHint`] of a scanned event from its members: its `name` must start with `step[`
/// (as written, without escapes) and it must have `args`. Looking at members costs nothing next
/// to searching every event's bytes for `"rids"`.
pub(crate) fn step_hint(raw: &[u8], members: &[crate::fastscan::Member]) -> StepHint {
    let (mut name, mut args) = (None, None);
    for m in members {
        match m.key(raw) {
            b"name" if name.is_none() => name = Some(m.value(raw)),
            b"args" if args.is_none() => args = Some(m.val_start..m.val_end),
            _ => {}
        }
    }
    match (name, args) {
        (Some(n), Some(r)) if n.starts_with(b"\"step[") => StepHint::Args(r),
        _ => StepHint::NotStep,
    }
}

/// Server steps by rid, recorded during the rank pass.
pub(crate) struct StepLinks {
    finder: memchr::memmem::Finder<'static>,
    /// FNV: request ids are short strings looked up once per rid per step per rank, where
    /// SipHash's DoS resistance buys nothing and costs a tenth of the join.
    by_rid: fnv::FnvHashMap<Box<str>, RidSteps>,
    /// The `tid`s of step spans (JSON as written), interned.
    tids: Vec<Box<str>>,
    tid_index: HashMap<Box<str>, u32>,
    /// Rid lists already linked, by (length, 64-bit hash of their bytes), with the first
    /// rank that ran them. 16 bytes a distinct list; a collision (two different lists of one
    /// length with one hash) would drop one step's links on a later rank, never link a wrong
    /// step.
    lists: fnv::FnvHashMap<(usize, u64), usize>,
    /// Step spans with rids seen.
    pub steps: u64,
}

impl StepLinks {
    pub fn new() -> Self {
        StepLinks {
            finder: memchr::memmem::Finder::new(b"\"rids\""),
            by_rid: fnv::FnvHashMap::default(),
            tids: Vec::new(),
            tid_index: HashMap::new(),
            lists: fnv::FnvHashMap::default(),
            steps: 0,
        }
    }

    /// Looks at one rank event (as read; `hint` from [`step_hint`]; `map_pid` gives its merged
    /// pid, `shift_ns` moves its time onto the merged clock). Only `X` spans named `step[...]`
    /// with `args.rids` count; an event that does not parse as one is none.
    pub fn observe(
        &mut self,
        raw: &[u8],
        hint: StepHint,
        rank: usize,
        shift_ns: i64,
        map_pid: impl FnOnce(&Id<'_>) -> i64,
    ) {
        // TP ranks run the same batches: a step whose args (or, unscanned, whose rid list) an
        // earlier rank already had, byte for byte, links nothing new (each of its rids
        // belongs to that rank), so it is counted and skipped without being parsed.
        let list = match hint {
            StepHint::NotStep => return,
            StepHint::Args(r) => raw.get(r).map(|a| (a.len(), list_hash(a))),
            StepHint::Unknown => match self.finder.find(raw) {
                Some(at) => rids_list_key(raw, at),
                None => return,
            },
        };
        if let Some(key) = list {
            if self.lists.get(&key).is_some_and(|&first| first < rank) {
                self.steps += 1;
                return;
            }
        }
        let Ok(e) = serde_json::from_slice::<StepEvent<'_>>(raw) else {
            return;
        };
        let (Some(args), Some(ts)) = (e.args, e.ts) else {
            return;
        };
        if e.ph != "X" || !e.name.starts_with("step[") || args.rids.is_empty() {
            return;
        }
        let pid = match &e.pid {
            Some(p) => map_pid(p),
            None => return,
        };
        let tid_json = e.tid.map(|t| t.get()).unwrap_or("0");
        let tid = match self.tid_index.get(tid_json) {
            Some(&i) => i,
            None => {
                let i = self.tids.len() as u32;
                self.tids.push(tid_json.into());
                self.tid_index.insert(tid_json.into(), i);
                i
            }
        };
        let step = StepRef {
            pid,
            tid,
            ts_ns: ts.0 + shift_ns,
            dur_ns: e.dur.map(|d| d.0).unwrap_or(0).max(0),
        };
        self.steps += 1;
        if let Some(key) = list {
            self.lists.entry(key).or_insert(rank);
        }
        for (i, rid) in args.rids.iter().enumerate() {
            // Without extend_lens, a non-decode step is taken as prefill for all its rows.
            let prefill = match args.extend_lens.get(i) {
                Some(&n) => n > 1,
                None => args.forward_mode != "DECODE",
            };
            let rid = rid.0.as_ref();
            match self.by_rid.get_mut(rid) {
                None => {
                    self.by_rid.insert(
                        rid.into(),
                        RidSteps {
                            rank,
                            first: step,
                            prefill: if prefill { vec![step] } else { Vec::new() },
                            last: step,
                        },
                    );
                }
                // Flows go to the first rank (in merged order) that ran the rid: in TP, the
                // group's lowest rank; its other ranks hold the same steps.
                Some(r) if r.rank != rank => {}
                Some(r) => {
                    if step.ts_ns < r.first.ts_ns {
                        r.first = step;
                    }
                    if step.ts_ns >= r.last.ts_ns {
                        r.last = step;
                    }
                    if prefill {
                        r.prefill.push(step);
                    }
                }
            }
        }
    }

    /// Rids with steps.
    pub fn rids(&self) -> usize {
        self.by_rid.len()
    }

    /// The steps `rid` links to, in time order: first, prefill, last (deduplicated).
    fn targets(&self, rid: &str) -> Option<Vec<&StepRef>> {
        let r = self.by_rid.get(rid)?;
        let mut v: Vec<&StepRef> = std::iter::once(&r.first)
            .chain(r.prefill.iter())
            .chain(std::iter::once(&r.last))
            .collect();
        v.sort_by_key(|s| s.ts_ns);
        v.dedup_by(|a, b| a == b);
        Some(v)
    }
}

/// Where a flow binds in a slice: just inside its start (1 µs, or half of a shorter slice), so
/// that the viewer finds the slice open at that time.
fn bind_ts(start: i64, dur: i64) -> i64 {
    start + (dur / 2).min(1000)
}

/// A client request waiting for its phases before its flow is written.
pub(crate) struct PendingRequest {
    pub rid: String,
    pub pid: i64,
    pub tid: String,
    pub ts_ns: i64,
    pub dur_ns: i64,
    /// The `awaiting headers` phase (sent to response headers): (start, dur).
    pub sent: Option<(i64, i64)>,
}

/// Flow ids of the client: a range no rank uses (ranks use `index * ID_STRIDE + id`, the
/// client's own ids `ranks * ID_STRIDE + id`).
pub(crate) fn flow_id_base(ranks: usize) -> i64 {
    (ranks as i64 + 1) * ID_STRIDE
}

/// The client's pid range.
pub(crate) fn pid_base(ranks: usize) -> i64 {
    ranks as i64 * PID_STRIDE
}

/// Writes the flow events of `req` (none if its rid has no steps); returns how many.
pub(crate) fn flow_events(
    links: &StepLinks,
    req: &PendingRequest,
    id: i64,
    out: &mut FlowBuffer,
) -> usize {
    let Some(targets) = links.targets(&req.rid) else {
        return 0;
    };
    // Bytes written directly (no formatting machinery): 400k flow events for 100k requests.
    let mut rid = Vec::with_capacity(req.rid.len() + 2);
    crate::object::write_json_string(&mut rid, &req.rid);
    let (start, dur) = req.sent.unwrap_or((req.ts_ns, req.dur_ns));
    out.event(
        "s",
        false,
        id,
        req.pid,
        req.tid.as_bytes(),
        bind_ts(start, dur),
        &rid,
    );
    let n = targets.len();
    for (i, s) in targets.iter().enumerate() {
        let tid = links.tids.get(s.tid as usize).map_or("0", |t| t);
        let ph = if i + 1 == n { "f" } else { "t" };
        out.event(
            ph,
            true,
            id,
            s.pid,
            tid.as_bytes(),
            bind_ts(s.ts_ns, s.dur_ns),
            &rid,
        );
    }
    n + 1
}

/// One request's flow events, written into one reused buffer (no allocation per event).
#[derive(Default)]
pub(crate) struct FlowBuffer {
    text: Vec<u8>,
    ends: Vec<usize>,
}

impl FlowBuffer {
    pub fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }

    /// Appends one flow event; `ts_ns` is after the merged base (written in µs, an integer
    /// when whole), `rid_json` the rid as a JSON string, `enclosing`: binds to the enclosing
    /// slice (`bp` `e`).
    #[allow(clippy::too_many_arguments)]
    fn event(
        &mut self,
        ph: &str,
        enclosing: bool,
        id: i64,
        pid: i64,
        tid_json: &[u8],
        ts_ns: i64,
        rid_json: &[u8],
    ) {
        let t = &mut self.text;
        let mut num = itoa::Buffer::new();
        t.extend_from_slice(b"{\"ph\":\"");
        t.extend_from_slice(ph.as_bytes());
        t.extend_from_slice(if enclosing { b"\",\"bp\":\"e\"" } else { b"\"" });
        t.extend_from_slice(b",\"cat\":\"");
        t.extend_from_slice(FLOW_CAT.as_bytes());
        t.extend_from_slice(b"\",\"name\":\"");
        t.extend_from_slice(FLOW_NAME.as_bytes());
        t.extend_from_slice(b"\",\"id\":");
        t.extend_from_slice(num.format(id).as_bytes());
        t.extend_from_slice(b",\"pid\":");
        t.extend_from_slice(num.format(pid).as_bytes());
        t.extend_from_slice(b",\"tid\":");
        t.extend_from_slice(tid_json);
        t.extend_from_slice(b",\"ts\":");
        crate::micros::write_us_compact(ts_ns, true, t);
        t.extend_from_slice(b",\"args\":{\"rid\":");
        t.extend_from_slice(rid_json);
        t.extend_from_slice(b"}}");
        self.ends.push(t.len());
    }

    /// The events, in order.
    pub fn events(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let e = &self.text[start..end];
            start = end;
            e
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rids are read without copying when they can be, and still read when they hold escapes;
    /// a step on a later rank does not take a rid the first rank already ran.
    #[test]
    fn step_rids_link_plain_and_escaped_ids() {
        let mut links = StepLinks::new();
        let step = br#"{"ph":"X","name":"step[3]","pid":1,"tid":1,"ts":10,"dur":5,"args":{"forward_mode":"EXTEND","rids":["run-1","a\"b"],"extend_lens":[16,1]}}"#;
        links.observe(step, StepHint::Unknown, 0, 0, |_| 7);
        let later = br#"{"ph":"X","name":"step[3]","pid":2,"tid":1,"ts":11,"dur":5,"args":{"forward_mode":"DECODE","rids":["run-1"],"extend_lens":[1]}}"#;
        links.observe(later, StepHint::Unknown, 1, 0, |_| 8);
        // The same batch on another TP rank: counted, not parsed, links nothing new.
        let same = br#"{"ph":"X","name":"step[3]","pid":3,"tid":1,"ts":10,"dur":5,"args":{"forward_mode":"EXTEND","rids":["run-1","a\"b"],"extend_lens":[16,1]}}"#;
        links.observe(same, StepHint::Unknown, 2, 0, |_| 9);
        assert_eq!(links.rids(), 2);
        assert_eq!(links.steps, 3);
        let plain = links.targets("run-1").expect("plain rid linked");
        assert!(
            plain.iter().all(|s| s.pid == 7),
            "the first rank's steps only"
        );
        let escaped = links.targets("a\"b").expect("escaped rid linked");
        assert!(escaped.iter().all(|s| s.pid == 7));
    }

    /// Scanned events are told apart by their members: only `step[...]` spans with args are
    /// looked at, and a later TP rank's step with the same args is counted, not linked.
    #[test]
    fn scanned_steps_are_found_by_name_and_skipped_by_args() {
        let hint = |raw: &[u8]| {
            let mut members = Vec::new();
            assert!(crate::fastscan::scan_object(raw, &mut members));
            step_hint(raw, &members)
        };
        let kernel =
            br#"{"ph":"X","name":"gemm","pid":1,"tid":1,"ts":10,"dur":5,"args":{"rids":["r-1"]}}"#;
        assert!(matches!(hint(kernel), StepHint::NotStep));
        let no_args = br#"{"ph":"X","name":"step[1]","pid":1,"tid":1,"ts":10,"dur":5}"#;
        assert!(matches!(hint(no_args), StepHint::NotStep));

        let mut links = StepLinks::new();
        let step = br#"{"ph":"X","name":"step[1]","pid":1,"tid":1,"ts":10,"dur":5,"args":{"rids":["r-1","r-2"],"extend_lens":[8,1]}}"#;
        let h = hint(step);
        assert!(matches!(&h, StepHint::Args(r) if step[r.clone()].starts_with(b"{\"rids\"")));
        links.observe(step, h, 0, 0, |_| 7);
        let same = br#"{"ph":"X","name":"step[1]","pid":2,"tid":1,"ts":9,"dur":5,"args":{"rids":["r-1","r-2"],"extend_lens":[8,1]}}"#;
        links.observe(same, hint(same), 1, 0, |_| 8);
        // Other args (a new rid) on the later rank: parsed; r-3 is that rank's.
        let other = br#"{"ph":"X","name":"step[2]","pid":2,"tid":1,"ts":20,"dur":5,"args":{"rids":["r-1","r-3"],"extend_lens":[1,8]}}"#;
        links.observe(other, hint(other), 1, 0, |_| 8);
        assert_eq!(links.steps, 3);
        assert_eq!(links.rids(), 3);
        let r1 = links.targets("r-1").expect("r-1 linked");
        assert!(
            r1.iter().all(|s| s.pid == 7 && s.ts_ns == 10_000),
            "rank 0's step only"
        );
        let r3 = links.targets("r-3").expect("r-3 linked");
        assert!(r3.iter().all(|s| s.pid == 8 && s.ts_ns == 20_000));
    }

    #[test]
    fn rid_lists_are_keyed_by_their_exact_bytes() {
        let ev = |rids: &str| {
            format!(r#"{{"name":"step[1]","args":{{"rids": {rids},"extend_lens":[1]}}}}"#)
        };
        let key = |rids: &str| {
            let e = ev(rids);
            let at = e.find("\"rids\"").expect("rids key");
            rids_list_key(e.as_bytes(), at)
        };
        let a = key(r#"["x-1","a\"]b","c\\"]"#).expect("a key");
        assert_eq!(
            a.0,
            r#"["x-1","a\"]b","c\\"]"#.len(),
            "quotes, brackets and backslashes inside strings"
        );
        assert_eq!(Some(a), key(r#"["x-1","a\"]b","c\\"]"#));
        assert_ne!(Some(a), key(r#"["x-1","a\"]b","c\\d"]"#));
        assert_eq!(key(r#"["unterminated"#), None);
    }
}
