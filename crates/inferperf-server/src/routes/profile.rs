//! `/start_profile`, `/stop_profile` and `/end_profile` (SGLang's profiling endpoints), served
//! over the profiler's [`ProfilerHandle`] with its own state (see `router_with`).
//!
//! Replies carry SGLang's exact texts; errors are OpenAI-style bodies with the profiler's
//! status (400 bad request, 409 wrong state), and the server keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use inferperf_engine::hooks::StepHooks;
use inferperf_profiler::{
    EnvDefaults, OutputRoot, ProfileError, ProfilerConfig, ProfilerHandle, RankInfo, TraceMerger,
    TraceWriter,
};
use inferperf_protocol::profile::ProfileReqInput;

use crate::api_error::ApiError;
use crate::args::ServerArgs;
use crate::error::ServerError;

/// SGLang's reply to a successful `/start_profile`.
pub const START_REPLY: &str = "Start profiling.\n";
/// SGLang's reply to a successful `/stop_profile` (sent once the traces are written; a
/// failed write is a 500 naming each file and the OS error instead).
pub const STOP_REPLY: &str = "Stop profiling. This will take some time.\n";

/// The profile routes over `profiler` (the handle whose hooks the engine runs).
pub fn routes(profiler: ProfilerHandle) -> Router {
    Router::new()
        .route("/start_profile", get(start).post(start))
        .route("/stop_profile", get(stop).post(stop))
        .route("/end_profile", get(stop).post(stop))
        .with_state(Arc::new(profiler))
}

/// Profile routes for an engine that runs no forward steps (the simulated engine): every call
/// is a clear 400 naming the reason, instead of a 404.
pub fn unavailable_routes(reason: &'static str) -> Router {
    let refuse = move || async move {
        ApiError::bad_request(format!(
            "profiling is not available on this server: {reason}"
        ))
    };
    Router::new()
        .route("/start_profile", get(refuse).post(refuse))
        .route("/stop_profile", get(refuse).post(refuse))
        .route("/end_profile", get(refuse).post(refuse))
}

/// The profiler of a server started from `args`: one rank per `--dp-size` replica (file
/// suffix `-TP-0[-DP-{i}]`), `--enable-layerwise-nvtx-marker`, a writer thread with the
/// `inferperf-trace` merger, and `SGLANG_*` defaults read from the environment now.
pub fn profiler_for(
    args: &ServerArgs,
) -> Result<(ProfilerHandle, Vec<Box<dyn StepHooks>>), ServerError> {
    let writer = TraceWriter::spawn(Some(Arc::new(TraceFileMerger)))
        .map_err(|e| ServerError::EngineLaunch(format!("cannot start the trace writer: {e}")))?;
    let dp_size = args.dp_size.max(1) as usize;
    let tp_size = args.tp_size.max(1) as usize;
    // One profiler rank per tensor-parallel rank, else per data-parallel replica.
    let infos: Vec<RankInfo> = if tp_size > 1 {
        (0..tp_size).map(|r| RankInfo::tp(r, tp_size)).collect()
    } else {
        (0..dp_size)
            .map(|dp_rank| RankInfo {
                dp_rank,
                dp_size,
                ..RankInfo::single()
            })
            .collect()
    };
    let ranks = infos
        .into_iter()
        .map(|rank| ProfilerConfig {
            rank,
            layerwise_markers: args.enable_layerwise_nvtx_marker,
            process_name: format!("inferperf::scheduler {}", rank.label()),
        })
        .collect();
    let root = output_root(args)?;
    let (handle, hooks) = ProfilerHandle::new(ranks, writer, EnvDefaults::from_env());
    Ok((handle.with_output_root(root), hooks))
}

/// `--profile-output-root`, created and canonicalized (a startup error if it cannot be).
pub fn output_root(args: &ServerArgs) -> Result<Option<OutputRoot>, ServerError> {
    args.profile_output_root
        .as_deref()
        .map(OutputRoot::new)
        .transpose()
        .map_err(|e| ServerError::InvalidArgs(format!("--profile-output-root: {e}")))
}

/// A profiler error as an HTTP reply: the profiler's status, and the request field at fault.
pub(crate) fn to_api(err: ProfileError) -> ApiError {
    let status = StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let field = err.field();
    let api = ApiError::new(status, err.to_string());
    match field {
        Some(f) => api.with_param(f),
        None => api,
    }
}

/// The optional JSON body: absent or blank means every default.
pub(crate) fn parse_body(body: &[u8]) -> Result<ProfileReqInput, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(ProfileReqInput::default());
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let msg = format!("invalid /start_profile body: {}", e.inner());
        if path == "." {
            ApiError::bad_request(msg)
        } else {
            ApiError::invalid_param(&path, format!("{msg} (at {path})"))
        }
    })
}

async fn start(
    State(profiler): State<Arc<ProfilerHandle>>,
    body: Bytes,
) -> Result<&'static str, ApiError> {
    let req = parse_body(&body)?;
    profiler.start(&req).await.map_err(to_api)?;
    Ok(START_REPLY)
}

async fn stop(State(profiler): State<Arc<ProfilerHandle>>) -> Result<&'static str, ApiError> {
    profiler.stop().await.map_err(to_api)?;
    Ok(STOP_REPLY)
}

/// `merge_profiles: true`: the rank traces merged by `inferperf-trace`'s streaming merger
/// (every rank labelled with its process name and `distributedInfo`).
#[derive(Debug, Default)]
pub struct TraceFileMerger;

impl TraceMerger for TraceFileMerger {
    fn merge(&self, inputs: &[PathBuf], output: &Path) -> Result<String, String> {
        let report = inferperf_trace::merge::merge_files(
            inputs,
            output,
            &inferperf_trace::merge::MergeOptions::default(),
        )
        .map_err(|e| e.to_string())?;
        Ok(format!(
            "Events: {}, Files: {}",
            report.events_out,
            report.ranks.len()
        ))
    }
}
