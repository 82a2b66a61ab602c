//! `--api-key`: require `Authorization: Bearer <key>` like SGLang's API-key middleware, which
//! leaves `/health*` and `/metrics` open for probes and scrapers.
//!
//! One layer for every model kind: `routes::router` puts the whole application (the model's
//! routes and the common base) behind [`guard`], so a route added anywhere is covered without
//! further wiring.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::api_error::ApiError;

/// `router` behind the API-key check; `key: None` (no `--api-key`) lets everything through.
pub fn guard(router: Router, key: Option<&str>) -> Router {
    let key: Option<Arc<str>> = key.map(Arc::from);
    router.layer(middleware::from_fn_with_state(key, require_api_key))
}

/// Paths SGLang leaves open even with an API key: liveness probes and Prometheus scrapes.
pub fn is_public(path: &str) -> bool {
    path.starts_with("/health") || path.starts_with("/metrics")
}

/// Middleware: pass through when no key is configured, the path is public, or the bearer
/// token matches; otherwise 401 with an OpenAI-style body.
pub async fn require_api_key(
    State(key): State<Option<Arc<str>>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(key) = key else {
        return next.run(req).await;
    };
    if is_public(req.uri().path()) {
        return next.run(req).await;
    }
    let authorized = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| token == &*key);
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
