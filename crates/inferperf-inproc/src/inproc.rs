//! The in-process engine the offline benchmarks drive (`bench one-batch`, `bench offline`): the
//! reference engine launched in this process with step hooks that time every forward step
//! (scheduling, forward and sampling, on the engine thread's monotonic clock) and, when asked,
//! the profiler's hooks, so a benchmark can open profile windows on exact steps.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::Instant;

use inferperf_engine::api::{FinishInfo, GenerateEvent, GenerateRequest, ModelInfo, TextTokenizer};
use inferperf_engine::hooks::{BatchSummary, ForwardMode, ModuleTiming, StepHooks, StepOutcome};
use inferperf_engine::{launch_with_hooks, EngineConfig, LaunchedEngine};
use inferperf_profiler::{ProfileOutcome, ProfileSession, ProfilerConfig, ProfilerHandle};
use inferperf_protocol::profile::ProfileReqInput;

use inferperf_loadgen::error::BenchError;

/// One forward step as the engine thread timed it.
#[derive(Clone, Debug, PartialEq)]
pub struct StepRecord {
    pub forward_ct: u64,
    pub mode: ForwardMode,
    pub batch_size: usize,
    pub num_tokens: usize,
    /// From the start of scheduling to the end of sampling and streaming, in seconds.
    pub seconds: f64,
}

/// Times every step; forwards every call to the profiler's hooks when there are some.
struct TimingHooks {
    tx: Sender<StepRecord>,
    current: Option<(Instant, u64, ForwardMode, usize, usize)>,
    inner: Option<Box<dyn StepHooks>>,
}

impl StepHooks for TimingHooks {
    fn on_step_begin(&mut self, b: &BatchSummary) -> bool {
        let start = b.schedule_start.unwrap_or_else(Instant::now);
        self.current = Some((start, b.forward_ct, b.mode, b.batch_size, b.num_tokens));
        self.inner.as_mut().is_some_and(|h| h.on_step_begin(b))
    }

    fn on_module(&mut self, timing: ModuleTiming) {
        if let Some(h) = self.inner.as_mut() {
            h.on_module(timing);
        }
    }

    fn on_forward(&mut self, start: Instant, end: Instant) {
        if let Some(h) = self.inner.as_mut() {
            h.on_forward(start, end);
        }
    }

    fn on_step_end(&mut self, outcome: &StepOutcome) {
        let end = Instant::now();
        if let Some((start, forward_ct, mode, batch_size, num_tokens)) = self.current.take() {
            let _ = self.tx.send(StepRecord {
                forward_ct,
                mode,
                batch_size,
                num_tokens,
                seconds: end.duration_since(start).as_secs_f64(),
            });
        }
        if let Some(h) = self.inner.as_mut() {
            h.on_step_end(outcome);
        }
    }

    fn on_control(&mut self) {
        if let Some(h) = self.inner.as_mut() {
            h.on_control();
        }
    }
}

/// What one request produced.
#[derive(Clone, Debug)]
pub struct Output {
    pub token_ids: Vec<u32>,
    pub text: String,
    pub finish: Option<FinishInfo>,
}

/// A batch run: every request's output and the steps that ran for it.
#[derive(Clone, Debug)]
pub struct BatchRun {
    pub outputs: Vec<Output>,
    pub steps: Vec<StepRecord>,
    /// Submission to the last request's end, in seconds.
    pub wall_s: f64,
}

/// The reference engine in this process.
pub struct InProcEngine {
    engine: LaunchedEngine,
    steps: Receiver<StepRecord>,
    profiler: Option<ProfilerHandle>,
    runtime: tokio::runtime::Runtime,
}

impl InProcEngine {
    /// Load the model and start the engine thread; with `profiler`, its hooks are installed so
    /// [`InProcEngine::profile`] can open windows.
    pub fn launch(
        config: EngineConfig,
        profiler: Option<ProfilerConfig>,
    ) -> Result<Self, BenchError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| BenchError::io("starting a runtime", e))?;
        let (handle, inner) = match profiler {
            Some(pc) => {
                let writer = inferperf_profiler::TraceWriter::spawn(None)
                    .map_err(|e| BenchError::io("starting the trace writer", e))?;
                let env = inferperf_profiler::EnvDefaults::from_env();
                let (handle, mut hooks) = ProfilerHandle::new(vec![pc], writer, env);
                (Some(handle), hooks.pop())
            }
            None => (None, None),
        };
        let (tx, steps) = channel();
        let hooks = TimingHooks {
            tx,
            current: None,
            inner,
        };
        let engine = launch_with_hooks(config.clone(), Box::new(hooks))
            .map_err(|e| BenchError::Config(format!("cannot load `{}`: {e}", config.model_path)))?;
        let profiler = handle.map(|mut h| {
            h.attach(engine.handle.clone());
            h
        });
        Ok(Self {
            engine,
            steps,
            profiler,
            runtime,
        })
    }

    fn engine(&self) -> &LaunchedEngine {
        &self.engine
    }

    pub fn model_info(&self) -> &ModelInfo {
        &self.engine().model_info
    }

    pub fn tokenizer(&self) -> Arc<dyn TextTokenizer> {
        self.engine().tokenizer.clone()
    }

    /// The scheduler's state (forward count, KV capacity, last generation throughput).
    pub fn state(&self) -> Result<inferperf_engine::api::InternalState, BenchError> {
        self.runtime
            .block_on(self.engine().handle.internal_state())
            .map_err(|e| BenchError::Server(format!("engine: {e}")))
    }

    /// Run `reqs` as one batch (admitted together) to completion.
    pub fn run_batch(&self, reqs: Vec<GenerateRequest>) -> Result<BatchRun, BenchError> {
        let f0 = self.state()?.forward_ct;
        while self.steps.try_recv().is_ok() {}
        let t0 = Instant::now();
        let receivers = self
            .engine()
            .handle
            .generate_batch(reqs)
            .map_err(|e| BenchError::Server(format!("engine: {e}")))?;
        let outputs: Vec<Output> = receivers
            .into_iter()
            .map(|mut rx| {
                let mut out = Output {
                    token_ids: Vec::new(),
                    text: String::new(),
                    finish: None,
                };
                while let Some(ev) = rx.blocking_recv() {
                    match ev {
                        GenerateEvent::Tokens {
                            token_ids, text, ..
                        } => {
                            out.token_ids.extend(token_ids);
                            out.text.push_str(&text);
                        }
                        GenerateEvent::Finished(f) => {
                            out.finish = Some(f);
                            break;
                        }
                    }
                }
                out
            })
            .collect();
        let wall_s = t0.elapsed().as_secs_f64();
        // A control round trip is served between steps: every step of this batch has ended
        // (and sent its record) once it returns.
        self.state()?;
        let steps = self
            .steps
            .try_iter()
            .filter(|s| s.forward_ct > f0)
            .collect();
        Ok(BatchRun {
            outputs,
            steps,
            wall_s,
        })
    }

    /// Arm a profile window (`start_step`/`num_steps` are absolute forward steps).
    pub fn profile(&self, req: &ProfileReqInput) -> Result<Arc<ProfileSession>, BenchError> {
        let p = self.profiler.as_ref().ok_or_else(|| {
            BenchError::Config("the engine was launched without the profiler".into())
        })?;
        self.runtime
            .block_on(p.start(req))
            .map_err(|e| BenchError::Config(format!("profiler: {e}")))
    }

    /// Wait until a window's files are written.
    pub fn wait(&self, session: &ProfileSession) -> Result<ProfileOutcome, BenchError> {
        self.runtime
            .block_on(ProfilerHandle::wait(session))
            .map_err(|e| BenchError::Config(format!("profiler: {e}")))
    }

    /// Stop an open-ended window and wait for its files.
    pub fn stop_profile(&self) -> Result<ProfileOutcome, BenchError> {
        let p = self.profiler.as_ref().ok_or_else(|| {
            BenchError::Config("the engine was launched without the profiler".into())
        })?;
        self.runtime
            .block_on(p.stop())
            .map_err(|e| BenchError::Config(format!("profiler: {e}")))
    }
}

impl Drop for InProcEngine {
    fn drop(&mut self) {
        self.engine.handle.shutdown();
        if let Some(t) = self.engine.thread.take() {
            let _ = t.join();
        }
    }
}
