//! Server-side profiling end to end against the real engine (`--model-path default`) on
//! 127.0.0.1:0: `/start_profile` windows with exact step numbers from the engine's
//! `forward_ct`, open-ended start/stop, two windows per lifetime, by-stage files, every error
//! reply, DP=2 and TP=2 rank files plus the merged file, PD-separated profiling through the client API,
//! and HTA parsing a trace from this server.

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use common::*;
use inferperf_profiler::client;
use inferperf_profiler::ProfilerHandle;
use inferperf_protocol::profile::ProfileReqInput;
use inferperf_server::launch::launch_model_profiled;
use inferperf_server::routes::profile::{START_REPLY, STOP_REPLY};
use inferperf_server::{EmbeddedServer, ServerConfig};
use serde_json::{json, Value};

struct Server {
    server: EmbeddedServer,
    profiler: ProfilerHandle,
    base: String,
    http: reqwest::Client,
}

/// A real server whose profiler handle the test keeps (to wait on self-closing windows).
async fn start(args: ServerConfig) -> Server {
    let a = args.clone();
    let (engine, profiler) = tokio::task::spawn_blocking(move || launch_model_profiled(&a))
        .await
        .expect("launch task")
        .expect("launch the default model with profiler hooks");
    let server = EmbeddedServer::start_with_profiler(args, engine, profiler.clone())
        .await
        .expect("start the server");
    let base = server.base_url();
    Server {
        server,
        profiler,
        base,
        http: reqwest::Client::new(),
    }
}

impl Server {
    async fn forward_ct(&self) -> u64 {
        self.server
            .engine()
            .expect("an LLM server")
            .internal_state()
            .await
            .expect("engine state")
            .forward_ct
    }

    /// One greedy request of `n` new tokens: one EXTEND step and `n - 1` DECODE steps.
    async fn generate(&self, n: usize) {
        let req = json!({"text": "profile me", "sampling_params":
            {"max_new_tokens": n, "temperature": 0, "ignore_eos": true}});
        let (status, body) = post_json(&self.http, &format!("{}/generate", self.base), &req).await;
        assert_eq!(status, 200, "{body}");
    }

    async fn start_profile(&self, body: Value) -> (u16, String) {
        post_json(&self.http, &format!("{}/start_profile", self.base), &body).await
    }

    async fn stop_profile(&self) -> (u16, String) {
        post_json(
            &self.http,
            &format!("{}/stop_profile", self.base),
            &json!({}),
        )
        .await
    }

    /// Files of the window(s) that closed by themselves.
    async fn wait_last(&self) -> inferperf_profiler::ProfileOutcome {
        let session = self.profiler.last_session().expect("a started session");
        ProfilerHandle::wait(&session)
            .await
            .expect("session completes")
    }
}

fn read_trace(path: &Path) -> Value {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut text = String::new();
    flate2::read::GzDecoder::new(f)
        .read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("gunzip {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn events(doc: &Value) -> &Vec<Value> {
    doc["traceEvents"].as_array().expect("traceEvents")
}

/// The N of every `ProfilerStep#N`.
fn profiler_steps(doc: &Value) -> Vec<u64> {
    let mut v: Vec<u64> = events(doc)
        .iter()
        .filter_map(|e| {
            e["name"]
                .as_str()?
                .strip_prefix("ProfilerStep#")?
                .parse()
                .ok()
        })
        .collect();
    v.sort_unstable();
    v
}

fn names(doc: &Value) -> BTreeSet<String> {
    events(doc)
        .iter()
        .filter_map(|e| e["name"].as_str().map(str::to_string))
        .collect()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read output dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    v.sort();
    v
}

fn only_trace(dir: &Path, suffix: &str) -> PathBuf {
    let hits: Vec<String> = files_in(dir)
        .into_iter()
        .filter(|f| f.ends_with(suffix))
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "one *{suffix} in {}: {hits:?}",
        dir.display()
    );
    dir.join(&hits[0])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_step_and_num_steps_capture_exactly_those_steps() {
    let s = start(ServerConfig::ephemeral()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    s.generate(2).await; // some history: forward_ct is not 0
    let f0 = s.forward_ct().await;
    assert_eq!(f0, 2);
    // Numeric strings, as SGLang clients send them.
    let (status, body) = s
        .start_profile(
            json!({"output_dir": dir.path(), "start_step": (f0 + 3).to_string(),
                              "num_steps": "4", "activities": ["CPU"]}),
        )
        .await;
    assert_eq!((status, body.as_str()), (200, START_REPLY));
    s.generate(10).await; // steps f0+1 ..= f0+10
    let outcome = s.wait_last().await;
    assert_eq!(outcome.trace_files.len(), 1, "{outcome:?}");
    let path = &outcome.trace_files[0];
    let file = path.file_name().and_then(|n| n.to_str()).expect("name");
    assert_eq!(file, format!("{}-TP-0.trace.json.gz", outcome.profile_id));
    let doc = read_trace(path);
    assert_eq!(profiler_steps(&doc), vec![f0 + 3, f0 + 4, f0 + 5, f0 + 6]);
    for key in [
        "schemaVersion",
        "deviceProperties",
        "distributedInfo",
        "displayTimeUnit",
    ] {
        assert!(doc.get(key).is_some(), "missing {key}");
    }
    assert_eq!(doc["distributedInfo"]["rank"], 0);
    assert_eq!(doc["distributedInfo"]["world_size"], 1);
    let n = names(&doc);
    // Decode steps of one request (q = 1 per row): SGLang's label with its roofline suffix.
    assert!(
        n.iter()
            .any(|x| x.starts_with("step[DECODE bs=1 g_sqsq=1 g_sqsk=")),
        "{n:?}"
    );
    for want in [
        "schedule",
        "process_batch_result",
        "running_reqs",
        "waiting_reqs",
        "kv_cache",
    ] {
        assert!(n.contains(want), "missing {want}: {n:?}");
    }
    // record_shapes defaults to true (newer SGLang): module spans with marker fields and,
    // with_stack defaulting to true, their source location.
    let module = events(&doc)
        .iter()
        .find(|e| e["name"] == "model.layers.0.self_attn.qkv_proj")
        .expect("a layerwise module span");
    assert_eq!(module["cat"], "cpu_op");
    assert_eq!(
        module["args"]["Module"],
        "model.layers.0.self_attn.qkv_proj"
    );
    assert!(module["args"]["Inputs"].is_array());
    // The built-in model: 8 heads + 2 x 2 KV heads of 32 dims over a 256-wide hidden state.
    assert_eq!(
        module["args"]["TrainableParams"],
        json!({"weight": [(8 + 2 * 2) * 32, 256]}),
        "{module}"
    );
    assert!(module["args"]["Call stack"].is_string(), "{module}");
    // Process and thread names for the viewers.
    let meta: BTreeSet<&str> = events(&doc)
        .iter()
        .filter(|e| e["ph"] == "M")
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert!(
        meta.contains("process_name") && meta.contains("thread_name"),
        "{meta:?}"
    );
    // The window closed by itself: a stop now is SGLang's "not in progress".
    let (status, body) = s.stop_profile().await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("Profiling is not in progress"), "{body}");
    s.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_ended_windows_twice_in_one_lifetime_including_an_idle_stop() {
    let s = start(ServerConfig::ephemeral()).await;
    let dir = tempfile::tempdir().expect("tempdir");

    // Window 1: started and stopped on an idle server (no step runs in between): the stop
    // still finishes and writes the (step-less) file.
    let resp = s
        .http
        .get(format!("{}/start_profile", s.base))
        .send()
        .await
        .expect("GET /start_profile");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.expect("body"), START_REPLY);
    let first = s.profiler.last_session().expect("session");
    let resp = s
        .http
        .get(format!("{}/end_profile", s.base))
        .send()
        .await
        .expect("GET /end_profile");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.expect("body"), STOP_REPLY);
    let out1 = first.outcome().expect("complete when stop replied");
    assert_eq!(out1.trace_files.len(), 1);
    assert!(profiler_steps(&read_trace(&out1.trace_files[0])).is_empty());

    // Window 2: open-ended, around one request; every step it ran is in the file.
    let (status, _) = s
        .start_profile(json!({"output_dir": dir.path(), "profile_prefix": "second",
                              "record_shapes": false, "with_stack": false}))
        .await;
    assert_eq!(status, 200);
    let f0 = s.forward_ct().await;
    s.generate(5).await;
    let f1 = s.forward_ct().await;
    assert_eq!(f1 - f0, 5);
    let (status, body) = s.stop_profile().await;
    assert_eq!((status, body.as_str()), (200, STOP_REPLY));
    let out2 = s
        .profiler
        .last_session()
        .expect("session")
        .outcome()
        .expect("done");
    assert_ne!(out1.profile_id, out2.profile_id);
    let path = only_trace(dir.path(), "-TP-0.trace.json.gz");
    assert!(path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("second-")));
    let doc = read_trace(&path);
    assert_eq!(profiler_steps(&doc), ((f0 + 1)..=f1).collect::<Vec<_>>());
    let n = names(&doc);
    assert!(
        n.iter().any(|x| x.starts_with("step[EXTEND bs=1 toks=")),
        "{n:?}"
    );
    assert!(
        !n.iter().any(|x| x.starts_with("model.layers.")),
        "record_shapes off"
    );
    assert!(events(&doc)
        .iter()
        .all(|e| e["args"]["Call stack"].is_null()));
    s.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layerwise_marker_flag_forces_module_spans() {
    let s = start(ServerConfig {
        enable_layerwise_nvtx_marker: true,
        ..ServerConfig::ephemeral()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (status, _) = s
        .start_profile(json!({"output_dir": dir.path(), "record_shapes": false, "num_steps": 2}))
        .await;
    assert_eq!(status, 200);
    s.generate(3).await;
    let out = s.wait_last().await;
    let doc = read_trace(&out.trace_files[0]);
    let n = names(&doc);
    assert!(n.contains("model.embed_tokens"), "{n:?}");
    assert!(n.contains("model.layers.0.input_layernorm"), "{n:?}");
    s.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_stage_writes_extend_and_decode_files() {
    let s = start(ServerConfig::ephemeral()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (status, _) = s
        .start_profile(json!({"output_dir": dir.path(), "profile_by_stage": true, "num_steps": 2}))
        .await;
    assert_eq!(status, 200);
    let f0 = s.forward_ct().await;
    // Each stage captures 2 batches of its own stage: the EXTEND window needs a second
    // prefill, which the second request brings.
    s.generate(6).await; // f0+1 EXTEND, f0+2 ..= f0+6 DECODE
    s.generate(6).await; // f0+7 EXTEND, ...
    let out = s.wait_last().await;
    assert_eq!(out.trace_files.len(), 2, "{out:?}");
    let extend = only_trace(dir.path(), "-TP-0-EXTEND.trace.json.gz");
    let decode = only_trace(dir.path(), "-TP-0-DECODE.trace.json.gz");
    assert_eq!(profiler_steps(&read_trace(&extend)), vec![f0 + 1, f0 + 7]);
    assert_eq!(profiler_steps(&read_trace(&decode)), vec![f0 + 2, f0 + 3]);
    assert!(names(&read_trace(&decode))
        .iter()
        .all(|n| !n.starts_with("step[EXTEND")));
    s.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_a_clear_4xx_and_the_server_keeps_serving() {
    let s = start(ServerConfig::ephemeral()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().display().to_string();
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"output_dir": out, "activities": ["GPU"]}),
            400,
            "GPU",
        ),
        (
            json!({"output_dir": out, "activities": ["CUDA_PROFILER"]}),
            400,
            "CUDA_PROFILER",
        ),
        (
            json!({"output_dir": out, "activities": ["RPD"]}),
            400,
            "RPD",
        ),
        (
            json!({"output_dir": out, "activities": ["TPU"]}),
            400,
            "unknown profiler activity",
        ),
        (
            json!({"output_dir": out, "activities": []}),
            400,
            "activities is empty",
        ),
        (
            json!({"output_dir": out, "num_steps": 0}),
            400,
            "num_steps must be at least 1",
        ),
        (
            json!({"output_dir": out, "num_steps": "abc"}),
            400,
            "num_steps",
        ),
        (
            json!({"output_dir": out, "profile_stages": ["decode"]}),
            400,
            "profile_by_stage",
        ),
        (
            json!({"output_dir": out, "profile_by_stage": true, "profile_stages": ["verify"]}),
            400,
            "unknown profile stage",
        ),
        (
            json!({"output_dir": out, "profile_prefix": "a/b"}),
            400,
            "path separator",
        ),
        (
            json!({"output_dir": "/proc/inferperf-not-writable"}),
            400,
            "not writable",
        ),
    ];
    for (body, want, text) in cases {
        let (status, reply) = s.start_profile(body.clone()).await;
        assert_eq!(status, want, "{body}: {reply}");
        assert!(reply.contains(text), "{body}: {reply}");
        assert!(
            json_error_message(&reply).is_some(),
            "OpenAI-style body: {reply}"
        );
    }
    let (status, reply) =
        post_raw(&s.http, &format!("{}/start_profile", s.base), "{not json").await;
    assert_eq!(status, 400, "{reply}");

    let (status, reply) = s.stop_profile().await;
    assert_eq!(status, 409);
    assert!(reply.contains("Profiling is not in progress. Call /start_profile first."));
    let (status, _) = s.start_profile(json!({"output_dir": out})).await;
    assert_eq!(status, 200);
    let (status, reply) = s.start_profile(json!({"output_dir": out})).await;
    assert_eq!(status, 409);
    assert!(reply.contains("Profiling is already in progress. Call /stop_profile first."));
    // Still serving, and the open window still works.
    s.generate(2).await;
    assert_eq!(s.stop_profile().await.0, 200);
    assert_eq!(get(&s.http, &format!("{}/health", s.base)).await.0, 200);
    s.server.shutdown().await.expect("shutdown");
}

fn json_error_message(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    v["error"]["message"].as_str().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dp2_writes_one_file_per_rank_and_a_merged_file() {
    let s = start(ServerConfig {
        dp_size: 2,
        ..ServerConfig::ephemeral()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (status, reply) = s
        .start_profile(json!({"output_dir": dir.path(), "merge_profiles": true,
                              "record_shapes": false}))
        .await;
    assert_eq!(status, 200, "{reply}");
    // Round-robin: one request per replica.
    s.generate(3).await;
    s.generate(3).await;
    assert_eq!(s.stop_profile().await.0, 200);
    let out = s
        .profiler
        .last_session()
        .expect("session")
        .outcome()
        .expect("done");
    let id = &out.profile_id;
    let rank0 = dir.path().join(format!("{id}-TP-0-DP-0.trace.json.gz"));
    let rank1 = dir.path().join(format!("{id}-TP-0-DP-1.trace.json.gz"));
    let merged = dir.path().join(format!("merged-{id}.trace.json.gz"));
    assert_eq!(out.trace_files, vec![rank0.clone(), rank1.clone()]);
    assert_eq!(out.merged.as_ref(), Some(&merged), "{}", out.message);
    for (i, p) in [&rank0, &rank1].into_iter().enumerate() {
        let doc = read_trace(p);
        assert_eq!(doc["distributedInfo"]["rank"], i);
        assert_eq!(doc["distributedInfo"]["world_size"], 2);
        assert_eq!(
            profiler_steps(&doc),
            vec![1, 2, 3],
            "each replica has its own forward_ct"
        );
    }
    let doc = read_trace(&merged);
    let pids: BTreeSet<String> = events(&doc)
        .iter()
        .filter(|e| {
            e["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("ProfilerStep#"))
        })
        .map(|e| e["pid"].to_string())
        .collect();
    assert_eq!(pids.len(), 2, "both ranks in the merged file: {pids:?}");
    let labels: Vec<String> = events(&doc)
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "process_name")
        .filter_map(|e| e["args"]["name"].as_str().map(str::to_string))
        .collect();
    assert!(labels.iter().any(|l| l.contains("DP00")), "{labels:?}");
    assert!(labels.iter().any(|l| l.contains("DP01")), "{labels:?}");
    s.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tp2_writes_one_file_per_tensor_parallel_rank_and_a_merged_file() {
    let s = start(ServerConfig {
        tp_size: 2,
        ..ServerConfig::ephemeral()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (status, reply) = s
        .start_profile(json!({"output_dir": dir.path(), "merge_profiles": true,
                              "record_shapes": true}))
        .await;
    assert_eq!(status, 200, "{reply}");
    let f0 = s.forward_ct().await;
    s.generate(3).await;
    let f1 = s.forward_ct().await;
    assert_eq!(s.stop_profile().await.0, 200);
    let out = s
        .profiler
        .last_session()
        .expect("session")
        .outcome()
        .expect("done");
    let id = &out.profile_id;
    let rank0 = dir.path().join(format!("{id}-TP-0.trace.json.gz"));
    let rank1 = dir.path().join(format!("{id}-TP-1.trace.json.gz"));
    let merged = dir.path().join(format!("merged-{id}.trace.json.gz"));
    assert_eq!(out.trace_files, vec![rank0.clone(), rank1.clone()]);
    assert_eq!(out.merged.as_ref(), Some(&merged), "{}", out.message);
    for (i, p) in [&rank0, &rank1].into_iter().enumerate() {
        let doc = read_trace(p);
        assert_eq!(doc["distributedInfo"]["rank"], i);
        assert_eq!(doc["distributedInfo"]["world_size"], 2);
        // Both ranks run every step of the one engine.
        assert_eq!(profiler_steps(&doc), ((f0 + 1)..=f1).collect::<Vec<_>>());
        let n = names(&doc);
        // Two all-reduces per layer per step show the communication on each rank.
        assert!(
            n.iter().any(|x| x.contains("all_reduce")),
            "rank {i}: {n:?}"
        );
        assert!(
            n.iter().any(|x| x.starts_with("model.layers.0.")),
            "rank {i}: {n:?}"
        );
    }
    let doc = read_trace(&merged);
    let labels: Vec<String> = events(&doc)
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "process_name")
        .filter_map(|e| e["args"]["name"].as_str().map(str::to_string))
        .collect();
    assert!(labels.iter().any(|l| l.contains("TP00")), "{labels:?}");
    assert!(labels.iter().any(|l| l.contains("TP01")), "{labels:?}");
    s.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pd_separated_profiling_through_the_client_api() {
    let prefill = start(ServerConfig::ephemeral()).await;
    let decode = start(ServerConfig::ephemeral()).await;
    let base = tempfile::tempdir().expect("tempdir");
    let targets = client::pd_targets(
        std::slice::from_ref(&prefill.base),
        std::slice::from_ref(&decode.base),
    );
    let http = client::http_client().expect("client");
    let mut dirs = Vec::new();
    let started = client::start_profile_all(&http, &targets, |t| {
        let dir = base.path().join(&t.label);
        dirs.push(dir.clone());
        ProfileReqInput {
            output_dir: Some(dir.display().to_string()),
            activities: Some(vec!["CPU".into()]),
            ..ProfileReqInput::default()
        }
    })
    .await;
    for r in &started {
        assert_eq!(r.result.as_deref().ok(), Some(START_REPLY), "{r:?}");
    }
    prefill.generate(2).await;
    decode.generate(2).await;
    let stopped = client::stop_profile_all(&http, &targets).await;
    for r in &stopped {
        assert_eq!(r.result.as_deref().ok(), Some(STOP_REPLY), "{r:?}");
    }
    assert_eq!(dirs.len(), 2);
    for dir in &dirs {
        let t = only_trace(dir, "-TP-0.trace.json.gz");
        assert_eq!(profiler_steps(&read_trace(&t)).len(), 2);
    }
    // A second stop: both targets answer their own error; no short-circuit.
    let again = client::stop_profile_all(&http, &targets).await;
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|r| matches!(
        &r.result,
        Err(client::ClientError::Status { status: 409, .. })
    )));
    prefill.server.shutdown().await.expect("shutdown");
    decode.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hta_parses_a_trace_from_the_server() {
    let python = inferperf_test_support::venv_python();
    assert!(
        python.exists(),
        "HTA venv missing: {} not found; run scripts/fetch-test-assets.sh",
        python.display()
    );
    let s = start(ServerConfig::ephemeral()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (status, _) = s
        .start_profile(json!({"output_dir": dir.path(), "num_steps": 3}))
        .await;
    assert_eq!(status, 200);
    s.generate(4).await;
    let out = s.wait_last().await;
    s.server.shutdown().await.expect("shutdown");
    let script = r#"
import json, sys
from hta.common.trace import parse_trace_file
meta, df, symbols = parse_trace_file(sys.argv[1])
table = symbols.get_sym_table()
names = [table[i] for i in df["name"]]
print(json.dumps({
    "rank": meta.get("distributedInfo", {}).get("rank"),
    "steps": sorted({n for n in names if n.startswith("ProfilerStep#")}),
    "step_spans": sum(1 for n in names if n.startswith("step[")),
    "modules": sum(1 for n in names if n.startswith("model.layers.")),
}))
"#;
    let output = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(&out.trace_files[0])
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", python.display()));
    assert!(
        output.status.success(),
        "HTA failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let v: Value = serde_json::from_slice(&output.stdout).expect("HTA script JSON");
    assert_eq!(v["rank"], 0, "{v}");
    assert_eq!(v["steps"].as_array().map(Vec::len), Some(3), "{v}");
    assert_eq!(v["step_spans"], 3, "{v}");
    assert!(v["modules"].as_u64().is_some_and(|m| m > 0), "{v}");
}
