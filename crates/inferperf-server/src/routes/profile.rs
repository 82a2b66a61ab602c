//! The profile layer of every server kind: `/start_profile`, `/stop_profile` and
//! `/end_profile` (SGLang's profiling endpoints) over a [`ProfileControl`] (the LLM engine's
//! [`ProfilerHandle`], the diffusion worker, or [`Unavailable`]), and the
//! `--profile-output-root` rules ([`output_root`], [`confine_client_path`]).
//!
//! Replies carry SGLang's exact texts; errors are OpenAI-style bodies with the profiler's
//! status (400 bad request, 403 outside the output root, 409 wrong state, 500 failed write),
//! and the server keeps serving.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
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
use crate::config::ServerConfig;
use crate::error::ServerError;

/// SGLang's reply to a successful `/start_profile`.
pub const START_REPLY: &str = "Start profiling.\n";
/// SGLang's reply to a successful `/stop_profile` (sent once the traces are written; a
/// failed write is a 500 naming each file and the OS error instead).
pub const STOP_REPLY: &str = "Stop profiling. This will take some time.\n";

/// What a profile call returns: done, or why not (the error picks the HTTP status).
pub type ProfileCall<'a> = Pin<Box<dyn Future<Output = Result<(), ProfileError>> + Send + 'a>>;

/// What `/start_profile` and `/stop_profile` drive on a server. The routes are the same for
/// every model kind; only this differs.
pub trait ProfileControl: Send + Sync + 'static {
    /// `/start_profile` with its parsed body.
    fn start<'a>(&'a self, req: &'a ProfileReqInput) -> ProfileCall<'a>;
    /// `/stop_profile` (and `/end_profile`): resolves once the traces are written.
    fn stop(&self) -> ProfileCall<'_>;
}

/// The LLM engine's profiler: its hooks run in every forward step of every rank.
impl ProfileControl for ProfilerHandle {
    fn start<'a>(&'a self, req: &'a ProfileReqInput) -> ProfileCall<'a> {
        Box::pin(async move { ProfilerHandle::start(self, req).await.map(drop) })
    }
    fn stop(&self) -> ProfileCall<'_> {
        Box::pin(async move { ProfilerHandle::stop(self).await.map(drop) })
    }
}

/// A server with nothing to profile (the simulated engine runs no forward steps): every
/// call is a 400 naming the reason, instead of a 404.
pub struct Unavailable(pub &'static str);

impl Unavailable {
    fn refusal(&self) -> ProfileError {
        ProfileError::Invalid(format!(
            "profiling is not available on this server: {}",
            self.0
        ))
    }
}

impl ProfileControl for Unavailable {
    fn start<'a>(&'a self, _req: &'a ProfileReqInput) -> ProfileCall<'a> {
        Box::pin(async move { Err(self.refusal()) })
    }
    fn stop(&self) -> ProfileCall<'_> {
        Box::pin(async move { Err(self.refusal()) })
    }
}

/// The profile routes over `control`.
pub fn routes(control: Arc<dyn ProfileControl>) -> Router {
    Router::new()
        .route("/start_profile", get(start).post(start))
        .route("/stop_profile", get(stop).post(stop))
        .route("/end_profile", get(stop).post(stop))
        .with_state(control)
}

/// The profiler of a server started from `args`: one rank per `--dp-size` replica (file
/// suffix `-TP-0[-DP-{i}]`), `--enable-layerwise-nvtx-marker`, a writer thread with the
/// `inferperf-trace` merger, and `SGLANG_*` defaults read from the environment now.
pub fn profiler_for(
    args: &ServerConfig,
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
pub fn output_root(args: &ServerConfig) -> Result<Option<OutputRoot>, ServerError> {
    args.profile_output_root
        .as_deref()
        .map(OutputRoot::new)
        .transpose()
        .map_err(|e| ServerError::InvalidArgs(format!("--profile-output-root: {e}")))
}

/// A file a client names in a request (`field` names it in errors, e.g. a diffusion
/// request's `perf_dump_path`): as given without `--profile-output-root`, else confined to
/// the root (relative paths are taken relative to it; one that resolves outside is a 403).
pub fn confine_client_path(
    root: Option<&OutputRoot>,
    path: &str,
    field: &str,
) -> Result<PathBuf, ApiError> {
    match root {
        None => Ok(PathBuf::from(path)),
        Some(root) => root
            .confine(Path::new(path))
            .map_err(|e| to_api(e).with_param(field)),
    }
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
    State(control): State<Arc<dyn ProfileControl>>,
    body: Bytes,
) -> Result<&'static str, ApiError> {
    let req = parse_body(&body)?;
    control.start(&req).await.map_err(to_api)?;
    Ok(START_REPLY)
}

async fn stop(State(control): State<Arc<dyn ProfileControl>>) -> Result<&'static str, ApiError> {
    control.stop().await.map_err(to_api)?;
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
