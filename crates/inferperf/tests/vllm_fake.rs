//! inferperf against a server that profiles like vLLM: `/start_profile` takes
//! `profile_prefix`/`delay_iterations`/`max_iterations` (unknown fields ignored, so SGLang's
//! `num_steps`/`output_dir` do nothing), the session stays open until `/stop_profile`, traces
//! go where the server decides, `/version` answers, `/reset_prefix_cache` is absent (404), and
//! OpenAI routes stream with usage. Every command that opens a window must translate it, close
//! it, and say where the traces really go.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use common::text;
use serde_json::{json, Value};

/// What the fake saw.
#[derive(Default)]
struct Seen {
    start_bodies: Vec<Value>,
    stops: usize,
    open: bool,
    steps: u64,
    /// `X-Request-Id` of every completion request.
    request_ids: Vec<String>,
    /// Completion bodies that carried a `rid`.
    rids_in_body: usize,
}

type Shared = Arc<Mutex<Seen>>;

struct FakeVllm {
    url: String,
    seen: Shared,
    _runtime: tokio::runtime::Runtime,
}

impl FakeVllm {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let seen: Shared = Arc::default();
        let app = Router::new()
            .route(
                "/version",
                get(|| async { Json(json!({"version": "0.32.0"})) }),
            )
            .route(
                "/v1/models",
                get(|| async {
                    Json(json!({"object": "list", "data": [{"id": "smollm2", "object": "model"}]}))
                }),
            )
            .route("/start_profile", post(start_profile))
            .route("/stop_profile", post(stop_profile))
            .route("/metrics", get(metrics))
            .route("/v1/completions", post(completions))
            .route("/v1/chat/completions", post(chat_completions))
            .with_state(seen.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}"),
            seen,
            _runtime: runtime,
        }
    }

    fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.seen.lock().expect("lock"))
    }
}

/// vLLM's `StartProfileRequest`: only its three fields count; starting twice is an error.
async fn start_profile(
    State(s): State<Shared>,
    body: Option<Json<Value>>,
) -> (axum::http::StatusCode, String) {
    let mut s = s.lock().expect("lock");
    if s.open {
        return (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "ProfilerAlreadyActiveError".into(),
        );
    }
    s.open = true;
    s.start_bodies
        .push(body.map(|b| b.0).unwrap_or(Value::Null));
    (axum::http::StatusCode::OK, String::new())
}

async fn stop_profile(State(s): State<Shared>) -> axum::http::StatusCode {
    let mut s = s.lock().expect("lock");
    s.open = false;
    s.stops += 1;
    axum::http::StatusCode::OK
}

/// Each scrape reports a few more engine steps, as a busy server would.
async fn metrics(State(s): State<Shared>) -> String {
    let mut s = s.lock().expect("lock");
    s.steps += 2;
    format!(
        "# TYPE vllm:iteration_tokens_total histogram\nvllm:iteration_tokens_total_count{{engine=\"0\",model_name=\"smollm2\"}} {}.0\n",
        s.steps
    )
}

async fn completions(
    State(s): State<Shared>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    {
        let mut s = s.lock().expect("lock");
        if let Some(id) = headers.get("x-request-id").and_then(|v| v.to_str().ok()) {
            s.request_ids.push(id.to_string());
        }
        s.rids_in_body += usize::from(body.get("rid").is_some());
    }
    let n = body["max_tokens"].as_u64().unwrap_or(4).min(8);
    if body["stream"].as_bool() != Some(true) {
        return Json(json!({"choices": [{"text": "x".repeat(n as usize)}], "usage": {"prompt_tokens": 3, "completion_tokens": n}})).into_response();
    }
    // A list of token-id prompts is a batch: vLLM streams each choice with its index.
    let prompts = match &body["prompt"] {
        Value::Array(p) if p.first().is_some_and(Value::is_array) => p.len(),
        _ => 1,
    };
    let mut out = String::new();
    for _ in 0..n {
        for i in 0..prompts {
            out.push_str(&format!(
                "data: {{\"choices\":[{{\"index\":{i},\"text\":\"x\"}}]}}\n\n"
            ));
        }
    }
    out.push_str(&format!(
        "data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":3,\"completion_tokens\":{}}}}}\n\ndata: [DONE]\n\n",
        n as usize * prompts
    ));
    ([("content-type", "text/event-stream")], out).into_response()
}

/// Chat stream with usage (what `bench sweep` sends).
async fn chat_completions(Json(body): Json<Value>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let n = body["max_tokens"].as_u64().unwrap_or(4).min(8);
    let mut out = String::new();
    for _ in 0..n {
        out.push_str("data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n");
    }
    out.push_str(&format!(
        "data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":3,\"completion_tokens\":{n}}}}}\n\ndata: [DONE]\n\n"
    ));
    ([("content-type", "text/event-stream")], out).into_response()
}

fn inferperf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_inferperf"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run inferperf")
}

/// `profile --num-steps 3` sends vLLM's bound (not SGLang's ignored fields), watches the steps,
/// stops the window itself and says the server decides where the traces go.
#[test]
fn profile_translates_the_window_and_closes_it() {
    let fake = FakeVllm::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = inferperf(&[
        "profile",
        "--url",
        &fake.url,
        "--num-steps",
        "3",
        "--output-dir",
        &dir.path().display().to_string(),
    ]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    let (bodies, stops, open) = fake.seen(|s| (s.start_bodies.clone(), s.stops, s.open));
    assert_eq!(bodies, vec![json!({"max_iterations": 3})], "{all}");
    assert_eq!(stops, 1, "the client closed the window: {all}");
    assert!(!open);
    assert!(all.contains("ignores output_dir"), "{all}");
    assert!(
        !all.contains(&format!(
            "Dump profiling traces to {}",
            dir.path().display()
        )),
        "{all}"
    );
}

/// `bench serving --profile` against vLLM: translated start, a stop after the run even for a
/// bounded window, and `--flush-cache` on a server without the route warns and goes on.
#[test]
fn bench_serving_profiles_vllm_and_survives_a_missing_flush_route() {
    let fake = FakeVllm::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let record = dir.path().join("r.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_inferperf"))
        .args([
            "bench",
            "serving",
            "--backend",
            "vllm",
            "--base-url",
            &fake.url,
            "--tokenizer",
        ])
        .arg(tokenizer_json(dir.path()))
        .args([
            "--dataset-name",
            "random-ids",
            "--num-prompts",
            "3",
            "--random-input-len",
            "4",
            "--random-output-len",
            "4",
            "--warmup-requests",
            "0",
            "--disable-tqdm",
            "--flush-cache",
            "--profile",
            "--profile-num-steps",
            "5",
            "--output-file",
        ])
        .arg(&record)
        .env("NO_COLOR", "1")
        .output()
        .expect("run");
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    let (bodies, stops, open) = fake.seen(|s| (s.start_bodies.clone(), s.stops, s.open));
    assert_eq!(bodies.len(), 1, "{all}");
    assert_eq!(bodies[0]["max_iterations"], 5, "{all}");
    assert!(bodies[0].get("num_steps").is_none() && bodies[0].get("output_dir").is_none());
    assert_eq!((stops, open), (1, false), "{all}");
    assert!(all.contains("did not flush"), "{all}");
    // Every request carries its id as vLLM reads it: X-Request-Id, distinct per request, and
    // the body has no `rid` (vLLM would warn about an unknown field).
    let mut ids = fake.seen(|s| s.request_ids.clone());
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert_eq!(fake.seen(|s| s.rids_in_body), 0);
    let line = std::fs::read_to_string(&record).expect("record");
    let r = inferperf_loadgen::jsonl::parse_line(line.lines().last().unwrap_or_default())
        .expect("parse");
    assert_eq!(r["completed"], 3, "{all}");
    assert!(
        r["flush_cache_skipped"]
            .as_str()
            .unwrap_or("")
            .contains("404"),
        "{r}"
    );
}

/// `send-one --backend vllm --profile`: an OpenAI request, and the window closed after it.
#[test]
fn send_one_speaks_openai_and_closes_the_window() {
    let fake = FakeVllm::start();
    let port = fake.url.rsplit(':').next().unwrap_or_default().to_string();
    let out = inferperf(&[
        "send-one",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--backend",
        "vllm",
        "--max-new-tokens",
        "4",
        "--profile",
    ]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("xxxx"), "{all}");
    let (bodies, stops) = fake.seen(|s| (s.start_bodies.clone(), s.stops));
    assert_eq!(bodies, vec![json!({"max_iterations": 3})], "{all}");
    assert_eq!(stops, 1, "{all}");
}

/// A one-word WordLevel tokenizer for the random-ids prompts (the fake server counts nothing).
fn tokenizer_json(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("tokenizer.json");
    std::fs::write(
        &p,
        r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
        "normalizer":null,"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,
        "model":{"type":"WordLevel","vocab":{"[UNK]":0,"a":1,"b":2,"c":3},"unk_token":"[UNK]"}}"#,
    )
    .expect("write tokenizer");
    p
}

/// `bench sweep --sglang-profile` against vLLM: each point's window is translated and closed
/// after the point (vLLM would keep it open), one start and one stop per point.
#[test]
fn sweep_closes_every_points_window() {
    let fake = FakeVllm::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let tok = tokenizer_json(dir.path());
    let out = inferperf(&[
        "bench",
        "sweep",
        "--api-base",
        &fake.url,
        "--api-model-name",
        "smollm2",
        "--model-tokenizer",
        &tok.display().to_string(),
        "--traffic-scenario",
        "D(4,4)",
        "--num-concurrency",
        "1",
        "--num-concurrency",
        "2",
        "--max-requests-per-run",
        "2",
        "--sglang-profile",
        "--experiment-folder-name",
        "sweep",
        "--experiment-base-dir",
        &dir.path().display().to_string(),
    ]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    let (bodies, stops, open) = fake.seen(|s| (s.start_bodies.clone(), s.stops, s.open));
    assert_eq!(bodies.len(), 2, "{all}");
    assert!(bodies
        .iter()
        .all(|b| b.get("max_iterations").is_some() && b.get("num_steps").is_none()));
    assert_eq!((stops, open), (2, false), "{all}");
}

/// `bench one-batch-server --backend vllm --profile`: the window is opened in vLLM's dialect
/// (bounded by `max_iterations`, no `output_dir`), closed by the client after the batch, and
/// the result names no directory the server never wrote to.
#[test]
fn one_batch_server_profiles_vllm_and_closes_the_window() {
    let fake = FakeVllm::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = inferperf(&[
        "bench",
        "one-batch-server",
        "--base-url",
        &fake.url,
        "--backend",
        "vllm",
        "--batch-size",
        "2",
        "--input-len",
        "4",
        "--output-len",
        "3",
        "--skip-warmup",
        "--profile",
        "--profile-output-dir",
        &dir.path().display().to_string(),
        "--result-filename",
        &dir.path().join("result.jsonl").display().to_string(),
    ]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    let (bodies, stops, open) = fake.seen(|s| (s.start_bodies.clone(), s.stops, s.open));
    assert_eq!(bodies.len(), 1, "{all}");
    assert!(
        bodies[0].get("max_iterations").is_some()
            && bodies[0].get("num_steps").is_none()
            && bodies[0].get("output_dir").is_none(),
        "{bodies:?}"
    );
    assert_eq!(
        (stops, open),
        (1, false),
        "the client closed the window: {all}"
    );
    let results = std::fs::read_to_string(dir.path().join("result.jsonl")).expect("results");
    // The plain pass and the profiled pass, as SGLang appends them.
    assert_eq!(results.lines().count(), 2, "{results}");
    // The result names no trace directory: vLLM wrote its traces where it was started to.
    assert!(
        !results.contains(&dir.path().display().to_string()),
        "{results}"
    );
}
