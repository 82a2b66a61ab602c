//! The one HTTP server of every model kind: [`EmbeddedServer`] (in-process: benchmarks,
//! tests) and [`serve`] (the `inferperf serve` command) over it.
//!
//! One start-up path: validate the flags, load the model (the LLM engine, or the diffusion
//! pipeline of `crate::diffusion`), bind, mount the model's routes on the common base
//! (`routes::router`) and accept connections through `connections::serve`.
//!
//! Shutdown order: stop accepting, abort every running LLM request (so open streams end with
//! a final chunk and `[DONE]` instead of holding graceful shutdown open), drain connections,
//! then stop the engine if the server owns it.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use inferperf_engine::api::{ControlCommand, EngineHandle, TextTokenizer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::ServerConfig;
use crate::connections::{self, ConnectionLimits};
use crate::error::ServerError;
use crate::launch::{launch_engine_profiled, validate_args, OwnedEngine};
use crate::routes::profile::ProfileControl;
use crate::routes::{self, ModelRoutes, LLM_MAX_BODY_BYTES};
use crate::state::{AppState, EngineParts};

/// How long a started engine may take to answer its first state query.
const ENGINE_STARTUP_TIMEOUT: Duration = Duration::from_secs(120);

/// Start the model `args` name (LLM or diffusion), serve until `shutdown` resolves, then shut
/// everything down. Logs the listening URL.
pub async fn serve(
    args: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let mut server = EmbeddedServer::start(args).await?;
    tokio::select! {
        _ = shutdown => {}
        result = server.wait_task() => return result,
    }
    server.shutdown().await
}

/// Bind `args.host:args.port`; the address is the real one (port 0 picks a free port).
async fn bind(args: &ServerConfig) -> Result<(TcpListener, SocketAddr), ServerError> {
    let addr_text = format!("{}:{}", args.host, args.port);
    let listener = TcpListener::bind(&addr_text)
        .await
        .map_err(|source| ServerError::Bind {
            addr: addr_text.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: addr_text,
        source,
    })?;
    Ok((listener, addr))
}

/// A loaded model, ready to be served: its routes and how to stop it.
pub(crate) struct ServedModel {
    pub routes: ModelRoutes,
    /// The LLM engine behind the routes (`None` for a diffusion model).
    pub llm: Option<EngineParts>,
    /// Stops what the server owns (an LLM engine thread); runs after the connections drained,
    /// or when start-up fails after the model loaded.
    pub stop: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

/// An HTTP server running in this process on its own tokio task, serving an LLM (over the
/// built-in engine or an injected one) or a diffusion model.
///
/// Dropping it without [`EmbeddedServer::shutdown`] still stops it, in the background.
pub struct EmbeddedServer {
    addr: SocketAddr,
    llm: Option<EngineParts>,
    shutdown_tx: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServerError>>>,
}

impl EmbeddedServer {
    /// Load the model `args.model_path` names and serve it on `args.host:args.port` (port 0
    /// picks a free port; see [`EmbeddedServer::local_addr`]): a diffusion model (`diffusion`,
    /// a diffusion config or weights) gets the diffusion API, anything else the built-in LLM
    /// engine with its profiler. The server owns what it loaded and stops it on shutdown.
    pub async fn start(args: ServerConfig) -> Result<Self, ServerError> {
        // Flags first: a bad one should not wait for the model to load.
        validate_args(&args)?;
        if inferperf_engine::diffusion::is_diffusion_model(&args.model_path) {
            let model = crate::diffusion::load(&args).await?;
            return Self::serve_model(args, model).await;
        }
        let (engine, profiling) = launch_engine_profiled(&args).await?;
        Self::start_llm(args, engine, Some(profiling)).await
    }

    /// Serve an engine started elsewhere (e.g. a simulated engine). The caller keeps
    /// ownership: shutdown aborts running requests but does not stop the engine. There are
    /// no profile routes (a 404).
    pub async fn start_with_engine(
        args: ServerConfig,
        parts: EngineParts,
    ) -> Result<Self, ServerError> {
        validate_args(&args)?;
        Self::start_llm(args, OwnedEngine { parts, join: None }, None).await
    }

    /// Serve an engine whose thread the server should stop and join on shutdown (no profile
    /// routes).
    pub async fn start_owning_engine(
        args: ServerConfig,
        engine: OwnedEngine,
    ) -> Result<Self, ServerError> {
        validate_args(&args)?;
        Self::start_llm(args, engine, None).await
    }

    /// [`EmbeddedServer::start_owning_engine`] with profile routes driving `profiler` (e.g.
    /// the profiler handle whose hooks the engine was launched with, see
    /// `launch::launch_model_profiled`, which the caller may keep to wait on sessions).
    pub async fn start_with_profiler(
        args: ServerConfig,
        engine: OwnedEngine,
        profiler: impl ProfileControl,
    ) -> Result<Self, ServerError> {
        validate_args(&args)?;
        Self::start_llm(args, engine, Some(Arc::new(profiler))).await
    }

    /// Wait for the engine's first state, then serve it with the LLM routes.
    async fn start_llm(
        args: ServerConfig,
        engine: OwnedEngine,
        profiling: Option<Arc<dyn ProfileControl>>,
    ) -> Result<Self, ServerError> {
        let OwnedEngine { parts, join } = engine;
        let handle = parts.handle.clone();
        let stop: Option<Pin<Box<dyn Future<Output = ()> + Send>>> = join.map(|join| {
            let handle = handle.clone();
            Box::pin(async move { stop_engine(&handle, join).await }) as Pin<Box<_>>
        });
        let internal = tokio::time::timeout(ENGINE_STARTUP_TIMEOUT, handle.internal_state())
            .await
            .map_err(|_| {
                ServerError::EngineLaunch(format!(
                    "the engine did not report its state within {} s",
                    ENGINE_STARTUP_TIMEOUT.as_secs()
                ))
            })
            .and_then(|r| r.map_err(ServerError::from));
        let internal = match internal {
            Ok(internal) => internal,
            Err(e) => {
                if let Some(stop) = stop {
                    stop.await;
                }
                return Err(e);
            }
        };
        let state = Arc::new(AppState::new(args.clone(), parts.clone(), &internal));
        let model = ServedModel {
            routes: ModelRoutes {
                routes: routes::llm_routes(state),
                max_body_bytes: LLM_MAX_BODY_BYTES,
                profiling,
            },
            llm: Some(parts),
            stop,
        };
        Self::serve_model(args, model).await
    }

    /// The common start: bind, mount `model` on the common router, accept connections until
    /// shutdown, then stop what the model owns.
    async fn serve_model(args: ServerConfig, model: ServedModel) -> Result<Self, ServerError> {
        let ServedModel { routes, llm, stop } = model;
        let bound = match ConnectionLimits::from_args(&args) {
            Ok(limits) => bind(&args)
                .await
                .map(|(listener, addr)| (listener, addr, limits)),
            Err(e) => Err(e),
        };
        let (listener, addr, limits) = match bound {
            Ok(v) => v,
            Err(e) => {
                if let Some(stop) = stop {
                    stop.await;
                }
                return Err(e);
            }
        };
        let app = routes::router(routes, &args);
        let engine_for_abort = llm.as_ref().map(|p| p.handle.clone());
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                // A dropped sender (EmbeddedServer dropped) also means "shut down".
                let _ = shutdown_rx.await;
                if let Some(engine) = engine_for_abort {
                    tracing::info!("shutting down: aborting running requests");
                    if let Err(e) = engine.control(ControlCommand::Abort(None)) {
                        tracing::debug!(error = %e, "engine already stopped");
                    }
                }
            };
            connections::serve(listener, app, limits, shutdown).await;
            if let Some(stop) = stop {
                stop.await;
            }
            tracing::info!("server on {addr} stopped");
            Ok(())
        });
        tracing::info!("inferperf server listening on http://{addr}");
        Ok(Self {
            addr,
            llm,
            shutdown_tx: Some(shutdown_tx),
            task: Some(task),
        })
    }

    /// The tokenizer the served engine counts with, so that a client in the same process
    /// (the benches' embedded server) counts prompt tokens exactly as the server does;
    /// `None` for a diffusion model.
    pub fn tokenizer(&self) -> Option<Arc<dyn TextTokenizer>> {
        self.llm.as_ref().map(|p| p.tokenizer.clone())
    }

    /// The bound address (the real port when started with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://host:port`, ready for clients (an unspecified bind address becomes loopback).
    pub fn base_url(&self) -> String {
        let ip = if self.addr.ip().is_unspecified() {
            match self.addr {
                SocketAddr::V4(_) => "127.0.0.1".to_string(),
                SocketAddr::V6(_) => "[::1]".to_string(),
            }
        } else if self.addr.is_ipv6() {
            format!("[{}]", self.addr.ip())
        } else {
            self.addr.ip().to_string()
        };
        format!("http://{ip}:{}", self.addr.port())
    }

    /// The LLM engine behind the server (for in-process benchmarks and tests); `None` for a
    /// diffusion model.
    pub fn engine(&self) -> Option<&EngineHandle> {
        self.llm.as_ref().map(|p| &p.handle)
    }

    /// Stop accepting, abort running requests, drain connections, stop an owned engine.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        if let Some(tx) = self.shutdown_tx.take() {
            let _ = tx.send(());
        }
        self.wait_task().await
    }

    /// Wait for the server task to end (after shutdown, or on a fatal serve error).
    pub async fn wait_task(&mut self) -> Result<(), ServerError> {
        match self.task.as_mut() {
            None => Ok(()),
            Some(task) => {
                let result = task.await;
                self.task = None;
                match result {
                    Ok(r) => r,
                    Err(e) => Err(ServerError::Task(e.to_string())),
                }
            }
        }
    }
}

impl Drop for EmbeddedServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown_tx.take() {
            let _ = tx.send(());
        }
    }
}

/// Stop an owned engine and join its thread (on the blocking pool).
async fn stop_engine(handle: &EngineHandle, join: Box<dyn FnOnce() + Send>) {
    handle.shutdown();
    if let Err(e) = tokio::task::spawn_blocking(join).await {
        tracing::warn!(error = %e, "engine thread did not stop cleanly");
    }
}
