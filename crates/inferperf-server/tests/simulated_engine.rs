//! The server over the engine crate's simulated engine (the injection path `bench serving`
//! uses): the model it reports, and exact token counts through every generation API.

mod common;

use common::*;
use inferperf_engine::simulated::{SimulatedEngine, TokenSchedule};
use inferperf_server::{EmbeddedServer, ServerConfig};
use serde_json::json;

#[tokio::test]
async fn serves_an_injected_simulated_engine() {
    let sim = SimulatedEngine::start(TokenSchedule::ZeroLatency, 1000).expect("start sim");
    let server = EmbeddedServer::start_with_engine(ServerConfig::ephemeral(), (&sim).into())
        .await
        .expect("start server");
    let base = server.base_url();
    let http = reqwest::Client::new();

    let (_, body) = get(&http, &format!("{base}/v1/models")).await;
    let model = json(&body)["data"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(model, "simulated-zero-latency");

    let (status, body) = post_json(
        &http,
        &format!("{base}/v1/chat/completions"),
        &json!({"model": model, "messages": [{"role": "user", "content": "one two three"}],
                "max_completion_tokens": 8, "stream": true, "ignore_eos": true,
                "stream_options": {"include_usage": true}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let chunks = sse_chunks(&body);
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(usage["completion_tokens"], 8);
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content.split_whitespace().count(), 8, "{content:?}");

    let (status, body) = post_json(
        &http,
        &format!("{base}/generate"),
        &json!({"text": "a b", "sampling_params": {"max_new_tokens": 5}, "stream": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let last = sse_chunks(&body).pop().unwrap();
    assert_eq!(last["meta_info"]["completion_tokens"], 5);
    assert_eq!(last["meta_info"]["prompt_tokens"], 2);
    assert_eq!(last["meta_info"]["finish_reason"]["type"], "length");

    server.shutdown().await.expect("shutdown");
    // The simulated engine is the caller's: it still answers after the server is gone.
    assert!(sim.handle.internal_state().await.is_ok());
}
