//! `--api-key`: require `Authorization: Bearer <key>` like SGLang's API-key middleware, which
//! leaves `/health*` and `/metrics` open for probes and scrapers.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api_error::ApiError;
use crate::state::AppState;

/// Middleware: pass through when no key is configured, the path is public, or the bearer
/// token matches; otherwise 401 with an OpenAI-style body.
pub async fn require_api_key(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(key) = state.args.api_key.as_deref() else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    if path.starts_with("/health") || path.starts_with("/metrics") {
        return next.run(req).await;
    }
    let authorized = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| token == key);
    if authorized {
        next.run(req).await
    } else {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing or invalid API key: send `Authorization: Bearer <key>`",
        )
        .into_response()
    }
}
