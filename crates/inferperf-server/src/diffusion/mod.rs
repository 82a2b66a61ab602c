//! The diffusion reference server: `inferperf serve --model-path diffusion` (or a diffusion
//! config/weights path) serves the built-in pipeline with SGLang's diffusion HTTP API. Requests
//! run one at a time on a generation worker thread; video jobs run in the background.

mod profile;
mod routes;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use routes::DiffusionState;
pub use worker::{Generation, Worker};

use crate::args::ServerArgs;
use crate::connections::{self, ConnectionLimits};
use crate::error::ServerError;

/// A diffusion server running in this process.
pub struct DiffusionServer {
    addr: SocketAddr,
    shutdown_tx: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServerError>>>,
}

impl DiffusionServer {
    /// Load the pipeline `args.model_path` names and serve it on `args.host:args.port`.
    pub async fn start(args: ServerArgs) -> Result<Self, ServerError> {
        // Flags first: a bad one should not wait for the model to load.
        let limits = ConnectionLimits::from_args(&args)?;
        let output_root = crate::routes::profile::output_root(&args)?;
        let path = args.model_path.clone();
        let pipeline =
            tokio::task::spawn_blocking(move || inferperf_engine::diffusion::load_model(&path))
                .await
                .map_err(|e| {
                    ServerError::EngineLaunch(format!("loading the diffusion model: {e}"))
                })?
                .map_err(|e| {
                    ServerError::EngineLaunch(format!("cannot load `{}`: {e}", args.model_path))
                })?;
        let worker = Worker::start(pipeline, args.model_path.clone(), output_root.clone())
            .map_err(|e| {
                ServerError::EngineLaunch(format!("cannot start the generation worker: {e}"))
            })?;
        let (listener, addr) = crate::server::bind(&args).await?;
        let api_key = args.api_key.clone();
        let state = Arc::new(DiffusionState::new(worker, args, output_root));
        let app = crate::routes::auth::guard(routes::routes(state), api_key.as_deref())
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024));
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                // A dropped sender also means "shut down".
                let _ = shutdown_rx.await;
            };
            connections::serve(listener, app, limits, shutdown).await;
            tracing::info!("diffusion server on {addr} stopped");
            Ok(())
        });
        tracing::info!("inferperf diffusion server listening on http://{addr}");
        Ok(Self {
            addr,
            shutdown_tx: Some(shutdown_tx),
            task: Some(task),
        })
    }

    /// The bound address (the real port when started with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Resolves when the server task ends by itself (an error).
    pub async fn wait_task(&mut self) -> Result<(), ServerError> {
        match self.task.as_mut() {
            Some(t) => t
                .await
                .map_err(|e| ServerError::EngineLaunch(format!("server task: {e}")))?,
            None => Ok(()),
        }
    }

    /// Stop accepting requests and wait for the server task.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        if let Some(tx) = self.shutdown_tx.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(t) => t
                .await
                .map_err(|e| ServerError::EngineLaunch(format!("server task: {e}")))?,
            None => Ok(()),
        }
    }
}
