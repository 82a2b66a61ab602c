//! `bench serving` end to end against the real inferperf HTTP server (simulated engine) on
//! 127.0.0.1: every backend, every dataset, the record's keys and arithmetic on a run with a
//! known token schedule, and failure handling (HTTP errors, Ctrl-C, a dead server).

mod common;

use std::time::Duration;

use common::{args, last_record, run, SimServer};
use inferperf_engine::simulated::TokenSchedule;
use inferperf_loadgen::jsonl::{top_level_keys, SGLANG_KEYS};
use inferperf_loadgen::record::ErrorKind;
use inferperf_loadgen::runner::Abort;

fn fixture(name: &str) -> String {
    inferperf_test_support::manifest_dir!()
        .join("tests/fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backend_streams_and_counts_tokens() {
    let s = SimServer::start(TokenSchedule::ZeroLatency).await;
    let url = s.server.base_url();
    for backend in [
        "sglang",
        "sglang-native",
        "sglang-oai",
        "sglang-oai-chat",
        "vllm",
        "vllm-chat",
        "lmdeploy",
        "lmdeploy-chat",
        "openai",
        "openai-chat",
    ] {
        let dir = tempdir();
        let a = args(&[
            "--backend",
            backend,
            "--dataset-name",
            "random-ids",
            "--num-prompts",
            "12",
            "--random-input-len",
            "32",
            "--random-output-len",
            "9",
            "--random-range-ratio",
            "1",
            "--max-concurrency",
            "4",
        ]);
        let out = run(&url, Some(s.tokenizer()), a, dir.path(), Abort::default()).await;
        let m = &out.metrics;
        assert_eq!(
            (m.completed, m.failed),
            (12, 0),
            "{backend}: {:?}",
            out.records[0].error
        );
        assert_eq!(m.total_output, 12 * 9, "{backend}");
        assert_eq!(m.total_output_retokenized, 12 * 9, "{backend}");
        assert_eq!(m.total_input, 12 * 32, "{backend}");
        for r in &out.records {
            assert_eq!(
                r.chunk_ns.len(),
                9,
                "{backend}: one content chunk per token"
            );
            assert!(r.first_token_ns >= r.sent_ns && r.last_ns >= r.first_token_ns);
            // Chat backends add the chat template's tokens on the server side.
            let server = r.server_prompt_len.unwrap_or(32);
            if backend.ends_with("chat") {
                assert!(server >= 32, "{backend}: {server}");
            } else {
                assert_eq!(server, 32, "{backend}: exact prompt length");
            }
        }
        let rec = last_record(dir.path().join("out.jsonl").as_path());
        assert_eq!(rec["backend"], backend);
        assert_eq!(rec["completed"], 12);
    }
    // Non-streaming and token-id prompts on the native backend.
    let dir = tempdir();
    let a = args(&[
        "--backend",
        "sglang",
        "--dataset-name",
        "random-ids",
        "--num-prompts",
        "5",
        "--random-input-len",
        "20",
        "--random-output-len",
        "7",
        "--random-range-ratio",
        "1",
        "--tokenize-prompt",
        "--disable-stream",
    ]);
    let out = run(&url, Some(s.tokenizer()), a, dir.path(), Abort::default()).await;
    assert_eq!((out.metrics.completed, out.metrics.total_output), (5, 35));
    assert!(out.records.iter().all(|r| r.ttft_s() == r.latency_s()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dataset_runs() {
    let s = SimServer::start(TokenSchedule::ZeroLatency).await;
    let url = s.server.base_url();
    let sharegpt = fixture("sharegpt_small.json");
    let custom = fixture("custom_small.jsonl");
    let mooncake = fixture("mooncake_small.jsonl");
    let cases: Vec<(&str, Vec<&str>, usize)> = vec![
        (
            "sharegpt",
            vec![
                "--dataset-path",
                &sharegpt,
                "--num-prompts",
                "20",
                "--sharegpt-output-len",
                "6",
            ],
            20,
        ),
        (
            "sharegpt",
            vec![
                "--dataset-path",
                &sharegpt,
                "--num-prompts",
                "10",
                "--apply-chat-template",
                "--sharegpt-context-len",
                "200",
            ],
            10,
        ),
        (
            "random",
            vec![
                "--dataset-path",
                &sharegpt,
                "--num-prompts",
                "15",
                "--random-input-len",
                "50",
                "--random-output-len",
                "5",
            ],
            15,
        ),
        (
            "random-ids",
            vec![
                "--num-prompts",
                "15",
                "--random-input-len",
                "50",
                "--random-output-len",
                "5",
            ],
            15,
        ),
        (
            "generated-shared-prefix",
            vec![
                "--gsp-num-groups",
                "3",
                "--gsp-prompts-per-group",
                "4",
                "--gsp-system-prompt-len",
                "40",
                "--gsp-question-len",
                "8",
                "--gsp-output-len",
                "5",
                "--gsp-send-routing-key",
            ],
            12,
        ),
        (
            "custom",
            vec![
                "--dataset-path",
                &custom,
                "--num-prompts",
                "10",
                "--sharegpt-output-len",
                "5",
            ],
            10,
        ),
        (
            "mooncake",
            vec![
                "--dataset-path",
                &mooncake,
                "--num-prompts",
                "12",
                "--mooncake-slowdown-factor",
                "0.5",
            ],
            12,
        ),
    ];
    for (name, extra, expect) in cases {
        let dir = tempdir();
        let mut flags = vec!["--backend", "sglang", "--dataset-name", name];
        flags.extend(extra.iter().copied());
        let out = run(
            &url,
            Some(s.tokenizer()),
            args(&flags),
            dir.path(),
            Abort::default(),
        )
        .await;
        assert_eq!(out.records.len(), expect, "{name}");
        assert_eq!(
            out.metrics.failed,
            0,
            "{name}: {:?}",
            out.records.iter().find_map(|r| r.error.clone())
        );
        for r in &out.records {
            // The client's count equals the server's (no drift between tokenizers).
            assert_eq!(r.server_prompt_len, Some(r.prompt_len), "{name}");
            assert_eq!(r.output_len, r.requested_output_len, "{name}");
        }
        let rec = last_record(dir.path().join("out.jsonl").as_path());
        assert_eq!(rec["dataset_name"], name);
        if name == "mooncake" {
            assert_eq!(rec["request_rate"], "trace");
            // Trace replay: request i is scheduled at (ts_i - ts_0) * slowdown.
            let first = out.records[0].scheduled_ns;
            let last = out.records[11].scheduled_ns;
            assert!(last > first);
        }
    }
}

#[test]
fn sharegpt_missing_file_names_dataset_path() {
    let a = args(&[
        "--dataset-name",
        "sharegpt",
        "--dataset-path",
        "/nonexistent/x.json",
    ]);
    let tok: inferperf_loadgen::tokenizer::SharedTokenizer =
        std::sync::Arc::new(inferperf_engine::simulated::SimTokenizer::new(1000));
    let err = inferperf_bench::serving::build_dataset(&a, Some(&tok))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("--dataset-path"), "{err}");
}

/// TTFT 30 ms then one token every 4 ms, 8 tokens, against absolute deadlines: every
/// per-request timestamp is known from below, and the record's aggregates must be exactly
/// the arithmetic of its own per-request details.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_keys_and_arithmetic_on_a_known_schedule() {
    let (ttft, itl) = (Duration::from_millis(30), Duration::from_millis(4));
    let s = SimServer::start(TokenSchedule::Fixed { ttft, itl }).await;
    let dir = tempdir();
    let a = args(&[
        "--backend",
        "sglang-oai-chat",
        "--dataset-name",
        "random-ids",
        "--num-prompts",
        "10",
        "--random-input-len",
        "16",
        "--random-output-len",
        "8",
        "--random-range-ratio",
        "1",
        "--request-rate",
        "200",
        "--max-concurrency",
        "5",
        "--output-details",
        "--tag",
        "known",
        "--goodput",
        "ttft:100000",
        "tpot:100000",
        "e2el:100000",
    ]);
    let out = run(
        &s.server.base_url(),
        Some(s.tokenizer()),
        a,
        dir.path(),
        Abort::default(),
    )
    .await;
    let path = dir.path().join("out.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let line = text.lines().last().unwrap_or_default();
    let keys = top_level_keys(line).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        &keys[..SGLANG_KEYS.len()],
        SGLANG_KEYS,
        "SGLang keys first, in order"
    );
    let r = last_record(&path);
    assert_eq!(r["tag"], "known");
    assert_eq!(r["completed"], 10);
    assert_eq!(r["total_output_tokens"], 80);
    assert_eq!(r["request_rate"], 200.0);
    assert_eq!(r["max_concurrency"], 5);
    assert_eq!(r["request_goodput"].as_f64().map(|g| g > 0.0), Some(true));

    let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    let dur = f("duration");
    assert!((f("request_throughput") - 10.0 / dur).abs() < 1e-9);
    assert!((f("output_throughput") - 80.0 / dur).abs() < 1e-9);
    let ttfts: Vec<f64> = r["ttfts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_f64())
        .collect();
    let lat: Vec<f64> = r["latencies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_f64())
        .collect();
    assert_eq!((ttfts.len(), lat.len()), (10, 10));
    let mean_ttft = ttfts.iter().sum::<f64>() / 10.0 * 1000.0;
    assert!((f("mean_ttft_ms") - mean_ttft).abs() < 1e-6);
    assert!((f("concurrency") - lat.iter().sum::<f64>() / dur).abs() < 1e-9);
    let itls: Vec<f64> = r["itls"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|v| v.as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_f64())
        .collect();
    assert_eq!(itls.len(), 10 * 7, "one gap per token after the first");
    let mut sorted = itls.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let h = (sorted.len() - 1) as f64 * 0.99;
    let (lo, hi) = (
        sorted[h as usize],
        sorted[(h as usize + 1).min(sorted.len() - 1)],
    );
    let p99 = (lo + (h - h.floor()) * (hi - lo)) * 1000.0;
    assert!((f("p99_itl_ms") - p99).abs() < 1e-6);
    // TPOT = (latency - ttft)/(n - 1) per request.
    let tpots: Vec<f64> = lat.iter().zip(&ttfts).map(|(l, t)| (l - t) / 7.0).collect();
    assert!((f("mean_tpot_ms") - tpots.iter().sum::<f64>() / 10.0 * 1000.0).abs() < 1e-6);
    // The schedule is a lower bound: the server never sends early, so no client reading is
    // below it.
    assert!(ttfts.iter().all(|t| *t >= ttft.as_secs_f64()));
    for rec in &out.records {
        assert!(rec.chunk_ns.windows(2).all(|w| w[1] >= w[0]));
        assert!(rec.latency_s() >= (ttft + itl * 7).as_secs_f64());
    }
    assert!(r["validity"]["verdict"].as_str().is_some());
    assert_eq!(r["incomplete"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_errors_are_counted_not_dropped() {
    let s = SimServer::start(TokenSchedule::ZeroLatency).await;
    let dir = tempdir();
    // A negative max_tokens is rejected by the server with an HTTP error for every request.
    let a = args(&[
        "--backend",
        "sglang-oai",
        "--dataset-name",
        "random-ids",
        "--num-prompts",
        "6",
        "--random-input-len",
        "8",
        "--random-output-len",
        "4",
        "--warmup-requests",
        "0",
        "--extra-request-body",
        r#"{"max_tokens": -1}"#,
    ]);
    let out = run(
        &s.server.base_url(),
        Some(s.tokenizer()),
        a,
        dir.path(),
        Abort::default(),
    )
    .await;
    assert_eq!((out.metrics.completed, out.metrics.failed), (0, 6));
    assert!(out
        .records
        .iter()
        .all(|r| r.error.as_ref().map(|e| e.kind) == Some(ErrorKind::HttpStatus)));
    let r = last_record(dir.path().join("out.jsonl").as_path());
    assert_eq!(r["failed"], 6);
    assert_eq!(r["errors_by_kind"]["http_status"], 6);
    assert_eq!(r["error_adjusted_p99_e2e_latency_ms"], "Infinity");
}

/// Wait (without sleeping) until the engine has requests in flight.
async fn until_running(s: &SimServer) {
    loop {
        let st = s.sim.handle.internal_state().await.unwrap_or_default();
        if st.num_running_reqs > 0 {
            return;
        }
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_writes_an_incomplete_record() {
    let s = SimServer::start(TokenSchedule::Fixed {
        ttft: Duration::from_millis(1),
        itl: Duration::from_millis(50),
    })
    .await;
    let dir = tempdir();
    let a = args(&[
        "--backend",
        "sglang-oai",
        "--dataset-name",
        "random-ids",
        "--num-prompts",
        "50",
        "--random-input-len",
        "8",
        "--random-output-len",
        "400",
        "--max-concurrency",
        "2",
        "--warmup-requests",
        "0",
    ]);
    let abort = Abort::default();
    let url = s.server.base_url();
    let tok = s.tokenizer();
    let path = dir.path().to_path_buf();
    let a2 = abort.clone();
    let task = tokio::spawn(async move { run(&url, Some(tok), a, &path, a2).await });
    until_running(&s).await;
    abort.trigger("interrupted (Ctrl-C)");
    let out = task.await.unwrap_or_else(|e| panic!("{e}"));
    assert!(out.incomplete);
    assert!(out.metrics.failed >= 1);
    assert!(out
        .records
        .iter()
        .any(|r| r.error.as_ref().map(|e| e.kind) == Some(ErrorKind::Cancelled)));
    let r = last_record(dir.path().join("out.jsonl").as_path());
    assert_eq!(r["incomplete"], true);
    assert_eq!(r["abort_reason"], "interrupted (Ctrl-C)");
    assert!(r["validity"]["not_started"].as_u64().unwrap_or(0) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_server_still_yields_a_record() {
    let s = SimServer::start(TokenSchedule::Fixed {
        ttft: Duration::from_millis(1),
        itl: Duration::from_millis(20),
    })
    .await;
    let dir = tempdir();
    let a = args(&[
        "--backend",
        "sglang-oai",
        "--dataset-name",
        "random-ids",
        "--num-prompts",
        "200",
        "--random-input-len",
        "8",
        "--random-output-len",
        "50",
        "--max-concurrency",
        "4",
        "--warmup-requests",
        "0",
    ]);
    let url = s.server.base_url();
    let tok = s.tokenizer();
    let path = dir.path().to_path_buf();
    let task = tokio::spawn(async move { run(&url, Some(tok), a, &path, Abort::default()).await });
    until_running(&s).await;
    let SimServer { server, sim } = s;
    server.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    let out = task.await.unwrap_or_else(|e| panic!("{e}"));
    drop(sim);
    assert!(out.incomplete, "a dead server ends the run early");
    assert!(out.metrics.failed > 0);
    let r = last_record(dir.path().join("out.jsonl").as_path());
    assert_eq!(r["incomplete"], true);
    assert!(r["abort_reason"]
        .as_str()
        .unwrap_or("")
        .contains("server unreachable"));
    assert_eq!(
        r["completed"].as_u64().unwrap_or(0) + r["failed"].as_u64().unwrap_or(0),
        out.records.len() as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_report_follows_sglang_keys() {
    let s = SimServer::start(TokenSchedule::ZeroLatency).await;
    let dir = tempdir();
    let a = args(&[
        "--backend",
        "sglang",
        "--dataset-name",
        "random-ids",
        "--num-prompts",
        "4",
        "--random-input-len",
        "10",
        "--random-output-len",
        "3",
        "--random-range-ratio",
        "1",
        "--cache-report",
    ]);
    run(
        &s.server.base_url(),
        Some(s.tokenizer()),
        a,
        dir.path(),
        Abort::default(),
    )
    .await;
    let path = dir.path().join("out.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let keys = top_level_keys(text.lines().last().unwrap_or_default()).unwrap_or_default();
    assert_eq!(
        keys.get(SGLANG_KEYS.len()).map(String::as_str),
        Some("cache_report")
    );
    let r = last_record(&path);
    assert_eq!(r["cache_report"]["total_prompt_tokens"], 40);
    assert_eq!(r["cache_report"]["cache_hit_rate_pct"], 0.0);
}
