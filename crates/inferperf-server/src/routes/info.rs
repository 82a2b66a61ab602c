//! `/server_info` (+ legacy `/get_server_info`) and `/model_info` (+ `/get_model_info`), in
//! SGLang's shapes: server args + scheduler info + `internal_states` + version, plus
//! `server_time_ns`: the server's wall clock (Unix ns) when the response was built, so a
//! client can estimate the offset between its clock and the server's NTP-style (its send and
//! receive times around this value).

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use inferperf_protocol::server_info::{
    InternalStateInfo, MemoryUsage, ModelInfoResponse, ServerInfo,
};
use serde_json::{json, Map, Value};

use crate::api_error::ApiError;
use crate::state::AppState;

/// The version reported by `/server_info` and `/get_server_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/server_info", get(server_info))
        .route("/get_server_info", get(server_info))
        .route("/model_info", get(model_info))
        .route("/get_model_info", get(model_info))
}

async fn server_info(State(state): State<Arc<AppState>>) -> Result<Json<ServerInfo>, ApiError> {
    let internal = state.engine.internal_state().await?;
    // Server args first (SGLang spreads `server_args` into the top level); the API key is
    // never serialized.
    let mut extra = match serde_json::to_value(&state.args) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    for key in ["model_path", "tokenizer_path", "served_model_name"] {
        extra.remove(key);
    }
    // Flags left unset report the value the engine runs with, as SGLang's resolved
    // server args do (not null).
    let effective = crate::launch::engine_config(&state.args);
    extra.insert("page_size".into(), json!(effective.page_size));
    extra.insert(
        "chunked_prefill_size".into(),
        json!(effective.chunked_prefill_size),
    );
    extra.insert("random_seed".into(), json!(effective.random_seed));
    extra.insert("context_length".into(), json!(state.context_length));
    extra.insert(
        "max_running_requests".into(),
        json!(internal.max_running_requests),
    );
    extra.insert("dp_size".into(), json!(state.args.dp_size));
    extra.insert("tp_size".into(), json!(state.args.tp_size));
    if let Some(rate) = state.args.inferperf_test_admit_rate {
        extra.insert("inferperf_test_admit_rate".into(), json!(rate));
    }
    extra.insert(
        "load_format_resolved".into(),
        json!(state.model_info.load_format),
    );

    let mut state_extra = Map::new();
    state_extra.insert("kv_total_slots".into(), json!(internal.kv_total_slots));
    state_extra.insert("kv_free_slots".into(), json!(internal.kv_free_slots));
    state_extra.insert(
        "max_total_num_tokens".into(),
        json!(internal.max_total_num_tokens),
    );
    state_extra.insert(
        "max_running_requests".into(),
        json!(internal.max_running_requests),
    );
    state_extra.insert(
        "max_req_input_len".into(),
        json!(internal.max_req_input_len),
    );

    // Taken as late as possible: the response is serialized right after this.
    extra.insert("server_time_ns".into(), json!(unix_now_ns()));
    Ok(Json(ServerInfo {
        model_path: Some(state.model_path.clone()),
        tokenizer_path: Some(tokenizer_path(&state)),
        served_model_name: Some(state.served_model_name().to_string()),
        max_total_num_tokens: Some(internal.max_total_num_tokens as u64),
        max_req_input_len: Some(state.max_req_input_len as u64),
        internal_states: vec![InternalStateInfo {
            last_gen_throughput: Some(internal.last_gen_throughput),
            num_running_reqs: Some(internal.num_running_reqs as u64),
            num_waiting_reqs: Some(internal.num_waiting_reqs as u64),
            token_usage: Some(internal.token_usage),
            forward_ct: Some(internal.forward_ct),
            dp_size: Some(1),
            effective_max_running_requests_per_dp: Some(internal.max_running_requests as u64),
            memory_usage: Some(MemoryUsage {
                token_capacity: Some(internal.max_total_num_tokens as u64),
                extra: Map::new(),
            }),
            avg_spec_accept_length: None,
            extra: state_extra,
        }],
        version: Some(VERSION.to_string()),
        extra,
    }))
}

/// The wall clock in nanoseconds since the Unix epoch (0 if the clock is before it).
fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn tokenizer_path(state: &AppState) -> String {
    state
        .args
        .tokenizer_path
        .clone()
        .unwrap_or_else(|| state.model_info.tokenizer_path.clone())
}

async fn model_info(State(state): State<Arc<AppState>>) -> Json<ModelInfoResponse> {
    let info = &state.model_info;
    let mut extra = Map::new();
    extra.insert("context_length".into(), json!(state.context_length));
    extra.insert("vocab_size".into(), json!(info.vocab_size));
    extra.insert("hidden_size".into(), json!(info.hidden_size));
    extra.insert("num_hidden_layers".into(), json!(info.num_hidden_layers));
    extra.insert(
        "num_attention_heads".into(),
        json!(info.num_attention_heads),
    );
    extra.insert(
        "num_key_value_heads".into(),
        json!(info.num_key_value_heads),
    );
    extra.insert("load_format".into(), json!(info.load_format));
    extra.insert("served_model_name".into(), json!(state.served_model_name()));
    Json(ModelInfoResponse {
        model_path: state.model_path.clone(),
        tokenizer_path: Some(tokenizer_path(&state)),
        is_generation: info.is_generation,
        preferred_sampling_params: None,
        weight_version: Some("default".to_string()),
        has_image_understanding: false,
        has_audio_understanding: false,
        model_type: None,
        architectures: (!info.architecture.is_empty()).then(|| vec![info.architecture.clone()]),
        extra,
    })
}
