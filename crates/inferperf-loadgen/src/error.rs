//! Typed errors of the benchmark library.

/// What can stop a benchmark before or after the measured run (per-request failures are
/// records, not errors).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("dataset: {0}")]
    Dataset(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("server: {0}")]
    Server(String),
    /// The OS error is part of the message and deliberately not a `source()`: printing the
    /// chain (`{:#}`) would repeat it.
    #[error("{context}: {cause}")]
    Io {
        context: String,
        cause: std::io::Error,
    },
    /// `--save-records` could not be written (the error names the file).
    #[error(transparent)]
    Records(#[from] crate::records_file::RecordsFileError),
}

impl BenchError {
    /// Wrap an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        BenchError::Io {
            context: context.into(),
            cause: source,
        }
    }
}
