//! Server-side profiling with SGLang's `/start_profile` semantics: step windows, span recording,
//! Kineto-compatible Chrome trace writing and SGLang's file naming; plus the HTTP client that
//! drives `/start_profile` and `/stop_profile` on one or many servers.
//!
//! This crate depends on the engine only for its hook types ([`engine_hooks`] implements
//! `inferperf_engine::hooks::StepHooks`); the engine never depends on the profiler. Data flow:
//! - the front end resolves a [`ProfileReqInput`](inferperf_protocol::profile::ProfileReqInput)
//!   into a [`ProfileStart`] and wraps it in a [`ProfileSession`] shared by all ranks;
//! - [`ProfilerHandle`] sends start/stop to every rank's [`RankHooks`] (the engine's step
//!   hooks), applied on the engine thread between steps or while idle;
//! - each rank's engine thread owns a [`ProfileManager`]: `start`/`stop` between steps,
//!   `on_step_begin`/`on_step_end` around each forward, spans through [`SpanRecorder`];
//! - closed windows go to the [`TraceWriter`] thread, which writes `*.trace.json.gz` (temp file
//!   then publish, never over an existing file), merges when asked, and completes the session
//!   (what `/stop_profile` awaits, and reports failed writes from);
//! - [`OutputRoot`] (`--profile-output-root`) confines client-chosen output paths.

pub mod activity;
pub mod client;
pub mod diffusion_dump;
pub mod diffusion_profiler;
mod engine_hooks;
pub mod error;
mod event;
mod manager;
mod memory;
pub mod naming;
pub mod options;
pub mod output_root;
pub mod recorder;
mod session;
pub mod step;
mod trace_json;
mod window;
mod writer;

pub use activity::Activities;
pub use engine_hooks::{ProfilerHandle, RankHooks};
pub use error::ProfileError;
pub use event::cat;
pub use manager::{ProfileManager, ProfilerConfig};
pub use memory::process_rss_bytes;
pub use naming::{RankInfo, Stage};
pub use options::{EnvDefaults, ProfileStart, MAX_NAME_STEM_BYTES};
pub use output_root::OutputRoot;
pub use recorder::{phase, ModuleMarker, SpanGuard, SpanRecorder};
pub use session::{ProfileOutcome, ProfileSession, TraceMerger};
pub use step::{step_span_name, ForwardMode, StepEnd, StepInfo};
pub use writer::TraceWriter;

#[cfg(test)]
mod tests;
