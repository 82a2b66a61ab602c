//! CPU-side collectives: what a rank without GPU streams (gloo, CPU tensor parallelism) spends
//! in communication, recognised from its CPU spans.
//!
//! Recognised span names (see `docs/trace-conventions.md`):
//! - `gloo:*` (`gloo:all_reduce`, `gloo:broadcast`, ...): PyTorch's gloo work items (its
//!   `profilingTitle`, a `user_annotation` range from when the work is created until it
//!   completes);
//! - `c10d::*` dispatcher ops (`c10d::allreduce_`, `c10d::broadcast_`, ...), except the waits;
//! - `record_param_comms`, whose args name the collective (`Collective name`), its process group
//!   (`Process Group Name`) and sequence number (`Seq`, or `seq`);
//! - the reference server's tensor-parallel reduction: a `cpu_op` named
//!   `model.layers.N.all_reduce` (or a bare `all_reduce`).
//!
//! One collective call shows up as several nested spans (`c10d::allreduce_` >
//! `record_param_comms` > `gloo:all_reduce`; gloo's own span may outlast the op that created it),
//! so the spans of one thread are grouped: a span that starts inside an earlier collective span
//! of the same thread belongs to that call. A call counts once, from its first start to its
//! last end.

use serde::Serialize;

/// One collective call of one rank (its nested spans merged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CpuCollective {
    /// The most specific name among its spans: the backend's (`gloo:all_reduce`), else
    /// `record_param_comms`' `Collective name`, else the `c10d::` op, else the span's own name.
    pub name: String,
    /// Start of the outermost span (ns): when the rank arrived.
    pub start: i64,
    /// Latest end of its spans (ns).
    pub end: i64,
    /// `Process Group Name` of its `record_param_comms`, when recorded.
    pub group: Option<String>,
    /// `Seq`/`seq` of its `record_param_comms`, when recorded.
    pub seq: Option<i64>,
}

/// Kind of a collective span; the order is the naming priority (most specific last).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SpanKind {
    /// The reference server's `all_reduce` module span.
    Server,
    /// `record_param_comms` without a `Collective name` (older PyTorch).
    ParamCommsUnnamed,
    /// A `c10d::` dispatcher op.
    C10d,
    /// `record_param_comms` with its `Collective name`.
    ParamComms,
    /// A backend work span (`gloo:`).
    Backend,
}

/// Classifies a complete CPU span as a collective, or `None`.
pub fn span_kind(category: &str, name: &str) -> Option<SpanKind> {
    if name.starts_with("gloo:") {
        Some(SpanKind::Backend)
    } else if name == "record_param_comms" {
        Some(SpanKind::ParamComms)
    } else if let Some(op) = name.strip_prefix("c10d::") {
        (!op.contains("wait")).then_some(SpanKind::C10d)
    } else if matches!(category, "cpu_op" | "Operator")
        && (name == "all_reduce" || name.ends_with(".all_reduce"))
    {
        Some(SpanKind::Server)
    } else {
        None
    }
}

/// What `record_param_comms` records in its args (PyTorch `ParamCommsDebugInfo`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ParamCommsArgs {
    /// `Collective name` (`allreduce`, `broadcast`, ... or `wait`/`init` bookkeeping).
    pub collective: Option<String>,
    /// `Process Group Name`.
    pub group: Option<String>,
    /// `Seq` (or `seq`).
    pub seq: Option<i64>,
}

impl ParamCommsArgs {
    /// Reads the fields from an event's raw `args` (absent or malformed fields stay `None`).
    pub fn parse(args: Option<&str>) -> ParamCommsArgs {
        let Some(v) = args.and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok()) else {
            return ParamCommsArgs::default();
        };
        let text = |k: &str| match v.get(k)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let seq = ["Seq", "seq"].iter().find_map(|k| match v.get(*k)? {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        });
        ParamCommsArgs {
            collective: text("Collective name"),
            group: text("Process Group Name"),
            seq,
        }
    }

    /// True for bookkeeping records that are not a collective call (`wait`, `init`).
    pub fn is_bookkeeping(&self) -> bool {
        matches!(self.collective.as_deref(), Some("wait" | "init"))
    }
}

/// One collective span as read, before grouping.
#[derive(Debug, Clone)]
pub struct CollectiveSpan {
    /// Thread it ran on (any id that tells threads of one file apart).
    pub thread: u64,
    /// Start (ns).
    pub start: i64,
    /// End (ns).
    pub end: i64,
    /// Kind.
    pub kind: SpanKind,
    /// Span name, or for `record_param_comms` its `Collective name` when recorded.
    pub name: String,
    /// `record_param_comms` process group.
    pub group: Option<String>,
    /// `record_param_comms` sequence number.
    pub seq: Option<i64>,
}

impl CollectiveSpan {
    /// The collective span of a complete CPU event, or `None` when it is not one (or is a
    /// `record_param_comms` bookkeeping record). `args` is the raw JSON of the event's args,
    /// read only for `record_param_comms`.
    pub fn classify(
        thread: u64,
        start: i64,
        end: i64,
        category: &str,
        name: &str,
        args: Option<&str>,
    ) -> Option<CollectiveSpan> {
        let mut kind = span_kind(category, name)?;
        let mut span = CollectiveSpan {
            thread,
            start,
            end,
            kind,
            name: name.to_string(),
            group: None,
            seq: None,
        };
        if kind == SpanKind::ParamComms {
            let a = ParamCommsArgs::parse(args);
            if a.is_bookkeeping() {
                return None;
            }
            match a.collective {
                Some(c) => span.name = c,
                None => kind = SpanKind::ParamCommsUnnamed,
            }
            span.kind = kind;
            span.group = a.group;
            span.seq = a.seq;
        }
        Some(span)
    }
}

/// Groups nested collective spans into calls (see the module docs); result in start order.
pub fn group_calls(mut spans: Vec<CollectiveSpan>) -> Vec<CpuCollective> {
    spans.sort_by_key(|s| (s.thread, s.start, std::cmp::Reverse(s.end)));
    let mut out: Vec<CpuCollective> = Vec::new();
    // The open call: (thread, end so far, kind that named it).
    let mut open: Option<(u64, i64, SpanKind)> = None;
    for s in spans {
        if let (Some((thread, end, named_by)), Some(call)) = (open.as_mut(), out.last_mut()) {
            if *thread == s.thread && s.start < *end {
                *end = (*end).max(s.end);
                call.end = *end;
                if s.kind > *named_by {
                    *named_by = s.kind;
                    call.name = s.name;
                }
                call.group = call.group.take().or(s.group);
                call.seq = call.seq.or(s.seq);
                continue;
            }
        }
        open = Some((s.thread, s.end, s.kind));
        out.push(CpuCollective {
            name: s.name,
            start: s.start,
            end: s.end,
            group: s.group,
            seq: s.seq,
        });
    }
    out.sort_by_key(|c| (c.start, c.end));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(thread: u64, start: i64, end: i64, name: &str) -> CollectiveSpan {
        CollectiveSpan::classify(thread, start, end, "cpu_op", name, None).unwrap()
    }

    #[test]
    fn recognises_upstream_and_server_names() {
        assert_eq!(
            span_kind("user_annotation", "gloo:all_reduce"),
            Some(SpanKind::Backend)
        );
        assert_eq!(
            span_kind("cpu_op", "c10d::allreduce_"),
            Some(SpanKind::C10d)
        );
        assert_eq!(
            span_kind("cpu_op", "record_param_comms"),
            Some(SpanKind::ParamComms)
        );
        assert_eq!(
            span_kind("cpu_op", "model.layers.3.all_reduce"),
            Some(SpanKind::Server)
        );
        assert_eq!(span_kind("cpu_op", "c10d::wait"), None);
        assert_eq!(span_kind("cpu_op", "_c10d_functional::all_reduce"), None);
        assert_eq!(span_kind("user_annotation", "model.all_reduce"), None);
        assert_eq!(span_kind("cpu_op", "aten::mm"), None);
    }

    #[test]
    fn nested_spans_count_once_and_take_the_backend_name() {
        let rpc = CollectiveSpan::classify(
            1,
            12,
            30,
            "cpu_op",
            "record_param_comms",
            Some(r#"{"Collective name": "allreduce", "Process Group Name": "0", "Seq": 7}"#),
        )
        .unwrap();
        assert_eq!(
            (rpc.kind, rpc.name.as_str()),
            (SpanKind::ParamComms, "allreduce")
        );
        let calls = group_calls(vec![
            span(1, 10, 40, "c10d::allreduce_"),
            rpc,
            // gloo's work span outlives the op that created it.
            span(1, 15, 55, "gloo:all_reduce"),
            // Another thread's collective at the same time is its own call.
            span(2, 20, 25, "gloo:broadcast"),
            span(1, 55, 60, "gloo:barrier"),
        ]);
        assert_eq!(
            calls,
            vec![
                CpuCollective {
                    name: "gloo:all_reduce".into(),
                    start: 10,
                    end: 55,
                    group: Some("0".into()),
                    seq: Some(7),
                },
                CpuCollective {
                    name: "gloo:broadcast".into(),
                    start: 20,
                    end: 25,
                    group: None,
                    seq: None,
                },
                CpuCollective {
                    name: "gloo:barrier".into(),
                    start: 55,
                    end: 60,
                    group: None,
                    seq: None,
                },
            ]
        );
    }

    #[test]
    fn param_comms_args_give_group_and_seq() {
        let a = ParamCommsArgs::parse(Some(
            r#"{"Collective name": "allreduce", "Process Group Name": "0", "seq": 3, "dtype": "Float"}"#,
        ));
        assert_eq!(a.collective.as_deref(), Some("allreduce"));
        assert_eq!(a.group.as_deref(), Some("0"));
        assert_eq!(a.seq, Some(3));
        assert!(!a.is_bookkeeping());
        let w = ParamCommsArgs::parse(Some(r#"{"Collective name": "wait", "Seq": "4"}"#));
        assert_eq!(w.seq, Some(4));
        assert!(w.is_bookkeeping());
        assert_eq!(ParamCommsArgs::parse(None), ParamCommsArgs::default());
        let wait = r#"{"Collective name": "wait"}"#;
        assert!(
            CollectiveSpan::classify(0, 0, 1, "cpu_op", "record_param_comms", Some(wait)).is_none()
        );
        // Older PyTorch: no collective name; the c10d op around it names the call.
        let calls = group_calls(vec![
            span(0, 0, 10, "c10d::allreduce_"),
            span(0, 1, 9, "record_param_comms"),
        ]);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].name, "c10d::allreduce_");
    }
}
