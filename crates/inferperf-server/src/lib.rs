//! The HTTP front end (axum) of the reference server: SGLang- and OpenAI-compatible routes
//! over an inferperf-engine handle.
//!
//! - [`ServerArgs`]: the `sglang.launch_server`-style flags (a `clap::Args`, so commands that
//!   embed a server flatten the same flags).
//! - [`serve`]: launch the engine and serve until a shutdown future resolves (`inferperf serve`).
//! - [`diffusion::DiffusionServer`]: the same for a diffusion model (`--model-path diffusion`):
//!   SGLang's image and video endpoints over the built-in diffusion pipeline.
//! - [`EmbeddedServer`]: an in-process server on any port (0 = ephemeral) over the built-in
//!   engine ([`EmbeddedServer::start`]) or an injected one
//!   ([`EmbeddedServer::start_with_engine`]).
//!
//! Both server kinds accept connections through [`connections`] (header-read timeout,
//! connection cap, graceful shutdown) and check `--api-key` with [`routes::auth::guard`].
//!
//! Routes live in [`routes`], one module per group, merged in [`routes::router`]. Handlers
//! tokenize on their own threads and talk to the engine only through
//! `inferperf_engine::api::EngineHandle`.

pub mod api_error;
pub mod args;
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
pub mod routes;
mod sampling;
mod server;
pub mod shutdown;
mod sse;
pub mod state;

pub use args::ServerArgs;
pub use error::ServerError;
pub use launch::OwnedEngine;
pub use sampling::{MAX_STOP_STRINGS, MAX_STOP_STRING_BYTES, MAX_STOP_TOKEN_IDS};
pub use server::{serve, EmbeddedServer};
pub use shutdown::{shutdown_signal, StopSignal};
pub use state::{AppState, EngineParts};
