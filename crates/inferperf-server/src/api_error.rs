//! HTTP error replies: every failure a client can cause ends as a 4xx with an OpenAI-style
//! body (`{"error": {"message", "type", "param", "code"}}`) naming the problem.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use inferperf_protocol::ErrorResponse;

/// An error reply of a handler: status, message and optionally the request field at fault.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub param: Option<String>,
}

impl ApiError {
    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 400 naming the request field at fault.
    pub fn invalid_param(param: &str, message: impl Into<String>) -> Self {
        Self::bad_request(message).with_param(param)
    }

    /// Any status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            param: None,
        }
    }

    /// Name the request field at fault.
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// 503: the engine stopped (shutting down or crashed).
    pub fn engine_stopped() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the inference engine has stopped",
        )
    }

    /// The OpenAI-style body of this error.
    pub fn body(&self) -> ErrorResponse {
        let body = ErrorResponse::new(self.status.as_u16(), self.message.clone());
        match &self.param {
            Some(p) => body.with_param(p.clone()),
            None => body,
        }
    }
}

impl From<inferperf_engine::api::EngineError> for ApiError {
    fn from(err: inferperf_engine::api::EngineError) -> Self {
        use inferperf_engine::api::EngineError;
        match err {
            EngineError::Stopped => Self::engine_stopped(),
            EngineError::InvalidRequest(msg) => Self::bad_request(msg),
            EngineError::Other(msg) => Self::new(StatusCode::INTERNAL_SERVER_ERROR, msg),
        }
    }
}

/// Tokenizer errors are about the request's text, ids or messages.
impl From<inferperf_engine::tokenizer::TokenizerError> for ApiError {
    fn from(err: inferperf_engine::tokenizer::TokenizerError) -> Self {
        Self::bad_request(err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, message = %self.message, "request failed");
        } else {
            tracing::debug!(status = %self.status, message = %self.message, "request rejected");
        }
        (self.status, axum::Json(self.body())).into_response()
    }
}
