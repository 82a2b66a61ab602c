//! SGLang's diffusion profiler (`SGLDiffusionProfiler`) over an `inferperf-profiler` session:
//! one profiler step per denoising step (after one warm-up step, `num_profiled_timesteps` of
//! them, or all with -1) or per pipeline stage (`profile_all_stages`), published as
//! `{request_id}-{N}_steps-global-rank0.trace.json.gz` (or `-full_stages-`). Shared by
//! `inferperf generate --profile` and the diffusion server's per-request `profile`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use inferperf_engine::diffusion::{PipelineObserver, Stage};
use inferperf_protocol::profile::ProfileReqInput;

use crate::diffusion_dump::MemoryCheckpoints;
use crate::error::ProfileError;
use crate::manager::{ProfileManager, ProfilerConfig};
use crate::options::EnvDefaults;
use crate::session::ProfileSession;
use crate::step::{StepEnd, StepInfo};
use crate::writer::TraceWriter;

/// What a diffusion request asked to profile.
#[derive(Clone, Debug, PartialEq)]
pub struct DiffusionProfileOptions {
    /// Names the trace file.
    pub request_id: String,
    /// One profiler step per stage instead of per denoising step.
    pub profile_all_stages: bool,
    /// Denoising steps recorded after the warm-up step; -1 records all steps.
    pub num_profiled_timesteps: i64,
    /// Trace directory; else `SGLANG_DIFFUSION_TORCH_PROFILER_DIR`, `SGLANG_TORCH_PROFILER_DIR`,
    /// then `./logs`.
    pub output_dir: Option<PathBuf>,
}

/// SGLDiffusionProfiler's two modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfileMode {
    /// One profiler step per denoising step.
    Denoise,
    /// One profiler step per pipeline stage.
    AllStages,
}

/// SGLang's diffusion profiler over an `inferperf-profiler` session.
pub struct DiffusionProfiler {
    manager: ProfileManager,
    writer: TraceWriter,
    session: Arc<ProfileSession>,
    mode: ProfileMode,
    /// `{request_id}-{mode_id}-global-rank0.trace.json.gz`.
    final_path: PathBuf,
    forward_ct: u64,
    stage_start: Option<Instant>,
    step_start: Option<Instant>,
    labels: serde_json::Map<String, serde_json::Value>,
    labelled: bool,
}

/// The trace directory: explicit, then SGLang's two variables ([`env_trace_dir`]), then
/// `./logs`.
pub fn trace_dir(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(env_trace_dir)
        .unwrap_or_else(|| PathBuf::from("./logs"))
}

/// `SGLANG_DIFFUSION_TORCH_PROFILER_DIR`, else `SGLANG_TORCH_PROFILER_DIR`, when set.
pub fn env_trace_dir() -> Option<PathBuf> {
    [
        "SGLANG_DIFFUSION_TORCH_PROFILER_DIR",
        "SGLANG_TORCH_PROFILER_DIR",
    ]
    .into_iter()
    .find_map(|var| std::env::var_os(var).filter(|v| !v.is_empty()))
    .map(PathBuf::from)
}

/// A `&'static` span name for denoising step `i` (the recorder keeps static names); each index
/// is allocated once per process, so memory is bounded by the largest step count used.
pub fn step_span_name(i: usize) -> &'static str {
    static NAMES: OnceLock<Mutex<Vec<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    while names.len() <= i {
        let n = names.len();
        names.push(Box::leak(format!("denoising_step_{n}").into_boxed_str()));
    }
    names[i]
}

impl DiffusionProfiler {
    /// Open the session of one request: `opts` chooses the mode (SGLang's
    /// `num_profiled_timesteps` / `profile_all_stages`), `labels` go into the trace.
    pub fn start(
        opts: &DiffusionProfileOptions,
        num_inference_steps: usize,
        labels: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, ProfileError> {
        let (mode, mode_id, start_step, num_steps) = if opts.profile_all_stages {
            (
                ProfileMode::AllStages,
                "full_stages".to_string(),
                None,
                None,
            )
        } else {
            match opts.num_profiled_timesteps {
                -1 => (
                    ProfileMode::Denoise,
                    format!("{num_inference_steps}_steps"),
                    None,
                    None,
                ),
                n if n > 0 => (
                    ProfileMode::Denoise,
                    format!("{n}_steps"),
                    // Step 1 is the warm-up; steps 2..=n+1 are recorded.
                    Some(2),
                    Some(n as u64),
                ),
                n => {
                    return Err(ProfileError::Invalid(format!(
                        "num_profiled_timesteps must be positive or -1, got {n}"
                    )))
                }
            }
        };
        let dir = trace_dir(opts.output_dir.as_deref());
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        let req = ProfileReqInput {
            output_dir: Some(dir.to_string_lossy().into_owned()),
            start_step,
            num_steps,
            profile_id: Some(format!("{}-{mode_id}", opts.request_id)),
            with_stack: Some(false),
            record_shapes: Some(false),
            ..ProfileReqInput::default()
        };
        let writer = TraceWriter::spawn(None).map_err(|error| ProfileError::Write {
            path: dir.clone(),
            error,
        })?;
        let mut manager = ProfileManager::new(
            ProfilerConfig {
                process_name: "inferperf::diffusion".into(),
                ..ProfilerConfig::default()
            },
            writer.clone(),
        );
        let session = manager.start_request(&req, &EnvDefaults::default())?;
        let final_path = session.start().output_dir.join(format!(
            "{}-{mode_id}-global-rank0.trace.json.gz",
            opts.request_id
        ));
        tracing::info!(
            "Profiling request {} ({}); traces go to {}",
            opts.request_id,
            mode_id.replace('_', " "),
            session.start().output_dir.display()
        );
        Ok(Self {
            manager,
            writer,
            session,
            mode,
            final_path,
            forward_ct: 0,
            stage_start: None,
            step_start: None,
            labels: labels.clone(),
            labelled: false,
        })
    }

    fn begin_profiler_step(&mut self) {
        self.forward_ct += 1;
        let recorded = self.manager.on_step_begin(&StepInfo::idle(self.forward_ct));
        if recorded && !self.labelled {
            // One instant per trace with the honesty labels (native vs output size).
            let labels = self.labels.clone();
            self.manager
                .recorder()
                .instant("diffusion_request", move || labels);
            self.labelled = true;
        }
    }

    /// Close the session, wait for the file, publish it under SGLang's name, check it.
    pub fn finish(mut self) -> Result<Option<PathBuf>, ProfileError> {
        if self.manager.is_active() {
            self.manager.stop()?;
        }
        self.writer.flush()?;
        let outcome = self.session.wait().into_result()?;
        let Some(written) = outcome.trace_files.first() else {
            tracing::warn!(
                "No denoising step was profiled (the first step is the warm-up); no trace written"
            );
            return Ok(None);
        };
        // Published under SGLang's name, never over an existing file.
        crate::writer::publish_new(written, &self.final_path).map_err(|error| {
            ProfileError::Write {
                path: self.final_path.clone(),
                error,
            }
        })?;
        check_trace(&self.final_path);
        tracing::info!("Saved profiler traces to: {}", self.final_path.display());
        Ok(Some(self.final_path))
    }
}

/// SGLang's integrity check: non-empty, and one gzip member (no second `\x1f\x8b` header).
fn check_trace(path: &Path) {
    let ok = std::fs::read(path)
        .map(|b| !b.is_empty() && b.windows(2).filter(|w| w == &[0x1f, 0x8b]).count() <= 1)
        .unwrap_or(false);
    if !ok {
        tracing::warn!("Trace file may be corrupted: {}", path.display());
    }
}

/// Stages and denoising steps become spans, and profiler steps in the chosen mode.
impl PipelineObserver for DiffusionProfiler {
    fn on_stage_begin(&mut self, _stage: Stage) {
        if self.mode == ProfileMode::AllStages {
            self.begin_profiler_step();
        }
        self.stage_start = Some(Instant::now());
    }

    fn on_stage_end(&mut self, stage: Stage, _elapsed: Duration) {
        if let Some(start) = self.stage_start.take() {
            self.manager
                .recorder()
                .record_span(stage.name(), start, Instant::now());
        }
        if self.mode == ProfileMode::AllStages {
            self.manager.on_step_end(&StepEnd::default());
        }
    }

    fn on_denoise_step_begin(&mut self, _step: usize, _total: usize) {
        if self.mode == ProfileMode::Denoise {
            self.begin_profiler_step();
        }
        self.step_start = Some(Instant::now());
    }

    fn on_denoise_step_end(&mut self, step: usize, _total: usize, _elapsed: Duration) {
        if let Some(start) = self.step_start.take() {
            self.manager
                .recorder()
                .record_span(step_span_name(step), start, Instant::now());
        }
        if self.mode == ProfileMode::Denoise {
            self.manager.on_step_end(&StepEnd::default());
        }
    }
}

/// What one diffusion request observes: memory after every stage (the perf dump's
/// checkpoints) and, when the request asked for it, its profiler. Shared by
/// `inferperf generate` and the diffusion server.
pub struct RequestObserver {
    pub profiler: Option<DiffusionProfiler>,
    pub memory: MemoryCheckpoints,
}

impl PipelineObserver for RequestObserver {
    fn on_stage_begin(&mut self, stage: Stage) {
        self.profiler.on_stage_begin(stage);
    }
    fn on_stage_end(&mut self, stage: Stage, elapsed: Duration) {
        self.profiler.on_stage_end(stage, elapsed);
        // CPU engine: "allocated" and "reserved" are both the process RSS.
        self.memory.after_stage(stage);
    }
    fn on_denoise_step_begin(&mut self, step: usize, total: usize) {
        self.profiler.on_denoise_step_begin(step, total);
    }
    fn on_denoise_step_end(&mut self, step: usize, total: usize, elapsed: Duration) {
        self.profiler.on_denoise_step_end(step, total, elapsed);
    }
}
