//! `ApiJson<T>`: the JSON body extractor of every route.
//!
//! axum's own `Json` rejects with plain text; this one answers with the OpenAI error shape and
//! names the field at fault (`sampling_params.max_new_tokens: invalid type: string "x",
//! expected u32`), using `serde_path_to_error`. It does not insist on a JSON content type, as
//! FastAPI does not either (curl's `-d` sends a form content type).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::api_error::ApiError;

/// A request body parsed as JSON into `T`, with OpenAI-style errors.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parse a JSON body into `T`, mapping errors to 400s that name the field and the problem.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the request body is empty; expected a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(path_error)?;
    de.end().map_err(|e| {
        ApiError::bad_request(format!("invalid JSON body: trailing characters ({e})"))
    })?;
    Ok(value)
}

fn path_error(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    match inner.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            ApiError::bad_request(format!("invalid JSON body: {inner}"))
        }
        serde_json::error::Category::Io => ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("cannot read body: {inner}"),
        ),
        serde_json::error::Category::Data => {
            // serde_json appends " at line L column C"; keep it, it helps with large bodies.
            if path.is_empty() || path == "." {
                ApiError::bad_request(format!("invalid request body: {inner}"))
            } else {
                ApiError::invalid_param(&path, format!("invalid value for `{path}`: {inner}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferperf_protocol::generate::GenerateReqInput;
    use inferperf_protocol::openai::CompletionRequest;

    #[test]
    fn names_the_field_of_a_type_error() {
        let err = parse_json::<CompletionRequest>(br#"{"prompt": "a", "max_tokens": "ten"}"#)
            .unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.param.as_deref(), Some("max_tokens"));
        assert!(err.message.contains("max_tokens"), "{}", err.message);

        let err = parse_json::<GenerateReqInput>(
            br#"{"text": "a", "sampling_params": {"temperature": "hot"}}"#,
        )
        .unwrap_err();
        assert_eq!(err.param.as_deref(), Some("sampling_params.temperature"));
    }

    #[test]
    fn syntax_missing_field_and_empty_body() {
        let err = parse_json::<CompletionRequest>(br#"{"prompt": "#).unwrap_err();
        assert!(
            err.message.starts_with("invalid JSON body"),
            "{}",
            err.message
        );
        let err = parse_json::<CompletionRequest>(br#"{"model": "m"}"#).unwrap_err();
        assert!(err.message.contains("prompt"), "{}", err.message);
        let err = parse_json::<CompletionRequest>(b"  ").unwrap_err();
        assert!(err.message.contains("empty"), "{}", err.message);
        let err = parse_json::<CompletionRequest>(br#"{"prompt": "a"} x"#).unwrap_err();
        assert!(err.message.contains("trailing"), "{}", err.message);
    }
}
