//! `trace merge --client`: a client request trace and two TP ranks of the reference server on
//! one clock, with flows from each client request to the server steps that hold its rid.
//! Synthetic inputs following docs/trace-conventions.md ("Client request traces", "Requests"):
//! the client trace is built with a known server clock offset.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use inferperf_trace::merge::{merge_files, merge_files_general_path, MergeOptions, PID_STRIDE};
use inferperf_trace::merge_client::FLOW_CAT;
use inferperf_trace::reader::TraceReader;

/// The server's base time (Unix ns, a whole second, as Kineto floors it).
const SERVER_BASE: i64 = 1_764_900_000_000_000_000;
/// Server clock minus client clock, as the client measured it.
const OFFSET_NS: i64 = 2_500_000;
const CLIENT_PID: i64 = 4242;

/// (name, forward_mode, ts µs, dur µs, rids, extend_lens)
type Step = (
    &'static str,
    &'static str,
    f64,
    f64,
    &'static [&'static str],
    &'static [i64],
);

const STEPS: &[Step] = &[
    (
        "step[0]",
        "EXTEND",
        1000.0,
        500.0,
        &["run-0", "run-1"],
        &[128, 64],
    ),
    (
        "step[1]",
        "MIXED",
        2000.0,
        400.0,
        &["run-0", "run-1", "run-2"],
        &[1, 1, 100],
    ),
    (
        "step[2]",
        "DECODE",
        3000.0,
        300.0,
        &["run-0", "run-1", "run-2"],
        &[1, 1, 1],
    ),
    ("step[3]", "DECODE", 4000.0, 300.0, &["run-2"], &[1]),
];

/// A rank trace of the reference server: a scheduler thread with step spans, a forward child
/// span, a GPU kernel with its launch flow, and request async tracks.
fn server_rank(dir: &Path, rank: i64) -> PathBuf {
    let pid = 1000 + rank;
    let skew = rank as f64 * 3.0; // a few µs between ranks
    let mut events = vec![
        json!({"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": "python"}}),
        json!({"name": "thread_name", "ph": "M", "pid": pid, "tid": 7, "args": {"name": "scheduler"}}),
    ];
    for (name, mode, ts, dur, rids, lens) in STEPS {
        events.push(json!({
            "ph": "X", "cat": "user_annotation", "name": name, "pid": pid, "tid": 7,
            "ts": ts + skew, "dur": dur,
            "args": {"forward_mode": mode, "batch_size": rids.len(), "rids": rids, "extend_lens": lens},
        }));
        events.push(json!({
            "ph": "X", "cat": "user_annotation", "name": "forward", "pid": pid, "tid": 7,
            "ts": ts + skew + 10.0, "dur": dur - 20.0,
        }));
    }
    events.push(json!({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": pid, "tid": 7, "ts": 1020.0 + skew, "dur": 5.0, "args": {"correlation": 1}}));
    events.push(json!({"ph": "s", "cat": "ac2g", "name": "ac2g", "id": 1, "pid": pid, "tid": 7, "ts": 1020.0 + skew}));
    events.push(json!({"ph": "X", "cat": "kernel", "name": "gemm", "pid": rank, "tid": 7, "ts": 1030.0 + skew, "dur": 50.0, "args": {"correlation": 1, "device": rank, "stream": 7}}));
    events.push(json!({"ph": "f", "bp": "e", "cat": "ac2g", "name": "ac2g", "id": 1, "pid": rank, "tid": 7, "ts": 1030.0 + skew}));
    events.push(json!({"ph": "b", "cat": "request", "name": "run-0", "id": "0x00000000000000aa", "pid": pid, "tid": 7, "ts": 900.0, "args": {"rid": "run-0", "prompt_tokens": 128}}));
    events.push(json!({"ph": "e", "cat": "request", "name": "run-0", "id": "0x00000000000000aa", "pid": pid, "tid": 7, "ts": 3400.0, "args": {"rid": "run-0"}}));
    let doc = json!({
        "schemaVersion": 1,
        "distributedInfo": {"backend": "nccl", "rank": rank, "world_size": 2},
        "deviceProperties": [{"id": rank, "name": "fake"}],
        "baseTimeNanoseconds": SERVER_BASE,
        "traceEvents": events,
    });
    let path = dir.join(format!("tp{rank}.trace.json"));
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    path
}

/// (rid, scheduled µs, sent µs, end µs) on the client's clock (µs after its base).
const REQUESTS: &[(&str, f64, f64, f64)] = &[
    ("run-0", -1500.0, -1400.0, 1500.0),
    ("run-1", -1400.0, -1400.0, 1200.0),
    ("run-2", -600.0, -500.0, 2500.0),
    ("run-3", 2000.0, 2010.0, 2600.0),
];

/// A client request trace as `request_trace.rs` writes it; its clock runs `OFFSET_NS` behind
/// the server's, so its base (a second earlier) and times are on the client's clock.
fn client_trace(dir: &Path, rids: &[&str], info: Option<Value>) -> PathBuf {
    let base = SERVER_BASE - 1_000_000_000;
    // µs after the client's base of server time `t` µs after the server's base.
    let c = |t: f64| t + 1_000_000.0 - OFFSET_NS as f64 / 1000.0;
    let mut events = vec![
        json!({"name": "process_name", "ph": "M", "ts": 0, "pid": CLIENT_PID, "tid": 0, "args": {"name": "inferperf client"}}),
        json!({"name": "thread_name", "ph": "M", "ts": 0, "pid": CLIENT_PID, "tid": 1, "args": {"name": "requests lane 0"}}),
    ];
    for (i, (_, sched, sent, end)) in REQUESTS.iter().enumerate() {
        let rid = rids[i];
        let (sched, sent, end) = (c(*sched + 2500.0), c(*sent + 2500.0), c(*end + 2500.0));
        events.push(json!({"ph": "X", "cat": "client_request", "name": "request", "pid": CLIENT_PID, "tid": 1, "ts": sched, "dur": end - sched, "args": {"rid": rid, "index": i, "status": "ok", "prompt_len": 128, "output_len": 3}}));
        if sent > sched {
            events.push(json!({"ph": "X", "cat": "client_phase", "name": "queued", "pid": CLIENT_PID, "tid": 1, "ts": sched, "dur": sent - sched, "args": {"rid": rid}}));
        }
        events.push(json!({"ph": "X", "cat": "client_phase", "name": "awaiting headers", "pid": CLIENT_PID, "tid": 1, "ts": sent, "dur": 50.0, "args": {"rid": rid}}));
        events.push(json!({"ph": "i", "s": "t", "cat": "client_chunk", "name": "chunk", "pid": CLIENT_PID, "tid": 1, "ts": end, "args": {"tokens": 1}}));
    }
    let mut doc = json!({
        "schemaVersion": 1,
        "displayTimeUnit": "ms",
        "baseTimeNanoseconds": base,
        "traceEvents": events,
        "traceName": "client",
    });
    if let Some(info) = info {
        doc["inferperfRequestTrace"] = info;
    }
    let path = dir.join("client-requests.json");
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    path
}

fn client_info(server_clock: Value) -> Value {
    json!({
        "version": 1, "kind": "client_requests",
        "clock": {"monotonic": "ns", "monotonic_ns_at_anchor": 0, "unix_ns_at_anchor": SERVER_BASE - 1_000_000_000 + 5},
        "run_tag": "tag1", "backend": "sglang", "base_url": "http://x",
        "server_clock": server_clock, "requests": REQUESTS.len(), "lanes": 1,
    })
}

fn measured() -> Value {
    json!({"offset_ns": OFFSET_NS, "uncertainty_ns": 40_000, "drift_ns": 1_000, "samples": 16})
}

fn read_all(path: &Path) -> (Vec<Value>, HashMap<String, Value>) {
    let mut r = TraceReader::open(path).unwrap();
    let mut events = Vec::new();
    while let Some(raw) = r.next_event().unwrap() {
        events.push(serde_json::from_slice::<Value>(raw).unwrap());
    }
    let meta = r
        .metadata()
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::from_str(v.get()).unwrap()))
        .collect();
    (events, meta)
}

fn ts_ns(e: &Value) -> i64 {
    (e["ts"].as_f64().unwrap() * 1000.0).round() as i64
}

#[test]
fn client_requests_join_two_tp_ranks_on_one_clock() {
    let dir = tempfile::tempdir().unwrap();
    let ranks = vec![server_rank(dir.path(), 0), server_rank(dir.path(), 1)];
    let rids: Vec<&str> = REQUESTS.iter().map(|r| r.0).collect();
    let client = client_trace(dir.path(), &rids, Some(client_info(measured())));
    let out = dir.path().join("merged.trace.json");
    let rep = merge_files(
        &ranks,
        &out,
        &MergeOptions {
            perfetto_fix: true,
            client: Some(client.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    // The byte-level fast path writes what the general path writes, client events included.
    let general = dir.path().join("general.trace.json");
    merge_files_general_path(
        &ranks,
        &general,
        &MergeOptions {
            perfetto_fix: true,
            client: Some(client.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(std::fs::read(&general).unwrap() == std::fs::read(&out).unwrap());
    let c = rep.client.as_ref().expect("client report");
    assert_eq!((c.requests, c.linked, c.unmatched), (4, 3, 1), "{c:?}");
    assert_eq!(c.alignment.source, "server_clock");
    assert_eq!(c.alignment.offset_ns, OFFSET_NS);
    assert!(
        rep.warnings
            .iter()
            .any(|w| w.contains("1 of 4 client requests")),
        "{:?}",
        rep.warnings
    );

    let (events, meta) = read_all(&out);
    // The merged base is the server's (the client's aligned base is a second earlier + 2.5 ms:
    // earlier, so it is the base).
    let out_base = meta["baseTimeNanoseconds"].as_i64().unwrap();
    assert_eq!(out_base, SERVER_BASE - 1_000_000_000 + OFFSET_NS);
    let server_shift = SERVER_BASE - out_base;
    // Metadata: offset, uncertainty, drift, source; link counts in the trailer.
    let m = &meta["inferperfMerge"]["client"];
    assert_eq!(m["clock_alignment"]["source"], "server_clock", "{m}");
    assert_eq!(m["clock_alignment"]["offset_ns"], OFFSET_NS);
    assert_eq!(m["clock_alignment"]["uncertainty_ns"], 40_000);
    assert_eq!(m["clock_alignment"]["drift_ns"], 1_000);
    assert_eq!(m["run_tag"], "tag1");
    let links = &meta["inferperfClientLinks"];
    assert_eq!(
        (links["linked"].as_u64(), links["unmatched"].as_u64()),
        (Some(3), Some(1))
    );

    // The client is its own process after the ranks, named by its run tag.
    let client_pid = 2 * PID_STRIDE + CLIENT_PID;
    let names: HashMap<i64, String> = events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "process_name")
        .map(|e| {
            (
                e["pid"].as_i64().unwrap(),
                e["args"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        names.get(&client_pid).map(String::as_str),
        Some("client (tag1)"),
        "{names:?}"
    );
    let sort = events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "process_sort_index")
        .map(|e| {
            (
                e["pid"].as_i64().unwrap(),
                e["args"]["sort_index"].as_i64().unwrap(),
            )
        })
        .collect::<HashMap<_, _>>();
    let max_rank_sort = sort
        .iter()
        .filter(|(p, _)| **p < 2 * PID_STRIDE)
        .map(|(_, s)| *s)
        .max()
        .unwrap();
    assert!(sort[&client_pid] > max_rank_sort, "{sort:?}");

    // Client times: on the server's clock, i.e. the server-time values the trace was built
    // from (µs after the server base + 2.5 ms scheduled-time offset), rebased to out_base.
    let requests: Vec<&Value> = events
        .iter()
        .filter(|e| e["cat"] == "client_request")
        .collect();
    assert_eq!(requests.len(), 4);
    for (e, (rid, sched, _, _)) in requests.iter().zip(REQUESTS) {
        assert_eq!(e["args"]["rid"], *rid);
        assert_eq!(e["pid"].as_i64(), Some(client_pid));
        let want = ((sched + 2500.0) * 1000.0).round() as i64 + server_shift;
        assert_eq!(ts_ns(e), want, "{e}");
    }

    // Server step spans in the merged file, by (pid, tid).
    let steps: Vec<&Value> = events
        .iter()
        .filter(|e| e["ph"] == "X" && e["name"].as_str().is_some_and(|n| n.starts_with("step[")))
        .collect();
    assert_eq!(steps.len(), 8);
    let step_at = |f: &Value| -> Option<&Value> {
        steps.iter().copied().find(|s| {
            s["pid"] == f["pid"]
                && s["tid"] == f["tid"]
                && ts_ns(s) <= ts_ns(f)
                && ts_ns(f) < ts_ns(s) + (s["dur"].as_f64().unwrap() * 1000.0) as i64
        })
    };
    let flows: Vec<&Value> = events.iter().filter(|e| e["cat"] == FLOW_CAT).collect();
    let other_flow_ids: HashSet<String> = events
        .iter()
        .filter(|e| matches!(e["ph"].as_str(), Some("s" | "t" | "f")) && e["cat"] != FLOW_CAT)
        .map(|e| e["id"].to_string())
        .collect();
    let by_id = |id: &Value| {
        flows
            .iter()
            .copied()
            .filter(|f| f["id"] == *id)
            .collect::<Vec<_>>()
    };
    let mut linked = 0;
    for (req, (rid, ..)) in requests.iter().zip(REQUESTS) {
        let starts: Vec<&&Value> = flows
            .iter()
            .filter(|f| f["ph"] == "s" && f["args"]["rid"] == *rid)
            .collect();
        if *rid == "run-3" {
            assert!(starts.is_empty(), "{starts:?}");
            continue;
        }
        linked += 1;
        assert_eq!(starts.len(), 1, "{rid}: {starts:?}");
        let s = starts[0];
        // Bound inside the request slice, on its lane.
        assert_eq!(s["pid"], req["pid"]);
        assert_eq!(s["tid"], req["tid"]);
        let (a, d) = (ts_ns(req), (req["dur"].as_f64().unwrap() * 1000.0) as i64);
        assert!(a <= ts_ns(s) && ts_ns(s) < a + d, "{s} not in {req}");
        assert!(
            !other_flow_ids.contains(&s["id"].to_string()),
            "{s} reuses a rank flow id"
        );
        let chain = by_id(&s["id"]);
        let ends: Vec<&&Value> = chain.iter().filter(|f| f["ph"] == "f").collect();
        assert_eq!(ends.len(), 1, "{rid}: {chain:?}");
        for f in chain.iter().filter(|f| f["ph"] != "s") {
            assert_eq!(f["bp"], "e");
            // On rank 0, inside a step span that holds the rid.
            assert_eq!(f["pid"].as_i64().unwrap() / PID_STRIDE, 0, "{f}");
            let step = step_at(f).unwrap_or_else(|| panic!("{f} is in no step span"));
            let holds = step["args"]["rids"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == rid);
            assert!(holds, "{f} lands on {step} which does not hold {rid}");
        }
        // The last step that held the rid gets the `f`.
        let last = STEPS
            .iter()
            .rev()
            .find(|s| s.4.contains(rid))
            .map(|s| s.0)
            .unwrap();
        assert_eq!(step_at(ends[0]).unwrap()["name"], last, "{rid}");
    }
    assert_eq!(linked, 3);
    // run-0: its prefill step and its last step (decode steps in between are implied).
    let run0 = flows.iter().filter(|f| f["args"]["rid"] == "run-0").count();
    assert_eq!(run0, 3);

    // HTA 0.5.0 parses the merged file.
    let python = inferperf_test_support::venv_python();
    let script = inferperf_test_support::manifest_dir!().join("tests/hta_load.py");
    assert!(
        python.exists(),
        "HTA venv missing: {} not found; run scripts/fetch-test-assets.sh (needed by {})",
        python.display(),
        script.display()
    );
    let o = Command::new(&python)
        .arg(&script)
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let v: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("bad HTA output {stdout:?}: {e}"));
    assert_eq!(v["raw_events"].as_u64(), Some(rep.events_out), "{v}");
    assert_eq!(v["hta_kernels"].as_u64(), Some(2), "{v}");
}

#[test]
fn without_a_server_clock_one_host_clock_is_assumed_and_said() {
    let dir = tempfile::tempdir().unwrap();
    let ranks = vec![server_rank(dir.path(), 0), server_rank(dir.path(), 1)];
    let rids: Vec<&str> = REQUESTS.iter().map(|r| r.0).collect();
    let client = client_trace(dir.path(), &rids, Some(client_info(Value::Null)));
    let out = dir.path().join("merged.trace.json");
    let rep = merge_files(
        &ranks,
        &out,
        &MergeOptions {
            client: Some(client.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    let c = rep.client.unwrap();
    assert_eq!(c.alignment.source, "none");
    assert_eq!(c.alignment.offset_ns, 0);
    assert!(
        rep.warnings.iter().any(|w| w.contains("one host clock")),
        "{:?}",
        rep.warnings
    );
    let (events, meta) = read_all(&out);
    assert_eq!(
        meta["inferperfMerge"]["client"]["clock_alignment"]["source"],
        "none"
    );
    // Unshifted: a request's ts is its client time rebased to the merged base.
    let out_base = meta["baseTimeNanoseconds"].as_i64().unwrap();
    assert_eq!(out_base, SERVER_BASE - 1_000_000_000);
    let first = events
        .iter()
        .find(|e| e["cat"] == "client_request")
        .unwrap();
    let want = ((REQUESTS[0].1 + 2500.0 + 1_000_000.0) * 1000.0).round() as i64 - OFFSET_NS;
    assert_eq!(ts_ns(first), want);
}

#[test]
fn a_client_trace_without_anchor_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let ranks = vec![server_rank(dir.path(), 0)];
    let rids: Vec<&str> = REQUESTS.iter().map(|r| r.0).collect();
    let out = dir.path().join("merged.trace.json");
    let no_info = client_trace(dir.path(), &rids, None);
    let opts = MergeOptions {
        client: Some(no_info.clone()),
        ..Default::default()
    };
    let err = merge_files(&ranks, &out, &opts).unwrap_err().to_string();
    assert!(err.contains(&no_info.display().to_string()), "{err}");
    assert!(err.contains("inferperfRequestTrace"), "{err}");
    assert!(!out.exists());

    let mut info = client_info(measured());
    info.as_object_mut().unwrap().remove("clock");
    let no_clock = client_trace(dir.path(), &rids, Some(info));
    let err = merge_files(&ranks, &out, &opts).unwrap_err().to_string();
    assert!(err.contains(&no_clock.display().to_string()), "{err}");
    assert!(err.contains("wall-clock anchor"), "{err}");
    assert!(!out.exists());
}

#[test]
fn client_rids_that_match_no_step_are_an_error_naming_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let ranks = vec![server_rank(dir.path(), 0), server_rank(dir.path(), 1)];
    let client = client_trace(
        dir.path(),
        &["other-0", "other-1", "other-2", "other-3"],
        Some(client_info(measured())),
    );
    let out = dir.path().join("merged.trace.json");
    let err = merge_files(
        &ranks,
        &out,
        &MergeOptions {
            client: Some(client.clone()),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains(&client.display().to_string()), "{err}");
    assert!(err.contains(&ranks[0].display().to_string()), "{err}");
    assert!(err.contains("different runs"), "{err}");
    assert!(!out.exists(), "no half-written output");
}
