//! Issue 13's acceptance run: our server with chunked prefill (and `--log-requests`, and the
//! profiler), one long prompt sent first among short ones through `bench serving --profile`.
//! `trace explain` on the client request trace with either server source attributes the
//! short requests' wait to the steps that carried the long prompt (the named steps hold its
//! rid), and every request's parts add up to its measured TTFT and E2E within 1 ms; the run
//! also leaves one merged timeline (client lanes, server ranks, a flow from every request to
//! the steps holding its rid) that HTA parses.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::args;
use inferperf_bench::serving::{run_serving_rows, ServingContext, CLIENT_TRACE_FILE};
use inferperf_loadgen::backend::Prompt;
use inferperf_loadgen::cpu::ThreadCpu;
use inferperf_loadgen::dataset::DatasetRow;
use inferperf_loadgen::runner::Abort;
use inferperf_server::launch::launch_model_profiled;
use inferperf_server::{EmbeddedServer, ServerConfig};
use inferperf_trace::explain::{explain, ExplainOptions, ExplainReport};
use serde_json::Value;

const SHORT: usize = 6;

fn ids_row(n: usize, salt: u32, at_ms: f64) -> DatasetRow {
    DatasetRow {
        prompt: Prompt::Ids((0..n as u32).map(|i| 3 + (i * 7 + salt) % 200).collect()),
        prompt_len: n,
        output_len: 4,
        timestamp_ms: Some(at_ms),
        routing_key: None,
        extra: None,
    }
}

/// The server's request log: rid -> (enqueued, first step) in Unix seconds.
fn queue_times(path: &Path) -> HashMap<String, (f64, f64)> {
    std::fs::read_to_string(path)
        .expect("request log")
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("log line");
            (
                v["rid"].as_str().unwrap_or_default().to_string(),
                (
                    v["wait_queue_entry_time"].as_f64().unwrap_or(0.0),
                    v["forward_entry_time"].as_f64().unwrap_or(0.0),
                ),
            )
        })
        .collect()
}

fn check(rep: &ExplainReport, long: &str, behind_long: &[String]) {
    assert_eq!(rep.requests.len(), SHORT + 1, "{:?}", rep.notes);
    for r in &rep.requests {
        let c = &r.components;
        assert!((c.ttft() - r.ttft_ns).abs() < 1_000_000, "{r:?}");
        assert!((c.e2e() - r.e2e_ns).abs() < 1_000_000, "{r:?}");
    }
    // Every short request that queued while the long prompt was being prefilled is listed
    // with the steps that delayed it, and those include the long prompt's chunks.
    for rid in behind_long {
        let slow = rep
            .slowest_ttft
            .iter()
            .find(|s| &s.rid == rid)
            .unwrap_or_else(|| panic!("{rid} not among the slowest: {:?}", rep.slowest_ttft));
        assert!(
            slow.delaying_steps
                .iter()
                .any(|d| !d.holds_request && d.rids.iter().any(|r| r == long)),
            "{rid}: {:?}",
            slow.delaying_steps
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_chunked_prefill_is_named_as_the_cause_of_the_short_requests_wait() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("requests.jsonl");
    let server_args = ServerConfig {
        chunked_prefill_size: Some(16),
        log_requests: Some(log.clone()),
        ..ServerConfig::ephemeral()
    };
    let a = server_args.clone();
    let (engine, profiler) = tokio::task::spawn_blocking(move || launch_model_profiled(&a))
        .await
        .expect("launch task")
        .expect("launch the default model");
    let tokenizer = engine.parts.tokenizer.clone();
    let server = EmbeddedServer::start_with_profiler(server_args, engine, profiler)
        .await
        .expect("start the server");

    let profiles = dir.path().join("profiles").to_string_lossy().into_owned();
    let mut cfg = args(&[
        "--warmup-requests",
        "0",
        "--request-id-prefix",
        "x",
        "--profile",
        "--profile-output-dir",
        &profiles,
        "--profile-activities",
        "CPU",
    ]);
    cfg.output_file = Some(dir.path().join("out.jsonl").to_string_lossy().into_owned());
    cfg.disable_tqdm = true;
    // Replay the rows' own arrival times (as a Mooncake trace is replayed).
    cfg.dataset.name = inferperf_loadgen::dataset::DatasetName::Mooncake;
    let ctx = ServingContext {
        base_url: server.base_url(),
        tokenizer: Some(tokenizer),
        client_threads: 1,
        cpu: ThreadCpu::default(),
        abort: Abort::default(),
        calibration: None,
        print: false,
    };
    // Request 0 is the long prompt (32 chunks of 16 tokens) at 0 ms; the short ones follow
    // every 10 ms, so some arrive while its chunks run (which ones is read from the log).
    let mut rows = vec![ids_row(512, 1, 0.0)];
    rows.extend((0..SHORT).map(|i| ids_row(8, 10 + i as u32, 10.0 * (i + 1) as f64)));
    let o = run_serving_rows(&cfg, ctx, Some(rows))
        .await
        .expect("bench serving");
    server.shutdown().await.expect("shutdown");
    assert_eq!(o.metrics.completed, SHORT + 1);

    let long = "x-0".to_string();
    let q = queue_times(&log);
    // Short requests whose first step came after the long one's first step: they waited
    // while (some of) its chunks ran.
    let long_entry = q.get(&long).expect("the long request is logged").1;
    let behind_long: Vec<String> = (1..=SHORT)
        .map(|i| format!("x-{i}"))
        .filter(|rid| q.get(rid).is_some_and(|t| t.1 > long_entry))
        .collect();
    assert!(
        !behind_long.is_empty(),
        "no short request queued behind the long one: {q:?}"
    );

    let client = o.profile_dirs[0].join(CLIENT_TRACE_FILE);
    let server_traces: Vec<PathBuf> =
        inferperf_profiler::client::written_traces(&o.profile_dirs[0]).expect("list traces");
    assert!(!server_traces.is_empty());
    let from_log = explain(&ExplainOptions {
        client: client.clone(),
        request_log: Some(log.clone()),
        top: SHORT + 1,
        steps_per_request: 10,
        ..Default::default()
    })
    .expect("explain with the request log");
    check(&from_log, &long, &behind_long);
    let from_traces = explain(&ExplainOptions {
        client,
        server_traces,
        top: SHORT + 1,
        steps_per_request: 10,
        ..Default::default()
    })
    .expect("explain with the server traces");
    check(&from_traces, &long, &behind_long);

    // The same run left one merged timeline: client lanes, the server's ranks, and for every
    // client request a flow from its slice to a server step that holds its rid.
    assert_eq!(o.merged_timelines.len(), 1, "{:?}", o.merged_timelines);
    let merged = &o.merged_timelines[0];
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(merged).expect("merged file")),
        &mut text,
    )
    .expect("gunzip");
    let doc: Value = serde_json::from_str(&text).expect("merged JSON");
    let events = doc["traceEvents"].as_array().expect("events");
    let steps: Vec<&Value> = events
        .iter()
        .filter(|e| e["ph"] == "X" && e["name"].as_str().is_some_and(|n| n.starts_with("step[")))
        .collect();
    for i in 0..=SHORT {
        let rid = format!("x-{i}");
        let ids: Vec<&Value> = events
            .iter()
            .filter(|e| e["ph"] == "s" && e["args"]["rid"] == rid.as_str())
            .map(|e| &e["id"])
            .collect();
        assert_eq!(ids.len(), 1, "{rid}: one flow start");
        let ends: Vec<&Value> = events
            .iter()
            .filter(|e| (e["ph"] == "t" || e["ph"] == "f") && &e["id"] == ids[0])
            .collect();
        assert!(!ends.is_empty(), "{rid}: flow reaches the server");
        for end in ends {
            let at = end["ts"].as_f64().unwrap_or(-1.0);
            let holds = steps.iter().any(|s| {
                let (ts, dur) = (
                    s["ts"].as_f64().unwrap_or(0.0),
                    s["dur"].as_f64().unwrap_or(0.0),
                );
                s["pid"] == end["pid"]
                    && s["tid"] == end["tid"]
                    && ts <= at
                    && at <= ts + dur
                    && s["args"]["rids"]
                        .as_array()
                        .is_some_and(|r| r.iter().any(|x| x == rid.as_str()))
            });
            assert!(holds, "{rid}: {end} is not on a step holding it");
        }
    }
    // HTA reads it.
    let python = inferperf_test_support::venv_python();
    let script =
        inferperf_test_support::manifest_dir!().join("../inferperf-trace/tests/hta_load.py");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg(merged)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "run {} (HTA venv: scripts/fetch-test-assets.sh): {e}",
                python.display()
            )
        });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counts: Value = serde_json::from_str(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default(),
    )
    .expect("HTA counts");
    assert_eq!(
        counts["raw_events"].as_u64(),
        Some(events.len() as u64),
        "{counts}"
    );
}
