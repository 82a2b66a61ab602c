//! `/tokenize` and `/detokenize` (also under `/v1/`), with the server's tokenizer, and
//! `GET /inferperf/tokenizer`: the tokenizer itself as data, so an inferperf client builds
//! prompts and counts tokens exactly as this server does with no tokenizer file of its own.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use inferperf_protocol::openai::{
    DetokenizeRequest, DetokenizeResponse, TokenCount, TokenIds, TokenizeRequest, TokenizeResponse,
};
use inferperf_protocol::StringOrList;

use crate::api_error::ApiError;
use crate::json::ApiJson;
use crate::openai_common::check_model;
use crate::prompt::{decode, encode_text};
use crate::state::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/tokenize", post(tokenize))
        .route("/v1/tokenize", post(tokenize))
        .route("/detokenize", post(detokenize))
        .route("/v1/detokenize", post(detokenize))
        .route(TOKENIZER_ROUTE, get(tokenizer_spec))
}

/// Where the server's tokenizer is published (an inferperf extension; other servers 404).
pub const TOKENIZER_ROUTE: &str = "/inferperf/tokenizer";

/// The served tokenizer as an [`inferperf_engine::tokenizer::TokenizerSpec`] (JSON).
async fn tokenizer_spec(State(state): State<Arc<AppState>>) -> Response {
    match state.tokenizer.spec() {
        Some(spec) => Json(&*spec).into_response(),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "this server's tokenizer cannot be exported; pass --tokenizer to the client",
        )
        .into_response(),
    }
}

async fn tokenize(
    State(state): State<Arc<AppState>>,
    ApiJson(req): ApiJson<TokenizeRequest>,
) -> Result<Json<TokenizeResponse>, ApiError> {
    check_model(&state, req.model.as_deref())?;
    let add_special = req.add_special_tokens.unwrap_or(true);
    let max_model_len = state.context_length as u64;
    let response = match req.prompt {
        StringOrList::One(text) => {
            let ids = encode_text(&state, text, add_special).await?;
            TokenizeResponse {
                count: TokenCount::One(ids.len() as u64),
                tokens: TokenIds::One(ids),
                max_model_len,
            }
        }
        StringOrList::Many(texts) => {
            let mut all = Vec::with_capacity(texts.len());
            for text in texts {
                all.push(encode_text(&state, text, add_special).await?);
            }
            TokenizeResponse {
                count: TokenCount::Batch(all.iter().map(|ids| ids.len() as u64).collect()),
                tokens: TokenIds::Batch(all),
                max_model_len,
            }
        }
    };
    Ok(Json(response))
}

async fn detokenize(
    State(state): State<Arc<AppState>>,
    ApiJson(req): ApiJson<DetokenizeRequest>,
) -> Result<Json<DetokenizeResponse>, ApiError> {
    check_model(&state, req.model.as_deref())?;
    let text = match req.tokens {
        TokenIds::One(ids) => StringOrList::One(decode(&state, ids, true).await?),
        TokenIds::Batch(batch) => {
            let mut texts = Vec::with_capacity(batch.len());
            for ids in batch {
                texts.push(decode(&state, ids, true).await?);
            }
            StringOrList::Many(texts)
        }
    };
    Ok(Json(DetokenizeResponse { text }))
}
