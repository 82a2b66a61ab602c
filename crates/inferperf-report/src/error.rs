//! Typed errors of the report builders.

use std::path::{Path, PathBuf};

/// What can stop a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("{}: not valid JSON: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    /// Valid JSON, but a key the page draws has the wrong shape (the message names it).
    #[error("{}: {message}", path.display())]
    Malformed { path: PathBuf, message: String },
    #[error("{} is not an experiment folder (no experiment_metadata.json)", .0.display())]
    NotAnExperiment(PathBuf),
    #[error("{} has no runs to report", .0.display())]
    NoRuns(PathBuf),
    #[error("writing the workbook: {0}")]
    Excel(String),
    /// The "Why requests were slow" section's inputs are incomplete or `trace explain` failed
    /// on them (the message names the files).
    #[error("{0}")]
    Explain(String),
    #[error("drawing {name}: {message}")]
    Plot { name: String, message: String },
}

impl ReportError {
    pub fn io(path: &Path, error: std::io::Error) -> Self {
        ReportError::Io {
            path: path.to_path_buf(),
            error,
        }
    }
}

/// Write `bytes` to `path` whole or not at all (no half-written reports; see
/// [`inferperf_protocol::fs`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    inferperf_protocol::fs::write_atomic(path, bytes).map_err(|e| ReportError::io(path, e.source))
}
