//! Tensor parallelism on the real engine: TP=2 on the built-in model (dense f32 weights)
//! generates the same greedy tokens as TP=1, batched requests included; sizes that do not
//! divide are refused by name. TP=3 on the quantized SmolLM2 GGUF is compared as logits in
//! `model::tp`'s unit tests: its int8 decode kernels make it equal to TP=1 only within
//! activation-quantization noise, so greedy tokens can differ at near-ties.

mod common;

use common::{greedy, request, run_one, smollm2_gguf};
use inferperf_engine::{launch, EngineConfig};

async fn outputs(config: EngineConfig, prompts: &[Vec<u32>]) -> Vec<Vec<u32>> {
    let e = launch(config).expect("engine");
    // All at once, so they share steps.
    let futures: Vec<_> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| run_one(&e.handle, request(&format!("r{i}"), p.clone(), greedy(12))))
        .collect();
    let mut out = Vec::new();
    for f in futures {
        out.push(f.await.0);
    }
    e.shutdown();
    out
}

fn prompts() -> Vec<Vec<u32>> {
    vec![
        (0..30).map(|i| 1 + (i * 11) % 240).collect(),
        (0..7).map(|i| 40 + i).collect(),
        (0..45).map(|i| 2 + (i * 5) % 200).collect(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tp2_matches_tp1_on_the_builtin_model() {
    let base = EngineConfig::default();
    let one = outputs(base.clone(), &prompts()).await;
    let two = outputs(EngineConfig { tp_size: 2, ..base }, &prompts()).await;
    assert_eq!(one, two);
    assert!(one.iter().all(|o| o.len() == 12));
}

#[test]
fn sizes_that_do_not_divide_are_refused_by_name() {
    let e = launch(EngineConfig {
        model_path: smollm2_gguf().to_string_lossy().into_owned(),
        tp_size: 2,
        ..EngineConfig::default()
    });
    let msg = e.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("--tp-size 2") && msg.contains("(9)"), "{msg}");
}
