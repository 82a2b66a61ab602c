//! The diffusion generation worker: one thread owns the pipeline and runs one request at a time
//! (as a single-GPU SGLang diffusion worker does); handlers submit jobs and await the result
//! without blocking the async runtime. A request's perf dump is written here, after its
//! generation, when it asked for one.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use std::time::Duration;

use inferperf_engine::diffusion::{
    DiffusionError, DiffusionPipeline, DiffusionRequest, GeneratedMedia, PipelineObserver,
    ResolvedShape, Stage,
};
use inferperf_profiler::diffusion_dump::{perf_dump, MemoryCheckpoints};
use inferperf_profiler::diffusion_profiler::{
    step_span_name, DiffusionProfileOptions, DiffusionProfiler, RequestObserver,
};
use inferperf_profiler::{
    EnvDefaults, OutputRoot, ProfileError, ProfileManager, ProfileOutcome, ProfileSession,
    ProfilerConfig, ProfilerHandle, StepEnd, StepInfo, TraceWriter,
};
use inferperf_protocol::perf_dump::TAG_SERVER_PERF_DUMP;
use inferperf_protocol::profile::ProfileReqInput;
use tokio::sync::oneshot;

/// A finished generation.
pub struct Generation {
    pub media: GeneratedMedia,
    /// PNG (image) or APNG (video) bytes.
    pub encoded: Vec<u8>,
    pub peak_memory_mb: f64,
    pub inference_time_s: f64,
    /// The request's trace (`profile: true`).
    pub trace_file: Option<PathBuf>,
}

/// Memory checkpoints for the perf dump, the request's own profiler when it asked for one,
/// and the server-wide `/start_profile` manager (every denoising step is a profiler step).
struct StepObserver<'a> {
    request: RequestObserver,
    server: &'a mut ServerProfiler,
    step_start: Option<Instant>,
}

/// The `/start_profile` state of the worker.
struct ServerProfiler {
    manager: ProfileManager,
    forward_ct: u64,
    /// `--profile-output-root`.
    root: Option<OutputRoot>,
    /// The most recently started session (its failure is reported by the next stop even when
    /// its `num_steps` window closed by itself).
    last: Option<Arc<ProfileSession>>,
}

impl PipelineObserver for StepObserver<'_> {
    fn on_stage_begin(&mut self, stage: Stage) {
        self.request.on_stage_begin(stage);
    }
    fn on_stage_end(&mut self, stage: Stage, elapsed: Duration) {
        self.request.on_stage_end(stage, elapsed);
    }
    fn on_denoise_step_begin(&mut self, step: usize, total: usize) {
        self.request.on_denoise_step_begin(step, total);
        self.server.forward_ct += 1;
        self.server
            .manager
            .on_step_begin(&StepInfo::idle(self.server.forward_ct));
        self.step_start = Some(Instant::now());
    }
    fn on_denoise_step_end(&mut self, step: usize, total: usize, elapsed: Duration) {
        self.request.on_denoise_step_end(step, total, elapsed);
        if let Some(start) = self.step_start.take() {
            self.server
                .manager
                .recorder()
                .record_span(step_span_name(step), start, Instant::now());
        }
        self.server.manager.on_step_end(&StepEnd::default());
    }
}

type SessionResult = Result<Arc<ProfileSession>, ProfileError>;

enum WorkerMessage {
    Generate(GenerationJob),
    StartProfile(ProfileReqInput, oneshot::Sender<SessionResult>),
    /// Replies with the session the stop closed (or why none) and the last started one.
    StopProfile(oneshot::Sender<(SessionResult, Option<Arc<ProfileSession>>)>),
}

struct GenerationJob {
    req: DiffusionRequest,
    perf_dump_path: Option<PathBuf>,
    profile: Option<DiffusionProfileOptions>,
    reply: oneshot::Sender<Result<Generation, DiffusionError>>,
}

/// Handle to the worker thread.
#[derive(Clone)]
pub struct DiffusionWorker {
    tx: std::sync::mpsc::Sender<WorkerMessage>,
    pipeline: Arc<DiffusionPipeline>,
    model: String,
}

impl DiffusionWorker {
    /// Start the thread that owns the generations of `pipeline` (`model` names it in dumps);
    /// `/start_profile` output directories are confined to `root` when given.
    pub fn start(
        pipeline: DiffusionPipeline,
        model: String,
        root: Option<OutputRoot>,
    ) -> std::io::Result<Self> {
        let pipeline = Arc::new(pipeline);
        let (tx, rx) = std::sync::mpsc::channel::<WorkerMessage>();
        let p = pipeline.clone();
        let m = model.clone();
        let writer = TraceWriter::spawn(None)?;
        let mut server = ServerProfiler {
            manager: ProfileManager::new(
                ProfilerConfig {
                    process_name: "inferperf::diffusion".into(),
                    ..ProfilerConfig::default()
                },
                writer,
            ),
            forward_ct: 0,
            root,
            last: None,
        };
        let env = EnvDefaults::from_env();
        std::thread::Builder::new()
            .name("inferperf-diffusion".into())
            .spawn(move || {
                while let Ok(msg) = rx.recv() {
                    match msg {
                        WorkerMessage::Generate(job) => {
                            let result = run(
                                &p,
                                &m,
                                &job.req,
                                job.perf_dump_path.as_deref(),
                                job.profile.as_ref(),
                                &mut server,
                            );
                            let _ = job.reply.send(result);
                        }
                        WorkerMessage::StartProfile(req, reply) => {
                            let started = server.manager.start_request_within(
                                &req,
                                &env,
                                server.root.as_ref(),
                            );
                            if let Ok(session) = &started {
                                server.last = Some(session.clone());
                            }
                            let _ = reply.send(started);
                        }
                        WorkerMessage::StopProfile(reply) => {
                            let _ = reply.send((server.manager.stop(), server.last.clone()));
                        }
                    }
                }
            })?;
        Ok(Self {
            tx,
            pipeline,
            model,
        })
    }

    pub fn pipeline(&self) -> &DiffusionPipeline {
        &self.pipeline
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// Check a request without running it (sizes, steps, input image): 4xx material.
    pub fn validate(&self, req: &DiffusionRequest) -> Result<ResolvedShape, DiffusionError> {
        self.pipeline.validate(req)
    }

    /// Queue a request and wait for its result.
    pub async fn generate(
        &self,
        req: DiffusionRequest,
        perf_dump_path: Option<PathBuf>,
        profile: Option<DiffusionProfileOptions>,
    ) -> Result<Generation, DiffusionError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(WorkerMessage::Generate(GenerationJob {
                req,
                perf_dump_path,
                profile,
                reply,
            }))
            .map_err(|_| DiffusionError::Media("the generation worker has stopped".into()))?;
        rx.await
            .map_err(|_| DiffusionError::Media("the generation worker has stopped".into()))?
    }
}

impl DiffusionWorker {
    /// `/start_profile`: denoising steps from now on are profiler steps (SGLang's semantics
    /// for `start_step` / `num_steps` apply to them).
    pub async fn start_profile(
        &self,
        req: ProfileReqInput,
    ) -> Result<Arc<ProfileSession>, ProfileError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(WorkerMessage::StartProfile(req, reply))
            .map_err(|_| ProfileError::EngineStopped)?;
        rx.await.map_err(|_| ProfileError::EngineStopped)?
    }

    /// `/stop_profile`: close the window and wait for its file; the answer is
    /// [`ProfilerHandle::settle_stop`]'s (a failed write is an error naming the file).
    pub async fn stop_profile(&self) -> Result<ProfileOutcome, ProfileError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(WorkerMessage::StopProfile(reply))
            .map_err(|_| ProfileError::EngineStopped)?;
        let (stopped, last) = rx.await.map_err(|_| ProfileError::EngineStopped)?;
        ProfilerHandle::settle_stop(stopped, last).await
    }
}

fn run(
    pipeline: &DiffusionPipeline,
    model: &str,
    req: &DiffusionRequest,
    dump: Option<&std::path::Path>,
    profile: Option<&DiffusionProfileOptions>,
    server: &mut ServerProfiler,
) -> Result<Generation, DiffusionError> {
    let t0 = Instant::now();
    let profiler = match profile {
        Some(opts) => {
            let steps = pipeline.validate(req)?.num_inference_steps;
            let mut labels = serde_json::Map::new();
            labels.insert("request_id".into(), req.request_id.clone().into());
            Some(
                DiffusionProfiler::start(opts, steps, &labels)
                    .map_err(|e| DiffusionError::invalid("profile", e.to_string()))?,
            )
        }
        None => None,
    };
    let mut observer = StepObserver {
        request: RequestObserver {
            profiler,
            memory: MemoryCheckpoints::default(),
        },
        server,
        step_start: None,
    };
    let media = pipeline.generate(req, &mut observer)?;
    let inference_time_s = t0.elapsed().as_secs_f64();
    let trace_file = match observer.request.profiler.take() {
        Some(p) => p.finish().unwrap_or_else(|e| {
            tracing::warn!("profile of {}: {e}", req.request_id);
            None
        }),
        None => None,
    };
    let memory = observer.request.memory;
    let encoded = media.encode()?;
    if let Some(path) = dump {
        let d = perf_dump(
            &media,
            &memory.checkpoints,
            &req.prompt,
            model,
            TAG_SERVER_PERF_DUMP,
        );
        if let Err(e) = inferperf_protocol::fs::write_atomic(path, d.to_pretty_json().as_bytes()) {
            tracing::warn!("perf dump: {e}");
        }
    }
    Ok(Generation {
        media,
        encoded,
        peak_memory_mb: memory.peak_mb,
        inference_time_s,
        trace_file,
    })
}
