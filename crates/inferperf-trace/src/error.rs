//! The one error type of the trace toolkit: every failure names the input it concerns.

use std::path::PathBuf;

/// Errors from reading, writing and analysing traces.
///
/// Each variant carries the path (or a description of the input) so that a user sees which file
/// is wrong and why, without a backtrace.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be opened, read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying I/O error (shown in the message, not chained again).
        error: std::io::Error,
    },
    /// The file is not a Chrome/Kineto trace (bad JSON, wrong types, corrupt compression).
    #[error("{path}: {message}")]
    Format {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong, with an event index or byte offset where known.
        message: String,
    },
    /// A user-supplied option or configuration file is invalid.
    #[error("{0}")]
    Config(String),
    /// Two inputs claim the same rank, or rank identity could not be resolved.
    #[error("{0}")]
    Rank(String),
    /// Nothing to work on (no input files, no matching events).
    #[error("{0}")]
    Empty(String),
}

impl TraceError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TraceError::Io {
            path: path.into(),
            error: source,
        }
    }

    /// A format error for `path` with a human message.
    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        TraceError::Format {
            path: path.into(),
            message: message.into(),
        }
    }
}
