//! Multi-turn replay (`--gsp-num-turns`) against the real HTTP server (simulated engine): every
//! round is its own record, each round sends the whole history (so the server's prompt grows by
//! the previous question and reply), and non-chat backends are refused.

mod common;

use common::{args, SimServer};
use inferperf_bench::serving::{run_serving, ServingContext};
use inferperf_engine::simulated::TokenSchedule;
use inferperf_loadgen::cpu::ThreadCpu;
use inferperf_loadgen::runner::Abort;

fn flags(backend: &str) -> Vec<&str> {
    vec![
        "--backend",
        backend,
        "--dataset-name",
        "generated-shared-prefix",
        "--gsp-num-groups",
        "2",
        "--gsp-prompts-per-group",
        "2",
        "--gsp-system-prompt-len",
        "40",
        "--gsp-question-len",
        "8",
        "--gsp-output-len",
        "5",
        "--gsp-num-turns",
        "3",
        "--warmup-requests",
        "0",
        "--max-concurrency",
        "2",
    ]
}

fn ctx(s: &SimServer) -> ServingContext {
    ServingContext {
        base_url: s.server.base_url(),
        tokenizer: Some(s.tokenizer()),
        client_threads: 1,
        cpu: ThreadCpu::default(),
        abort: Abort::default(),
        calibration: None,
        print: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_round_is_a_record_and_carries_the_history() {
    let s = SimServer::start(TokenSchedule::ZeroLatency).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut a = args(&flags("sglang-oai-chat"));
    a.output_file = Some(dir.path().join("out.jsonl").to_string_lossy().into_owned());
    a.disable_tqdm = true;
    let o = run_serving(&a, ctx(&s)).await.expect("bench serving");
    assert_eq!(o.records.len(), 4 * 3);
    assert_eq!(o.metrics.completed, 12);
    assert_eq!(o.metrics.total_output, 12 * 5);
    for conv in o.records.chunks(3) {
        let turns: Vec<usize> = conv.iter().map(|r| r.turn).collect();
        assert_eq!(turns, [0, 1, 2]);
        assert!(conv.iter().all(|r| r.index == conv[0].index));
        // Round k+1's prompt holds round k's prompt, its 5-token reply and a new question.
        for w in conv.windows(2) {
            assert!(
                w[1].prompt_len > w[0].prompt_len + 5,
                "{} then {}",
                w[0].prompt_len,
                w[1].prompt_len
            );
            assert!(
                w[1].sent_ns >= w[0].last_ns,
                "rounds run one after the other"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_chat_backends_are_refused_by_name() {
    let s = SimServer::start(TokenSchedule::ZeroLatency).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut a = args(&flags("sglang"));
    a.output_file = Some(dir.path().join("out.jsonl").to_string_lossy().into_owned());
    let e = run_serving(&a, ctx(&s)).await.err().map(|e| e.to_string());
    let e = e.expect("refused");
    assert!(e.contains("chat backend") && e.contains("sglang"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agentic_trace_conversations_replay_their_turns() {
    let s = SimServer::start(TokenSchedule::ZeroLatency).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = inferperf_test_support::manifest_dir!()
        .join("tests/fixtures/agentic_small.json")
        .to_string_lossy()
        .into_owned();
    let mut a = args(&[
        "--backend",
        "sglang-oai-chat",
        "--dataset-name",
        "agentic-trace",
        "--dataset-path",
        &path,
        "--dataset-offset",
        "1",
        "--agentic-max-turns",
        "2",
        "--sharegpt-output-len",
        "4",
        "--warmup-requests",
        "0",
    ]);
    a.output_file = Some(dir.path().join("out.jsonl").to_string_lossy().into_owned());
    a.disable_tqdm = true;
    let o = run_serving(&a, ctx(&s)).await.expect("bench serving");
    // Rotated by one: the 2-turn conversation first, then the 3-turn one capped at 2 turns;
    // the empty conversation is dropped.
    let turns: Vec<(usize, usize)> = o.records.iter().map(|r| (r.index, r.turn)).collect();
    assert_eq!(turns, [(0, 0), (0, 1), (1, 0), (1, 1)]);
    assert_eq!(o.metrics.completed, 4);
    assert_eq!(o.metrics.total_output, 4 * 4);
    assert!(o.records.iter().all(|r| r.server_prompt_len.is_some()));
}
