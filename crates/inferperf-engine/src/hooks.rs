//! The profiling seam of the engine loop: one place per step where the forward counter and
//! batch shape are known, and per-module timings inside the forward when someone listens.
//!
//! The engine calls [`StepHooks::on_step_begin`] right after `forward_ct += 1` and before the
//! forward (where SGLang runs its profile predicate), and [`StepHooks::on_step_end`] after the
//! batch's results were processed. The default hooks do nothing.

use std::time::Instant;

use serde::Serialize;

/// SGLang `ForwardMode`, reduced to what a CPU engine runs. The one definition: the profiler
/// (which implements these hooks) uses it too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ForwardMode {
    /// Prefill or chunked prefill; a prefix of the KV may already exist.
    Extend,
    /// One new token per request.
    Decode,
    /// EXTEND and DECODE rows in one batch.
    Mixed,
    /// No sequence (kept for DP-attention parity, and a diffusion denoising step is one): counts
    /// as a step but never as a stage. The token scheduler never produces it.
    Idle,
}

impl ForwardMode {
    /// SGLang's enum name (`EXTEND`, `DECODE`, `MIXED`, `IDLE`: `ForwardMode.name`).
    pub fn name(self) -> &'static str {
        match self {
            ForwardMode::Extend => "EXTEND",
            ForwardMode::Decode => "DECODE",
            ForwardMode::Mixed => "MIXED",
            ForwardMode::Idle => "IDLE",
        }
    }

    /// Prefill-like batches (SGLang `is_prefill()`: EXTEND and MIXED).
    pub fn is_prefill(self) -> bool {
        matches!(self, ForwardMode::Extend | ForwardMode::Mixed)
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

/// Attention work of a step in SGLang's roofline terms (`profile_utils`): per request `q` is
/// the query width and `k` the visible KV length; `c_*` sums context rows (EXTEND rows, and
/// MIXED rows with `q > 1`), `g_*` generation rows (`q == 1` in DECODE and MIXED).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Roofline {
    pub c: usize,
    pub c_sq: u64,
    pub c_sk: u64,
    pub c_sqsq: u64,
    pub c_sqsk: u64,
    pub g: usize,
    pub g_sq: u64,
    pub g_sk: u64,
    pub g_sqsq: u64,
    pub g_sqsk: u64,
}

impl BatchSummary {
    /// `Σq, Σk, Σq², Σq·k` for context and generation rows (what `step[...]` span names and
    /// roofline estimates use). Attention cost of a request is proportional to `q·k`.
    pub fn roofline(&self) -> Roofline {
        let mut r = Roofline::default();
        for (&q, &prefix) in self.extend_lens.iter().zip(&self.prefix_lens) {
            let (q64, k64) = (q as u64, (prefix + q) as u64);
            let generation = match self.mode {
                ForwardMode::Decode => true,
                ForwardMode::Extend | ForwardMode::Idle => false,
                ForwardMode::Mixed => q == 1,
            };
            let (n, sq, sk, sqsq, sqsk) = if generation {
                (
                    &mut r.g,
                    &mut r.g_sq,
                    &mut r.g_sk,
                    &mut r.g_sqsq,
                    &mut r.g_sqsk,
                )
            } else {
                (
                    &mut r.c,
                    &mut r.c_sq,
                    &mut r.c_sk,
                    &mut r.c_sqsq,
                    &mut r.c_sqsk,
                )
            };
            *n += 1;
            *sq += q64;
            *sk += k64;
            *sqsq += q64 * q64;
            *sqsk += q64 * k64;
        }
        r
    }
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
    /// The module's own parameters and their shapes on this rank (SGLang's
    /// `TrainableParams`), e.g. `("weight", [out, in])`.
    pub params: Vec<(&'static str, Vec<usize>)>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(mode: ForwardMode, prefix: &[usize], extend: &[usize]) -> BatchSummary {
        BatchSummary {
            forward_ct: 1,
            mode,
            batch_size: prefix.len(),
            num_tokens: extend.iter().sum(),
            prefix_lens: prefix.to_vec(),
            extend_lens: extend.to_vec(),
            schedule_start: None,
        }
    }

    #[test]
    fn roofline_matches_sglang_examples() {
        // SGLang docs: step[EXTEND bs=2 toks=12 c_sq=12 c_sqsq=80 c_sqsk=120 c_sk=20]
        let r = summary(ForwardMode::Extend, &[4, 4], &[4, 8]).roofline();
        assert_eq!((r.c, r.c_sq, r.c_sk, r.c_sqsq), (2, 12, 20, 80));
        assert_eq!(r.c_sqsk, 4 * 8 + 8 * 12);
        // step[DECODE bs=2 g_sq=2 g_sqsq=2 g_sqsk=30 g_sk=30]
        let r = summary(ForwardMode::Decode, &[13, 15], &[1, 1]).roofline();
        assert_eq!((r.g, r.g_sq, r.g_sqsq, r.g_sqsk, r.g_sk), (2, 2, 2, 30, 30));
        // step[MIXED bs=2 c=1 g=1 c_sq=5 c_sk=8 c_sqsq=25 c_sqsk=40 g_sq=1 g_sk=12 ...]
        let r = summary(ForwardMode::Mixed, &[3, 11], &[5, 1]).roofline();
        assert_eq!((r.c, r.c_sq, r.c_sk, r.c_sqsq, r.c_sqsk), (1, 5, 8, 25, 40));
        assert_eq!((r.g, r.g_sq, r.g_sk, r.g_sqsq, r.g_sqsk), (1, 1, 12, 1, 12));
    }
}
