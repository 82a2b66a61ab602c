//! OpenAI-style error bodies (`{"error": {...}}`) returned by the server and parsed by clients.
//!
//! The server always answers with [`ErrorResponse`]. Clients also meet SGLang's flat
//! `{"object": "error", "message": ..., "type": ..., "code": 400}` and FastAPI's
//! `{"detail": ...}`; [`ErrorResponse::from_body`] reads all three so error messages survive
//! whichever server produced them.

use serde::{Deserialize, Serialize};

/// `{"error": {"message", "type", "param", "code"}}` as the OpenAI API returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: ErrorDetail,
}

/// The inner object of an [`ErrorResponse`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Human-readable explanation naming the offending field or value.
    pub message: String,
    /// Error class, SGLang's spelling (`BadRequestError`, `NotFoundError`, ...).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The request field at fault, when one is known (e.g. `max_tokens`).
    #[serde(default)]
    pub param: Option<String>,
    /// HTTP status (SGLang) or a short code string (OpenAI).
    #[serde(default)]
    pub code: Option<ErrorCode>,
}

/// `code` is an integer status in SGLang and a string in OpenAI; both are accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ErrorCode {
    Status(u16),
    Name(String),
}

impl ErrorResponse {
    /// Build an error body for an HTTP `status`; `kind` is derived from the status.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                message: message.into(),
                kind: error_type_for_status(status).to_string(),
                param: None,
                code: Some(ErrorCode::Status(status)),
            },
        }
    }

    /// Same as [`ErrorResponse::new`], naming the request field at fault.
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.error.param = Some(param.into());
        self
    }

    /// Parse an error body from any of the shapes servers send: OpenAI's nested
    /// `{"error": {...}}` (also `{"error": "text"}`), SGLang's flat `{"object": "error", ...}`
    /// and FastAPI's `{"detail": ...}`. Returns `None` when the body is not JSON or has none of
    /// these shapes (callers then show the raw text).
    pub fn from_body(body: &[u8]) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        let obj = value.as_object()?;
        if let Some(inner) = obj.get("error") {
            if let Some(text) = inner.as_str() {
                return Some(Self::from_message(text.to_string(), obj));
            }
            return serde_json::from_value::<ErrorDetail>(inner.clone())
                .ok()
                .map(|error| Self { error });
        }
        if let Some(message) = obj.get("message").and_then(|m| m.as_str()) {
            return Some(Self::from_message(message.to_string(), obj));
        }
        match obj.get("detail")? {
            serde_json::Value::String(s) => Some(Self::from_message(s.clone(), obj)),
            other => Some(Self::from_message(other.to_string(), obj)),
        }
    }

    fn from_message(message: String, obj: &serde_json::Map<String, serde_json::Value>) -> Self {
        let code = obj
            .get("code")
            .and_then(|c| serde_json::from_value::<ErrorCode>(c.clone()).ok());
        Self {
            error: ErrorDetail {
                message,
                kind: obj
                    .get("type")
                    .and_then(|t| t.as_str())
                    .unwrap_or_default()
                    .to_string(),
                param: obj
                    .get("param")
                    .and_then(|p| p.as_str())
                    .map(str::to_string),
                code,
            },
        }
    }
}

/// SGLang's error `type` for an HTTP status (`HTTPStatus` phrase + `Error`).
pub fn error_type_for_status(status: u16) -> &'static str {
    match status {
        400 => "BadRequestError",
        401 => "AuthenticationError",
        403 => "PermissionDeniedError",
        404 => "NotFoundError",
        405 => "MethodNotAllowedError",
        413 => "PayloadTooLargeError",
        415 => "UnsupportedMediaTypeError",
        422 => "UnprocessableEntityError",
        429 => "RateLimitError",
        503 => "ServiceUnavailableError",
        s if s >= 500 => "InternalServerError",
        _ => "BadRequestError",
    }
}

impl std::fmt::Display for ErrorResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.error.kind.is_empty() {
            write!(f, "{}", self.error.message)
        } else {
            write!(f, "{}: {}", self.error.kind, self.error.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_in_the_openai_shape() {
        let e = ErrorResponse::new(400, "max_tokens is too large").with_param("max_tokens");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"error": {"message": "max_tokens is too large", "type": "BadRequestError",
                             "param": "max_tokens", "code": 400}})
        );
    }

    #[test]
    fn parses_openai_sglang_and_fastapi_shapes() {
        let openai = br#"{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":"x"}}"#;
        let e = ErrorResponse::from_body(openai).unwrap();
        assert_eq!(e.error.message, "bad");
        assert_eq!(e.error.code, Some(ErrorCode::Name("x".into())));

        let sglang = br#"{"object":"error","message":"too long","type":"BadRequestError","param":null,"code":400}"#;
        let e = ErrorResponse::from_body(sglang).unwrap();
        assert_eq!(e.error.message, "too long");
        assert_eq!(e.error.kind, "BadRequestError");
        assert_eq!(e.error.code, Some(ErrorCode::Status(400)));

        let fastapi = br#"{"detail":"Not Found"}"#;
        assert_eq!(
            ErrorResponse::from_body(fastapi).unwrap().error.message,
            "Not Found"
        );
        assert!(ErrorResponse::from_body(b"Internal Server Error").is_none());
    }
}
