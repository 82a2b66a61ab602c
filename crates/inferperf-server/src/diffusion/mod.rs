//! The diffusion model kind: `--model-path diffusion` (or a diffusion config/weights path)
//! serves the built-in pipeline with SGLang's diffusion HTTP API, mounted on the server's
//! common base (`routes::router`: `/health`, the profile routes, API key, body limit,
//! connections). Requests run one at a time on a generation worker thread; video jobs run in
//! the background.
//!
//! - [`load`]: load the pipeline, start its worker and build its routes.
//! - `routes`: the image, video and model-card routes ([`DiffusionState`]).
//! - `profile`: the worker as the server's profile control, and a request's own profile.
//! - `worker`: the generation thread ([`DiffusionWorker`]).

mod profile;
mod routes;
mod worker;

use std::sync::Arc;

pub use routes::DiffusionState;
pub use worker::{DiffusionWorker, Generation};

use crate::config::ServerConfig;
use crate::error::ServerError;
use crate::server::ServedModel;

/// Largest accepted diffusion request body (an uploaded input image, multipart).
pub const DIFFUSION_MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Load the pipeline `args.model_path` names, start its generation worker and return its
/// routes, with the worker as the profile control.
pub(crate) async fn load(args: &ServerConfig) -> Result<ServedModel, ServerError> {
    let output_root = crate::routes::profile::output_root(args)?;
    let path = args.model_path.clone();
    let pipeline =
        tokio::task::spawn_blocking(move || inferperf_engine::diffusion::load_model(&path))
            .await
            .map_err(|e| ServerError::EngineLaunch(format!("loading the diffusion model: {e}")))?
            .map_err(|e| {
                ServerError::EngineLaunch(format!("cannot load `{}`: {e}", args.model_path))
            })?;
    let worker = DiffusionWorker::start(pipeline, args.model_path.clone(), output_root.clone())
        .map_err(|e| {
            ServerError::EngineLaunch(format!("cannot start the generation worker: {e}"))
        })?;
    let state = Arc::new(DiffusionState::new(
        worker.clone(),
        args.clone(),
        output_root,
    ));
    Ok(ServedModel {
        routes: crate::routes::ModelRoutes {
            routes: routes::routes(state),
            max_body_bytes: DIFFUSION_MAX_BODY_BYTES,
            profiling: Some(Arc::new(worker)),
        },
        llm: None,
        // The worker thread ends when the last handle to it (the routes' state) is dropped.
        stop: None,
    })
}
