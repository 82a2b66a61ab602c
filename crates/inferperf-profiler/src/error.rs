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
    /// `profile_id` or `profile_prefix` that cannot be part of a file name in the output
    /// directory (a path separator, `..`, a NUL byte).
    #[error("{field} {reason}: {value:?}")]
    BadName {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    /// `profile_id` or `profile_prefix` too long for the trace file names built from them.
    #[error("{field} is too long: {len} bytes, but `[profile_prefix-]profile_id` may have at most {max} bytes so that trace file names fit the file system's 255-byte limit")]
    NameTooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    /// An output path that resolves outside `--profile-output-root`.
    #[error("{} resolves to {}, outside the profile output root {} (--profile-output-root)", path.display(), resolved.display(), root.display())]
    OutsideOutputRoot {
        path: PathBuf,
        resolved: PathBuf,
        root: PathBuf,
    },
    /// An output path whose existing part cannot be resolved (e.g. a dangling symlink).
    #[error("cannot resolve {}: {error}", path.display())]
    Unresolvable {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A trace this session would write already exists; traces are never overwritten.
    #[error("{} already exists; traces are never overwritten (use another profile_id or output_dir, or remove the file)", path.display())]
    TraceExists { path: PathBuf },
    /// Some files of a session could not be written (one line per file: the path and the
    /// OS error).
    #[error("Stop profiling failed: {}", failures.join("; "))]
    TracesNotWritten { failures: Vec<String> },
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
            ProfileError::AlreadyInProgress
            | ProfileError::NotInProgress
            | ProfileError::TraceExists { .. } => 409,
            ProfileError::UnknownActivity(_)
            | ProfileError::UnsupportedActivity { .. }
            | ProfileError::NoActivities
            | ProfileError::UnknownStage(_)
            | ProfileError::StagesWithoutByStage
            | ProfileError::ZeroSteps
            | ProfileError::BadName { .. }
            | ProfileError::NameTooLong { .. }
            | ProfileError::Unresolvable { .. }
            | ProfileError::MergeUnavailable
            | ProfileError::OutputDir { .. }
            | ProfileError::Invalid(_) => 400,
            ProfileError::OutsideOutputRoot { .. } => 403,
            ProfileError::Write { .. }
            | ProfileError::WriterGone
            | ProfileError::TracesNotWritten { .. } => 500,
            ProfileError::EngineStopped => 503,
        }
    }

    /// The request field at fault, for the `param` of an error reply.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ProfileError::BadName { field, .. } | ProfileError::NameTooLong { field, .. } => {
                Some(*field)
            }
            ProfileError::UnknownActivity(_)
            | ProfileError::UnsupportedActivity { .. }
            | ProfileError::NoActivities => Some("activities"),
            ProfileError::UnknownStage(_) | ProfileError::StagesWithoutByStage => {
                Some("profile_stages")
            }
            ProfileError::ZeroSteps => Some("num_steps"),
            ProfileError::MergeUnavailable => Some("merge_profiles"),
            ProfileError::OutputDir { .. }
            | ProfileError::OutsideOutputRoot { .. }
            | ProfileError::Unresolvable { .. } => Some("output_dir"),
            _ => None,
        }
    }
}
