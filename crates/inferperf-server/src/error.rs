//! Errors of starting and running the server (not HTTP error bodies; see [`crate::api_error`]).

/// Why the server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A flag has an invalid value (named in the message).
    #[error("invalid server argument: {0}")]
    InvalidArgs(String),
    /// The engine failed to load the model or start its thread.
    #[error("failed to launch the engine: {0}")]
    EngineLaunch(String),
    /// The engine did not answer a startup query.
    #[error("the engine did not answer: {0}")]
    Engine(#[from] inferperf_engine::api::EngineError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// `--log-requests FILE` cannot be written.
    /// (The OS error is part of the message, not a `source`, so it is printed once.)
    #[error("cannot open the request log {}: {error}", path.display())]
    RequestLog {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    /// The server task panicked or was cancelled.
    #[error("the server task ended abnormally: {0}")]
    Task(String),
}
