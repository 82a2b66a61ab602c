//! Profiling on the diffusion model kind: the worker as the server's [`ProfileControl`]
//! (`/start_profile` and `/stop_profile`: every denoising step is a profiler step), a
//! request's own `profile` options, and where a request's files may go under
//! `--profile-output-root`.

use std::path::PathBuf;

use inferperf_profiler::diffusion_profiler::{env_trace_dir, DiffusionProfileOptions};
use inferperf_protocol::profile::ProfileReqInput;
use serde_json::Value;

use super::worker::DiffusionWorker;
use crate::api_error::ApiError;
use crate::routes::profile::{confine_client_path, to_api, ProfileCall, ProfileControl};

/// The diffusion worker drives the profile routes: every denoising step is a profiler step.
impl ProfileControl for DiffusionWorker {
    fn start<'a>(&'a self, req: &'a ProfileReqInput) -> ProfileCall<'a> {
        Box::pin(async move { self.start_profile(req.clone()).await.map(drop) })
    }
    fn stop(&self) -> ProfileCall<'_> {
        Box::pin(async move { self.stop_profile().await.map(drop) })
    }
}

/// A client-chosen output file (`field` names it in errors), confined to
/// `--profile-output-root` when one is set (relative paths are taken relative to it).
pub(super) fn output_file(
    s: &super::DiffusionState,
    path: Option<&str>,
    field: &str,
) -> Result<Option<PathBuf>, ApiError> {
    path.map(|path| confine_client_path(s.output_root.as_ref(), path, field))
        .transpose()
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
