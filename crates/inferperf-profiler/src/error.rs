//! Errors of the profiler, with SGLang's exact texts where SGLang has one.

use std::path::PathBuf;

/// Why a profiling command (start/stop) or a trace write failed.
///
/// The two state errors carry SGLang's texts verbatim because clients and scripts match them.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// `/start_profile` while a session is armed or recording.
    #[error("Profiling is already in progress. Call /stop_profile first.")]
    AlreadyInProgress,
    /// `/stop_profile` with no session (also after a `num_steps` window closed by itself).
    #[error("Profiling is not in progress. Call /start_profile first.")]
    NotInProgress,
    /// An activity name that no SGLang version knows.
    #[error("unknown profiler activity {0:?}; expected one of CPU, GPU, MEM, CUDA_PROFILER, RPD")]
    UnknownActivity(String),
    /// An activity SGLang knows but a CPU engine cannot produce; refused rather than dropped.
    #[error("profiler activity {activity} is not available on this server: {reason}")]
    UnsupportedActivity {
        activity: &'static str,
        reason: &'static str,
    },
    /// `activities: []`.
    #[error("activities is empty: nothing to profile (use CPU and/or MEM)")]
    NoActivities,
    /// A `profile_stages` entry that is neither prefill nor decode.
    #[error("unknown profile stage {0:?}; expected prefill (EXTEND) or decode (DECODE)")]
    UnknownStage(String),
    /// `profile_stages` given without `profile_by_stage: true`.
    #[error("profile_stages is only meaningful with profile_by_stage: true")]
    StagesWithoutByStage,
    /// `num_steps: 0`.
    #[error("num_steps must be at least 1")]
    ZeroSteps,
    /// `profile_id` or `profile_prefix` that would escape the output directory.
    #[error("{field} must not contain a path separator: {value:?}")]
    BadName { field: &'static str, value: String },
    /// `merge_profiles: true` but this build has no trace merger wired in.
    #[error("merge_profiles is not available: no trace merger is configured on this server")]
    MergeUnavailable,
    /// The output directory cannot be created or written.
    #[error("output directory {} is not writable: {error}", path.display())]
    OutputDir {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Writing a trace file failed.
    #[error("writing {}: {error}", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The writer thread is gone (the process is shutting down).
    #[error("the trace writer thread has stopped")]
    WriterGone,
    /// A request's profiling options are invalid (the message names the field).
    #[error("{0}")]
    Invalid(String),
    /// The engine thread that applies start/stop is gone (the server is shutting down).
    #[error("the engine has stopped")]
    EngineStopped,
}

impl ProfileError {
    /// The HTTP status a front end should answer with: 400 for a bad request, 409 for a
    /// start/stop in the wrong state, 500 for failures on the server's side.
    pub fn http_status(&self) -> u16 {
        match self {
            ProfileError::AlreadyInProgress | ProfileError::NotInProgress => 409,
            ProfileError::UnknownActivity(_)
            | ProfileError::UnsupportedActivity { .. }
            | ProfileError::NoActivities
            | ProfileError::UnknownStage(_)
            | ProfileError::StagesWithoutByStage
            | ProfileError::ZeroSteps
            | ProfileError::BadName { .. }
            | ProfileError::MergeUnavailable
            | ProfileError::OutputDir { .. }
            | ProfileError::Invalid(_) => 400,
            ProfileError::Write { .. } | ProfileError::WriterGone => 500,
            ProfileError::EngineStopped => 503,
        }
    }
}
