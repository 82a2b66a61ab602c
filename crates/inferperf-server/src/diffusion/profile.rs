//! Profiling on the diffusion server: `/start_profile` and `/stop_profile` over the worker's
//! profiler (every denoising step is a profiler step), a request's own `profile` options, and
//! where a request's files may go under `--profile-output-root`.

use std::path::{Path, PathBuf};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use inferperf_profiler::diffusion_profiler::{env_trace_dir, DiffusionProfileOptions};
use serde_json::Value;

use super::routes::Shared;
use crate::api_error::ApiError;
use crate::routes::profile::{parse_body, to_api, START_REPLY, STOP_REPLY};

/// `/start_profile` on the diffusion server: every denoising step is a profiler step.
pub(super) async fn start_profile(
    State(s): State<Shared>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req = parse_body(&body)?;
    s.worker.start_profile(req).await.map_err(to_api)?;
    Ok(START_REPLY.into_response())
}

/// `/stop_profile` (and `/end_profile`): replies once the trace is written; a failed write is
/// a 500 naming the file and the OS error.
pub(super) async fn stop_profile(State(s): State<Shared>) -> Result<Response, ApiError> {
    s.worker.stop_profile().await.map_err(to_api)?;
    Ok(STOP_REPLY.into_response())
}

/// A client-chosen output file (`field` names it in errors), confined to
/// `--profile-output-root` when one is set (relative paths are taken relative to it).
pub(super) fn output_file(
    s: &super::DiffusionState,
    path: Option<&str>,
    field: &str,
) -> Result<Option<PathBuf>, ApiError> {
    let Some(path) = path else { return Ok(None) };
    match &s.output_root {
        None => Ok(Some(PathBuf::from(path))),
        Some(root) => root
            .confine(Path::new(path))
            .map(Some)
            .map_err(|e| to_api(e).with_param(field)),
    }
}

/// A request's `profile`, `num_profiled_timesteps` (default 5) and `profile_all_stages`
/// (typed fields, else the same keys among the extra ones). Its trace goes where SGLang's
/// variables say, else to `./logs`; under `--profile-output-root`, to the root itself unless
/// those variables name a directory inside it (one outside is refused, 403).
pub(super) fn profile_options(
    s: &super::DiffusionState,
    request_id: &str,
    extra: &serde_json::Map<String, Value>,
    profile: Option<bool>,
    timesteps: Option<i64>,
    all_stages: Option<bool>,
) -> Result<Option<DiffusionProfileOptions>, ApiError> {
    let profile = profile.or_else(|| extra.get("profile").and_then(Value::as_bool));
    if profile != Some(true) {
        return Ok(None);
    }
    let n = timesteps
        .or_else(|| extra.get("num_profiled_timesteps").and_then(Value::as_i64))
        .unwrap_or(5);
    if n == 0 || n < -1 {
        return Err(ApiError::invalid_param(
            "num_profiled_timesteps",
            format!("num_profiled_timesteps must be positive or -1, got {n}"),
        ));
    }
    let output_dir = match &s.output_root {
        None => None,
        Some(root) => Some(match env_trace_dir() {
            Some(dir) => root.confine(&dir).map_err(to_api)?,
            None => root.path().to_path_buf(),
        }),
    };
    Ok(Some(DiffusionProfileOptions {
        request_id: request_id.to_string(),
        profile_all_stages: all_stages
            .or_else(|| extra.get("profile_all_stages").and_then(Value::as_bool))
            .unwrap_or(false),
        num_profiled_timesteps: n,
        output_dir,
    }))
}
