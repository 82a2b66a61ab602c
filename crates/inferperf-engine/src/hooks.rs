//! The profiling seam of the engine loop: one place per step where the forward counter and
//! batch shape are known, and per-module timings inside the forward when someone listens.
//!
//! The engine calls [`StepHooks::on_step_begin`] right after `forward_ct += 1` and before the
//! forward (where SGLang runs its profile predicate), and [`StepHooks::on_step_end`] after the
//! batch's results were processed. The default hooks do nothing.

use std::time::Instant;

use serde::Serialize;

/// SGLang's forward modes for the batches we run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ForwardMode {
    Extend,
    Decode,
    Mixed,
}

impl ForwardMode {
    /// SGLang's enum name (`EXTEND`, `DECODE`, `MIXED`).
    pub fn name(self) -> &'static str {
        match self {
            ForwardMode::Extend => "EXTEND",
            ForwardMode::Decode => "DECODE",
            ForwardMode::Mixed => "MIXED",
        }
    }

    /// Prefill-like batches (SGLang `is_prefill()`).
    pub fn is_prefill(self) -> bool {
        !matches!(self, ForwardMode::Decode)
    }
}

/// What a step is about to run.
#[derive(Clone, Debug, Serialize)]
pub struct BatchSummary {
    pub forward_ct: u64,
    pub mode: ForwardMode,
    pub batch_size: usize,
    /// Rows in the forward (sum of extend lengths, or batch size for decode).
    pub num_tokens: usize,
    /// Per request: tokens already in the KV cache before this step.
    pub prefix_lens: Vec<usize>,
    /// Per request: tokens this step computes.
    pub extend_lens: Vec<usize>,
    /// Monotonic time the scheduler started building this batch.
    #[serde(skip)]
    pub schedule_start: Option<Instant>,
}

/// What a step did.
#[derive(Clone, Debug, Serialize)]
pub struct StepOutcome {
    pub forward_ct: u64,
    pub running_reqs: usize,
    pub waiting_reqs: usize,
    pub kv_used_tokens: usize,
    pub kv_total_tokens: usize,
    /// Tokens sampled in this step.
    pub new_tokens: usize,
}

/// One module call inside the forward, for layerwise spans.
#[derive(Clone, Debug)]
pub struct ModuleTiming {
    pub layer: Option<usize>,
    /// e.g. `self_attn.q_proj`, `mlp`, `input_layernorm`.
    pub module: &'static str,
    pub start: Instant,
    pub end: Instant,
    /// Input shape of the call.
    pub input_shape: Vec<usize>,
}

/// Observer of engine steps (the profiler implements this).
pub trait StepHooks: Send {
    /// Called before the forward; return true to receive module timings for this step.
    fn on_step_begin(&mut self, _batch: &BatchSummary) -> bool {
        false
    }
    /// Module timings of the current step (only when `on_step_begin` returned true).
    fn on_module(&mut self, _timing: ModuleTiming) {}
    /// Called once the forward's start and end are known.
    fn on_forward(&mut self, _start: Instant, _end: Instant) {}
    /// Called after results were processed.
    fn on_step_end(&mut self, _outcome: &StepOutcome) {}
    /// Called on the engine thread between steps (or while idle) when a
    /// [`crate::api::ControlCommand::PollHooks`] arrives: apply commands the hook object
    /// receives on its own channel (the profiler's start/stop, which must finish on an idle
    /// engine without waiting for a future step).
    fn on_control(&mut self) {}
}

/// Hooks that do nothing.
pub struct NoHooks;
impl StepHooks for NoHooks {}
