//! All HTTP routes, one module per group, merged in [`router_with`]. To add a group, add a
//! module with a `pub fn routes() -> Router<Arc<AppState>>` and one `.merge(...)` line below;
//! a group with its own state (the profiler's `/start_profile`, `/stop_profile`, built around
//! its handle) is passed as `extra` (see `EmbeddedServer::start_with_routes`).

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, Uri};
use axum::middleware;
use axum::Router;

use crate::api_error::ApiError;
use crate::state::AppState;

pub mod admission;
pub mod auth;
pub mod chat;
pub mod completions;
pub mod control;
pub mod generate;
pub mod health;
pub mod info;
pub mod metrics;
pub mod models;
pub mod profile;
pub mod tokenize;

/// Largest accepted request body (long prompts as text or token ids).
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

/// The complete application: every route group, the API-key check, body limit and JSON
/// fallbacks for unknown paths and methods.
pub fn router(state: Arc<AppState>) -> Router {
    router_with(state, Router::new())
}

/// [`router`] plus `extra` routes that carry their own state (e.g. profile routes built
/// around a profiler handle); they get the same API-key check, body limit and fallbacks.
pub fn router_with(state: Arc<AppState>, extra: Router) -> Router {
    let admit_rate = state.args.inferperf_test_admit_rate;
    let api_key = state.args.api_key.clone();
    let router = Router::new()
        .merge(health::routes())
        .merge(models::routes())
        .merge(completions::routes())
        .merge(chat::routes())
        .merge(generate::routes())
        .merge(info::routes())
        .merge(control::routes())
        .merge(tokenize::routes())
        .merge(metrics::routes())
        // Route groups that need only `AppState` merge here.
        .with_state(state)
        .merge(extra)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let router =
        auth::guard(router, api_key.as_deref()).layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    match admit_rate {
        Some(rate) if rate > 0.0 => router.layer(middleware::from_fn_with_state(
            Arc::new(admission::AdmissionGate::new(rate)),
            admission::gate,
        )),
        _ => router,
    }
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no route for {}", uri.path()),
    )
}

async fn method_not_allowed(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method not allowed for {}", uri.path()),
    )
}
