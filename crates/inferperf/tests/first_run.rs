//! What a new user does after the README, as processes: `inferperf serve` in one terminal and
//! `inferperf bench serving --base-url ...` in another. The client must find the server's
//! tokenizer by itself and count tokens exactly as the server does; bad flags and an unwritable
//! output file fail before any request; SIGTERM still writes the record.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};

use common::{text, ServeProcess};

fn bench(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_inferperf"));
    c.args([
        "bench",
        "serving",
        "--disable-tqdm",
        "--warmup-requests",
        "0",
    ])
    .args(args)
    .env("NO_COLOR", "1");
    c
}

/// The value of one Prometheus metric in `/metrics` text (labels ignored); 0 if absent.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn last_record(path: &std::path::Path) -> serde_json::Value {
    let t = std::fs::read_to_string(path).expect("read the record file");
    let line = t.lines().last().unwrap_or_default();
    inferperf_loadgen::jsonl::parse_line(line).unwrap_or(serde_json::Value::Null)
}

/// Item 1 and 3 of the first-run report: against a separately started server (built-in model,
/// byte tokenizer; then with an API key), `random-ids` needs no `--tokenizer`, and the server's
/// prompt_tokens equal the client's count plus the BOS the server adds: no mismatch line.
#[test]
fn bench_serving_gets_the_tokenizer_from_an_inferperf_server() {
    for key in [None, Some("sekrit")] {
        let mut serve_args = vec![];
        if let Some(k) = key {
            serve_args.extend(["--api-key", k]);
        }
        let server = ServeProcess::start(&serve_args);
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("r.jsonl");
        let header = key.map(|k| format!("Authorization=Bearer {k}"));
        let mut cmd = bench(&[
            "--base-url",
            &server.url(),
            "--dataset-name",
            "random-ids",
            "--num-prompts",
            "4",
            "--random-input-len",
            "24",
            "--random-output-len",
            "6",
        ]);
        if let Some(h) = &header {
            cmd.args(["--header", h]);
        }
        let run = cmd.arg("--output-file").arg(&out).output().expect("run");
        let all = text(&run);
        assert!(run.status.success(), "{all}");
        assert!(!all.contains("needs a tokenizer"), "{all}");
        assert_eq!(
            all.matches("Verdict:").count(),
            1,
            "one verdict line: {all}"
        );
        assert!(!all.contains("prompt_tokens != client count"), "{all}");
        let r = last_record(&out);
        assert_eq!(r["completed"], 4, "{all}");
    }
}

/// The published tokenizer is behind the API key like every other route.
#[test]
fn the_published_tokenizer_honours_the_api_key() {
    let server = ServeProcess::start(&["--api-key", "k1"]);
    assert!(server
        .get("/inferperf/tokenizer", None)
        .starts_with("HTTP/1.1 401"));
    let ok = server.get("/inferperf/tokenizer", Some("k1"));
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains(r#""kind":"byte""#), "{ok}");
}

/// An output file in a missing directory fails at once, before any request, saying so once.
#[test]
fn an_unwritable_output_file_fails_before_the_run() {
    let server = ServeProcess::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("no-such-dir").join("r.jsonl");
    let run = bench(&[
        "--base-url",
        &server.url(),
        "--dataset-name",
        "random-ids",
        "--num-prompts",
        "2",
        "--random-input-len",
        "8",
        "--random-output-len",
        "2",
    ])
    .arg("--output-file")
    .arg(&out)
    .output()
    .expect("run");
    let all = text(&run);
    assert!(!run.status.success(), "{all}");
    assert_eq!(all.matches("does not exist").count(), 1, "{all}");
    assert!(
        !all.contains("#Input tokens"),
        "no dataset was built: {all}"
    );
    let metrics = server.get("/metrics", None);
    assert!(metrics.contains("sglang:forward_ct"), "{metrics}");
    assert_eq!(
        metric(&metrics, "sglang:forward_ct"),
        0.0,
        "no request reached the server: {metrics}"
    );
}

/// Out-of-range ratios are refused by the flag parser, naming the flag.
#[test]
fn a_range_ratio_outside_zero_one_is_refused() {
    for v in ["1.5", "-0.1", "nan"] {
        let run = bench(&[&format!("--random-range-ratio={v}")])
            .output()
            .expect("run");
        let all = text(&run);
        assert_eq!(run.status.code(), Some(2), "{all}");
        assert!(
            all.contains("--random-range-ratio") && all.contains("outside [0, 1]"),
            "{all}"
        );
    }
}

/// SIGTERM (what CI runners and `timeout` send) is handled like Ctrl-C: the run stops, the
/// record of what completed is written and marked incomplete, and the exit status is 143.
#[test]
fn sigterm_writes_the_incomplete_record() {
    let server = ServeProcess::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("r.jsonl");
    let mut child = bench(&[
        "--base-url",
        &server.url(),
        "--dataset-name",
        "random-ids",
        "--num-prompts",
        "400",
        "--random-input-len",
        "16",
        "--random-output-len",
        "64",
        "--max-concurrency",
        "2",
    ])
    .arg("--output-file")
    .arg(&out)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start bench serving");
    // Wait until one request has finished (the server counts it), then terminate.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let m = server.get("/metrics", None);
        if metric(&m, "sglang:num_requests_total") >= 1.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no request ever ran: {m}"
        );
        std::thread::yield_now();
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let exit = child.wait().expect("wait");
    assert_eq!(exit.code(), Some(143), "{stderr}");
    let r = last_record(&out);
    assert_eq!(r["incomplete"], true, "{stderr}");
    assert_eq!(r["abort_reason"], "terminated (SIGTERM)");
}

/// `bench sweep --api-base` against an inferperf server needs no `--model-tokenizer`.
#[test]
fn bench_sweep_gets_the_tokenizer_from_an_inferperf_server() {
    let server = ServeProcess::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let run = Command::new(env!("CARGO_BIN_EXE_inferperf"))
        .args([
            "bench",
            "sweep",
            "--api-base",
            &server.url(),
            "--traffic-scenario",
            "D(16,4)",
            "--num-concurrency",
            "1",
            "--max-requests-per-run",
            "2",
            "--experiment-folder-name",
            "first-run",
            "--experiment-base-dir",
        ])
        .arg(dir.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("run");
    let all = text(&run);
    assert!(run.status.success(), "{all}");
    assert!(!all.contains("--model-tokenizer is required"), "{all}");
    assert!(dir.path().join("first-run").is_dir(), "{all}");
}
