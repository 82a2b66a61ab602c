//! Tensor parallelism on the real engine: TP=2 on the built-in model and TP=3 on the SmolLM2
//! GGUF (9 heads, 3 KV heads, quantized weights split on block boundaries) generate the same
//! greedy tokens as TP=1, batched requests included; sizes that do not divide are refused by
//! name.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tp3_matches_tp1_on_smollm2() {
    let base = EngineConfig {
        model_path: smollm2_gguf().to_string_lossy().into_owned(),
        ..EngineConfig::default()
    };
    let one = outputs(base.clone(), &prompts()[..2]).await;
    let three = outputs(EngineConfig { tp_size: 3, ..base }, &prompts()[..2]).await;
    assert_eq!(one, three);
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
