//! The profiling seam of the engine loop: one place per step where the forward counter and
//! batch shape are known, and per-module timings inside the forward when someone listens.
//!
//! The engine calls [`StepHooks::on_step_begin`] right after `forward_ct += 1` and before the
//! forward (where SGLang runs its profile predicate), and [`StepHooks::on_step_end`] after the
//! batch's results were processed. The default hooks do nothing.
//!
//! Hooks that answer [`StepHooks::wants_request_events`] also get each request's lifecycle
//! ([`RequestEvent`]: received, enqueued, first token, chunks flushed, finished or aborted)
//! and the rids of every step's batch ([`BatchSummary::rids`]); the engine asks once at start,
//! so hooks that do not want them cost one branch per event. Times are monotonic
//! ([`Instant`]); [`WallClock`] maps them to the wall clock with one anchor per process.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::api::FinishReason;

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
    /// Per request: its rid, parallel to `extend_lens` (empty unless the hooks asked for
    /// request events, [`StepHooks::wants_request_events`]).
    pub rids: Vec<String>,
}

/// Times the front end took before the engine saw a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrontEndTimes {
    /// The server received the request (before reading its body).
    pub arrival: Instant,
    /// The prompt was tokenized (the request is about to be sent to the engine).
    pub tokenized: Instant,
}

/// One stage of a request's way through the engine.
#[derive(Clone, Copy, Debug)]
pub enum RequestStage<'a> {
    /// The engine thread received the request; the front end's times (or the reception time
    /// for both when the submitter gave none).
    Received {
        arrival: Instant,
        tokenized: Instant,
        prompt_tokens: usize,
    },
    /// Put in the waiting queue at `queue_pos` (0 = next to be admitted). Again after a
    /// retraction.
    Enqueued { queue_pos: usize },
    /// The first output token was sampled.
    FirstToken,
    /// `tokens` output tokens were flushed to the client in one chunk.
    Chunk { tokens: usize },
    /// The request ended (normally or aborted; see `reason`); no further events follow.
    Finished {
        reason: &'a FinishReason,
        prompt_tokens: usize,
        completion_tokens: usize,
        cached_tokens: usize,
    },
}

/// A request lifecycle event: which request, when (monotonic), what.
#[derive(Clone, Copy, Debug)]
pub struct RequestEvent<'a> {
    pub rid: &'a str,
    pub at: Instant,
    pub stage: RequestStage<'a>,
}

/// The process's one (monotonic, wall clock) anchor pair: every lifecycle time is an
/// [`Instant`] and becomes wall-clock time through it, so times of one process are consistent
/// with each other (no mixing of clocks that step independently).
#[derive(Clone, Copy, Debug)]
pub struct WallClock {
    pub anchor: Instant,
    /// Unix time of `anchor`, in nanoseconds.
    pub anchor_unix_ns: u128,
}

impl WallClock {
    /// The process-wide anchor, taken on first use.
    pub fn global() -> &'static WallClock {
        static CLOCK: OnceLock<WallClock> = OnceLock::new();
        CLOCK.get_or_init(|| WallClock {
            anchor: Instant::now(),
            anchor_unix_ns: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        })
    }

    /// Unix time of `t` in nanoseconds.
    pub fn unix_ns(&self, t: Instant) -> i128 {
        let base = self.anchor_unix_ns as i128;
        if t >= self.anchor {
            base + (t - self.anchor).as_nanos() as i128
        } else {
            base - (self.anchor - t).as_nanos() as i128
        }
    }

    /// Unix time of `t` in seconds (what Python's `time.time()` returns).
    pub fn unix_secs(&self, t: Instant) -> f64 {
        self.unix_ns(t) as f64 / 1e9
    }
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
    /// Asked once when the engine starts: true to receive [`StepHooks::on_request`] and the
    /// batch rids in [`BatchSummary::rids`].
    fn wants_request_events(&self) -> bool {
        false
    }
    /// A request lifecycle event (only when [`StepHooks::wants_request_events`]).
    fn on_request(&mut self, _event: &RequestEvent<'_>) {}
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
            rids: Vec::new(),
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
