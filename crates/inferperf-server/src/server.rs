//! Running the HTTP server: [`serve`] for the `inferperf serve` command and
//! [`EmbeddedServer`] for in-process use (benchmarks, tests).
//!
//! Shutdown order: stop accepting, abort every running request (so open streams end with a
//! final chunk and `[DONE]` instead of holding graceful shutdown open), drain connections,
//! then stop the engine if the server owns it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use inferperf_engine::api::{ControlCommand, EngineHandle, TextTokenizer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::args::ServerArgs;
use crate::connections::{self, ConnectionLimits};
use crate::error::ServerError;
use crate::launch::{launch_engine_profiled, validate_args, OwnedEngine};
use crate::routes;
use crate::state::{AppState, EngineParts};

/// How long a started engine may take to answer its first state query.
const ENGINE_STARTUP_TIMEOUT: Duration = Duration::from_secs(120);

/// Launch the engine from `args`, serve until `shutdown` resolves, then shut everything down.
/// Logs the listening URL.
pub async fn serve(
    args: ServerArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    if inferperf_engine::diffusion::is_diffusion_model(&args.model_path) {
        let mut server = crate::diffusion::DiffusionServer::start(args).await?;
        tokio::select! {
            _ = shutdown => {}
            result = server.wait_task() => return result,
        }
        return server.shutdown().await;
    }
    let mut server = EmbeddedServer::start(args).await?;
    tokio::select! {
        _ = shutdown => {}
        result = server.wait_task() => return result,
    }
    server.shutdown().await
}

/// Bind `args.host:args.port`; the address is the real one (port 0 picks a free port).
pub(crate) async fn bind(args: &ServerArgs) -> Result<(TcpListener, SocketAddr), ServerError> {
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

/// An HTTP server running in this process on its own tokio task.
///
/// Dropping it without [`EmbeddedServer::shutdown`] still stops it, in the background.
pub struct EmbeddedServer {
    addr: SocketAddr,
    engine: EngineHandle,
    tokenizer: Arc<dyn TextTokenizer>,
    shutdown_tx: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServerError>>>,
}

impl EmbeddedServer {
    /// Launch the built-in engine described by `args` and serve it on `args.host:args.port`
    /// (port 0 picks a free port; see [`EmbeddedServer::local_addr`]). The server owns the
    /// engine and stops it on shutdown.
    pub async fn start(args: ServerArgs) -> Result<Self, ServerError> {
        let (engine, profile_routes) = launch_engine_profiled(&args).await?;
        Self::start_inner_with(args, engine, profile_routes).await
    }

    /// Serve an engine started elsewhere (e.g. a simulated engine). The caller keeps
    /// ownership: shutdown aborts running requests but does not stop the engine.
    pub async fn start_with_engine(
        args: ServerArgs,
        parts: EngineParts,
    ) -> Result<Self, ServerError> {
        validate_args(&args)?;
        Self::start_inner(args, OwnedEngine { parts, join: None }).await
    }

    /// Serve an engine whose thread the server should stop and join on shutdown.
    pub async fn start_owning_engine(
        args: ServerArgs,
        engine: OwnedEngine,
    ) -> Result<Self, ServerError> {
        validate_args(&args)?;
        Self::start_inner(args, engine).await
    }

    /// [`EmbeddedServer::start_owning_engine`] with `extra_routes` that carry their own state
    /// (e.g. profile routes around the profiler handle whose hooks the engine was launched
    /// with, see `launch::launch_model`). They are served behind the same API-key check.
    pub async fn start_with_routes(
        args: ServerArgs,
        engine: OwnedEngine,
        extra_routes: axum::Router,
    ) -> Result<Self, ServerError> {
        validate_args(&args)?;
        Self::start_inner_with(args, engine, extra_routes).await
    }

    async fn start_inner(args: ServerArgs, engine: OwnedEngine) -> Result<Self, ServerError> {
        Self::start_inner_with(args, engine, axum::Router::new()).await
    }

    async fn start_inner_with(
        args: ServerArgs,
        engine: OwnedEngine,
        extra_routes: axum::Router,
    ) -> Result<Self, ServerError> {
        let OwnedEngine { parts, join } = engine;
        let owns_engine = join.is_some();
        let handle = parts.handle.clone();
        let tokenizer = parts.tokenizer.clone();
        let started = async {
            let internal =
                tokio::time::timeout(ENGINE_STARTUP_TIMEOUT, parts.handle.internal_state())
                    .await
                    .map_err(|_| {
                        ServerError::EngineLaunch(format!(
                            "the engine did not report its state within {} s",
                            ENGINE_STARTUP_TIMEOUT.as_secs()
                        ))
                    })??;
            let limits = ConnectionLimits::from_args(&args)?;
            let (listener, addr) = bind(&args).await?;
            let state = Arc::new(AppState::new(args, parts, &internal));
            Ok::<_, ServerError>((listener, addr, state, limits))
        }
        .await;
        let (listener, addr, state, limits) = match started {
            Ok(v) => v,
            Err(e) => {
                if owns_engine {
                    stop_engine(&handle, join).await;
                }
                return Err(e);
            }
        };

        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let engine_for_abort = handle.clone();
        let engine_for_stop = handle.clone();
        let app = routes::router_with(state, extra_routes);
        let task = tokio::spawn(async move {
            let shutdown = async move {
                // A dropped sender (EmbeddedServer dropped) also means "shut down".
                let _ = shutdown_rx.await;
                tracing::info!("shutting down: aborting running requests");
                if let Err(e) = engine_for_abort.control(ControlCommand::Abort(None)) {
                    tracing::debug!(error = %e, "engine already stopped");
                }
            };
            connections::serve(listener, app, limits, shutdown).await;
            if owns_engine {
                stop_engine(&engine_for_stop, join).await;
            }
            tracing::info!("server on {addr} stopped");
            Ok(())
        });
        tracing::info!("inferperf server listening on http://{addr}");
        Ok(Self {
            addr,
            engine: handle,
            tokenizer,
            shutdown_tx: Some(shutdown_tx),
            task: Some(task),
        })
    }

    /// The tokenizer the served engine counts with, so that a client in the same process
    /// (the benches' embedded server) counts prompt tokens exactly as the server does.
    pub fn tokenizer(&self) -> Arc<dyn TextTokenizer> {
        self.tokenizer.clone()
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

    /// The engine behind the server (for in-process benchmarks and tests).
    pub fn engine(&self) -> &EngineHandle {
        &self.engine
    }

    /// Stop accepting, abort running requests, drain connections, stop an owned engine.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        if let Some(tx) = self.shutdown_tx.take() {
            let _ = tx.send(());
        }
        self.wait_task().await
    }

    /// Wait for the server task to end (after shutdown, or on a fatal serve error).
    async fn wait_task(&mut self) -> Result<(), ServerError> {
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

async fn stop_engine(handle: &EngineHandle, join: Option<Box<dyn FnOnce() + Send>>) {
    handle.shutdown();
    if let Some(join) = join {
        if let Err(e) = tokio::task::spawn_blocking(join).await {
            tracing::warn!(error = %e, "engine thread did not stop cleanly");
        }
    }
}
