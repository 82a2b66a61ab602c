//! The profiler as the engine's [`StepHooks`]: one [`RankHooks`] per engine thread (rank), and a
//! [`ProfilerHandle`] the HTTP front end uses to start and stop sessions on every rank.
//!
//! Start/stop travel on each rank's own channel and are applied on the engine thread between
//! steps: the handle queues the command, then sends `ControlCommand::PollHooks` to the engine,
//! which calls [`StepHooks::on_control`] between steps or at once when idle. So a stop on an
//! idle server completes (and the files get written) without waiting for another step.
//!
//! Per recorded step the trace gets `ProfilerStep#N` (from the scheduler's start of the
//! iteration to the end of result processing), the `schedule` phase, SGLang's `step[...]` span
//! around the forward, one `cpu_op` per module call when module spans are on, the
//! `process_batch_result` phase, and the running/waiting/KV counters. The `step[...]` span's
//! args name the batch (`forward_mode`, `batch_size`, `rids`, `extend_lens`), and every request
//! seen while recording gets an async track (`cat: "request"`, `b` at its arrival, `n` for
//! `tokenized`, `enqueued`, `first_token`, `chunk`, `finish`, `e` at its finish); see
//! docs/trace-conventions.md.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

use inferperf_engine::api::{ControlCommand, EngineHandle, FinishReason};
use inferperf_engine::hooks::{
    BatchSummary, ModuleTiming, RequestEvent, RequestStage, StepHooks, StepOutcome,
};
use inferperf_protocol::profile::ProfileReqInput;
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use crate::error::ProfileError;
use crate::event::{request_track_id, Kind};
use crate::manager::{ProfileManager, ProfilerConfig};
use crate::naming::RankInfo;
use crate::options::{EnvDefaults, ProfileStart};
use crate::output_root::OutputRoot;
use crate::recorder::{phase, ModuleMarker};
use crate::session::{ProfileOutcome, ProfileSession};
use crate::step::{ForwardMode, StepEnd, StepInfo};
use crate::writer::TraceWriter;

/// A command for one rank, applied on its engine thread.
enum Command {
    Start(
        Arc<ProfileSession>,
        oneshot::Sender<Result<(), ProfileError>>,
    ),
    Stop(oneshot::Sender<Result<Arc<ProfileSession>, ProfileError>>),
    /// Bytes of one KV slot (known once the model is loaded), for the memory timeline.
    SetKvBytesPerToken(usize),
}

/// The step hooks of one rank: owns that rank's [`ProfileManager`].
pub struct RankHooks {
    manager: ProfileManager,
    rx: mpsc::Receiver<Command>,
    kv_bytes_per_token: usize,
    /// Per-step scratch so that building a [`StepInfo`] allocates nothing.
    seq_lens: Vec<usize>,
    recording: bool,
    forward_end: Option<Instant>,
    /// Requests the engine is serving, so that a track opened mid-request starts at its
    /// arrival.
    live: HashMap<String, LiveRequest>,
}

/// What the profiler remembers of one live request.
struct LiveRequest {
    id: u64,
    arrival: Instant,
    tokenized: Instant,
    prompt_tokens: usize,
    enqueued: Option<(Instant, usize)>,
    /// Its `b` was recorded (the track is open in the current trace).
    in_trace: bool,
}

fn rid_args(rid: &str) -> Map<String, Value> {
    let mut args = Map::new();
    args.insert("rid".into(), Value::from(rid));
    args
}

impl LiveRequest {
    /// Open the request's track (at its arrival) if it is not open yet.
    fn begin(&mut self, rec: &crate::recorder::SpanRecorder, rid: &str) {
        if self.in_trace || !rec.is_recording() {
            return;
        }
        self.in_trace = true;
        let mut args = rid_args(rid);
        args.insert("prompt_tokens".into(), Value::from(self.prompt_tokens));
        rec.request_event(
            Cow::Owned(rid.to_string()),
            Kind::AsyncBegin(self.id),
            self.arrival,
            args,
        );
        rec.request_event(
            Cow::Borrowed("tokenized"),
            Kind::AsyncInstant(self.id),
            self.tokenized,
            rid_args(rid),
        );
        if let Some((at, pos)) = self.enqueued {
            let mut args = rid_args(rid);
            args.insert("queue_pos".into(), Value::from(pos));
            rec.request_event(
                Cow::Borrowed("enqueued"),
                Kind::AsyncInstant(self.id),
                at,
                args,
            );
        }
    }
}

impl RankHooks {
    fn apply_commands(&mut self) {
        while let Ok(cmd) = self.rx.try_recv() {
            match cmd {
                Command::Start(session, reply) => {
                    let _ = reply.send(self.manager.start(session));
                }
                Command::Stop(reply) => {
                    let _ = reply.send(self.manager.stop());
                }
                Command::SetKvBytesPerToken(n) => self.kv_bytes_per_token = n,
            }
        }
    }
}

impl StepHooks for RankHooks {
    fn on_step_begin(&mut self, batch: &BatchSummary) -> bool {
        self.apply_commands();
        let mode = batch.mode;
        self.seq_lens.clear();
        if mode == ForwardMode::Decode {
            self.seq_lens.extend(
                batch
                    .prefix_lens
                    .iter()
                    .zip(&batch.extend_lens)
                    .map(|(p, e)| p + e),
            );
        }
        let (prefix, ext): (&[usize], &[usize]) = if mode == ForwardMode::Decode {
            (&[], &[])
        } else {
            (&batch.prefix_lens, &batch.extend_lens)
        };
        let info = StepInfo {
            forward_ct: batch.forward_ct,
            mode,
            batch_size: batch.batch_size,
            num_tokens: batch.num_tokens,
            extend_prefix_lens: prefix,
            extend_seq_lens: ext,
            seq_lens: &self.seq_lens,
            iter_start: batch.schedule_start,
        };
        self.recording = self.manager.on_step_begin(&info);
        self.forward_end = None;
        if !self.recording {
            return false;
        }
        let rec = self.manager.recorder();
        if rec.is_recording() {
            let mut args = Map::new();
            args.insert("forward_mode".into(), Value::from(batch.mode.name()));
            args.insert("batch_size".into(), Value::from(batch.batch_size));
            args.insert("rids".into(), Value::from(batch.rids.clone()));
            args.insert("extend_lens".into(), Value::from(batch.extend_lens.clone()));
            rec.set_step_args(Some(args));
            for rid in &batch.rids {
                if let Some(live) = self.live.get_mut(rid) {
                    live.begin(rec, rid);
                }
            }
        }
        if let Some(start) = batch.schedule_start {
            rec.record_span(phase::SCHEDULE, start, Instant::now());
        }
        rec.modules_enabled()
    }

    fn on_module(&mut self, t: ModuleTiming) {
        let rec = self.manager.recorder();
        if !rec.modules_enabled() {
            return;
        }
        let module = match t.layer {
            Some(l) => format!("model.layers.{l}.{}", t.module),
            None => format!("model.{}", t.module),
        };
        rec.record_module(
            ModuleMarker {
                module,
                inputs: vec![t.input_shape],
                trainable_params: t.params,
                // SGLang fills StaticParams only for stock torch.nn modules; its parallel
                // layers (and ours) are not, so there are none here either.
                ..ModuleMarker::default()
            },
            t.start,
            t.end,
        );
    }

    fn on_forward(&mut self, start: Instant, end: Instant) {
        if self.recording {
            self.manager.recorder().record_forward(start, end);
            self.forward_end = Some(end);
        }
    }

    fn on_step_end(&mut self, outcome: &StepOutcome) {
        if self.recording {
            if let Some(end) = self.forward_end.take() {
                self.manager.recorder().record_span(
                    phase::PROCESS_BATCH_RESULT,
                    end,
                    Instant::now(),
                );
            }
        }
        self.recording = false;
        self.manager.on_step_end(&StepEnd {
            running_reqs: outcome.running_reqs,
            waiting_reqs: outcome.waiting_reqs,
            kv_used_tokens: outcome.kv_used_tokens,
            kv_total_tokens: outcome.kv_total_tokens,
            kv_bytes_per_token: self.kv_bytes_per_token,
        });
    }

    fn on_control(&mut self) {
        self.apply_commands();
    }

    fn wants_request_events(&self) -> bool {
        true
    }

    fn on_request(&mut self, ev: &RequestEvent<'_>) {
        let rec = self.manager.recorder();
        let rid = ev.rid;
        match ev.stage {
            RequestStage::Received {
                arrival,
                tokenized,
                prompt_tokens,
            } => {
                let mut live = LiveRequest {
                    id: request_track_id(rid),
                    arrival,
                    tokenized,
                    prompt_tokens,
                    enqueued: None,
                    in_trace: false,
                };
                live.begin(rec, rid);
                self.live.insert(rid.to_string(), live);
            }
            RequestStage::Enqueued { queue_pos } => {
                let Some(live) = self.live.get_mut(rid) else {
                    return;
                };
                live.enqueued = Some((ev.at, queue_pos));
                if live.in_trace {
                    let mut args = rid_args(rid);
                    args.insert("queue_pos".into(), Value::from(queue_pos));
                    rec.request_event(
                        Cow::Borrowed("enqueued"),
                        Kind::AsyncInstant(live.id),
                        ev.at,
                        args,
                    );
                } else {
                    live.begin(rec, rid);
                }
            }
            RequestStage::FirstToken | RequestStage::Chunk { .. } => {
                if !rec.is_recording() {
                    return;
                }
                let Some(live) = self.live.get_mut(rid) else {
                    return;
                };
                live.begin(rec, rid);
                let mut args = rid_args(rid);
                let name = match ev.stage {
                    RequestStage::Chunk { tokens } => {
                        args.insert("tokens".into(), Value::from(tokens));
                        "chunk"
                    }
                    _ => "first_token",
                };
                rec.request_event(
                    Cow::Borrowed(name),
                    Kind::AsyncInstant(live.id),
                    ev.at,
                    args,
                );
            }
            RequestStage::Finished {
                reason,
                completion_tokens,
                cached_tokens,
                ..
            } => {
                let Some(mut live) = self.live.remove(rid) else {
                    return;
                };
                if !rec.is_recording() {
                    return;
                }
                live.begin(rec, rid);
                let mut args = rid_args(rid);
                let status = if matches!(reason, FinishReason::Abort { .. }) {
                    "aborted"
                } else {
                    "finished"
                };
                args.insert("status".into(), Value::from(status));
                args.insert(
                    "finish_reason".into(),
                    serde_json::to_value(reason).unwrap_or(Value::Null),
                );
                args.insert("completion_tokens".into(), Value::from(completion_tokens));
                args.insert("cached_tokens".into(), Value::from(cached_tokens));
                rec.request_event(
                    Cow::Borrowed("finish"),
                    Kind::AsyncInstant(live.id),
                    ev.at,
                    args.clone(),
                );
                rec.request_event(
                    Cow::Owned(rid.to_string()),
                    Kind::AsyncEnd(live.id),
                    ev.at,
                    args,
                );
            }
        }
    }
}

/// The front end's side: starts and stops sessions on every rank of one server.
///
/// Create it with [`ProfilerHandle::new`] (which returns the per-rank hooks to launch the
/// engine with), then [`ProfilerHandle::attach`] the launched engine's handle.
#[derive(Clone)]
pub struct ProfilerHandle {
    ranks: Vec<mpsc::Sender<Command>>,
    /// Position of each rank, in the order of `ranks` (names its trace files).
    rank_infos: Vec<RankInfo>,
    engine: Option<EngineHandle>,
    env: EnvDefaults,
    /// `--profile-output-root`: where `output_dir` must resolve to.
    root: Option<OutputRoot>,
    last: Arc<Mutex<Option<Arc<ProfileSession>>>>,
}

impl std::fmt::Debug for ProfilerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfilerHandle")
            .field("ranks", &self.ranks.len())
            .finish()
    }
}

impl ProfilerHandle {
    /// One [`RankHooks`] per entry of `ranks` (in rank order), all writing through `writer`.
    /// `env` supplies the defaults of `/start_profile` (`SGLANG_TORCH_PROFILER_DIR`, ...).
    pub fn new(
        ranks: Vec<ProfilerConfig>,
        writer: TraceWriter,
        env: EnvDefaults,
    ) -> (Self, Vec<Box<dyn StepHooks>>) {
        let mut senders = Vec::with_capacity(ranks.len());
        let mut hooks: Vec<Box<dyn StepHooks>> = Vec::with_capacity(ranks.len());
        let rank_infos = ranks.iter().map(|c| c.rank).collect();
        for config in ranks {
            let (tx, rx) = mpsc::channel();
            senders.push(tx);
            hooks.push(Box::new(RankHooks {
                manager: ProfileManager::new(config, writer.clone()),
                rx,
                kv_bytes_per_token: 0,
                seq_lens: Vec::new(),
                recording: false,
                forward_end: None,
                live: HashMap::new(),
            }));
        }
        (
            Self {
                ranks: senders,
                rank_infos,
                engine: None,
                env,
                root: None,
                last: Arc::default(),
            },
            hooks,
        )
    }

    /// Confine every `/start_profile` output directory to `root` (`--profile-output-root`;
    /// see [`ProfileStart::resolve_within`]).
    pub fn with_output_root(mut self, root: Option<OutputRoot>) -> Self {
        self.root = root;
        self
    }

    /// The engine the hooks were launched with (its thread applies the commands).
    pub fn attach(&mut self, engine: EngineHandle) {
        self.engine = Some(engine);
    }

    /// Number of ranks (the session world size).
    pub fn world_size(&self) -> usize {
        self.ranks.len()
    }

    /// Tell every rank the size of one KV slot, for the MEM timeline's KV bytes.
    pub fn set_kv_bytes_per_token(&self, bytes: usize) -> Result<(), ProfileError> {
        for tx in &self.ranks {
            tx.send(Command::SetKvBytesPerToken(bytes))
                .map_err(|_| ProfileError::EngineStopped)?;
        }
        self.wake()
    }

    fn wake(&self) -> Result<(), ProfileError> {
        match &self.engine {
            Some(e) => e
                .control(ControlCommand::PollHooks)
                .map_err(|_| ProfileError::EngineStopped),
            None => Err(ProfileError::EngineStopped),
        }
    }

    /// `/start_profile`: resolve `req` (defaults from the environment captured at creation;
    /// the output directory is confined to the output root, created and probed now), refuse
    /// it if one of its trace files already exists, and arm the windows on every rank.
    /// If a rank refuses, the ranks that accepted are stopped again so all stay consistent.
    pub async fn start(&self, req: &ProfileReqInput) -> Result<Arc<ProfileSession>, ProfileError> {
        let start = ProfileStart::resolve_within(req, &self.env, self.root.as_ref())?;
        start.check_no_existing_traces(&self.rank_infos)?;
        let session = ProfileSession::new(start, self.ranks.len());
        let mut replies = Vec::with_capacity(self.ranks.len());
        for tx in &self.ranks {
            let (rtx, rrx) = oneshot::channel();
            tx.send(Command::Start(session.clone(), rtx))
                .map_err(|_| ProfileError::EngineStopped)?;
            replies.push(rrx);
        }
        self.wake()?;
        let mut first_err = None;
        let mut accepted = Vec::new();
        for (i, rx) in replies.into_iter().enumerate() {
            match rx.await {
                Ok(Ok(())) => accepted.push(i),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(ProfileError::EngineStopped);
                }
            }
        }
        let Some(err) = first_err else {
            *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(session.clone());
            return Ok(session);
        };
        if !accepted.is_empty() {
            tracing::warn!("profiler: start refused by some ranks ({err}); stopping the others");
            let mut rxs = Vec::new();
            for i in accepted {
                let (rtx, rrx) = oneshot::channel();
                if let Some(tx) = self.ranks.get(i) {
                    if tx.send(Command::Stop(rtx)).is_ok() {
                        rxs.push(rrx);
                    }
                }
            }
            let _ = self.wake();
            for rx in rxs {
                let _ = rx.await;
            }
        }
        Err(err)
    }

    /// The most recently started session. A window that closes by itself (`num_steps`) has
    /// no `/stop_profile` to wait on; embedders and tests wait on this one instead:
    /// `handle.last_session()` then [`ProfilerHandle::wait`].
    pub fn last_session(&self) -> Option<Arc<ProfileSession>> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Wait (without blocking the async runtime) until `session` has written all its files.
    pub async fn wait(session: &ProfileSession) -> Result<ProfileOutcome, ProfileError> {
        let (tx, rx) = oneshot::channel();
        session.on_complete(move |o| {
            let _ = tx.send(o.clone());
        });
        rx.await.map_err(|_| ProfileError::WriterGone)
    }

    /// What `/stop_profile` answers once a stop was applied: `stopped` is the session the stop
    /// closed, or why there was none; `last` is the most recently started session.
    ///
    /// - a closed session: its outcome once every file is written, or
    ///   [`ProfileError::TracesNotWritten`] naming each file that failed and why;
    /// - nothing in progress, but `last` closed by itself (`num_steps`) with a failed write
    ///   that no reply has reported yet: that failure (once); else "not in progress".
    pub async fn settle_stop(
        stopped: Result<Arc<ProfileSession>, ProfileError>,
        last: Option<Arc<ProfileSession>>,
    ) -> Result<ProfileOutcome, ProfileError> {
        match stopped {
            Ok(session) => {
                let outcome = Self::wait(&session).await?;
                session.claim_report();
                outcome.into_result()
            }
            Err(ProfileError::NotInProgress) => {
                if let Some(last) = last.filter(|s| !s.is_reported()) {
                    let outcome = Self::wait(&last).await?;
                    if last.claim_report() {
                        outcome.into_result()?;
                    }
                }
                Err(ProfileError::NotInProgress)
            }
            Err(e) => Err(e),
        }
    }

    /// `/stop_profile`: close the windows on every rank and wait until every file is written
    /// (and merged when asked); see [`ProfilerHandle::settle_stop`] for the answer. Ranks
    /// whose windows already closed by themselves (`num_steps`) answer "not in progress";
    /// that is an error only when no rank was still profiling.
    pub async fn stop(&self) -> Result<ProfileOutcome, ProfileError> {
        let mut replies = Vec::with_capacity(self.ranks.len());
        for tx in &self.ranks {
            let (rtx, rrx) = oneshot::channel();
            tx.send(Command::Stop(rtx))
                .map_err(|_| ProfileError::EngineStopped)?;
            replies.push(rrx);
        }
        self.wake()?;
        let mut session = None;
        let mut first_err = None;
        for rx in replies {
            match rx.await {
                Ok(Ok(s)) => session = Some(s),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(ProfileError::EngineStopped);
                }
            }
        }
        let stopped = session.ok_or_else(|| first_err.unwrap_or(ProfileError::NotInProgress));
        Self::settle_stop(stopped, self.last_session()).await
    }
}
