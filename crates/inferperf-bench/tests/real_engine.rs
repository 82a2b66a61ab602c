//! `bench serving` against `inferperf serve`'s real engine (the built-in tiny dummy model,
//! `--model-path default`) on 127.0.0.1: every backend and every dataset, with the server's
//! own tokenizer.

mod common;

use common::{args, last_record, run};
use inferperf_loadgen::runner::Abort;
use inferperf_loadgen::tokenizer::{num_special_tokens_to_add, SharedTokenizer};
use inferperf_server::{EmbeddedServer, ServerConfig};

async fn start() -> (EmbeddedServer, SharedTokenizer) {
    let args = ServerConfig::ephemeral();
    let engine = inferperf_server::launch::launch_engine(&args)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let tok = engine.parts.tokenizer.clone();
    let server = EmbeddedServer::start_owning_engine(args, engine)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (server, tok)
}

fn fixture(name: &str) -> String {
    inferperf_test_support::manifest_dir!()
        .join("tests/fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backend_against_the_real_engine() {
    let (server, tok) = start().await;
    let url = server.base_url();
    let special = num_special_tokens_to_add(tok.as_ref());
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
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let a = args(&[
            "--backend",
            backend,
            "--dataset-name",
            "random-ids",
            "--num-prompts",
            "4",
            "--random-input-len",
            "24",
            "--random-output-len",
            "5",
            "--random-range-ratio",
            "1",
            "--max-concurrency",
            "2",
        ]);
        let out = run(&url, Some(tok.clone()), a, dir.path(), Abort::default()).await;
        let m = &out.metrics;
        assert_eq!(
            (m.completed, m.failed),
            (4, 0),
            "{backend}: {:?}",
            out.records[0].error
        );
        assert_eq!(
            m.total_output,
            4 * 5,
            "{backend}: ignore_eos gives exact output lengths"
        );
        for r in &out.records {
            // A dummy model can emit tokens whose text is empty (an incomplete UTF-8
            // sequence, a skipped special token): no content chunk, so no TTFT event, as in
            // SGLang.
            assert!(r.last_ns >= r.sent_ns, "{backend}");
            if r.first_token_ns > 0 {
                assert!(r.first_token_ns >= r.sent_ns && r.last_ns >= r.first_token_ns);
            }
            if let Some(server_len) = r.server_prompt_len {
                if backend.ends_with("chat") {
                    assert!(server_len >= r.prompt_len, "{backend}");
                } else {
                    assert_eq!(
                        server_len,
                        r.prompt_len + special,
                        "{backend}: exact prompt"
                    );
                }
            }
        }
        let rec = last_record(dir.path().join("out.jsonl").as_path());
        assert_eq!(rec["completed"], 4, "{backend}");
    }
    server.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dataset_against_the_real_engine() {
    let (server, tok) = start().await;
    let url = server.base_url();
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
                "4",
                "--sharegpt-output-len",
                "4",
            ],
            4,
        ),
        (
            "random",
            vec![
                "--dataset-path",
                &sharegpt,
                "--num-prompts",
                "4",
                "--random-input-len",
                "30",
                "--random-output-len",
                "4",
            ],
            4,
        ),
        (
            "random-ids",
            vec![
                "--num-prompts",
                "4",
                "--random-input-len",
                "30",
                "--random-output-len",
                "4",
                "--tokenize-prompt",
            ],
            4,
        ),
        (
            "generated-shared-prefix",
            vec![
                "--gsp-num-groups",
                "2",
                "--gsp-prompts-per-group",
                "2",
                "--gsp-system-prompt-len",
                "40",
                "--gsp-question-len",
                "8",
                "--gsp-output-len",
                "4",
            ],
            4,
        ),
        (
            "custom",
            vec![
                "--dataset-path",
                &custom,
                "--num-prompts",
                "4",
                "--sharegpt-output-len",
                "4",
            ],
            4,
        ),
        (
            "mooncake",
            vec![
                "--dataset-path",
                &mooncake,
                "--num-prompts",
                "3",
                "--mooncake-slowdown-factor",
                "0.1",
            ],
            3,
        ),
    ];
    for (name, extra, expect) in cases {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut flags = vec![
            "--backend",
            "sglang",
            "--dataset-name",
            name,
            "--max-concurrency",
            "2",
        ];
        flags.extend(extra.iter().copied());
        let out = run(
            &url,
            Some(tok.clone()),
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
        let rec = last_record(dir.path().join("out.jsonl").as_path());
        assert_eq!(rec["dataset_name"], name);
    }
    server.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
}
