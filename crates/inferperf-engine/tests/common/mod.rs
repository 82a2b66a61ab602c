//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use inferperf_engine::api::{
    EngineHandle, FinishInfo, GenerateEvent, GenerateRequest, SamplingParams,
};

/// The SmolLM2 GGUF fetched by scripts/fetch-test-assets.sh (fails loudly when missing).
pub fn smollm2_gguf() -> PathBuf {
    inferperf_test_support::smollm2_gguf()
}

pub fn greedy(max_new_tokens: usize) -> SamplingParams {
    SamplingParams {
        temperature: 0.0,
        max_new_tokens,
        ..Default::default()
    }
}

pub fn request(rid: &str, ids: Vec<u32>, sampling: SamplingParams) -> GenerateRequest {
    GenerateRequest {
        rid: rid.into(),
        input_ids: ids,
        sampling,
        stream_interval: 1,
    }
}

/// Collect a request's tokens, text and final info.
pub async fn collect(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<GenerateEvent>,
) -> (Vec<u32>, String, FinishInfo) {
    let mut ids = Vec::new();
    let mut text = String::new();
    while let Some(ev) = rx.recv().await {
        match ev {
            GenerateEvent::Tokens {
                token_ids, text: t, ..
            } => {
                ids.extend(token_ids);
                text.push_str(&t);
            }
            GenerateEvent::Finished(info) => return (ids, text, info),
        }
    }
    panic!("stream ended without Finished");
}

pub async fn run_one(h: &EngineHandle, req: GenerateRequest) -> (Vec<u32>, String, FinishInfo) {
    collect(h.generate(req).expect("engine running")).await
}
