//! One profiling session across all ranks of a server: shared profile id and directory, the
//! files each rank wrote, the optional merge, and the completion that `/stop_profile` waits on.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::error::ProfileError;
use crate::naming::merged_file_name;
use crate::options::ProfileStart;

/// Merges the rank traces of a session into one file. Implemented over `inferperf-trace`'s
/// streaming merger by the server; a trait here so the profiler does not depend on it.
pub trait TraceMerger: Send + Sync {
    /// Merge `inputs` (rank traces, sorted by `(dp, ep, pp, tp)`) into `output`; returns a
    /// one-line summary such as `Events: N, Files: M`.
    fn merge(&self, inputs: &[PathBuf], output: &Path) -> Result<String, String>;
}

/// What a finished session produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileOutcome {
    pub profile_id: String,
    pub output_dir: PathBuf,
    /// Rank trace files (`*.trace.json.gz`), in rank order.
    pub trace_files: Vec<PathBuf>,
    /// Memory timelines (`*-memory*.json.gz`).
    pub memory_files: Vec<PathBuf>,
    /// `merged-{profile_id}.trace.json.gz` when `merge_profiles` succeeded.
    pub merged: Option<PathBuf>,
    /// SGLang's reply message: `Succeeded.` plus ` Merged trace: ...` / ` Merge failed: ...`.
    pub message: String,
    /// Write failures, one line each (the session still completes).
    pub errors: Vec<String>,
}

impl ProfileOutcome {
    /// The outcome when every file was written, else [`ProfileError::TracesNotWritten`] with
    /// the failures (each names the file and the OS error).
    pub fn into_result(self) -> Result<Self, ProfileError> {
        if self.errors.is_empty() {
            Ok(self)
        } else {
            Err(ProfileError::TracesNotWritten {
                failures: self.errors,
            })
        }
    }
}

type Waiter = Box<dyn FnOnce(&ProfileOutcome) + Send>;

struct Inner {
    ranks_done: usize,
    traces: Vec<(usize, PathBuf)>,
    memory: Vec<PathBuf>,
    errors: Vec<String>,
    outcome: Option<ProfileOutcome>,
    waiters: Vec<Waiter>,
}

/// Shared by the rank managers (which report files) and the front end (which waits).
pub struct ProfileSession {
    start: ProfileStart,
    ranks: usize,
    inner: Mutex<Inner>,
    done: Condvar,
    /// Whether a `/stop_profile` reply has reported this session's outcome (see
    /// [`ProfileSession::claim_report`]).
    reported: AtomicBool,
}

impl std::fmt::Debug for ProfileSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileSession")
            .field("profile_id", &self.start.profile_id)
            .field("ranks", &self.ranks)
            .finish()
    }
}

impl ProfileSession {
    /// A session for `ranks` rank managers (the server's world size).
    pub fn new(start: ProfileStart, ranks: usize) -> Arc<Self> {
        Arc::new(Self {
            start,
            ranks: ranks.max(1),
            inner: Mutex::new(Inner {
                ranks_done: 0,
                traces: Vec::new(),
                memory: Vec::new(),
                errors: Vec::new(),
                outcome: None,
                waiters: Vec::new(),
            }),
            done: Condvar::new(),
            reported: AtomicBool::new(false),
        })
    }

    /// True for the first caller only: the one `/stop_profile` that reports this session's
    /// outcome. A window that closed by itself (`num_steps`) has no stop of its own, so its
    /// write failure is reported by the next `/stop_profile` instead of being lost.
    pub fn claim_report(&self) -> bool {
        !self.reported.swap(true, Ordering::AcqRel)
    }

    /// Whether the outcome was already reported (see [`ProfileSession::claim_report`]).
    pub fn is_reported(&self) -> bool {
        self.reported.load(Ordering::Acquire)
    }

    /// The resolved request.
    pub fn start(&self) -> &ProfileStart {
        &self.start
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the data inconsistent (plain pushes),
        // so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `f` once the session is complete (at once if it already is). Runs on the writer
    /// thread, so it must not block: send on a channel.
    pub fn on_complete(&self, f: impl FnOnce(&ProfileOutcome) + Send + 'static) {
        let mut inner = self.lock();
        if let Some(outcome) = inner.outcome.clone() {
            drop(inner);
            f(&outcome);
        } else {
            inner.waiters.push(Box::new(f));
        }
    }

    /// Block until the session is complete.
    pub fn wait(&self) -> ProfileOutcome {
        let mut inner = self.lock();
        loop {
            if let Some(o) = &inner.outcome {
                return o.clone();
            }
            inner = self.done.wait(inner).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The outcome if complete.
    pub fn outcome(&self) -> Option<ProfileOutcome> {
        self.lock().outcome.clone()
    }

    pub(crate) fn add_trace(&self, global_rank: usize, path: PathBuf) {
        self.lock().traces.push((global_rank, path));
    }

    pub(crate) fn add_memory(&self, path: PathBuf) {
        self.lock().memory.push(path);
    }

    pub(crate) fn add_error(&self, err: String) {
        self.lock().errors.push(err);
    }

    /// One rank finished (all its files are written). The last rank merges (on the writer
    /// thread) and completes the session.
    pub(crate) fn rank_done(&self, merger: Option<&dyn TraceMerger>) {
        let (traces, memory, errors) = {
            let mut inner = self.lock();
            inner.ranks_done += 1;
            if inner.ranks_done < self.ranks || inner.outcome.is_some() {
                return;
            }
            let mut traces = inner.traces.clone();
            traces.sort();
            (
                traces.into_iter().map(|(_, p)| p).collect::<Vec<_>>(),
                inner.memory.clone(),
                inner.errors.clone(),
            )
        };
        let mut message = "Succeeded.".to_string();
        let mut merged = None;
        if self.start.merge_profiles {
            let out = self
                .start
                .output_dir
                .join(merged_file_name(&self.start.profile_id));
            let result = match merger {
                _ if traces.is_empty() => Err(format!(
                    "No trace files found for profile_id: {}",
                    self.start.profile_id
                )),
                _ if out.exists() => Err(format!(
                    "{} already exists; traces are never overwritten",
                    out.display()
                )),
                Some(m) => m.merge(&traces, &out),
                None => Err("no trace merger is configured".to_string()),
            };
            match result {
                Ok(summary) => {
                    message.push_str(&format!(" Merged trace: {} ({summary})", out.display()));
                    merged = Some(out);
                }
                Err(err) => message.push_str(&format!(" Merge failed: {err}")),
            }
        }
        let outcome = ProfileOutcome {
            profile_id: self.start.profile_id.clone(),
            output_dir: self.start.output_dir.clone(),
            trace_files: traces,
            memory_files: memory,
            merged,
            message,
            errors,
        };
        if outcome.errors.is_empty() {
            tracing::info!(
                "Profiling done. Traces are saved to: {} ({})",
                outcome.output_dir.display(),
                outcome.message
            );
        } else {
            tracing::error!(
                "Profiling done, but {} file(s) could not be written: {} (reported by /stop_profile)",
                outcome.errors.len(),
                outcome.errors.join("; ")
            );
        }
        let waiters = {
            let mut inner = self.lock();
            inner.outcome = Some(outcome.clone());
            std::mem::take(&mut inner.waiters)
        };
        self.done.notify_all();
        for w in waiters {
            w(&outcome);
        }
    }
}
