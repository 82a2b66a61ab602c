//! The accept loop of the server (every model kind): HTTP/1 connections with a header-read timeout, a cap
//! on concurrent connections that still lets a prober through, TCP_NODELAY, and graceful
//! shutdown (stop accepting, then let open connections finish their requests).
//!
//! Why: a client that opens connections and never completes its headers used to hold them
//! forever; enough of them (~20k) exhausted the process and `/health` timed out. Now such a
//! connection is closed after `--header-read-timeout-sec`, at most `--max-connections` are
//! served, and beyond that [`SPARE_CONNECTIONS`] more are served one request each: `/health`
//! answers as usual and everything else gets a quick 503. Past those, a connection is closed
//! at once, which a client sees immediately instead of stalling in the accept queue.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use crate::api_error::ApiError;
use crate::config::ServerConfig;
use crate::error::ServerError;

/// Connections served beyond `--max-connections`, one request each: `/health` or a 503.
pub const SPARE_CONNECTIONS: usize = 32;

/// File descriptors kept free for everything but client connections (model files, traces,
/// the runtime), when `--max-connections` is checked against the open-file limit.
const RESERVED_FDS: u64 = 256;

/// Pause after an accept error that is not about one connection (e.g. out of descriptors).
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// How connections are served: `--header-read-timeout-sec` and `--max-connections`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

impl ConnectionLimits {
    /// The limits `args` ask for; an invalid timeout is an error naming the flag.
    pub fn from_args(args: &ServerConfig) -> Result<Self, ServerError> {
        let secs = args.header_read_timeout_sec;
        let header_read_timeout = Duration::try_from_secs_f64(secs)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                ServerError::InvalidArgs(format!(
                    "--header-read-timeout-sec must be a positive number of seconds, got {secs}"
                ))
            })?;
        Ok(Self {
            header_read_timeout,
            max_connections: args.max_connections.max(1) as usize,
        })
    }
}

/// Serve `app` on `listener` until `shutdown` resolves, then stop accepting and wait for the
/// open connections to finish (idle ones close at once).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let max = fit_open_file_limit(limits.max_connections);
    let regular = Arc::new(Semaphore::new(max));
    let spare = Arc::new(Semaphore::new(SPARE_CONNECTIONS));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut spare_builder = builder.clone();
    spare_builder.keep_alive(false);
    let graceful = GracefulShutdown::new();
    let mut at_capacity = false;
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    tracing::error!("cannot accept a connection: {e}");
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => continue,
                    }
                }
            },
        };
        if let Ok(permit) = regular.clone().try_acquire_owned() {
            at_capacity = false;
            let service = TowerToHyperService::new(app.clone());
            let conn = builder.serve_connection(io(tcp), service);
            spawn_connection(graceful.watch(conn), permit);
            continue;
        }
        if !at_capacity {
            tracing::warn!(
                "{max} connections open (--max-connections): further connections get /health and 503s"
            );
            at_capacity = true;
        }
        match spare.clone().try_acquire_owned() {
            Ok(permit) => {
                let conn = spare_builder.serve_connection(io(tcp), over_capacity(app.clone(), max));
                spawn_connection(graceful.watch(conn), permit);
            }
            Err(_) => tracing::debug!("no spare connection left: closing a new connection"),
        }
    }
    drop(listener);
    graceful.shutdown().await;
}

/// A connection's transport, with Nagle off so streamed chunks go out at once (no delay
/// behind a delayed ACK).
fn io(tcp: TcpStream) -> TokioIo<TcpStream> {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!("TCP_NODELAY: {e}");
    }
    TokioIo::new(tcp)
}

/// Run one connection on its own task, holding its slot until it ends.
fn spawn_connection(
    conn: impl Future<Output = hyper::Result<()>> + Send + 'static,
    permit: OwnedSemaphorePermit,
) {
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            // Header timeouts, resets and malformed requests end here; none is the server's
            // fault, so they are not logged as errors.
            tracing::debug!("connection closed: {e}");
        }
        drop(permit);
    });
}

/// The service of a connection beyond the cap: `/health` as usual, a 503 for the rest.
fn over_capacity(
    app: Router,
    max: usize,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response,
    Error = Infallible,
    Future = impl Future<Output = Result<Response, Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |req: Request<Incoming>| {
        let app = app.clone();
        async move {
            if req.uri().path() == "/health" {
                return app.oneshot(req).await;
            }
            Ok(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the server is at its connection limit ({max} connections, --max-connections); retry later"),
            )
            .into_response())
        }
    })
}

/// Accept errors about one connection (it went away before it was accepted): skip it.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// `requested` connections, or fewer if the open-file limit cannot hold them: the soft limit
/// is raised towards the hard one first (as Go's runtime does), then the cap is lowered to
/// what fits, with a warning.
fn fit_open_file_limit(requested: usize) -> usize {
    let wanted = requested as u64 + SPARE_CONNECTIONS as u64 + RESERVED_FDS;
    match inferperf_protocol::os_limits::raise_open_file_limit(wanted) {
        Some(limit) if limit < wanted => {
            let fit = limit
                .saturating_sub(SPARE_CONNECTIONS as u64 + RESERVED_FDS)
                .max(1) as usize;
            tracing::warn!(
                "--max-connections {requested} does not fit the open-file limit ({limit}); serving at most {fit} connections (raise it with `ulimit -n`)"
            );
            fit
        }
        _ => requested,
    }
}
