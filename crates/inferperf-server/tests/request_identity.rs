//! Request identity over HTTP (fake engine on 127.0.0.1:0): the rid comes from the body's
//! `rid`, else the `X-Request-Id` header, else is generated; every generation route echoes it
//! in the `X-Request-Id` response header and where SGLang puts it (`meta_info.id` on
//! `/generate`, the OpenAI `id`); a live rid is refused a second time whichever way it came;
//! `/server_info` reports the server's wall clock (`server_time_ns`).

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::{json, Value};

/// POST `body` to `path` with an optional `X-Request-Id`; returns status, the response's
/// `X-Request-Id` and the body text.
async fn post_with_rid(
    s: &FakeServer,
    path: &str,
    header: Option<&str>,
    body: &Value,
) -> (u16, Option<String>, String) {
    let mut req = s.http.post(format!("{}{path}", s.base)).json(body);
    if let Some(h) = header {
        req = req.header("X-Request-Id", h);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let rid = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, rid, resp.text().await.expect("body"))
}

/// A body for `path` (one short prompt), with `rid` when given.
fn body_for(path: &str, rid: Option<&str>, stream: bool) -> Value {
    let mut body = match path {
        "/generate" => json!({"text": "a", "sampling_params": {"max_new_tokens": 2}}),
        "/v1/completions" => json!({"prompt": "a", "max_tokens": 2}),
        _ => json!({"messages": [{"role": "user", "content": "a"}], "max_tokens": 2}),
    };
    if let Some(rid) = rid {
        body["rid"] = json!(rid);
    }
    if stream {
        body["stream"] = json!(true);
    }
    body
}

/// The rid where SGLang reports it in a response body (or in the first streamed chunk).
fn body_rid(path: &str, body: &str, stream: bool) -> String {
    let v = if stream {
        sse_chunks(body).into_iter().next().expect("a chunk")
    } else {
        json(body)
    };
    let id = if path == "/generate" {
        &v["meta_info"]["id"]
    } else {
        &v["id"]
    };
    id.as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

const ROUTES: [&str; 3] = ["/generate", "/v1/completions", "/v1/chat/completions"];

#[tokio::test]
async fn body_rid_wins_then_header_then_generated_on_every_route() {
    let s = start_fake(fake_args()).await;
    for path in ROUTES {
        for stream in [false, true] {
            let tag = format!("{}-{stream}", path.replace('/', "_"));
            // Body and header: the body's rid.
            let want = format!("body{tag}");
            let (status, hdr, body) = post_with_rid(
                &s,
                path,
                Some(&format!("hdr{tag}")),
                &body_for(path, Some(&want), stream),
            )
            .await;
            assert_eq!(status, 200, "{path}: {body}");
            assert_eq!(hdr.as_deref(), Some(want.as_str()), "{path}");
            assert_eq!(body_rid(path, &body, stream), want, "{path}");
            // Header only.
            let want = format!("hdr-only{tag}");
            let (status, hdr, body) =
                post_with_rid(&s, path, Some(&want), &body_for(path, None, stream)).await;
            assert_eq!(status, 200, "{path}: {body}");
            assert_eq!(hdr.as_deref(), Some(want.as_str()), "{path}");
            assert_eq!(body_rid(path, &body, stream), want, "{path}");
            // Neither: a generated rid, the same in the header and the body.
            let (status, hdr, body) =
                post_with_rid(&s, path, None, &body_for(path, None, stream)).await;
            assert_eq!(status, 200, "{path}: {body}");
            let hdr = hdr.expect("a generated X-Request-Id");
            assert_eq!(hdr.len(), 32, "{hdr}");
            assert!(hdr.chars().all(|c| c.is_ascii_hexdigit()), "{hdr}");
            assert_eq!(body_rid(path, &body, stream), hdr, "{path}");
        }
    }
}

#[tokio::test]
async fn batch_generate_keeps_its_rid_list_and_suffixes_a_header_rid() {
    let s = start_fake(fake_args()).await;
    let body = json!({"text": ["a", "b"], "rid": ["r-one", "r-two"],
                      "sampling_params": {"max_new_tokens": 2}});
    let (status, _, text) = post_with_rid(&s, "/generate", Some("ignored"), &body).await;
    assert_eq!(status, 200, "{text}");
    let ids: Vec<String> = json(&text)
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r["meta_info"]["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(ids, ["r-one", "r-two"]);
    let body = json!({"text": ["a", "b"], "sampling_params": {"max_new_tokens": 2}});
    let (status, hdr, text) = post_with_rid(&s, "/generate", Some("batch-h"), &body).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(hdr.as_deref(), Some("batch-h"));
    let ids: Vec<String> = json(&text)
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r["meta_info"]["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(ids, ["batch-h-0", "batch-h-1"]);
}

#[tokio::test]
async fn a_live_rid_is_refused_whether_it_came_in_the_body_or_the_header() {
    let s = start_fake(fake_args()).await;
    for (i, path) in ROUTES.into_iter().enumerate() {
        // `hold*` requests keep running in the fake engine until aborted.
        let rid = format!("hold-dup-{i}");
        let mut held = s
            .http
            .post(format!("{}{path}", s.base))
            .header("X-Request-Id", &rid)
            .json(&body_for(path, None, true))
            .send()
            .await
            .expect("send");
        assert_eq!(held.status().as_u16(), 200);
        assert_eq!(
            held.headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok()),
            Some(rid.as_str())
        );
        held.chunk().await.expect("read").expect("a first chunk");
        for other in ROUTES {
            let (status, _, body) =
                post_with_rid(&s, other, None, &body_for(other, Some(&rid), false)).await;
            assert_error(status, &body, 400, &[&rid, "already running"]);
            let (status, _, body) =
                post_with_rid(&s, other, Some(&rid), &body_for(other, None, false)).await;
            assert_error(status, &body, 400, &[&rid, "already running"]);
        }
        drop(held);
        assert_eq!(s.engine.next_abort().await, rid);
    }
}

#[tokio::test]
async fn server_info_reports_the_server_wall_clock_in_ns() {
    let s = start_fake(fake_args()).await;
    for path in ["/server_info", "/get_server_info"] {
        let (status, body) = get(&s.http, &format!("{}{path}", s.base)).await;
        assert_eq!(status, 200, "{body}");
        let server_ns = json(&body)["server_time_ns"]
            .as_u64()
            .unwrap_or_else(|| panic!("no server_time_ns in {body}"));
        let now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos() as u64;
        // Same host, same clock: minutes of slack are a sanity range, not a timing claim.
        let slack = Duration::from_secs(600).as_nanos() as u64;
        assert!(
            server_ns.abs_diff(now_ns) < slack,
            "{server_ns} vs {now_ns}"
        );
    }
}
