//! The files `/start_profile` makes the LLM server write, against the real engine started as
//! `inferperf serve` starts it: names that cannot be files are 400s naming the field, a trace
//! that cannot be written is a 500 naming the file (also for a window that closed by itself),
//! traces are never overwritten, and `--profile-output-root` confines output directories.

mod common;

use std::path::Path;

use common::*;
use inferperf_server::{EmbeddedServer, ServerConfig};
use serde_json::{json, Value};

struct Server {
    server: EmbeddedServer,
    base: String,
    http: reqwest::Client,
}

async fn start(args: ServerConfig) -> Server {
    let server = EmbeddedServer::start(args).await.expect("start the server");
    let base = server.base_url();
    Server {
        server,
        base,
        http: reqwest::Client::new(),
    }
}

impl Server {
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

    /// One request of `n` greedy tokens (`n` forward steps).
    async fn generate(&self, n: usize) {
        let req = json!({"text": "profile me", "sampling_params":
            {"max_new_tokens": n, "temperature": 0, "ignore_eos": true}});
        let (status, body) = post_json(&self.http, &format!("{}/generate", self.base), &req).await;
        assert_eq!(status, 200, "{body}");
    }
}

fn error_param(body: &str) -> Option<String> {
    json(body)["error"]["param"].as_str().map(str::to_string)
}

fn trace_of(dir: &Path, id: &str) -> std::path::PathBuf {
    dir.join(format!("{id}-TP-0.trace.json.gz"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_names_that_cannot_be_file_names_are_400s_naming_the_field() {
    let s = start(ServerConfig::ephemeral()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let max = inferperf_profiler::MAX_NAME_STEM_BYTES;
    for (body, field, needle) in [
        (json!({"profile_id": "a\u{0}b"}), "profile_id", "NUL"),
        (
            json!({"profile_id": "x".repeat(256)}),
            "profile_id",
            "too long",
        ),
        (
            json!({"profile_id": "x".repeat(max + 1)}),
            "profile_id",
            "too long",
        ),
        (
            json!({"profile_prefix": "p".repeat(max / 2 + 1), "profile_id": "i".repeat(max / 2)}),
            "profile_prefix",
            "too long",
        ),
        (json!({"profile_prefix": "a\u{0}"}), "profile_prefix", "NUL"),
    ] {
        let mut body = body;
        body["output_dir"] = json!(dir.path());
        let (status, reply) = s.start_profile(body.clone()).await;
        assert_error(status, &reply, 400, &[field, needle]);
        assert_eq!(error_param(&reply).as_deref(), Some(field), "{reply}");
    }
    // The longest accepted id makes a file.
    let id = "x".repeat(max);
    let (status, reply) = s
        .start_profile(json!({"output_dir": dir.path(), "profile_id": id}))
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(s.stop_profile().await.0, 200);
    assert!(trace_of(dir.path(), &id).is_file());
    s.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_that_cannot_be_written_is_a_500_naming_the_file() {
    let s = start(ServerConfig::ephemeral()).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let gone = tmp.path().join("gone");
    let (status, reply) = s
        .start_profile(json!({"output_dir": gone, "profile_id": "lost"}))
        .await;
    assert_eq!(status, 200, "{reply}");
    std::fs::remove_dir(&gone).expect("remove the output directory");
    s.generate(2).await;
    let (status, reply) = s.stop_profile().await;
    let file = trace_of(&gone, "lost").display().to_string();
    assert_error(status, &reply, 500, &[&file, "No such file or directory"]);
    // Reported once; the profiler is free again.
    assert_eq!(s.stop_profile().await.0, 409);
    let (status, reply) = s
        .start_profile(json!({"output_dir": tmp.path(), "profile_id": "next"}))
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(s.stop_profile().await.0, 200);
    s.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_that_closed_by_itself_reports_its_failed_write_at_the_next_stop() {
    let s = start(ServerConfig::ephemeral()).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let gone = tmp.path().join("gone");
    let (status, reply) = s
        .start_profile(json!({"output_dir": gone, "profile_id": "bounded", "num_steps": 1}))
        .await;
    assert_eq!(status, 200, "{reply}");
    std::fs::remove_dir(&gone).expect("remove the output directory");
    // The window closes by itself after one step; its write fails with nobody waiting.
    s.generate(3).await;
    let (status, reply) = s.stop_profile().await;
    let file = trace_of(&gone, "bounded").display().to_string();
    assert_error(status, &reply, 500, &[&file, "No such file or directory"]);
    let (status, reply) = s.stop_profile().await;
    assert_error(status, &reply, 409, &["not in progress"]);
    s.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_are_never_overwritten() {
    let s = start(ServerConfig::ephemeral()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path();

    // A reused profile_id is refused at start, naming the file; the trace is untouched.
    let (status, _) = s
        .start_profile(json!({"output_dir": out, "profile_id": "same"}))
        .await;
    assert_eq!(status, 200);
    s.generate(2).await;
    assert_eq!(s.stop_profile().await.0, 200);
    let first = trace_of(out, "same");
    let bytes = std::fs::read(&first).expect("first trace");
    let (status, reply) = s
        .start_profile(json!({"output_dir": out, "profile_id": "same"}))
        .await;
    assert_error(
        status,
        &reply,
        409,
        &[&first.display().to_string(), "never overwritten"],
    );
    assert_eq!(std::fs::read(&first).expect("trace"), bytes);

    // A file that appears while profiling is not replaced either: the stop reports it.
    let (status, _) = s
        .start_profile(json!({"output_dir": out, "profile_id": "late"}))
        .await;
    assert_eq!(status, 200);
    let late = trace_of(out, "late");
    std::fs::write(&late, b"precious").expect("write");
    let (status, reply) = s.stop_profile().await;
    assert_error(
        status,
        &reply,
        500,
        &[&late.display().to_string(), "exists"],
    );
    assert_eq!(std::fs::read(&late).expect("file"), b"precious");
    s.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_output_root_confines_output_directories() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let s = start(ServerConfig {
        profile_output_root: Some(root.clone()),
        ..ServerConfig::ephemeral()
    })
    .await;
    let root = root.canonicalize().expect("the root is created at start");
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).expect("mkdir");
    std::os::unix::fs::symlink(&outside, root.join("link")).expect("symlink");

    for escape in [
        root.join("..").join("escaped").display().to_string(),
        "../escaped".to_string(),
        "runs/../../escaped".to_string(),
        "link/traces".to_string(),
        outside.display().to_string(),
    ] {
        let (status, reply) = s.start_profile(json!({"output_dir": escape})).await;
        assert_error(
            status,
            &reply,
            403,
            &[
                &escape,
                &root.display().to_string(),
                "--profile-output-root",
            ],
        );
        assert_eq!(error_param(&reply).as_deref(), Some("output_dir"));
    }
    assert!(
        !tmp.path().join("escaped").exists(),
        "nothing created outside"
    );
    assert!(!outside.join("traces").exists(), "nothing created outside");

    // Inside the root: an absolute subdirectory, a relative one (taken from the root), and
    // no output_dir at all (the root itself).
    let cases = [
        (
            json!({"output_dir": root.join("abs"), "profile_id": "a"}),
            root.join("abs"),
        ),
        (
            json!({"output_dir": "runs/rel", "profile_id": "b"}),
            root.join("runs/rel"),
        ),
        (json!({"profile_id": "c"}), root.clone()),
    ];
    for (body, dir) in cases {
        let (status, reply) = s.start_profile(body.clone()).await;
        assert_eq!(status, 200, "{body}: {reply}");
        s.generate(2).await;
        assert_eq!(s.stop_profile().await.0, 200);
        let id = body["profile_id"].as_str().expect("id");
        assert!(trace_of(&dir, id).is_file(), "{body}");
    }
    s.server.shutdown().await.expect("shutdown");
}
