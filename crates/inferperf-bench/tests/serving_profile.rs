//! `bench serving --profile` end to end against real `inferperf serve` instances with the
//! profiler (default model, 127.0.0.1:0): an open-ended window closed after the run, a bounded
//! window (`--profile-steps` with `--profile-start-step`, no stop call), PD-separated profiling
//! of two workers, genai-bench's `--sglang-profile` (bounded, `server_args.json`), and the
//! flag errors.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};

use common::args;
use inferperf_bench::serving::{run_serving, ServingContext, ServingOutcome};
use inferperf_loadgen::cpu::ThreadCpu;
use inferperf_loadgen::runner::Abort;
use inferperf_loadgen::tokenizer::SharedTokenizer;
use inferperf_profiler::ProfilerHandle;
use inferperf_server::launch::launch_model_profiled;
use inferperf_server::{EmbeddedServer, ServerConfig};
use serde_json::Value;

struct Profiled {
    server: EmbeddedServer,
    profiler: ProfilerHandle,
    tokenizer: SharedTokenizer,
}

async fn start() -> Profiled {
    let args = ServerConfig::ephemeral();
    let a = args.clone();
    let (engine, profiler) = tokio::task::spawn_blocking(move || launch_model_profiled(&a))
        .await
        .expect("launch task")
        .expect("launch the default model with profiler hooks");
    let tokenizer = engine.parts.tokenizer.clone();
    let server = EmbeddedServer::start_with_profiler(args, engine, profiler.clone())
        .await
        .expect("start the server");
    Profiled {
        server,
        profiler,
        tokenizer,
    }
}

impl Profiled {
    fn url(&self) -> String {
        self.server.base_url()
    }

    async fn forward_ct(&self) -> u64 {
        self.server
            .engine()
            .expect("an LLM server")
            .internal_state()
            .await
            .expect("engine state")
            .forward_ct
    }
}

/// Eight requests of 4 prompt and 6 output tokens, at most two at a time.
const LOAD: &[&str] = &[
    "--dataset-name",
    "random-ids",
    "--num-prompts",
    "8",
    "--random-input-len",
    "4",
    "--random-output-len",
    "6",
    "--random-range-ratio",
    "1",
    "--max-concurrency",
    "2",
    "--warmup-requests",
    "0",
    "--profile-activities",
    "CPU",
];

async fn bench(s: &Profiled, base_url: &str, extra: &[&str], out: &Path) -> ServingOutcome {
    let mut flags = LOAD.to_vec();
    flags.extend_from_slice(extra);
    let mut a = args(&flags);
    a.output_file = Some(out.join("out.jsonl").to_string_lossy().into_owned());
    a.disable_tqdm = true;
    let ctx = ServingContext {
        base_url: base_url.to_owned(),
        tokenizer: Some(s.tokenizer.clone()),
        client_threads: 1,
        cpu: ThreadCpu::default(),
        abort: Abort::default(),
        calibration: None,
        print: false,
    };
    run_serving(&a, ctx).await.expect("bench serving")
}

fn traces(dir: &Path) -> Vec<PathBuf> {
    inferperf_profiler::client::written_traces(dir).expect("list traces")
}

fn profiler_steps(path: &Path) -> Vec<u64> {
    let f = std::fs::File::open(path).expect("open trace");
    let mut text = String::new();
    flate2::read::GzDecoder::new(f)
        .read_to_string(&mut text)
        .expect("gunzip");
    let doc: Value = serde_json::from_str(&text).expect("trace JSON");
    let mut steps: Vec<u64> = doc["traceEvents"]
        .as_array()
        .expect("traceEvents")
        .iter()
        .filter_map(|e| {
            e["name"]
                .as_str()?
                .strip_prefix("ProfilerStep#")?
                .parse()
                .ok()
        })
        .collect();
    steps.sort_unstable();
    steps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_ended_window_covers_every_measured_step_and_is_closed_after_the_run() {
    let s = start().await;
    let out = tempfile::tempdir().expect("tempdir");
    let base = out.path().join("profiles");
    let base_s = base.to_string_lossy().into_owned();
    let f0 = s.forward_ct().await;
    let o = bench(
        &s,
        &s.url(),
        &["--profile", "--profile-output-dir", &base_s],
        out.path(),
    )
    .await;
    let f1 = s.forward_ct().await;
    assert_eq!(o.metrics.completed, 8);
    assert_eq!(o.profile_dirs.len(), 1);
    assert!(o.profile_dirs[0].starts_with(&base), "{:?}", o.profile_dirs);
    // The stop call returned only once the file was written; it holds every step of the run.
    let files = traces(&o.profile_dirs[0]);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        profiler_steps(&files[0]),
        ((f0 + 1)..=f1).collect::<Vec<_>>()
    );
    s.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_window_starts_at_the_given_step_and_closes_by_itself() {
    let s = start().await;
    let out = tempfile::tempdir().expect("tempdir");
    let base_s = out.path().join("p").to_string_lossy().into_owned();
    let start_step = s.forward_ct().await + 3;
    let start_s = start_step.to_string();
    let o = bench(
        &s,
        &s.url(),
        &[
            "--profile",
            "--profile-output-dir",
            &base_s,
            "--profile-start-step",
            &start_s,
            "--profile-steps",
            "4",
        ],
        out.path(),
    )
    .await;
    assert_eq!(o.metrics.completed, 8);
    // No stop call was made: the window closed by itself after 4 steps.
    let session = s.profiler.last_session().expect("a session");
    let outcome = ProfilerHandle::wait(&session).await.expect("window closes");
    assert_eq!(outcome.trace_files.len(), 1);
    assert!(outcome.trace_files[0].starts_with(&o.profile_dirs[0]));
    assert_eq!(
        profiler_steps(&outcome.trace_files[0]),
        (start_step..start_step + 4).collect::<Vec<_>>()
    );
    s.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pd_separated_profiles_every_named_worker() {
    // The benchmarked server is also the first worker; the second worker stays idle, so its
    // window is empty -- but it was armed and closed, each in its own directory.
    let busy = start().await;
    let idle = start().await;
    let out = tempfile::tempdir().expect("tempdir");
    let base_s = out.path().join("pd").to_string_lossy().into_owned();
    let (u1, u2) = (busy.url(), idle.url());
    let f0 = busy.forward_ct().await;
    let o = bench(
        &busy,
        &u1,
        &[
            "--profile",
            "--pd-separated",
            "--profile-output-dir",
            &base_s,
            "--profile-decode-url",
            &u1,
            &u2,
        ],
        out.path(),
    )
    .await;
    let f1 = busy.forward_ct().await;
    assert_eq!(o.profile_dirs.len(), 2);
    assert_ne!(o.profile_dirs[0], o.profile_dirs[1]);
    let busy_files = traces(&o.profile_dirs[0]);
    let idle_files = traces(&o.profile_dirs[1]);
    assert_eq!((busy_files.len(), idle_files.len()), (1, 1));
    assert_eq!(
        profiler_steps(&busy_files[0]),
        ((f0 + 1)..=f1).collect::<Vec<_>>()
    );
    assert!(profiler_steps(&idle_files[0]).is_empty());
    busy.server.shutdown().await.expect("shutdown");
    idle.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn genai_bench_flags_arm_a_bounded_window_and_save_server_args() {
    let s = start().await;
    let out = tempfile::tempdir().expect("tempdir");
    let base_s = out.path().join("g").to_string_lossy().into_owned();
    let o = bench(
        &s,
        &s.url(),
        &[
            "--sglang-profile",
            "--sglang-profile-steps",
            "3",
            "--sglang-profile-activities",
            " CPU ",
            "--sglang-profile-output-dir",
            &base_s,
        ],
        out.path(),
    )
    .await;
    assert_eq!(o.profile_dirs.len(), 1);
    let info: Value = serde_json::from_slice(
        &std::fs::read(o.profile_dirs[0].join("server_args.json")).expect("server_args.json"),
    )
    .expect("server_args.json is JSON");
    assert!(info.get("model_path").is_some(), "{info}");
    let session = s.profiler.last_session().expect("a session");
    let outcome = ProfilerHandle::wait(&session).await.expect("window closes");
    assert_eq!(outcome.trace_files.len(), 1);
    assert_eq!(profiler_steps(&outcome.trace_files[0]).len(), 3);
    s.server.shutdown().await.expect("shutdown");
}

#[test]
fn profiling_flag_errors_are_named() {
    let err = common::try_args(&[
        "--profile",
        "--profile-prefill-url",
        "http://a",
        "--profile-decode-url",
        "http://b",
    ])
    .expect_err("mutually exclusive");
    assert!(err.contains("--profile-decode-url"), "{err}");

    let a = args(&["--profile", "--profile-prefill-url", "http://a"]);
    let e = inferperf_bench::profiling::plan(&a, "http://x")
        .expect_err("worker URLs need --pd-separated");
    assert!(e.to_string().contains("--pd-separated"), "{e}");

    let a = args(&["--profile", "--sglang-profile"]);
    assert!(inferperf_bench::profiling::plan(&a, "http://x").is_err());

    // SGLang prints a warning and runs without profiling when no worker is named.
    let a = args(&["--profile", "--pd-separated"]);
    assert!(inferperf_bench::profiling::plan(&a, "http://x")
        .expect("not an error")
        .is_none());
}

/// `bench serving --profile --request-id-prefix`: the client's side of the run goes next to
/// the server's traces as a Chrome trace on Unix time: one `request` slice per request with
/// the rid the client sent (`{prefix}-{index}`, also in the records), its phases nested in it
/// on the same lane, one `chunk` instant per content chunk, and one request at a time per
/// lane. `--request-trace FILE` writes the same trace where it is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiled_runs_write_a_client_request_trace_with_the_rids_sent() {
    let s = start().await;
    let out = tempfile::tempdir().expect("tempdir");
    let base_s = out.path().join("profiles").to_string_lossy().into_owned();
    let extra_trace = out.path().join("requests.json");
    let extra_s = extra_trace.to_string_lossy().into_owned();
    let o = bench(
        &s,
        &s.url(),
        &[
            "--profile",
            "--profile-output-dir",
            &base_s,
            "--request-id-prefix",
            "run7",
            "--request-trace",
            &extra_s,
        ],
        out.path(),
    )
    .await;
    assert_eq!(o.metrics.completed, 8);
    let next_to_server = o.profile_dirs[0].join("client-requests.json");
    assert_eq!(
        o.request_traces,
        vec![extra_trace.clone(), next_to_server.clone()]
    );
    let mut rids: Vec<String> = o.records.iter().map(|r| r.rid.clone()).collect();
    rids.sort();
    let mut want: Vec<String> = (0..8).map(|i| format!("run7-{i}")).collect();
    want.sort();
    assert_eq!(rids, want);

    for path in [&extra_trace, &next_to_server] {
        let doc: Value =
            serde_json::from_slice(&std::fs::read(path).expect("read")).expect("trace JSON");
        let info = &doc["inferperfRequestTrace"];
        assert_eq!(info["run_tag"], "run7");
        let base_ns = doc["baseTimeNanoseconds"].as_u64().expect("base time");
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos() as u64;
        let events = doc["traceEvents"].as_array().expect("traceEvents");
        let requests: Vec<&Value> = events.iter().filter(|e| e["name"] == "request").collect();
        let mut traced: Vec<String> = requests
            .iter()
            .map(|e| e["args"]["rid"].as_str().expect("rid").to_string())
            .collect();
        traced.sort();
        assert_eq!(traced, want);
        // On Unix time: within the last ten minutes (a sanity range, not a timing check).
        for r in &requests {
            let at = base_ns + (r["ts"].as_f64().expect("ts") * 1000.0) as u64;
            assert!(at <= now_ns && now_ns - at < 600_000_000_000, "{r}");
        }
        // Phases nest in their request's slice, on its lane.
        for e in events.iter().filter(|e| e["cat"] == "client_phase") {
            let rid = &e["args"]["rid"];
            let r = requests
                .iter()
                .find(|r| &r["args"]["rid"] == rid)
                .expect("a request for every phase");
            assert_eq!(e["tid"], r["tid"], "{e}");
            let (ts, dur) = (
                e["ts"].as_f64().unwrap_or(-1.0),
                e["dur"].as_f64().unwrap_or(-1.0),
            );
            let (rts, rdur) = (
                r["ts"].as_f64().unwrap_or(0.0),
                r["dur"].as_f64().unwrap_or(0.0),
            );
            assert!(
                ts >= rts && ts + dur <= rts + rdur + 0.001,
                "{e} outside {r}"
            );
        }
        let chunks = events.iter().filter(|e| e["name"] == "chunk").count();
        let want_chunks: usize = o.records.iter().map(|r| r.chunk_ns.len()).sum();
        assert_eq!(chunks, want_chunks);
        // A lane holds one request at a time (all 8 are scheduled at once, so they queue).
        let lanes = info["lanes"].as_u64().expect("lanes");
        assert!((1..=8).contains(&lanes), "{lanes}");
        let mut by_lane: Vec<(u64, f64, f64)> = requests
            .iter()
            .map(|r| {
                let ts = r["ts"].as_f64().unwrap_or(0.0);
                (
                    r["tid"].as_u64().unwrap_or(0),
                    ts,
                    ts + r["dur"].as_f64().unwrap_or(0.0),
                )
            })
            .collect();
        by_lane.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        for w in by_lane.windows(2) {
            assert!(
                w[0].0 != w[1].0 || w[0].2 <= w[1].1,
                "{:?} overlaps {:?}",
                w[0],
                w[1]
            );
        }
    }
    s.server.shutdown().await.expect("shutdown");
}
