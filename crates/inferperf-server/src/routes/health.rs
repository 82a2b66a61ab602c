//! `/health_generate` of the LLM server: the engine can generate one token. (`/health`, the
//! process answers, is on the common base of every server kind: see `routes::router`.)

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use inferperf_engine::api::{FinishReason, SamplingParams};

use crate::api_error::ApiError;
use crate::request::{collect_all, new_rid, submit};
use crate::state::AppState;

/// How long `/health_generate` waits for its one-token generation (SGLang waits 20 s).
const HEALTH_GENERATE_TIMEOUT: Duration = Duration::from_secs(20);

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/health_generate", get(health_generate))
}

async fn health_generate(State(state): State<Arc<AppState>>) -> Result<StatusCode, ApiError> {
    let mut ids = state
        .tokenizer
        .encode("hello", false)
        .map_err(ApiError::from)?;
    if ids.is_empty() {
        ids.push(0);
    }
    let sampling = SamplingParams {
        max_new_tokens: 1,
        temperature: 0.0,
        ignore_eos: true,
        ..SamplingParams::default()
    };
    let rid = format!("HEALTH_CHECK_{}", new_rid());
    let request = submit(
        &state,
        rid,
        ids,
        sampling,
        usize::MAX,
        std::time::Instant::now(),
    )?;
    let unhealthy = |msg: String| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, msg);
    match tokio::time::timeout(HEALTH_GENERATE_TIMEOUT, collect_all(vec![request])).await {
        Err(_) => Err(unhealthy(format!(
            "the engine did not generate a token within {} s",
            HEALTH_GENERATE_TIMEOUT.as_secs()
        ))),
        Ok(results) => match results.first().and_then(|r| r.finish.as_ref()) {
            Some(info) => match &info.reason {
                FinishReason::Abort { message } => {
                    Err(unhealthy(format!("health generation aborted: {message}")))
                }
                _ => Ok(StatusCode::OK),
            },
            None => Err(unhealthy("health generation did not finish".to_string())),
        },
    }
}
