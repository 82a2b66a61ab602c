//! Bad input gets a 4xx with an OpenAI-style error body naming the problem, and the server
//! keeps serving afterwards.

mod common;

use common::fake_engine::CONTEXT;
use common::*;
use serde_json::json;

#[tokio::test]
async fn bad_requests_are_4xx_with_openai_error_bodies() {
    let s = start_fake(fake_args()).await;
    let completions = format!("{}/v1/completions", s.base);
    let chat = format!("{}/v1/chat/completions", s.base);
    let generate = format!("{}/generate", s.base);

    // Malformed JSON.
    let (status, body) = post_raw(&s.http, &completions, r#"{"prompt": "a", "#).await;
    assert_error(status, &body, 400, &["invalid JSON body"]);
    let (status, body) = post_raw(&s.http, &generate, "").await;
    assert_error(status, &body, 400, &["empty"]);

    // Wrong field types, named with their path.
    let (status, body) = post_json(
        &s.http,
        &completions,
        &json!({"prompt": "a", "max_tokens": "ten"}),
    )
    .await;
    let err = assert_error(status, &body, 400, &["max_tokens", "invalid type"]);
    assert_eq!(err.error.param.as_deref(), Some("max_tokens"));
    let (status, body) = post_json(
        &s.http,
        &generate,
        &json!({"text": "a", "sampling_params": {"temperature": "hot"}}),
    )
    .await;
    let err = assert_error(status, &body, 400, &["sampling_params.temperature"]);
    assert_eq!(
        err.error.param.as_deref(),
        Some("sampling_params.temperature")
    );
    let (status, body) = post_json(&s.http, &chat, &json!({"messages": "hi"})).await;
    assert_error(status, &body, 400, &["messages"]);
    let (status, body) = post_json(&s.http, &completions, &json!({"model": "fake"})).await;
    assert_error(status, &body, 400, &["missing field `prompt`"]);

    // Empty prompts.
    let (status, body) = post_json(
        &s.http,
        &completions,
        &json!({"prompt": [], "max_tokens": 1}),
    )
    .await;
    assert_error(status, &body, 400, &["empty"]);
    let (status, body) = post_json(&s.http, &generate, &json!({"input_ids": []})).await;
    assert_error(status, &body, 400, &["empty"]);
    let (status, body) = post_json(&s.http, &chat, &json!({"messages": []})).await;
    assert_error(status, &body, 400, &["messages", "empty"]);
    let (status, body) = post_json(&s.http, &generate, &json!({})).await;
    assert_error(status, &body, 400, &["text or input_ids"]);

    // Prompt longer than the context; prompt + max_tokens over the context.
    let long = "x".repeat(CONTEXT + 10);
    let (status, body) = post_json(
        &s.http,
        &completions,
        &json!({"prompt": long, "max_tokens": 1}),
    )
    .await;
    assert_error(
        status,
        &body,
        400,
        &["longer than the model's context length"],
    );
    let (status, body) = post_json(
        &s.http,
        &completions,
        &json!({"prompt": "hi", "max_tokens": CONTEXT}),
    )
    .await;
    let err = assert_error(status, &body, 400, &["maximum context length", "512"]);
    assert_eq!(err.error.param.as_deref(), Some("max_tokens"));
    let (status, body) = post_json(
        &s.http,
        &chat,
        &json!({"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 100000}),
    )
    .await;
    assert_error(status, &body, 400, &["maximum context length"]);
    let (status, body) = post_json(
        &s.http,
        &completions,
        &json!({"prompt": "a", "max_tokens": 0}),
    )
    .await;
    assert_error(status, &body, 400, &["max_tokens must be at least 1"]);

    // Unknown model.
    let (status, body) = post_json(
        &s.http,
        &completions,
        &json!({"model": "gpt-9", "prompt": "a"}),
    )
    .await;
    let err = assert_error(status, &body, 404, &["gpt-9", "does not exist"]);
    assert_eq!(err.error.param.as_deref(), Some("model"));

    // Unsupported values are named, not ignored.
    let (status, body) = post_json(&s.http, &completions, &json!({"prompt": "a", "n": 2})).await;
    assert_error(status, &body, 400, &["n=2", "n must be 1"]);
    let (status, body) =
        post_json(&s.http, &completions, &json!({"prompt": "a", "top_p": 0})).await;
    assert_error(status, &body, 400, &["top_p"]);
    let (status, body) = post_json(
        &s.http,
        &completions,
        &json!({"prompt": "a", "temperature": -1}),
    )
    .await;
    assert_error(status, &body, 400, &["temperature"]);
    let (status, body) = post_json(&s.http, &generate, &json!({"input_ids": [1, 999]})).await;
    assert_error(status, &body, 400, &["999", "out of range"]);
    let (status, body) = post_json(
        &s.http,
        &generate,
        &json!({"input_ids": [[1], [2]], "sampling_params": [{}, {}, {}]}),
    )
    .await;
    assert_error(status, &body, 400, &["3 entries", "2 prompts"]);
    let (status, body) = post_json(
        &s.http,
        &chat,
        &json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}),
    )
    .await;
    assert_error(status, &body, 400, &["image_url"]);

    // Still serving.
    let (status, body) = post_json(
        &s.http,
        &completions,
        &json!({"prompt": "a", "max_tokens": 2}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = get(&s.http, &format!("{}/health_generate", s.base)).await;
    assert_eq!(status, 200);
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn api_key_guards_everything_but_health_and_metrics() {
    let s = start_fake(inferperf_server::ServerConfig {
        api_key: Some("sekret".into()),
        ..fake_args()
    })
    .await;
    let (status, body) = get(&s.http, &format!("{}/v1/models", s.base)).await;
    assert_error(status, &body, 401, &["API key"]);
    let resp = s
        .http
        .get(format!("{}/v1/models", s.base))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = s
        .http
        .get(format!("{}/v1/models", s.base))
        .bearer_auth("sekret")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    for open in ["/health", "/health_generate", "/metrics"] {
        let (status, _) = get(&s.http, &format!("{}{open}", s.base)).await;
        assert_eq!(status, 200, "{open}");
    }
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn stop_lists_are_capped_on_every_api() {
    use inferperf_server::{MAX_STOP_STRINGS, MAX_STOP_STRING_BYTES, MAX_STOP_TOKEN_IDS};
    let s = start_fake(fake_args()).await;
    let completions = format!("{}/v1/completions", s.base);
    let chat = format!("{}/v1/chat/completions", s.base);
    let generate = format!("{}/generate", s.base);
    let stops = |n: usize| (0..n).map(|i| format!("#{i}#")).collect::<Vec<_>>();
    // Token ids inside the fake vocabulary (258), none of them generated by a 1-token request.
    let ids = |n: usize| (0..n as u32).map(|i| i % 97).collect::<Vec<_>>();

    for (url, stop_field, ids_field, body) in [
        (
            &completions,
            "stop",
            "stop_token_ids",
            json!({"prompt": "a", "max_tokens": 1}),
        ),
        (
            &chat,
            "stop",
            "stop_token_ids",
            json!({"messages": [{"role": "user", "content": "a"}], "max_tokens": 1}),
        ),
        (
            &generate,
            "sampling_params.stop",
            "sampling_params.stop_token_ids",
            json!({"text": "a", "sampling_params": {"max_new_tokens": 1}}),
        ),
    ] {
        // `set` writes a sampling field where this API keeps it.
        let set = |key: &str, value: serde_json::Value| {
            let mut b = body.clone();
            match b.get_mut("sampling_params") {
                Some(p) => p[key] = value,
                None => b[key] = value,
            }
            b
        };
        let cases = [
            (
                set("stop", json!(stops(MAX_STOP_STRINGS + 1))),
                stop_field,
                format!("at most {MAX_STOP_STRINGS}"),
            ),
            // The report that started this: 50k stop strings.
            (
                set("stop", json!(stops(50_000))),
                stop_field,
                "50000 strings".to_string(),
            ),
            (
                set("stop", json!(["x".repeat(MAX_STOP_STRING_BYTES + 1)])),
                stop_field,
                format!("at most {MAX_STOP_STRING_BYTES} bytes"),
            ),
            (
                set("stop_token_ids", json!(ids(MAX_STOP_TOKEN_IDS + 1))),
                ids_field,
                format!("at most {MAX_STOP_TOKEN_IDS}"),
            ),
        ];
        for (bad, field, needle) in cases {
            let (status, reply) = post_json(&s.http, url, &bad).await;
            let err = assert_error(status, &reply, 400, &[field, &needle]);
            assert_eq!(err.error.param.as_deref(), Some(field), "{url}: {reply}");
        }
        // Exactly at the limits is accepted.
        let mut stop = stops(MAX_STOP_STRINGS - 1);
        stop.push("y".repeat(MAX_STOP_STRING_BYTES));
        let (status, reply) = post_json(&s.http, url, &set("stop", json!(stop))).await;
        assert_eq!(status, 200, "{url} at the stop limits: {reply}");
        let ok = set("stop_token_ids", json!(ids(MAX_STOP_TOKEN_IDS)));
        let (status, reply) = post_json(&s.http, url, &ok).await;
        assert_eq!(status, 200, "{url} at the stop_token_ids limit: {reply}");
    }
    s.server.shutdown().await.unwrap();
}
