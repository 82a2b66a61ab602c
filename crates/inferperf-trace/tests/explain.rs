//! `trace explain` on hand-built inputs: the parts of every request add up to its measured
//! latency, a request that waited behind a long chunked prefill is told which steps held it
//! (they carry the long request's rid), and inputs that cannot be joined are named.

use std::path::{Path, PathBuf};

use inferperf_trace::explain::client::{self, ClientRequest, ClientTrace, MeasuredOffset};
use inferperf_trace::explain::server::{self, ServerRequest, ServerView, Step};
use inferperf_trace::explain::{explain, explain_views, ExplainOptions};

const MS: i64 = 1_000_000;
/// Server times are Unix ns: the scenario starts at this instant.
const T0: i64 = 1_800_000_000 * 1_000 * MS;

fn step(ct: u64, mode: &str, start: i64, end: i64, batch: &[(&str, u64)]) -> Step {
    Step {
        forward_ct: Some(ct),
        mode: mode.into(),
        start: T0 + start,
        end: T0 + end,
        rids: batch.iter().map(|b| b.0.to_string()).collect(),
        extend_lens: batch.iter().map(|b| b.1).collect(),
    }
}

/// A long prompt (`long`, 3 chunks of 64 tokens, 10 ms each) arrives just before a short one
/// (`short`, 16 tokens); the short one waits behind the chunks, prefills with the last one,
/// then both decode. The server clock is 5 s ahead of the client's.
fn scenario() -> (ClientTrace, ServerView) {
    let off = 5_000 * MS;
    let steps = vec![
        step(1, "EXTEND", 10 * MS, 20 * MS, &[("long", 64)]),
        step(2, "EXTEND", 20 * MS, 30 * MS, &[("long", 64)]),
        step(
            3,
            "EXTEND",
            30 * MS,
            40 * MS,
            &[("long", 64), ("short", 16)],
        ),
        step(4, "DECODE", 40 * MS, 42 * MS, &[("long", 1), ("short", 1)]),
        step(5, "DECODE", 42 * MS, 44 * MS, &[("long", 1), ("short", 1)]),
    ];
    let mut view = ServerView {
        steps,
        ..Default::default()
    };
    let req = |rid: &str, created: i64, enqueued: i64, first: i64, fin: i64, steps: Vec<usize>| {
        ServerRequest {
            rid: rid.into(),
            created: T0 + created,
            enqueued: T0 + enqueued,
            first_token: T0 + first,
            finished: T0 + fin,
            steps,
        }
    };
    view.requests.insert(
        "long".into(),
        req(
            "long",
            8 * MS,
            9 * MS,
            40 * MS,
            44 * MS,
            vec![0, 1, 2, 3, 4],
        ),
    );
    view.requests.insert(
        "short".into(),
        req("short", 11 * MS, 12 * MS, 40 * MS, 44 * MS, vec![2, 3, 4]),
    );
    // Client times = server times - offset, plus a little network.
    let c = |rid: &str, sent: i64, first: i64, last: i64| {
        let (sent, first, last) = (T0 + sent, T0 + first, T0 + last);
        ClientRequest {
            rid: rid.into(),
            ok: true,
            scheduled: sent - off - MS,
            sent: sent - off,
            headers: sent - off + MS / 2,
            first_token: first - off,
            last: last - off,
            chunks: vec![first - off, first - off + 2 * MS, last - off],
        }
    };
    let client = ClientTrace {
        run_tag: "t".into(),
        server_clock: Some(MeasuredOffset {
            offset_ns: off,
            uncertainty_ns: 50_000,
            drift_ns: 0,
            samples: 16,
        }),
        requests: vec![
            c("long", 7 * MS, 41 * MS, 45 * MS),
            c("short", 10 * MS, 41 * MS, 45 * MS),
        ],
    };
    (client, view)
}

fn options() -> ExplainOptions {
    ExplainOptions {
        client: PathBuf::from("client.json"),
        top: 5,
        steps_per_request: 3,
        ..Default::default()
    }
}

#[test]
fn parts_add_up_and_the_long_prefill_is_named() {
    let (client, view) = scenario();
    let rep = explain_views(&options(), &client, &view, "test".into()).expect("explain");
    assert_eq!(rep.requests.len(), 2);
    for r in &rep.requests {
        assert!((r.components.ttft() - r.ttft_ns).abs() < MS, "{r:?}");
        assert!((r.components.e2e() - r.e2e_ns).abs() < MS, "{r:?}");
    }
    let short = rep
        .requests
        .iter()
        .find(|r| r.rid == "short")
        .expect("short explained");
    // It waited 18 ms in the queue (enqueued at 12, first step at 30) and its own prefill is
    // 16/80 of the 10 ms step.
    assert_eq!(short.components.queue_wait, 18 * MS);
    assert_eq!(short.components.prefill_own, 2 * MS);
    assert_eq!(short.components.prefill_interference, 8 * MS);
    // The slowest TTFT that is not the long request names the long request's chunks.
    let s = rep
        .slowest_ttft
        .iter()
        .find(|s| s.rid == "short")
        .expect("short listed");
    assert!(!s.delaying_steps.is_empty());
    for d in &s.delaying_steps {
        assert!(d.rids.iter().any(|r| r == "long"), "{d:?}");
    }
    assert_eq!(s.delaying_steps[0].delay_ns, 10 * MS);
    // Two of the three steps in its TTFT window ran without it, both prefill chunks.
    assert_eq!(s.window.steps, 3);
    assert_eq!(s.window.steps_without_request, 2);
    assert_eq!(s.window.prefill_steps_without_request, 2);
    assert_eq!(s.window.time_without_request_ns, 20 * MS);
    // Shares at p50/p90/p99 sum to 1.
    for p in &rep.ttft_shares {
        let sum: f64 = p.shares.iter().map(|s| s.1).sum();
        assert!((sum - 1.0).abs() < 1e-9, "{p:?}");
    }
    assert!(rep.notes.is_empty(), "{:?}", rep.notes);
}

#[test]
fn rids_that_match_nothing_are_an_error_naming_the_client_trace() {
    let (mut client, view) = scenario();
    for r in &mut client.requests {
        r.rid = format!("other-run-{}", r.rid);
    }
    let err = explain_views(&options(), &client, &view, "request log x.jsonl".into())
        .expect_err("no join")
        .to_string();
    assert!(
        err.contains("client.json") && err.contains("different runs"),
        "{err}"
    );
}

#[test]
fn without_a_measured_offset_one_host_clock_is_assumed_and_said() {
    let (mut client, view) = scenario();
    client.server_clock = None;
    for r in &mut client.requests {
        for t in [
            &mut r.scheduled,
            &mut r.sent,
            &mut r.headers,
            &mut r.first_token,
            &mut r.last,
        ] {
            *t += 5_000 * MS;
        }
    }
    let rep = explain_views(&options(), &client, &view, "test".into()).expect("explain");
    assert_eq!(rep.alignment.source, "same host");
    assert!(
        rep.notes.iter().any(|n| n.contains("one host")),
        "{:?}",
        rep.notes
    );
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn files_that_are_not_client_traces_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rank = write(
        dir.path(),
        "rank.json",
        r#"{"baseTimeNanoseconds": 0, "traceEvents": []}"#,
    );
    let err = client::read(&rank)
        .expect_err("not a client trace")
        .to_string();
    assert!(
        err.contains("rank.json") && err.contains("not a client request trace"),
        "{err}"
    );
    let no_anchor = write(
        dir.path(),
        "noanchor.json",
        r#"{"baseTimeNanoseconds": 0, "inferperfRequestTrace": {"run_tag": "x"}, "traceEvents": []}"#,
    );
    let err = client::read(&no_anchor).expect_err("no anchor").to_string();
    assert!(
        err.contains("noanchor.json") && err.contains("wall-clock anchor"),
        "{err}"
    );
    let log = write(dir.path(), "log.jsonl", "{\"not\": \"a record\"}\n");
    let err = server::read_request_log(&log)
        .expect_err("bad log")
        .to_string();
    assert!(err.contains("log.jsonl") && err.contains("line 1"), "{err}");
    let err = explain(&ExplainOptions {
        client: no_anchor,
        request_log: Some(log),
        ..options()
    })
    .expect_err("bad inputs")
    .to_string();
    assert!(err.contains("noanchor.json"), "{err}");
}

/// SGLang-style traces without rids: requests are attributed by time overlap, the report says
/// so, the known parts still add up, and the step that overlapped a request's wait most is
/// named first.
#[test]
fn traces_without_rids_are_attributed_by_overlap_and_say_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base_ns = T0;
    // Steps at 10-20 (EXTEND 64 tokens), 20-40 (EXTEND 256), 40-42 and 42-44 (DECODE), in ms.
    let span = |name: &str, a: i64, b: i64| {
        format!(
            r#"{{"ph":"X","cat":"user_annotation","name":"{name}","pid":1,"tid":1,"ts":{},"dur":{}}}"#,
            a * 1000,
            (b - a) * 1000
        )
    };
    let text = format!(
        r#"{{"baseTimeNanoseconds": {base_ns}, "traceEvents": [{}, {}, {}, {}]}}"#,
        span("step[EXTEND bs=1 toks=64]", 10, 20),
        span("step[EXTEND bs=1 toks=256]", 20, 40),
        span("step[DECODE bs=2]", 40, 42),
        span("step[DECODE bs=2]", 42, 44),
    );
    let trace = write(dir.path(), "sglang-TP-0.trace.json", &text);
    let view = server::read_server_traces(&[trace.as_path()]).expect("read");
    assert!(view.without_rids && view.requests.is_empty());
    assert_eq!(view.steps.len(), 4);
    let (client, _) = scenario();
    let rep = explain_views(&options(), &client, &view, "sglang traces".into()).expect("explain");
    assert_eq!(rep.attribution, "time overlap");
    assert!(
        rep.notes.iter().any(|n| n.contains("time overlap")),
        "{:?}",
        rep.notes
    );
    for r in &rep.requests {
        assert!((r.components.ttft() - r.ttft_ns).abs() < MS, "{r:?}");
        assert!((r.components.e2e() - r.e2e_ns).abs() < MS, "{r:?}");
    }
    // `short` was sent at 10 ms (server clock) and got its first token at 41 ms: steps ran
    // 10-41 except nothing, so 31 ms busy; the 20 ms EXTEND of 256 tokens overlapped most.
    let short = rep
        .slowest_ttft
        .iter()
        .find(|s| s.rid == "short")
        .expect("short listed");
    assert_eq!(short.components.prefill_interference, 31 * MS);
    assert_eq!(short.delaying_steps[0].delay_ns, 20 * MS);
    assert_eq!(short.delaying_steps[0].extend_lens, vec![256]);
}
