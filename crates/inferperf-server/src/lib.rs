//! The HTTP front end (axum) of the reference server: one server for every model kind,
//! SGLang- and OpenAI-compatible LLM routes over an inferperf-engine handle, or SGLang's
//! image and video routes over the built-in diffusion pipeline.
//!
//! - [`ServerConfig`]: the `sglang.launch_server`-style settings (a plain struct; the CLI's
//!   `ServerFlags` parse the flags into it).
//! - [`EmbeddedServer`]: the server, in this process on any port (0 = ephemeral): the model
//!   `--model-path` names ([`EmbeddedServer::start`]: LLM or diffusion), or an injected LLM
//!   engine ([`EmbeddedServer::start_with_engine`], [`EmbeddedServer::start_with_profiler`]).
//! - [`serve`]: the same until a shutdown future resolves (`inferperf serve`).
//!
//! Every model kind shares one start-up path (the `server` module), one router base
//! ([`routes::router`]: `/health`, the profile routes of [`routes::profile`], the API-key
//! check of [`routes::auth`], the body limit) and one connection handling ([`connections`]:
//! header-read timeout, connection cap, graceful shutdown). The LLM routes live in
//! [`routes`], one module per group; the diffusion routes in [`diffusion`]. LLM handlers
//! tokenize on their own threads and talk to the engine only through
//! `inferperf_engine::api::EngineHandle`.
//!
//! Request identity: [`request_id`] (the rid from the body, `X-Request-Id` or generated, echoed
//! in `X-Request-Id`; the arrival stamp). Request lifecycle outside profiling:
//! [`request_log`] (`--log-requests FILE`, one JSON line per finished request).

pub mod api_error;
pub mod config;
pub mod connections;
mod convert;
pub mod diffusion;
pub mod error;
pub mod json;
pub mod launch;
mod openai_common;
mod openai_stream;
mod prompt;
mod request;
pub mod request_id;
pub mod request_log;
pub mod routes;
mod sampling;
mod server;
pub mod shutdown;
mod sse;
pub mod state;

pub use config::ServerConfig;
pub use error::ServerError;
pub use launch::OwnedEngine;
pub use sampling::{MAX_STOP_STRINGS, MAX_STOP_STRING_BYTES, MAX_STOP_TOKEN_IDS};
pub use server::{serve, EmbeddedServer};
pub use shutdown::{shutdown_signal, StopSignal};
pub use state::{AppState, EngineParts};
