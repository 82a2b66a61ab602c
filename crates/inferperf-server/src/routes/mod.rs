//! The one router of every server kind: [`router`] mounts a model's routes (the LLM groups of
//! [`llm_routes`], or the diffusion API of `crate::diffusion`) on a common base: `/health`,
//! the profile routes ([`profile`]), JSON fallbacks for unknown paths and methods, the
//! API-key check ([`auth`]), the body limit and the test admission gate ([`admission`]).
//!
//! To add an LLM route group, add a module with a `pub fn routes() -> Router<Arc<AppState>>`
//! and one `.merge(...)` line in [`llm_routes`].

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, Uri};
use axum::middleware;
use axum::routing::get;
use axum::Router;

use crate::api_error::ApiError;
use crate::config::ServerConfig;
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

use profile::ProfileControl;

/// Largest accepted LLM request body (long prompts as text or token ids).
pub const LLM_MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

/// The routes a server mounts on the common base: what it serves, how big a request body may
/// be, and what its profile routes drive.
pub struct ModelRoutes {
    /// The model kind's own routes, their state applied.
    pub routes: Router,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// What `/start_profile` and `/stop_profile` drive; `None`: no profile routes (404), as
    /// for an engine injected without a profiler.
    pub profiling: Option<Arc<dyn ProfileControl>>,
}

/// The LLM route groups (SGLang- and OpenAI-compatible) over `state`.
pub fn llm_routes(state: Arc<AppState>) -> Router {
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
        // Route groups that need only `AppState` merge here.
        .with_state(state)
}

/// The complete application: `model` on the common base, behind the API-key check
/// (`--api-key`), the body limit and, with `--inferperf-test-admit-rate`, the admission gate.
pub fn router(model: ModelRoutes, args: &ServerConfig) -> Router {
    let mut router = Router::new()
        .route("/health", get(health))
        .merge(model.routes);
    if let Some(control) = model.profiling {
        router = router.merge(profile::routes(control));
    }
    let router = router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let router = auth::guard(router, args.api_key.as_deref())
        .layer(DefaultBodyLimit::max(model.max_body_bytes));
    let router = match args.inferperf_test_admit_rate {
        Some(rate) if rate > 0.0 => router.layer(middleware::from_fn_with_state(
            Arc::new(admission::AdmissionGate::new(rate)),
            admission::gate,
        )),
        _ => router,
    };
    // Outermost: a request's lifecycle starts before the gate, the key check and the body.
    router.layer(middleware::from_fn(crate::request_id::stamp_arrival))
}

/// `/health`: the process answers (every model kind; `/health_generate` is the model's).
async fn health() -> StatusCode {
    StatusCode::OK
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
