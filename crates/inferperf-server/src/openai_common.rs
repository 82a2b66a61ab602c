//! Pieces shared by `/v1/completions` and `/v1/chat/completions`: model-name check, response
//! ids, unsupported-field checks and usage accounting.

use axum::http::StatusCode;
use inferperf_engine::api::FinishInfo;
use inferperf_protocol::openai::Usage;

use crate::api_error::ApiError;
use crate::state::AppState;

/// Reject a `model` that names neither the served model name nor the model path (404, as
/// OpenAI answers for an unknown model). An absent model means the served one.
pub fn check_model(state: &AppState, model: Option<&str>) -> Result<String, ApiError> {
    match model {
        None => Ok(state.served_model_name().to_string()),
        Some(m) if state.accepts_model(m) => Ok(m.to_string()),
        Some(m) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "The model `{m}` does not exist. This server serves `{}`.",
                state.served_model_name()
            ),
        )
        .with_param("model")),
    }
}

/// Reject a present, non-trivial value of a field the reference server cannot honour.
pub fn reject_if(present: bool, field: &str, why: &str) -> Result<(), ApiError> {
    if present {
        Err(ApiError::invalid_param(
            field,
            format!("`{field}` is not supported by the reference server: {why}"),
        ))
    } else {
        Ok(())
    }
}

/// Running usage over the choices of one response.
#[derive(Debug, Default, Clone)]
pub struct UsageSum {
    prompt: u64,
    completion: u64,
    cached: u64,
}

impl UsageSum {
    /// Add one finished request.
    pub fn add(&mut self, info: &FinishInfo) {
        self.prompt += info.prompt_tokens as u64;
        self.completion += info.completion_tokens as u64;
        self.cached += info.cached_tokens as u64;
    }

    /// The `usage` object (with `prompt_tokens_details.cached_tokens`).
    pub fn usage(&self) -> Usage {
        Usage::new(self.prompt, self.completion, self.cached)
    }
}
