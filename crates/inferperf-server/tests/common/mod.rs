//! Shared helpers of the server integration tests: starting servers on 127.0.0.1:0, an HTTP
//! client, SSE parsing and error-body checks.
#![allow(dead_code)] // each test binary uses a different subset

pub mod fake_engine;

use inferperf_protocol::ErrorResponse;
use inferperf_server::{EmbeddedServer, ServerConfig};
use serde_json::Value;

use fake_engine::FakeEngine;

/// A server over the fake engine, with the engine's test hooks.
pub struct FakeServer {
    pub server: EmbeddedServer,
    pub engine: FakeEngine,
    pub base: String,
    pub http: reqwest::Client,
}

pub async fn start_fake(args: ServerConfig) -> FakeServer {
    let engine = FakeEngine::start();
    let server = EmbeddedServer::start_with_engine(args, engine.parts())
        .await
        .expect("start the server over the fake engine");
    let base = server.base_url();
    FakeServer {
        server,
        engine,
        base,
        http: reqwest::Client::new(),
    }
}

/// Ephemeral-port args serving the fake model (`model_path` must match its name).
pub fn fake_args() -> ServerConfig {
    ServerConfig {
        model_path: "fake".into(),
        ..ServerConfig::ephemeral()
    }
}

/// POST JSON, return status and body text.
pub async fn post_json(http: &reqwest::Client, url: &str, body: &Value) -> (u16, String) {
    let resp = http
        .post(url)
        .json(body)
        .send()
        .await
        .expect("send request");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("read body"))
}

/// POST a raw body (for malformed JSON).
pub async fn post_raw(http: &reqwest::Client, url: &str, body: &str) -> (u16, String) {
    let resp = http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("send request");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("read body"))
}

pub async fn get(http: &reqwest::Client, url: &str) -> (u16, String) {
    let resp = http.get(url).send().await.expect("send request");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("read body"))
}

pub fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Split a complete SSE body into its `data:` payloads, checking the framing: every event is
/// exactly `data: <payload>\n\n` and the last payload is `[DONE]`.
pub fn sse_payloads(body: &str) -> Vec<String> {
    assert!(
        body.ends_with("\n\n"),
        "SSE body must end with a blank line: {body:?}"
    );
    let events: Vec<&str> = body.trim_end_matches("\n\n").split("\n\n").collect();
    let payloads: Vec<String> = events
        .iter()
        .map(|e| {
            e.strip_prefix("data: ")
                .unwrap_or_else(|| panic!("event without `data: ` prefix: {e:?}"))
                .to_string()
        })
        .collect();
    assert_eq!(
        payloads.last().map(String::as_str),
        Some("[DONE]"),
        "{body}"
    );
    payloads
}

/// The JSON chunks of an SSE body (everything before `[DONE]`).
pub fn sse_chunks(body: &str) -> Vec<Value> {
    let payloads = sse_payloads(body);
    payloads[..payloads.len() - 1]
        .iter()
        .map(|p| json(p))
        .collect()
}

/// Assert an OpenAI-style error body with `status` whose message contains every needle.
pub fn assert_error(status: u16, body: &str, expected: u16, needles: &[&str]) -> ErrorResponse {
    assert_eq!(status, expected, "unexpected status; body: {body}");
    let value = json(body);
    assert!(
        value["error"].is_object(),
        "not an OpenAI error body: {body}"
    );
    let err: ErrorResponse = serde_json::from_value(value).expect("error body shape");
    for needle in needles {
        assert!(
            err.error.message.contains(needle),
            "error message {:?} does not mention {needle:?}",
            err.error.message
        );
    }
    assert_eq!(
        err.error.code,
        Some(inferperf_protocol::ErrorCode::Status(expected)),
        "{body}"
    );
    err
}
