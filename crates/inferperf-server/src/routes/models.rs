//! `GET /v1/models` and `GET /v1/models/{model}`: the one served model.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use inferperf_protocol::openai::{ModelCard, ModelList};

use crate::api_error::ApiError;
use crate::state::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/models", get(list_models))
        .route("/v1/models/{*model}", get(retrieve_model))
}

fn card(state: &AppState) -> ModelCard {
    ModelCard {
        id: state.served_model_name().to_string(),
        object: "model".to_string(),
        created: state.created,
        owned_by: "sglang".to_string(),
        root: Some(state.model_path.clone()),
        max_model_len: Some(state.context_length as u64),
    }
}

async fn list_models(State(state): State<Arc<AppState>>) -> Json<ModelList> {
    Json(ModelList {
        object: "list".to_string(),
        data: vec![card(&state)],
    })
}

async fn retrieve_model(
    State(state): State<Arc<AppState>>,
    Path(model): Path<String>,
) -> Result<Json<ModelCard>, ApiError> {
    if state.accepts_model(&model) {
        Ok(Json(card(&state)))
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("The model `{model}` does not exist."),
        )
        .with_param("model"))
    }
}
