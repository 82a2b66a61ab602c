//! Errors of the diffusion pipeline: bad requests (the caller's fault, with the field named),
//! bad configs or weights (the operator's fault) and compute failures.

use std::path::PathBuf;

/// Everything [`crate::diffusion::DiffusionPipeline`] can fail with.
#[derive(Debug, thiserror::Error)]
pub enum DiffusionError {
    /// The request is invalid; `field` names the request field at fault (for 400 replies and
    /// CLI messages).
    #[error("invalid {field}: {message}")]
    InvalidRequest {
        field: &'static str,
        message: String,
    },
    /// The model config is inconsistent (sizes that do not divide, zero layers, ...).
    #[error("invalid diffusion config: {0}")]
    InvalidConfig(String),
    /// A config or weight file could not be read or parsed.
    #[error("cannot load {path}: {message}")]
    Load { path: PathBuf, message: String },
    /// A tensor operation failed (shape bugs, allocation failures).
    #[error("diffusion compute failed: {0}")]
    Compute(#[from] candle_core::Error),
    /// Encoding or decoding PNG/APNG bytes failed.
    #[error("media: {0}")]
    Media(String),
}

impl DiffusionError {
    /// Shorthand for [`DiffusionError::InvalidRequest`].
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            field,
            message: message.into(),
        }
    }
}
