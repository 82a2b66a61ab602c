//! The server-side request lifecycle against the real engine (`--model-path default`) on
//! 127.0.0.1:0: `--log-requests FILE` lines (one per request, steps with their forward_ct and
//! extend tokens, ordered times, durations that add up), the rids in profiler traces (`step[...]`
//! span args and one async track per request), an aborted request's line, and a bad log path
//! refused at start.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use common::*;
use inferperf_server::launch::launch_model_profiled;
use inferperf_server::{EmbeddedServer, ServerConfig};
use serde_json::{json, Value};

/// Send `/generate` requests concurrently: `(rid, prompt, max_new_tokens)`.
async fn generate_all(http: &reqwest::Client, base: &str, reqs: &[(&str, String, usize)]) {
    let calls = reqs.iter().map(|(rid, text, n)| {
        let body = json!({"text": text, "rid": rid,
            "sampling_params": {"max_new_tokens": n, "temperature": 0, "ignore_eos": true}});
        let url = format!("{base}/generate");
        async move { post_json(http, &url, &body).await }
    });
    for (status, body) in futures_util::future::join_all(calls).await {
        assert_eq!(status, 200, "{body}");
    }
}

fn read_lines(path: &Path) -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(path).expect("read the request log");
    assert!(text.ends_with('\n'), "whole lines only: {text:?}");
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let rid = v["rid"].as_str().expect("rid").to_string();
        assert!(out.insert(rid.clone(), v).is_none(), "two lines for {rid}");
    }
    out
}

fn f(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_requests_writes_each_lifecycle_with_its_chunked_prefill_steps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("requests.jsonl");
    let args = ServerConfig {
        chunked_prefill_size: Some(16),
        log_requests: Some(path.clone()),
        ..ServerConfig::ephemeral()
    };
    let server = EmbeddedServer::start(args).await.expect("start");
    let http = reqwest::Client::new();
    let long = "long prompt: ".to_string() + &"abcdefghij".repeat(10);
    let reqs = [
        ("log-long", long, 3),
        ("log-short-a", "short a".to_string(), 4),
        ("log-short-b", "short b".to_string(), 4),
    ];
    generate_all(&http, &server.base_url(), &reqs).await;
    // Shutdown stops the engine and waits for the writer: every line is on disk.
    server.shutdown().await.expect("shutdown");

    let lines = read_lines(&path);
    let rids: BTreeSet<&str> = lines.keys().map(String::as_str).collect();
    assert_eq!(
        rids,
        BTreeSet::from(["log-long", "log-short-a", "log-short-b"])
    );
    let mut by_step: BTreeMap<u64, Vec<(&str, &Value)>> = BTreeMap::new();
    for (rid, v) in &lines {
        assert_eq!(v["status"], "finished", "{v}");
        assert_eq!(v["finish_reason"]["type"], "length", "{v}");
        let (arrival, tokenized, enqueued, first, finish) = (
            f(v, "created_time"),
            f(v, "tokenize_finish_time"),
            f(v, "wait_queue_entry_time"),
            f(v, "first_token_time"),
            f(v, "finished_time"),
        );
        assert!(arrival <= tokenized && tokenized <= enqueued, "{v}");
        assert!(enqueued <= first && first <= finish, "{v}");
        assert!(
            (f(v, "e2e_latency") - (finish - arrival)).abs() < 1e-5,
            "{v}"
        );
        assert!(
            f(v, "queue_time") >= 0.0 && f(v, "decode_time") >= 0.0,
            "{v}"
        );
        assert!(v["queue_pos"].is_u64(), "{v}");
        let steps = v["steps"].as_array().expect("steps");
        assert!(!steps.is_empty(), "{v}");
        for s in steps {
            let ct = s["forward_ct"].as_u64().expect("forward_ct");
            by_step.entry(ct).or_default().push((rid.as_str(), s));
            assert!(f(s, "start_time") <= f(s, "end_time"), "{s}");
            assert!(s["batch_size"].as_u64().expect("batch_size") >= 1, "{s}");
        }
        // Its first step is where it entered the forward; every chunk after the first token.
        assert_eq!(f(v, "forward_entry_time"), f(&steps[0], "start_time"));
        let completion = v["completion_tokens"].as_u64().expect("completion_tokens");
        let decode_steps = steps
            .iter()
            .filter(|s| s["forward_mode"] == "DECODE")
            .count();
        assert_eq!(decode_steps as u64, completion - 1, "{v}");
    }
    // The long prompt ran in several EXTEND chunks covering its uncached prompt.
    let long = &lines["log-long"];
    let extend: Vec<u64> = long["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["forward_mode"] == "EXTEND")
        .map(|s| s["extend_tokens"].as_u64().expect("extend_tokens"))
        .collect();
    let uncached = long["prompt_tokens"].as_u64().expect("prompt_tokens")
        - long["cached_tokens"].as_u64().expect("cached_tokens");
    assert!(extend.len() >= 6, "{extend:?}");
    assert!(extend.iter().all(|&n| n <= 16), "{extend:?}");
    assert_eq!(extend.iter().sum::<u64>(), uncached, "{long}");
    // A step shared by several requests is the same step in each of their lists.
    for (ct, members) in &by_step {
        let (_, first) = members[0];
        for (rid, s) in members {
            for key in ["batch_size", "forward_mode", "start_time", "end_time"] {
                assert_eq!(s[key], first[key], "step {ct} of {rid}");
            }
        }
        let bs = first["batch_size"].as_u64().expect("batch_size") as usize;
        assert!(members.len() <= bs, "step {ct}: {members:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_request_gets_its_line_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("requests.jsonl");
    let args = ServerConfig {
        log_requests: Some(path.clone()),
        ..ServerConfig::ephemeral()
    };
    let server = EmbeddedServer::start(args).await.expect("start");
    let mut resp = reqwest::Client::new()
        .post(format!("{}/generate", server.base_url()))
        .header("X-Request-Id", "log-gone")
        .json(&json!({"text": "never finishes", "stream": true,
            "sampling_params": {"max_new_tokens": 1000, "ignore_eos": true}}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    resp.chunk().await.expect("read").expect("a first chunk");
    // The client goes away; whether the engine notices first or shutdown aborts it, the
    // request ends aborted and its line is written before shutdown returns.
    drop(resp);
    server.shutdown().await.expect("shutdown");
    let lines = read_lines(&path);
    let v = &lines["log-gone"];
    assert_eq!(v["status"], "aborted", "{v}");
    assert_eq!(v["finish_reason"]["type"], "abort", "{v}");
    assert!(f(v, "first_token_time") <= f(v, "finished_time"), "{v}");
    assert!(!v["steps"].as_array().expect("steps").is_empty(), "{v}");
}

#[tokio::test]
async fn a_bad_log_path_is_refused_at_start_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    for path in [
        dir.path().join("missing-dir").join("requests.jsonl"),
        dir.path().to_path_buf(),
    ] {
        let args = ServerConfig {
            log_requests: Some(path.clone()),
            ..ServerConfig::ephemeral()
        };
        let err = match EmbeddedServer::start(args).await {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
}

fn read_trace(path: &Path) -> Value {
    let file = std::fs::File::open(path).expect("open trace");
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .expect("gunzip");
    serde_json::from_str(&text).expect("parse trace")
}

fn only_trace(dir: &Path) -> PathBuf {
    let hits: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.to_string_lossy().ends_with(".trace.json.gz"))
        .collect();
    assert_eq!(hits.len(), 1, "{hits:?}");
    hits[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiled_steps_name_their_rids_and_every_request_has_a_track() {
    let args = ServerConfig::ephemeral();
    let a = args.clone();
    let (engine, profiler) = tokio::task::spawn_blocking(move || launch_model_profiled(&a))
        .await
        .expect("launch task")
        .expect("launch");
    let server = EmbeddedServer::start_with_profiler(args, engine, profiler)
        .await
        .expect("start");
    let base = server.base_url();
    let http = reqwest::Client::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let (status, body) = post_json(
        &http,
        &format!("{base}/start_profile"),
        &json!({"output_dir": dir.path(), "activities": ["CPU"], "record_shapes": false}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let reqs = [
        ("trace-a", "first prompt".to_string(), 3),
        ("trace-b", "second prompt".to_string(), 4),
        ("trace-c", "third".to_string(), 2),
    ];
    generate_all(&http, &base, &reqs).await;
    let (status, body) = post_json(&http, &format!("{base}/stop_profile"), &json!({})).await;
    assert_eq!(status, 200, "{body}");
    let doc = read_trace(&only_trace(dir.path()));
    let events = doc["traceEvents"].as_array().expect("traceEvents");
    let sent: BTreeSet<&str> = reqs.iter().map(|r| r.0).collect();

    let mut in_steps = BTreeSet::new();
    let mut step_spans = 0;
    for e in events {
        let Some(name) = e["name"].as_str() else {
            continue;
        };
        if !name.starts_with("step[") {
            continue;
        }
        step_spans += 1;
        let args = &e["args"];
        let rids = args["rids"].as_array().unwrap_or_else(|| panic!("{e}"));
        let lens = args["extend_lens"]
            .as_array()
            .unwrap_or_else(|| panic!("{e}"));
        assert_eq!(
            rids.len() as u64,
            args["batch_size"].as_u64().expect("bs"),
            "{e}"
        );
        assert_eq!(rids.len(), lens.len(), "{e}");
        assert!(
            name.contains(args["forward_mode"].as_str().expect("mode")),
            "{e}"
        );
        for rid in rids {
            in_steps.insert(rid.as_str().expect("a string rid").to_string());
        }
    }
    assert!(step_spans > 0);
    let in_steps: BTreeSet<&str> = in_steps.iter().map(String::as_str).collect();
    assert_eq!(in_steps, sent);

    for rid in &sent {
        let track: Vec<&Value> = events
            .iter()
            .filter(|e| e["cat"] == "request" && e["args"]["rid"] == *rid)
            .collect();
        let phases: Vec<&str> = track.iter().filter_map(|e| e["ph"].as_str()).collect();
        assert_eq!(
            phases.iter().filter(|p| **p == "b").count(),
            1,
            "{rid}: {track:?}"
        );
        assert_eq!(
            phases.iter().filter(|p| **p == "e").count(),
            1,
            "{rid}: {track:?}"
        );
        assert_eq!(phases.first(), Some(&"b"), "{rid}");
        assert_eq!(phases.last(), Some(&"e"), "{rid}");
        let ids: BTreeSet<&str> = track.iter().filter_map(|e| e["id"].as_str()).collect();
        assert_eq!(ids.len(), 1, "{rid}: one track id, {ids:?}");
        let names: BTreeSet<&str> = track.iter().filter_map(|e| e["name"].as_str()).collect();
        for want in ["tokenized", "enqueued", "first_token", "finish", rid] {
            assert!(names.contains(want), "{rid}: {names:?}");
        }
    }
    server.shutdown().await.expect("shutdown");
}
