//! The real SmolLM2-135M-Instruct Q4_1 GGUF: coherent greedy output, identical across runs and
//! whether a request runs alone or batched with others.

mod common;

use common::*;
use inferperf_engine::{launch, EngineConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greedy_output_is_coherent_and_batch_invariant() {
    let cfg = EngineConfig {
        model_path: smollm2_gguf().display().to_string(),
        ..Default::default()
    };
    let eng = launch(cfg).expect("load SmolLM2 GGUF");
    assert_eq!(eng.model_info.load_format, "gguf");
    assert_eq!(eng.model_info.num_hidden_layers, 30);
    let messages = serde_json::json!([{"role": "user", "content": "What is 2+2?"}]);
    let prompt = eng.tokenizer.apply_chat_template(&messages, true).unwrap();
    let ids = eng.tokenizer.encode(&prompt, false).unwrap();

    let (alone_ids, alone_text, info) =
        run_one(&eng.handle, request("alone", ids.clone(), greedy(24))).await;
    assert!(
        alone_text.contains(" 4") && alone_text.contains("answer"),
        "incoherent answer: {alone_text:?}"
    );
    assert_eq!(info.prompt_tokens, ids.len());

    let (again, _, _) = run_one(&eng.handle, request("again", ids.clone(), greedy(24))).await;
    assert_eq!(alone_ids, again, "greedy output differs between runs");

    // The same request batched with 7 others of different lengths.
    let others = [
        "Tell me a story about a dragon.",
        "List three colors.",
        "Explain gravity in one sentence.",
        "What is 2+2?",
        "Write a haiku about the sea.",
        "Name a famous painter.",
        "How do birds fly?",
    ];
    let mut rxs = vec![eng
        .handle
        .generate(request("batched", ids.clone(), greedy(24)))
        .unwrap()];
    for (i, o) in others.iter().enumerate() {
        let m = serde_json::json!([{"role": "user", "content": o}]);
        let p = eng.tokenizer.apply_chat_template(&m, true).unwrap();
        let oid = eng.tokenizer.encode(&p, false).unwrap();
        rxs.push(
            eng.handle
                .generate(request(&format!("o{i}"), oid, greedy(24)))
                .unwrap(),
        );
    }
    let mut results = Vec::new();
    for rx in rxs {
        results.push(collect(rx).await);
    }
    assert_eq!(
        results[0].0, alone_ids,
        "batched output differs from the same request alone"
    );
    let st = eng.handle.internal_state().await.unwrap();
    assert_eq!(st.kv_free_slots, st.kv_total_slots);
    eng.shutdown();
}
