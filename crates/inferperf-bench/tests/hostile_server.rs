//! `bench serving` against servers that misbehave: streams with no content, bytes that are not
//! UTF-8, silence mid-stream, and runs where some or all requests fail. The client must classify
//! each failure the same way for every backend, never hang, and say when a run failed.

mod common;

use common::scripted::{Script, ScriptedServer};
use common::{args, last_record, run, SimServer};
use inferperf_engine::simulated::{SimTokenizer, TokenSchedule};
use inferperf_loadgen::record::ErrorKind;
use inferperf_loadgen::runner::Abort;
use inferperf_loadgen::tokenizer::SharedTokenizer;

fn tokenizer() -> SharedTokenizer {
    std::sync::Arc::new(SimTokenizer::new(32000))
}

fn flags<'a>(backend: &'a str, n: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "--backend",
        backend,
        "--model",
        "scripted",
        "--dataset-name",
        "random-ids",
        "--num-prompts",
        n,
        "--random-input-len",
        "8",
        "--random-output-len",
        "4",
        "--warmup-requests",
        "0",
    ];
    v.extend_from_slice(extra);
    v
}

const COMPLETION_CHUNK: &[u8] = b"data: {\"choices\":[{\"text\":\"hi\"}]}\n\n";

/// A stream holding only `[DONE]` fails as `empty_stream` for every backend, and a chunk that
/// is not UTF-8 fails as malformed for every backend (the sglang one used to flag it while the
/// OpenAI ones counted a success).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_non_utf8_streams_fail_the_same_way_for_every_backend() {
    for backend in [
        "sglang",
        "sglang-oai",
        "sglang-oai-chat",
        "vllm",
        "openai-chat",
    ] {
        let s = ScriptedServer::start(vec![Script::Stream(b"data: [DONE]\n\n".to_vec())]).await;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let out = run(
            &s.base_url,
            Some(tokenizer()),
            args(&flags(backend, "3", &[])),
            dir.path(),
            Abort::default(),
        )
        .await;
        assert_eq!(out.metrics.completed, 0, "{backend}");
        assert!(
            out.records
                .iter()
                .all(|r| r.error.as_ref().map(|e| e.kind) == Some(ErrorKind::EmptyStream)),
            "{backend}: {:?}",
            out.records[0].error
        );
        assert_eq!(out.validity.verdict, "SERVER-FAILED", "{backend}");

        let bad: Vec<u8> = match backend {
            "sglang" => b"data: {\"text\":\"a\xff\"}\n\ndata: [DONE]\n\n".to_vec(),
            "sglang-oai" | "vllm" => {
                b"data: {\"choices\":[{\"text\":\"a\xff\"}]}\n\ndata: [DONE]\n\n".to_vec()
            }
            _ => b"data: {\"choices\":[{\"delta\":{\"content\":\"a\xff\"}}]}\n\ndata: [DONE]\n\n"
                .to_vec(),
        };
        let s = ScriptedServer::start(vec![Script::Stream(bad)]).await;
        let out = run(
            &s.base_url,
            Some(tokenizer()),
            args(&flags(backend, "2", &[])),
            dir.path(),
            Abort::default(),
        )
        .await;
        assert!(
            out.records
                .iter()
                .all(|r| r.error.as_ref().map(|e| e.kind) == Some(ErrorKind::MalformedResponse)),
            "{backend}: {:?}",
            out.records[0].error
        );
    }
}

/// A server that goes silent mid-stream fails the request as `stalled` after
/// `--stall-timeout-sec` instead of hanging the run; the record is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_fails_requests_as_stalled() {
    let s = ScriptedServer::start(vec![Script::StreamThenSilence(COMPLETION_CHUNK.to_vec())]).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = run(
        &s.base_url,
        Some(tokenizer()),
        args(&flags("sglang-oai", "2", &["--stall-timeout-sec", "0.3"])),
        dir.path(),
        Abort::default(),
    )
    .await;
    assert_eq!(out.metrics.completed, 0);
    for r in &out.records {
        let e = r.error.as_ref().map(|e| (e.kind, e.message.clone()));
        assert!(
            matches!(&e, Some((ErrorKind::Stalled, m)) if m.contains("--stall-timeout-sec")),
            "{e:?}"
        );
    }
    let rec = last_record(dir.path().join("out.jsonl").as_path());
    assert_eq!(rec["errors_by_kind"]["stalled"], 2);
}

/// Half the requests fail: the run succeeds by default, fails past `--max-failure-rate`, and
/// a run where nothing succeeded always fails with a SERVER-FAILED verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_rates_decide_the_outcome() {
    let mut good = COMPLETION_CHUNK.to_vec();
    good.extend_from_slice(b"data: [DONE]\n\n");
    let s = ScriptedServer::start(vec![
        Script::Stream(good),
        Script::Stream(b"data: [DONE]\n\n".to_vec()),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = run(
        &s.base_url,
        Some(tokenizer()),
        args(&flags("sglang-oai", "8", &["--max-concurrency", "1"])),
        dir.path(),
        Abort::default(),
    )
    .await;
    assert_eq!((out.metrics.completed, out.metrics.failed), (4, 4));
    assert_eq!(out.failure(None), None);
    assert_eq!(out.failure(Some(0.75)), None);
    let why = out.failure(Some(0.25)).unwrap_or_default();
    assert!(why.contains("4 of 8") && why.contains("0.25"), "{why}");
    assert_eq!(out.validity.verdict, "OK");

    let sim = SimServer::start(TokenSchedule::ZeroLatency).await;
    let all_fail = run(
        &sim.server.base_url(),
        Some(sim.tokenizer()),
        args(&flags(
            "sglang-oai",
            "3",
            &["--extra-request-body", r#"{"max_tokens": -1}"#],
        )),
        dir.path(),
        Abort::default(),
    )
    .await;
    let why = all_fail.failure(None).unwrap_or_default();
    assert!(why.contains("no request succeeded"), "{why}");
    assert_eq!(all_fail.validity.verdict, "SERVER-FAILED");
}
