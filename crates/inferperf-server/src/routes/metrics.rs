//! `GET /metrics`: Prometheus text with SGLang's metric names. Counters come from the server's
//! own accounting of finished requests; gauges from the engine's current state.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use inferperf_protocol::server_info::metric_names as m;

use crate::api_error::ApiError;
use crate::state::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<Arc<AppState>>) -> Result<impl IntoResponse, ApiError> {
    let internal = state.engine.internal_state().await?;
    let c = &state.metrics;
    let labels = format!(
        "{{model_name=\"{}\"}}",
        escape_label(state.served_model_name())
    );
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name}{labels} {value}");
    };
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    metric(
        m::PROMPT_TOKENS_TOTAL,
        "counter",
        "Number of prefill tokens processed.",
        load(&c.prompt_tokens_total),
    );
    metric(
        m::GENERATION_TOKENS_TOTAL,
        "counter",
        "Number of generation tokens processed.",
        load(&c.generation_tokens_total),
    );
    metric(
        m::CACHED_TOKENS_TOTAL,
        "counter",
        "Number of cached prompt tokens.",
        load(&c.cached_tokens_total),
    );
    metric(
        m::NUM_REQUESTS_TOTAL,
        "counter",
        "Number of requests processed.",
        load(&c.num_requests_total),
    );
    metric(
        "sglang:num_aborted_requests_total",
        "counter",
        "Number of requests aborted.",
        load(&c.num_aborted_requests_total),
    );
    metric(
        "sglang:e2e_request_latency_seconds_sum",
        "counter",
        "Sum of end-to-end request latencies in seconds.",
        load(&c.e2e_latency_us_total) / 1e6,
    );
    metric(
        m::NUM_RUNNING_REQS,
        "gauge",
        "The number of running requests.",
        internal.num_running_reqs as f64,
    );
    metric(
        m::NUM_QUEUE_REQS,
        "gauge",
        "The number of requests in the waiting queue.",
        internal.num_waiting_reqs as f64,
    );
    metric(
        m::TOKEN_USAGE,
        "gauge",
        "The token usage.",
        internal.token_usage,
    );
    metric(
        m::GEN_THROUGHPUT,
        "gauge",
        "The generation throughput (token/s).",
        internal.last_gen_throughput,
    );
    metric(
        "sglang:max_total_num_tokens",
        "gauge",
        "Maximum total number of tokens in the KV cache.",
        internal.max_total_num_tokens as f64,
    );
    metric(
        "sglang:forward_ct",
        "counter",
        "Forward steps run since start.",
        internal.forward_ct as f64,
    );
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    ))
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
