//! Continuous batching, determinism and KV accounting on the built-in default model.

mod common;

use common::*;
use inferperf_engine::api::{ControlCommand, FinishReason, GenerateEvent, SamplingParams};
use inferperf_engine::{launch, EngineConfig};

fn fixed_len(n: usize) -> SamplingParams {
    SamplingParams {
        temperature: 0.0,
        max_new_tokens: n,
        ignore_eos: true,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_decode_steps() {
    let eng = launch(EngineConfig::default()).unwrap();
    let ids = eng
        .tokenizer
        .encode("hello world, this is a prompt", false)
        .unwrap();
    let steps = |eng: &inferperf_engine::LaunchedEngine| {
        let h = eng.handle.clone();
        async move { h.internal_state().await.unwrap().forward_ct }
    };

    // 16 sequential requests.
    let s0 = steps(&eng).await;
    for i in 0..16 {
        let (out, _, info) = run_one(
            &eng.handle,
            request(&format!("s{i}"), ids.clone(), fixed_len(32)),
        )
        .await;
        assert_eq!(out.len(), 32);
        assert_eq!(info.completion_tokens, 32);
    }
    let sequential = steps(&eng).await - s0;
    assert_eq!(
        sequential,
        16 * 32,
        "each sequential request: one prefill + 31 decode steps"
    );

    // 16 concurrent requests.
    let s1 = steps(&eng).await;
    let rxs: Vec<_> = (0..16)
        .map(|i| {
            eng.handle
                .generate(request(&format!("c{i}"), ids.clone(), fixed_len(32)))
                .unwrap()
        })
        .collect();
    for rx in rxs {
        let (out, _, _) = collect(rx).await;
        assert_eq!(out.len(), 32);
    }
    let concurrent = steps(&eng).await - s1;
    assert!(
        concurrent * 4 < sequential,
        "16 concurrent requests took {concurrent} steps vs {sequential} sequential"
    );
    let st = eng.handle.internal_state().await.unwrap();
    assert_eq!(st.kv_free_slots, st.kv_total_slots);
    assert_eq!(st.generation_tokens_total, 32 * 32);
    eng.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_model_is_deterministic_for_greedy_and_seeded_sampling() {
    let eng = launch(EngineConfig::default()).unwrap();
    let ids = eng.tokenizer.encode("determinism", true).unwrap();
    let a = run_one(&eng.handle, request("a", ids.clone(), fixed_len(16)))
        .await
        .0;
    let b = run_one(&eng.handle, request("b", ids.clone(), fixed_len(16)))
        .await
        .0;
    assert_eq!(a, b);
    let seeded = SamplingParams {
        temperature: 1.0,
        seed: Some(42),
        ..fixed_len(16)
    };
    let c = run_one(&eng.handle, request("c", ids.clone(), seeded.clone()))
        .await
        .0;
    let d = run_one(&eng.handle, request("d", ids.clone(), seeded))
        .await
        .0;
    assert_eq!(c, d);
    eng.shutdown();
    // A fresh engine with the same seed is the same model.
    let eng2 = launch(EngineConfig::default()).unwrap();
    let e = run_one(&eng2.handle, request("e", ids, fixed_len(16)))
        .await
        .0;
    assert_eq!(a, e);
    eng2.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_and_dropped_requests_free_their_kv() {
    let eng = launch(EngineConfig::default()).unwrap();
    let ids = eng.tokenizer.encode("abort me please", false).unwrap();
    // Dropped receiver after the first tokens.
    let mut rx = eng
        .handle
        .generate(request("drop", ids.clone(), fixed_len(10_000)))
        .unwrap();
    assert!(matches!(
        rx.recv().await,
        Some(GenerateEvent::Tokens { .. })
    ));
    drop(rx);
    // Explicit abort by rid.
    let mut rx2 = eng
        .handle
        .generate(request("abort", ids.clone(), fixed_len(10_000)))
        .unwrap();
    assert!(matches!(
        rx2.recv().await,
        Some(GenerateEvent::Tokens { .. })
    ));
    eng.handle
        .control(ControlCommand::Abort(Some("abort".into())))
        .unwrap();
    let (_, _, info) = collect(rx2).await;
    assert!(matches!(info.reason, FinishReason::Abort { .. }));
    // A later request completes, proving the loop went on; then everything is free.
    let (out, _, _) = run_one(&eng.handle, request("after", ids, fixed_len(4))).await;
    assert_eq!(out.len(), 4);
    let st = eng.handle.internal_state().await.unwrap();
    assert_eq!(st.kv_free_slots, st.kv_total_slots);
    assert_eq!(st.num_running_reqs + st.num_waiting_reqs, 0);
    eng.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_prompts_are_chunked_and_oversized_requests_rejected() {
    let cfg = EngineConfig {
        chunked_prefill_size: 64,
        max_total_tokens: Some(2048),
        ..Default::default()
    };
    let eng = launch(cfg).unwrap();
    let ids: Vec<u32> = (0..300).map(|i| (i % 250) as u32).collect();
    let s0 = eng.handle.internal_state().await.unwrap().forward_ct;
    let (out, _, _) = run_one(&eng.handle, request("long", ids.clone(), fixed_len(1))).await;
    assert_eq!(out.len(), 1);
    let s1 = eng.handle.internal_state().await.unwrap().forward_ct;
    assert_eq!(s1 - s0, 5, "300 prompt tokens in chunks of 64 take 5 steps");
    let (_, _, info) = run_one(&eng.handle, request("huge", ids, fixed_len(4000))).await;
    match info.reason {
        FinishReason::Abort { message } => {
            assert!(message.contains("exceeds the KV pool"), "{message}")
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    eng.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_max_new_tokens_generates_nothing() {
    let eng = launch(EngineConfig::default()).unwrap();
    let ids = eng.tokenizer.encode("nothing", false).unwrap();
    let (out, text, info) = run_one(&eng.handle, request("z", ids.clone(), fixed_len(0))).await;
    assert!(out.is_empty() && text.is_empty());
    assert_eq!(info.reason, FinishReason::Length { length: 0 });
    assert_eq!((info.prompt_tokens, info.completion_tokens), (ids.len(), 0));
    eng.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_strings_end_and_trim_the_output() {
    let eng = launch(EngineConfig::default()).unwrap();
    let ids = eng.tokenizer.encode("x", false).unwrap();
    let (_, text, _) = run_one(&eng.handle, request("free", ids.clone(), fixed_len(40))).await;
    // Use a piece of the greedy continuation as the stop string.
    let chars: Vec<char> = text.chars().collect();
    assert!(chars.len() > 12, "need some text, got {text:?}");
    let stop: String = chars[8..10].iter().collect();
    let expected_prefix = &text[..text.find(&stop).unwrap()];
    let p = SamplingParams {
        stop: vec![stop.clone()],
        ..fixed_len(40)
    };
    let (_, cut, info) = run_one(&eng.handle, request("stop", ids, p)).await;
    assert_eq!(cut, expected_prefix);
    assert!(matches!(info.reason, FinishReason::Stop { .. }));
    eng.shutdown();
}
