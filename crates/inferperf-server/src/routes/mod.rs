//! All HTTP routes, one module per group, merged in [`router`]. To add a group (e.g. the
//! profiler's `/start_profile`, `/stop_profile`), add a module with a
//! `pub fn routes() -> Router<Arc<AppState>>` and one `.merge(...)` line below.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, Uri};
use axum::middleware;
use axum::Router;

use crate::api_error::ApiError;
use crate::state::AppState;

pub mod auth;
pub mod chat;
pub mod completions;
pub mod control;
pub mod generate;
pub mod health;
pub mod info;
pub mod metrics;
pub mod models;
pub mod tokenize;

/// Largest accepted request body (long prompts as text or token ids).
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

/// The complete application: every route group, the API-key check, body limit and JSON
/// fallbacks for unknown paths and methods.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(models::routes())
        .merge(completions::routes())
        .merge(chat::routes())
        .merge(generate::routes())
        .merge(info::routes())
        .merge(control::routes())
        .merge(tokenize::routes())
        .merge(metrics::routes())
        // Profile routes (`/start_profile`, `/stop_profile`, `/end_profile`) merge here.
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
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
