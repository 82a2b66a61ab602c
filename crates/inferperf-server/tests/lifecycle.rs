//! Cancellation and shutdown: a client that goes away mid-stream aborts its request and leaves
//! the server healthy; `/abort_request` ends a running stream; shutdown ends open streams.

mod common;

use common::*;
use serde_json::json;

/// Start a streamed request that stays running (fake engine `hold` rid) and return the
/// response once its first chunk has arrived.
async fn open_held_stream(
    s: &FakeServer,
    path: &str,
    body: serde_json::Value,
) -> reqwest::Response {
    let mut resp = s
        .http
        .post(format!("{}{path}", s.base))
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    let first = resp.chunk().await.expect("read").expect("a first chunk");
    assert!(first.starts_with(b"data: "), "{first:?}");
    resp
}

#[tokio::test]
async fn dropping_a_client_mid_stream_aborts_the_request() {
    let s = start_fake(fake_args()).await;
    for (path, body) in [
        (
            "/generate",
            json!({"text": "a", "rid": "hold-gen", "stream": true,
                   "sampling_params": {"max_new_tokens": 100}}),
        ),
        (
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "a"}], "rid": "hold-chat",
                   "stream": true, "max_tokens": 100}),
        ),
        (
            "/v1/completions",
            json!({"prompt": "a", "rid": "hold-cmpl", "stream": true, "max_tokens": 100}),
        ),
    ] {
        let rid = body["rid"].as_str().unwrap().to_string();
        let resp = open_held_stream(&s, path, body).await;
        drop(resp);
        assert_eq!(s.engine.next_abort().await, rid, "{path}");
    }
    // The server is healthy and the rid can be reused.
    let (status, _) = get(&s.http, &format!("{}/health_generate", s.base)).await;
    assert_eq!(status, 200);
    let (status, body) = post_json(
        &s.http,
        &format!("{}/generate", s.base),
        &json!({"text": "a", "rid": "hold-gen-again", "sampling_params": {"max_new_tokens": 1}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let info: inferperf_protocol::server_info::ServerInfo = json_get(&s, "/server_info").await;
    assert_eq!(info.internal_states[0].num_running_reqs, Some(0));
    s.server.shutdown().await.unwrap();
}

async fn json_get<T: serde::de::DeserializeOwned>(s: &FakeServer, path: &str) -> T {
    let (status, body) = get(&s.http, &format!("{}{path}", s.base)).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test]
async fn abort_request_ends_a_running_stream_with_finish_reason_abort() {
    let s = start_fake(fake_args()).await;
    let resp = open_held_stream(
        &s,
        "/generate",
        json!({"text": "a", "rid": "hold-x", "stream": true,
               "sampling_params": {"max_new_tokens": 100}}),
    )
    .await;
    // A duplicate live rid is refused while the first is running.
    let (status, body) = post_json(
        &s.http,
        &format!("{}/generate", s.base),
        &json!({"text": "a", "rid": "hold-x"}),
    )
    .await;
    assert_error(status, &body, 400, &["hold-x", "already running"]);
    // Flushing the cache is refused while a request runs (SGLang: 400, same text).
    let resp_flush = s
        .http
        .post(format!("{}/flush_cache", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp_flush.status().as_u16(), 400);

    let (status, _) = post_json(
        &s.http,
        &format!("{}/abort_request", s.base),
        &json!({"rid": "hold-x"}),
    )
    .await;
    assert_eq!(status, 200);
    let rest = resp.text().await.unwrap();
    let chunks = sse_chunks(&rest);
    let last = chunks.last().unwrap();
    assert_eq!(last["meta_info"]["finish_reason"]["type"], "abort");
    assert_eq!(s.engine.next_abort().await, "hold-x");
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_ends_open_streams_and_stops_serving() {
    let s = start_fake(fake_args()).await;
    let resp = open_held_stream(
        &s,
        "/v1/chat/completions",
        json!({"messages": [{"role": "user", "content": "a"}], "rid": "hold-s",
               "stream": true, "max_tokens": 100}),
    )
    .await;
    let base = s.base.clone();
    let http = s.http.clone();
    let reader = tokio::spawn(async move { resp.text().await });
    s.server.shutdown().await.expect("clean shutdown");
    let rest = reader.await.unwrap().expect("the stream ends cleanly");
    let chunks = sse_chunks(&rest);
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "abort"
    );
    assert!(
        http.get(format!("{base}/health")).send().await.is_err(),
        "the port no longer accepts requests"
    );
}

/// `sglang:num_aborted_requests_total` from `/metrics`.
async fn aborted_total(s: &FakeServer) -> f64 {
    let (status, text) = get(&s.http, &format!("{}/metrics", s.base)).await;
    assert_eq!(status, 200, "{text}");
    inferperf_protocol::server_info::sum_prometheus_metric(
        &text,
        "sglang:num_aborted_requests_total",
    )
    .expect("the aborted counter is exported")
}

#[tokio::test]
async fn client_disconnects_are_counted_as_aborted_requests() {
    let s = start_fake(fake_args()).await;
    assert_eq!(aborted_total(&s).await, 0.0);

    // A streaming client that goes away after the first chunk.
    let resp = open_held_stream(
        &s,
        "/v1/completions",
        json!({"prompt": "a", "rid": "hold-stream", "stream": true, "max_tokens": 100}),
    )
    .await;
    drop(resp);
    // The engine sees the abort only after the server dropped the request, which is when the
    // server counts it.
    assert_eq!(s.engine.next_abort().await, "hold-stream");
    assert_eq!(aborted_total(&s).await, 1.0);

    // A non-streaming client that goes away while its request runs.
    let http = reqwest::Client::new();
    let url = format!("{}/generate", s.base);
    let client = tokio::spawn(async move {
        http.post(url)
            .json(&json!({"text": "a", "rid": "hold-plain", "sampling_params": {"max_new_tokens": 100}}))
            .send()
            .await
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let info: inferperf_protocol::server_info::ServerInfo = json_get(&s, "/server_info").await;
        if info.internal_states[0].num_running_reqs == Some(1) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the request never started"
        );
        tokio::task::yield_now().await;
    }
    client.abort();
    assert!(
        client.await.is_err(),
        "the client was cancelled mid-request"
    );
    assert_eq!(s.engine.next_abort().await, "hold-plain");
    assert_eq!(aborted_total(&s).await, 2.0);
    s.server.shutdown().await.unwrap();
}
