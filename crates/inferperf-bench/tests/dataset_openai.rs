//! `--dataset-name openai`: chat requests replayed from a JSONL file through a chat backend
//! against the real HTTP server (simulated engine): messages sent verbatim, per-line keys merged
//! into the body, output lengths from the line, lines without messages skipped.

mod common;

use common::{args, run, SimServer};
use inferperf_bench::serving::{build_dataset, plan_requests};
use inferperf_engine::simulated::TokenSchedule;
use inferperf_loadgen::runner::Abort;
use inferperf_loadgen::tokenizer::SharedTokenizer;
use serde_json::{Map, Value};

fn fixture() -> String {
    inferperf_test_support::manifest_dir!()
        .join("tests/fixtures/openai_small.jsonl")
        .to_string_lossy()
        .into_owned()
}

fn byte_tokenizer() -> SharedTokenizer {
    std::sync::Arc::new(inferperf_engine::tokenizer::ByteTokenizer::new().expect("byte tokenizer"))
}

#[test]
fn rows_keep_messages_and_merge_per_line_keys() {
    let tok = byte_tokenizer();
    let path = fixture();
    let a = args(&[
        "--backend",
        "sglang-oai-chat",
        "--dataset-name",
        "openai",
        "--dataset-path",
        &path,
    ]);
    let rows = build_dataset(&a, Some(&tok)).expect("rows");
    assert_eq!(rows.len(), 3, "the line without messages is skipped");
    assert_eq!(
        rows.iter().map(|r| r.output_len).collect::<Vec<_>>(),
        [5, 7, 256]
    );
    let plan = plan_requests(&a, &rows, "served", &Map::new(), None).expect("plan");
    let bodies: Vec<Value> = plan
        .iter()
        .map(|p| serde_json::from_slice(&p.body).expect("JSON body"))
        .collect();
    assert_eq!(bodies[0]["messages"][0]["content"], "You are terse.");
    assert_eq!(bodies[0]["model"], "served");
    assert_eq!(bodies[0]["max_completion_tokens"], 5);
    assert_eq!(bodies[0]["tools"][0]["function"]["name"], "lookup");
    assert_eq!(bodies[1]["top_p"], 0.5);
    assert!(bodies[2].get("top_p").is_none());
    // The tools' JSON counts towards the prompt length.
    let templated = |r: &inferperf_loadgen::dataset::DatasetRow| match &r.prompt {
        inferperf_loadgen::backend::Prompt::Messages(m) => m.clone(),
        other => panic!("messages expected, got {other:?}"),
    };
    let plain = tok
        .encode(
            &tok.apply_chat_template(&templated(&rows[0]), true)
                .expect("template"),
            false,
        )
        .expect("encode")
        .len();
    assert!(rows[0].prompt_len > plain);

    // --sharegpt-output-len overrides every line; --num-prompts stops early.
    let a = args(&[
        "--dataset-name",
        "openai",
        "--dataset-path",
        &path,
        "--sharegpt-output-len",
        "9",
        "--num-prompts",
        "2",
    ]);
    let rows = build_dataset(&a, Some(&tok)).expect("rows");
    assert_eq!(
        rows.iter().map(|r| r.output_len).collect::<Vec<_>>(),
        [9, 9]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_requests_run_end_to_end_on_a_chat_backend() {
    let s = SimServer::start(TokenSchedule::ZeroLatency).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // The reference server refuses `tools` (no tool calling), so replay the other lines.
    let lines: Vec<String> = std::fs::read_to_string(fixture())
        .expect("fixture")
        .lines()
        .filter(|l| !l.contains("\"tools\""))
        .map(String::from)
        .collect();
    let path = dir.path().join("requests.jsonl");
    std::fs::write(&path, lines.join("\n")).expect("write requests");
    let path = path.to_string_lossy().into_owned();
    let a = args(&[
        "--backend",
        "sglang-oai-chat",
        "--dataset-name",
        "openai",
        "--dataset-path",
        &path,
        "--num-prompts",
        "2",
    ]);
    let o = run(
        &s.server.base_url(),
        Some(s.tokenizer()),
        a,
        dir.path(),
        Abort::default(),
    )
    .await;
    assert_eq!(o.metrics.completed, 2);
    // 7 tokens (max_completion_tokens) + 256 (the default).
    assert_eq!(o.metrics.total_output, 7 + 256);
}

#[test]
fn missing_path_is_named() {
    let a = args(&["--dataset-name", "openai"]);
    let e = build_dataset(&a, Some(&byte_tokenizer())).expect_err("no path");
    assert!(e.to_string().contains("--dataset-path"), "{e}");
}
