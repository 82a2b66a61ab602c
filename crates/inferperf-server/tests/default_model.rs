//! The server over the real engine with `--model-path default` (built-in tiny Llama, dummy
//! weights, byte tokenizer): every generation API end to end, greedy determinism through the
//! HTTP layer, and the OpenAI Python SDK.

mod common;

use common::*;
use inferperf_server::{EmbeddedServer, ServerConfig};
use serde_json::json;

async fn start_default() -> (EmbeddedServer, String, reqwest::Client) {
    let server = EmbeddedServer::start(ServerConfig::ephemeral())
        .await
        .expect("start the server with --model-path default");
    let base = server.base_url();
    (server, base, reqwest::Client::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_model_serves_every_generation_api() {
    let (server, base, http) = start_default().await;

    let (_, body) = get(&http, &format!("{base}/v1/models")).await;
    assert_eq!(json(&body)["data"][0]["id"], "default");
    let (_, body) = get(&http, &format!("{base}/model_info")).await;
    assert_eq!(json(&body)["model_path"], "default");

    // Greedy /generate twice: identical text and ids; streamed cumulative text ends equal.
    let req = json!({"text": "The capital of France is", "stream": false,
                     "sampling_params": {"max_new_tokens": 8, "temperature": 0, "ignore_eos": true}});
    let (status, a) = post_json(&http, &format!("{base}/generate"), &req).await;
    assert_eq!(status, 200, "{a}");
    let (_, b) = post_json(&http, &format!("{base}/generate"), &req).await;
    let (a, b) = (json(&a), json(&b));
    assert_eq!(a["text"], b["text"]);
    assert_eq!(a["output_ids"], b["output_ids"]);
    assert_eq!(a["meta_info"]["completion_tokens"], 8);
    assert_eq!(
        a["meta_info"]["finish_reason"],
        json!({"type": "length", "length": 8})
    );
    let mut streamed = req.clone();
    streamed["stream"] = json!(true);
    let (status, body) = post_json(&http, &format!("{base}/generate"), &streamed).await;
    assert_eq!(status, 200, "{body}");
    let chunks = sse_chunks(&body);
    let last = chunks.last().unwrap();
    assert_eq!(last["text"], a["text"]);
    assert_eq!(last["meta_info"]["completion_tokens"], 8);
    let counts: Vec<u64> = chunks
        .iter()
        .map(|c| c["meta_info"]["completion_tokens"].as_u64().unwrap())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    // The same prompt ran twice before: its prefix is cached, and every chunk says so (as
    // SGLang's meta_info does), not only the last one.
    let cached: Vec<u64> = chunks
        .iter()
        .map(|c| c["meta_info"]["cached_tokens"].as_u64().unwrap())
        .collect();
    assert!(cached[0] > 0, "{cached:?}");
    assert!(cached.iter().all(|&c| c == cached[0]), "{cached:?}");

    // Chat stream: role chunk, content, finish, usage, [DONE].
    let (status, body) = post_json(
        &http,
        &format!("{base}/v1/chat/completions"),
        &json!({"model": "default", "messages": [{"role": "user", "content": "Hi"}],
                "max_tokens": 5, "temperature": 0, "ignore_eos": true, "stream": true,
                "stream_options": {"include_usage": true}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let chunks = sse_chunks(&body);
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "length"
    );
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 5);

    // Completions with a batch of token-id prompts.
    let (status, body) = post_json(
        &http,
        &format!("{base}/v1/completions"),
        &json!({"prompt": [[72, 105], [79, 107, 33]], "max_tokens": 3, "ignore_eos": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["choices"].as_array().unwrap().len(), 2);
    assert_eq!(v["usage"]["completion_tokens"], 6);
    assert_eq!(v["usage"]["prompt_tokens"], 5);

    let (status, _) = get(&http, &format!("{base}/health_generate")).await;
    assert_eq!(status, 200);
    let (_, text) = get(&http, &format!("{base}/metrics")).await;
    assert!(
        inferperf_protocol::server_info::sum_prometheus_metric(
            &text,
            "sglang:generation_tokens_total"
        )
        .is_some_and(|n| n >= 8.0 * 3.0 + 5.0 + 6.0),
        "{text}"
    );
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_stream_frees_the_engine() {
    let (server, base, http) = start_default().await;
    let mut resp = http
        .post(format!("{base}/generate"))
        .json(&json!({"text": "x", "stream": true, "rid": "dropped",
                      "sampling_params": {"max_new_tokens": 2000, "ignore_eos": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.chunk().await.unwrap().is_some());
    drop(resp);
    // The engine notices the dropped receiver and frees the request: wait for the observable
    // condition (no running requests), bounded by a deadline, re-checking between polls.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, body) = get(&http, &format!("{base}/server_info")).await;
        if json(&body)["internal_states"][0]["num_running_reqs"] == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the dropped request is still running: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The server is healthy and the rid can be reused.
    let (status, _) = get(&http, &format!("{base}/health_generate")).await;
    assert_eq!(status, 200);
    let req = json!({"text": "x", "rid": "dropped",
                     "sampling_params": {"max_new_tokens": 2, "ignore_eos": true}});
    let (status, body) = post_json(&http, &format!("{base}/generate"), &req).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["meta_info"]["completion_tokens"], 2);
    server.shutdown().await.expect("clean shutdown");
}
