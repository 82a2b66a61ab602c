//! `/flush_cache` (GET|POST, optional `?timeout=` seconds) and `/abort_request`, with SGLang's
//! replies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use inferperf_engine::api::ControlCommand;
use inferperf_protocol::generate::AbortRequest;
use serde::Deserialize;
use tokio::sync::oneshot;

use crate::api_error::ApiError;
use crate::json::parse_json;
use crate::state::AppState;

/// SGLang's `/flush_cache` body (the same text on success and failure; the status differs).
pub const FLUSH_CACHE_MESSAGE: &str = "Cache flushed.\nPlease check backend logs for more details. (When there are running or waiting requests, the operation will not be performed.)\n";

/// How often a flush is retried while requests are still running and `timeout` allows.
const FLUSH_RETRY_INTERVAL: Duration = Duration::from_millis(50);

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/flush_cache", get(flush_cache).post(flush_cache))
        .route("/abort_request", post(abort_request))
}

#[derive(Debug, Default, Deserialize)]
struct FlushQuery {
    /// Seconds to keep retrying while requests are running (SGLang's `timeout`).
    timeout: Option<f64>,
}

async fn flush_cache(
    State(state): State<Arc<AppState>>,
    Query(query): Query<FlushQuery>,
) -> Result<(StatusCode, &'static str), ApiError> {
    let timeout = query.timeout.unwrap_or(0.0);
    if !timeout.is_finite() || timeout < 0.0 {
        return Err(ApiError::invalid_param(
            "timeout",
            format!("timeout must be a non-negative number of seconds, got {timeout}"),
        ));
    }
    let deadline = Instant::now() + Duration::from_secs_f64(timeout.min(3600.0));
    loop {
        let (tx, rx) = oneshot::channel();
        state.engine.control(ControlCommand::FlushCache(tx))?;
        let flushed = rx.await.map_err(|_| ApiError::engine_stopped())?;
        if flushed {
            tracing::info!("cache flushed");
            return Ok((StatusCode::OK, FLUSH_CACHE_MESSAGE));
        }
        if Instant::now() >= deadline {
            tracing::info!("cache not flushed: requests are running");
            return Ok((StatusCode::BAD_REQUEST, FLUSH_CACHE_MESSAGE));
        }
        tokio::time::sleep(FLUSH_RETRY_INTERVAL).await;
    }
}

async fn abort_request(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let req: AbortRequest = if body.iter().all(u8::is_ascii_whitespace) {
        AbortRequest::default()
    } else {
        parse_json(&body)?
    };
    if req.abort_all {
        tracing::info!("aborting all requests");
        state.engine.control(ControlCommand::Abort(None))?;
    } else if !req.rid.is_empty() {
        tracing::info!(rid = %req.rid, "aborting request");
        state.engine.control(ControlCommand::Abort(Some(req.rid)))?;
    }
    Ok(StatusCode::OK)
}
