//! The prefix cache on the real engine: a repeated or extended prompt reuses the cached KV
//! (reported as `cached_tokens`, counted in `cached_tokens_total`, fewer tokens computed) and
//! generates exactly the tokens it generates without the cache; the pool accounting holds
//! (flush returns every slot), eviction makes room when the pool is full, and
//! `disable_radix_cache` turns it off.

mod common;

use common::{greedy, request, run_one, smollm2_gguf};
use inferperf_engine::api::ControlCommand;
use inferperf_engine::{launch, EngineConfig, LaunchedEngine};

fn engine(config: EngineConfig) -> LaunchedEngine {
    launch(config).expect("engine")
}

async fn flush(e: &LaunchedEngine) -> bool {
    let (tx, rx) = tokio::sync::oneshot::channel();
    e.handle
        .control(ControlCommand::FlushCache(tx))
        .expect("engine running");
    rx.await.expect("reply")
}

/// Greedy outputs of `prompts` run one after the other, with their cached token counts.
async fn run_all(e: &LaunchedEngine, prompts: &[Vec<u32>]) -> Vec<(Vec<u32>, usize)> {
    let mut out = Vec::new();
    for (i, p) in prompts.iter().enumerate() {
        let (ids, _, info) =
            run_one(&e.handle, request(&format!("r{i}"), p.clone(), greedy(6))).await;
        out.push((ids, info.cached_tokens));
    }
    out
}

fn prompts() -> Vec<Vec<u32>> {
    let base: Vec<u32> = (0..40).map(|i| 3 + (i * 7) % 200).collect();
    let mut longer = base.clone();
    longer.extend([11, 12, 13, 14, 15]);
    let mut other = base[..20].to_vec();
    other.extend([99, 98, 97]);
    vec![base.clone(), base, longer, other]
}

async fn reuse_is_exact(config: EngineConfig) {
    let cached = engine(config.clone());
    let plain = engine(EngineConfig {
        disable_radix_cache: true,
        ..config
    });
    let with = run_all(&cached, &prompts()).await;
    let without = run_all(&plain, &prompts()).await;
    // Same tokens with and without reuse.
    let ids = |v: &[(Vec<u32>, usize)]| v.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&with), ids(&without));
    // Repeated prompt: all but its last token (one must be computed to sample from);
    // extended prompt: the whole first prompt; shared first half: 20 tokens.
    let hits: Vec<usize> = with.iter().map(|x| x.1).collect();
    assert_eq!(hits, [0, 39, 40, 20]);
    assert!(without.iter().all(|x| x.1 == 0));
    let s = cached.handle.internal_state().await.expect("state");
    assert_eq!(s.cached_tokens_total, (39 + 40 + 20) as u64);
    assert_eq!(
        s.kv_free_slots, s.kv_total_slots,
        "cached pages count as free"
    );
    assert!(flush(&cached).await);
    let s = cached.handle.internal_state().await.expect("state");
    assert_eq!(s.kv_free_slots, s.kv_total_slots);
    // After the flush nothing is cached any more.
    let again = run_all(&cached, &prompts()[..1]).await;
    assert_eq!(again[0].1, 0);
    cached.shutdown();
    plain.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuse_is_exact_on_the_dummy_model() {
    reuse_is_exact(EngineConfig::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuse_is_exact_on_smollm2() {
    reuse_is_exact(EngineConfig {
        model_path: smollm2_gguf().to_string_lossy().into_owned(),
        ..EngineConfig::default()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_evicts_cached_pages_instead_of_refusing() {
    // 128 slots: each 40-token prompt + 6 new tokens leaves 45 cached slots behind.
    let e = engine(EngineConfig {
        max_total_tokens: Some(128),
        ..EngineConfig::default()
    });
    for k in 0..6u32 {
        let p: Vec<u32> = (0..40).map(|i| 1 + (i * 13 + k * 31) % 250).collect();
        let (ids, _, info) = run_one(&e.handle, request(&format!("p{k}"), p, greedy(6))).await;
        assert_eq!((ids.len(), info.cached_tokens), (6, 0), "prompt {k}");
    }
    let s = e.handle.internal_state().await.expect("state");
    assert_eq!(s.kv_free_slots, s.kv_total_slots);
    e.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_size_four_reuses_whole_pages_only() {
    let e = engine(EngineConfig {
        page_size: 4,
        ..EngineConfig::default()
    });
    let p: Vec<u32> = (0..22).map(|i| 5 + i).collect();
    let out = run_all(&e, &[p.clone(), p]).await;
    // 22 prompt + 5 computed output tokens = 27: six whole pages (24 tokens) are cached, and
    // a match leaves at least one prompt token: 21 -> 20 tokens (5 pages).
    assert_eq!(out[1].1, 20);
    assert_eq!(out[0].0, out[1].0);
    e.shutdown();
}
