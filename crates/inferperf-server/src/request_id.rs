//! Request identity at the HTTP edge: when a request arrived, which rid it asked for in an
//! `X-Request-Id` header, and echoing the rid back in the response's `X-Request-Id`.
//!
//! The rid of a generation request is the body's `rid` when given (SGLang's field), else the
//! `X-Request-Id` header, else a generated one ([`crate::request::new_rid`]). The arrival time
//! is stamped by [`stamp_arrival`], the outermost layer, before the body is read.

use std::time::Instant;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use crate::api_error::ApiError;

/// The request/response header carrying the rid.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// When the server received a request (stamped by [`stamp_arrival`]).
#[derive(Clone, Copy, Debug)]
pub struct Arrival(pub Instant);

/// Middleware: stamp the arrival time into the request's extensions.
pub async fn stamp_arrival(mut req: Request, next: Next) -> Response {
    req.extensions_mut().insert(Arrival(Instant::now()));
    next.run(req).await
}

/// What a generation handler needs from the request head: its arrival and the rid its
/// `X-Request-Id` header asked for.
#[derive(Clone, Debug)]
pub struct RequestMeta {
    pub arrival: Instant,
    pub header_rid: Option<String>,
}

impl RequestMeta {
    /// The rid: the body's, else the header's, else a fresh one.
    pub fn rid(&self, body: Option<String>) -> String {
        body.or_else(|| self.header_rid.clone())
            .unwrap_or_else(crate::request::new_rid)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let arrival = parts
            .extensions
            .get::<Arrival>()
            .map_or_else(Instant::now, |a| a.0);
        let header_rid = match parts.headers.get(REQUEST_ID_HEADER) {
            None => None,
            Some(v) => {
                let text = v.to_str().map_err(|_| {
                    ApiError::invalid_param("X-Request-Id", "X-Request-Id must be visible ASCII")
                })?;
                let text = text.trim();
                (!text.is_empty()).then(|| text.to_string())
            }
        };
        Ok(Self {
            arrival,
            header_rid,
        })
    }
}

/// `response` with `X-Request-Id: rid` (left out if the rid cannot be a header value).
pub fn with_rid_header(mut response: Response, rid: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(rid) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    response
}
