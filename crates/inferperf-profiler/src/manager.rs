//! [`ProfileManager`]: the per-rank profiler the engine loop owns and calls around each step.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use inferperf_protocol::profile::ProfileReqInput;

use crate::error::ProfileError;
use crate::event::{cat, Event, Kind};
use crate::memory::MemSample;
use crate::naming::{memory_file_name, python_time_str, trace_file_name, RankInfo};
use crate::options::{EnvDefaults, ProfileStart};
use crate::output_root::OutputRoot;
use crate::recorder::SpanRecorder;
use crate::session::ProfileSession;
use crate::step::{step_span_name, StepEnd, StepInfo};
use crate::trace_json::TraceMeta;
use crate::window::WindowSet;
use crate::writer::{Job, TraceWriter};

/// Static facts about the rank this manager profiles.
#[derive(Clone, Debug)]
pub struct ProfilerConfig {
    pub rank: RankInfo,
    /// The server's `--enable-layerwise-nvtx-marker`: per-module spans in every CPU trace, even
    /// when the request turns `record_shapes` off.
    pub layerwise_markers: bool,
    /// `process_name` in the traces.
    pub process_name: String,
}

impl Default for ProfilerConfig {
    fn default() -> Self {
        Self {
            rank: RankInfo::single(),
            layerwise_markers: false,
            process_name: "inferperf::scheduler".into(),
        }
    }
}

#[derive(Default)]
struct WindowBuf {
    events: Vec<Event>,
    mem: Vec<MemSample>,
}

struct Active {
    session: Arc<ProfileSession>,
    windows: WindowSet,
    bufs: Vec<WindowBuf>,
}

struct CurrentStep {
    forward_ct: u64,
    target: usize,
    /// Index of `ProfilerStep#N` in the recorder buffer, when the CPU activity is on.
    step_event: Option<(usize, Instant)>,
}

/// The per-rank profiling state machine (SGLang's `SchedulerProfilerMixin`), owned by the engine
/// thread. See [`crate::window`] for the exact step semantics.
///
/// Engine loop contract, once per forward step:
/// 1. advance `forward_ct`, build a [`StepInfo`], call [`Self::on_step_begin`];
/// 2. wrap the model forward in `recorder().forward_span()` and phases in
///    `recorder().span(phase::...)`; modules in `recorder().module(|| ...)`;
/// 3. after the results are processed, call [`Self::on_step_end`] with the queue and KV state.
///
/// Start/stop arrive as control commands handled on the same thread between steps. When no
/// session is active, the step calls cost one branch each.
pub struct ProfileManager {
    config: ProfilerConfig,
    writer: TraceWriter,
    recorder: SpanRecorder,
    last_forward_ct: u64,
    tid: u64,
    active: Option<Active>,
    current: Option<CurrentStep>,
}

impl ProfileManager {
    pub fn new(config: ProfilerConfig, writer: TraceWriter) -> Self {
        Self {
            config,
            writer,
            recorder: SpanRecorder::default(),
            last_forward_ct: 0,
            tid: 0,
            active: None,
            current: None,
        }
    }

    /// The span API for the engine and the model.
    #[inline]
    pub fn recorder(&self) -> &SpanRecorder {
        &self.recorder
    }

    /// True while a session is armed or recording (a new start would be refused).
    pub fn is_active(&self) -> bool {
        self.active.is_some()
    }

    /// `forward_ct` of the last step seen.
    pub fn last_forward_ct(&self) -> u64 {
        self.last_forward_ct
    }

    pub fn config(&self) -> &ProfilerConfig {
        &self.config
    }

    /// Resolve `req` and start a single-rank session (convenience for one-rank servers and
    /// tests; multi-rank servers resolve once and call [`Self::start`] on every rank).
    pub fn start_request(
        &mut self,
        req: &ProfileReqInput,
        env: &EnvDefaults,
    ) -> Result<Arc<ProfileSession>, ProfileError> {
        self.start_request_within(req, env, None)
    }

    /// [`Self::start_request`] with the output directory confined to `root`
    /// (`--profile-output-root`, see [`ProfileStart::resolve_within`]). Refused when one of
    /// the session's trace files already exists.
    pub fn start_request_within(
        &mut self,
        req: &ProfileReqInput,
        env: &EnvDefaults,
        root: Option<&OutputRoot>,
    ) -> Result<Arc<ProfileSession>, ProfileError> {
        if self.active.is_some() {
            return Err(ProfileError::AlreadyInProgress);
        }
        let start = ProfileStart::resolve_within(req, env, root)?;
        start.check_no_existing_traces(&[self.config.rank])?;
        let session = ProfileSession::new(start, self.config.rank.world_size());
        self.start(session.clone())?;
        Ok(session)
    }

    /// Arm (or, without `start_step` and stages, open) the windows of `session` on this rank.
    pub fn start(&mut self, session: Arc<ProfileSession>) -> Result<(), ProfileError> {
        if self.active.is_some() {
            return Err(ProfileError::AlreadyInProgress);
        }
        let start = session.start();
        if start.merge_profiles && !self.writer.has_merger() {
            return Err(ProfileError::MergeUnavailable);
        }
        if self.tid == 0 {
            self.tid = current_tid();
        }
        self.recorder.configure(
            start.record_shapes || self.config.layerwise_markers,
            start.with_stack,
        );
        let windows = WindowSet::new(
            start.start_step,
            start.num_steps,
            start.stages.as_deref(),
            self.last_forward_ct,
        );
        let bufs = windows
            .windows
            .iter()
            .map(|_| WindowBuf::default())
            .collect();
        let opened_now = windows.any_open();
        self.active = Some(Active {
            session,
            windows,
            bufs,
        });
        if opened_now {
            self.log_open(None);
        }
        self.update_recording();
        Ok(())
    }

    /// Close the open windows (their files are written off-thread), cancel pending ones, and
    /// return the session; `session.on_complete`/`wait` fire once every rank's files exist.
    pub fn stop(&mut self) -> Result<Arc<ProfileSession>, ProfileError> {
        let Some(mut active) = self.active.take() else {
            return Err(ProfileError::NotInProgress);
        };
        // A stop between steps: events since the last step belong to the open windows.
        let pending = self.recorder.take();
        distribute(&mut active, &pending);
        self.current = None;
        for i in active.windows.stop() {
            self.close_window(&mut active, i)?;
        }
        let session = active.session.clone();
        self.writer.submit(Job::RankDone(session.clone()))?;
        self.update_recording();
        Ok(session)
    }

    /// Step `step.forward_ct` is about to run its forward. Returns true when it is recorded.
    #[inline]
    pub fn on_step_begin(&mut self, step: &StepInfo<'_>) -> bool {
        self.last_forward_ct = step.forward_ct;
        if self.active.is_none() {
            return false;
        }
        self.begin_active(step)
    }

    fn begin_active(&mut self, step: &StepInfo<'_>) -> bool {
        let Some(active) = self.active.as_mut() else {
            return false;
        };
        let between = self.recorder.take();
        distribute(active, &between);
        let (opened, target) = active.windows.begin_step(step.forward_ct, step.mode);
        let cpu = active.session.start().activities.cpu;
        let roofline = active.session.start().roofline;
        let stages: Vec<_> = opened
            .iter()
            .map(|&i| active.windows.windows.get(i).and_then(|w| w.stage))
            .collect();
        for stage in stages {
            self.log_open(stage.map(|s| s.name()));
        }
        let Some(target) = target else {
            self.current = None;
            self.update_recording();
            return false;
        };
        let mut step_event = None;
        if cpu {
            self.recorder.set_recording(true);
            let begin = step.iter_start.unwrap_or_else(Instant::now);
            let idx = self.recorder.push_event(Event {
                name: Cow::Owned(format!("ProfilerStep#{}", step.forward_ct)),
                cat: cat::USER_ANNOTATION,
                kind: Kind::Complete,
                start: begin,
                dur: Duration::ZERO,
                args: None,
            });
            step_event = Some((idx, begin));
            self.recorder
                .set_step_label(Some(step_span_name(step, roofline)));
        } else {
            self.recorder.set_recording(false);
        }
        self.current = Some(CurrentStep {
            forward_ct: step.forward_ct,
            target,
            step_event,
        });
        true
    }

    /// The current step is over (forward done, results processed): record the counters, close
    /// windows that reached `num_steps`, and hand their events to the writer.
    #[inline]
    pub fn on_step_end(&mut self, end: &StepEnd) {
        if self.current.is_none() {
            return;
        }
        self.end_active(end);
    }

    fn end_active(&mut self, end: &StepEnd) {
        let Some(cur) = self.current.take() else {
            return;
        };
        let Some(mut active) = self.active.take() else {
            return;
        };
        let activities = active.session.start().activities;
        if activities.cpu {
            let rec = &self.recorder;
            rec.counter("running_reqs", &[("running_reqs", end.running_reqs as f64)]);
            rec.counter("waiting_reqs", &[("waiting_reqs", end.waiting_reqs as f64)]);
            let usage = if end.kv_total_tokens > 0 {
                end.kv_used_tokens as f64 / end.kv_total_tokens as f64
            } else {
                0.0
            };
            rec.counter(
                "kv_cache",
                &[
                    ("used_tokens", end.kv_used_tokens as f64),
                    ("total_tokens", end.kv_total_tokens as f64),
                    ("usage", usage),
                ],
            );
            if let Some((idx, begin)) = cur.step_event {
                rec.set_duration(idx, begin.elapsed());
            }
            rec.set_step_label(None);
            rec.set_step_args(None);
        }
        let events = self.recorder.take();
        if let Some(buf) = active.bufs.get_mut(cur.target) {
            buf.events.extend(events);
            if activities.mem {
                buf.mem.push(MemSample::take(end));
            }
        }
        let mut failed = None;
        for i in active.windows.end_step(cur.forward_ct, cur.target) {
            if let Err(e) = self.close_window(&mut active, i) {
                failed = Some(e);
            }
        }
        if active.windows.all_closed() {
            if let Err(e) = self.writer.submit(Job::RankDone(active.session.clone())) {
                failed = Some(e);
            }
        } else {
            self.active = Some(active);
        }
        if let Some(e) = failed {
            tracing::error!("profiler: {e}");
        }
        self.update_recording();
    }

    fn update_recording(&self) {
        let between = self
            .active
            .as_ref()
            .is_some_and(|a| a.session.start().activities.cpu && a.windows.any_open());
        self.recorder.set_recording(between);
    }

    fn log_open(&self, stage: Option<&str>) {
        if let Some(a) = &self.active {
            let s = a.session.start();
            let for_stage = stage.map(|st| format!(" for {st}")).unwrap_or_default();
            tracing::info!(
                "Profiling starts{for_stage}. Traces will be saved to: {} (with profile id: {})",
                s.output_dir.display(),
                s.profile_id
            );
        }
    }

    fn close_window(&self, active: &mut Active, i: usize) -> Result<(), ProfileError> {
        let start = active.session.start();
        let stage = active.windows.windows.get(i).and_then(|w| w.stage);
        let buf = active
            .bufs
            .get_mut(i)
            .map(std::mem::take)
            .unwrap_or_default();
        let stage_suffix = stage.map(|s| format!("-{}", s.name())).unwrap_or_default();
        tracing::info!("Stop profiling{stage_suffix}...");
        let rank = self.config.rank;
        let meta = |path: &std::path::Path, memory: bool| TraceMeta {
            rank,
            pid: std::process::id(),
            tid: self.tid,
            process_name: self.config.process_name.clone(),
            thread_name: format!("thread {} (scheduler {})", self.tid, rank.label()),
            trace_name: path.display().to_string(),
            profile_id: start.profile_id.clone(),
            with_stack: start.with_stack,
            record_shapes: start.record_shapes,
            profile_memory: memory,
        };
        if start.activities.cpu {
            let name = trace_file_name(
                start.profile_prefix.as_deref(),
                &start.profile_id,
                &rank,
                stage,
            );
            let path = start.output_dir.join(name);
            self.writer.submit(Job::Trace {
                meta: meta(&path, false),
                path,
                events: buf.events,
                session: active.session.clone(),
            })?;
        }
        if start.activities.mem {
            let name = memory_file_name(&python_time_str(SystemTime::now()), &rank, stage);
            let path = start.output_dir.join(name);
            self.writer.submit(Job::Memory {
                meta: meta(&path, true),
                path,
                samples: buf.mem,
                session: active.session.clone(),
            })?;
        }
        Ok(())
    }
}

/// Events recorded outside a step go to every open window.
fn distribute(active: &mut Active, events: &[Event]) {
    if events.is_empty() {
        return;
    }
    let open: Vec<usize> = active.windows.open_windows().collect();
    for i in open {
        if let Some(buf) = active.bufs.get_mut(i) {
            buf.events.extend_from_slice(events);
        }
    }
}

/// OS thread id (what Kineto writes as `tid`).
fn current_tid() -> u64 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions and cannot fail.
        let tid = unsafe { libc::gettid() };
        u64::try_from(tid).unwrap_or(1)
    }
    #[cfg(not(target_os = "linux"))]
    {
        u64::from(std::process::id())
    }
}
