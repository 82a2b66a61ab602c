//! `--api-key` on both model kinds, route by route: every non-public route answers 401
//! without the key (and does nothing: an unauthorized `/start_profile` creates no output
//! directory), and anything but 401 with it; `/health*` and `/metrics` stay open.

mod common;

use common::*;
use inferperf_server::{EmbeddedServer, ServerConfig};
use reqwest::Method;
use serde_json::{json, Value};

const KEY: &str = "sekret";

/// One route to probe: method, path and JSON body (`Value::Null`: no body).
struct Probe {
    method: Method,
    path: String,
    body: Value,
}

fn probe(method: Method, path: &str, body: Value) -> Probe {
    Probe {
        method,
        path: path.to_string(),
        body,
    }
}

async fn send(http: &reqwest::Client, base: &str, p: &Probe, key: Option<&str>) -> (u16, String) {
    let mut req = http.request(p.method.clone(), format!("{base}{}", p.path));
    if !p.body.is_null() {
        req = req.json(&p.body);
    }
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

/// Each guarded probe: 401 without a key and with a wrong one, then not 401 with the key (in
/// list order, so a later probe may rely on an earlier one having run). `after_refused` runs
/// between the refusals and the authorized call. Public paths: 200 without a key.
async fn check_routes(
    base: &str,
    guarded: &[Probe],
    public: &[&str],
    after_refused: impl Fn(&Probe),
) {
    let http = reqwest::Client::new();
    for p in guarded {
        let (status, body) = send(&http, base, p, None).await;
        assert_error(status, &body, 401, &["API key"]);
        let (status, _) = send(&http, base, p, Some("wrong")).await;
        assert_eq!(status, 401, "{} {} with a wrong key", p.method, p.path);
        after_refused(p);
        let (status, body) = send(&http, base, p, Some(KEY)).await;
        assert_ne!(status, 401, "{} {} with the key: {body}", p.method, p.path);
    }
    for path in public {
        let (status, body) = get(&http, &format!("{base}{path}")).await;
        assert_eq!(status, 200, "{path} is open: {body}");
    }
}

/// The profile routes, writing into `out` (a directory that does not exist yet).
fn profile_probes(out: &std::path::Path) -> Vec<Probe> {
    vec![
        probe(
            Method::POST,
            "/start_profile",
            json!({"output_dir": out, "activities": ["CPU"]}),
        ),
        probe(Method::POST, "/stop_profile", Value::Null),
        probe(Method::GET, "/end_profile", Value::Null),
    ]
}

/// After a refused `/start_profile`, its output directory must not exist (an accepted start
/// creates it at once).
fn refused_start_created_nothing(p: &Probe, out: &std::path::Path) {
    if p.path == "/start_profile" {
        assert!(
            !out.exists(),
            "an unauthorized /start_profile created {}",
            out.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_server_guards_every_route_but_health_and_metrics() {
    // The same start as `inferperf serve`: the built-in model with its profile routes.
    let server = EmbeddedServer::start(ServerConfig {
        api_key: Some(KEY.into()),
        ..ServerConfig::ephemeral()
    })
    .await
    .expect("start the server");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut guarded = vec![
        probe(Method::GET, "/v1/models", Value::Null),
        probe(Method::GET, "/v1/models/default", Value::Null),
        probe(Method::GET, "/server_info", Value::Null),
        probe(Method::GET, "/get_server_info", Value::Null),
        probe(Method::GET, "/model_info", Value::Null),
        probe(Method::GET, "/get_model_info", Value::Null),
        probe(
            Method::POST,
            "/v1/completions",
            json!({"prompt": "a", "max_tokens": 1}),
        ),
        probe(
            Method::POST,
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "a"}], "max_tokens": 1}),
        ),
        probe(
            Method::POST,
            "/generate",
            json!({"text": "a", "sampling_params": {"max_new_tokens": 1}}),
        ),
        probe(Method::GET, "/flush_cache", Value::Null),
        probe(Method::POST, "/flush_cache", Value::Null),
        probe(Method::POST, "/abort_request", json!({"rid": "none"})),
        probe(Method::POST, "/tokenize", json!({"prompt": "a"})),
        probe(Method::POST, "/v1/tokenize", json!({"prompt": "a"})),
        probe(Method::POST, "/detokenize", json!({"tokens": [65]})),
        probe(Method::POST, "/v1/detokenize", json!({"tokens": [65]})),
        probe(Method::GET, "/no-such-route", Value::Null),
    ];
    let out = dir.path().join("traces");
    guarded.extend(profile_probes(&out));
    check_routes(
        &server.base_url(),
        &guarded,
        &["/health", "/health_generate", "/metrics"],
        |p| refused_start_created_nothing(p, &out),
    )
    .await;
    assert!(out.is_dir(), "the authorized /start_profile ran");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diffusion_server_guards_every_route_but_health() {
    let server = EmbeddedServer::start(ServerConfig {
        model_path: "diffusion".into(),
        api_key: Some(KEY.into()),
        ..ServerConfig::ephemeral()
    })
    .await
    .expect("diffusion server");
    let dir = tempfile::tempdir().expect("tempdir");
    let tiny = json!({"prompt": "x", "size": "32x32", "num_inference_steps": 1});
    let out = dir.path().join("traces");
    let mut guarded = profile_probes(&out);
    guarded.extend([
        probe(Method::GET, "/v1/models", Value::Null),
        probe(Method::GET, "/v1/models/diffusion", Value::Null),
        probe(Method::GET, "/v1/model_info", Value::Null),
        probe(Method::GET, "/model_info", Value::Null),
        probe(Method::GET, "/get_server_info", Value::Null),
        probe(Method::GET, "/server_info", Value::Null),
        probe(Method::POST, "/v1/images/generations", tiny.clone()),
        probe(Method::POST, "/v1/images/edits", Value::Null),
        probe(Method::GET, "/v1/videos", Value::Null),
        probe(Method::POST, "/v1/videos", tiny),
        probe(Method::GET, "/v1/videos/video_none", Value::Null),
        probe(Method::GET, "/v1/videos/video_none/content", Value::Null),
        probe(Method::DELETE, "/v1/videos/video_none", Value::Null),
        probe(Method::GET, "/no-such-route", Value::Null),
    ]);
    check_routes(
        &server.base_url(),
        &guarded,
        &["/health", "/health_generate"],
        |p| refused_start_created_nothing(p, &out),
    )
    .await;
    assert!(out.is_dir(), "the authorized /start_profile ran");
    server.shutdown().await.expect("shutdown");
}
