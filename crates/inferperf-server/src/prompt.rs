//! Turning request prompts into token ids on the handler side (never on the engine thread):
//! text, token ids or chat messages, with `spawn_blocking` for long inputs so a big prompt
//! does not stall the async workers.

use std::sync::Arc;

use axum::http::StatusCode;
use inferperf_engine::api::TextTokenizer;

use crate::api_error::ApiError;
use crate::state::AppState;

/// Inputs longer than this many bytes are tokenized on the blocking pool.
const BLOCKING_THRESHOLD_BYTES: usize = 4096;

/// Encode `text` (`add_special_tokens` adds BOS where the model wants it).
pub async fn encode_text(
    state: &Arc<AppState>,
    text: String,
    add_special_tokens: bool,
) -> Result<Vec<u32>, ApiError> {
    let tokenizer = state.tokenizer.clone();
    run_tokenizer(text.len(), move || {
        tokenizer
            .encode(&text, add_special_tokens)
            .map_err(tokenizer_error)
    })
    .await
}

/// Render `messages` with the model's chat template and encode the result (no extra BOS: the
/// template carries the model's special tokens). Returns the rendered prompt too.
pub async fn encode_chat(
    state: &Arc<AppState>,
    messages: serde_json::Value,
    add_generation_prompt: bool,
) -> Result<(String, Vec<u32>), ApiError> {
    let tokenizer = state.tokenizer.clone();
    let size = messages.to_string().len();
    run_tokenizer(size, move || {
        let prompt = tokenizer
            .apply_chat_template(&messages, add_generation_prompt)
            .map_err(|e| {
                ApiError::invalid_param("messages", format!("chat template failed: {e}"))
            })?;
        let ids = tokenizer.encode(&prompt, false).map_err(tokenizer_error)?;
        Ok((prompt, ids))
    })
    .await
}

/// Decode ids to text.
pub async fn decode(
    state: &Arc<AppState>,
    ids: Vec<u32>,
    skip_special_tokens: bool,
) -> Result<String, ApiError> {
    check_ids(state.tokenizer.as_ref(), &ids, "tokens")?;
    let tokenizer = state.tokenizer.clone();
    run_tokenizer(ids.len() * 4, move || {
        tokenizer
            .decode(&ids, skip_special_tokens)
            .map_err(tokenizer_error)
    })
    .await
}

/// Reject token ids outside the vocabulary (`field` names the request field).
pub fn check_ids(tokenizer: &dyn TextTokenizer, ids: &[u32], field: &str) -> Result<(), ApiError> {
    let vocab = tokenizer.vocab_size();
    match ids.iter().find(|&&t| t as usize >= vocab) {
        Some(bad) => Err(ApiError::invalid_param(
            field,
            format!("token id {bad} is out of range (vocabulary size {vocab})"),
        )),
        None => Ok(()),
    }
}

async fn run_tokenizer<T, F>(size: usize, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    if size <= BLOCKING_THRESHOLD_BYTES {
        return f();
    }
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("tokenizer task failed: {e}"),
        )
    })?
}

fn tokenizer_error(err: inferperf_engine::tokenizer::TokenizerError) -> ApiError {
    ApiError::from(err)
}
