//! What the engine tells the profiler about one forward step, and SGLang's `step[...]` span
//! name (`profile_utils.build_step_span_name` with its roofline suffix).

use std::time::Instant;

use crate::naming::Stage;

pub use inferperf_engine::hooks::ForwardMode;

impl Stage {
    /// The `profile_by_stage` stage of a batch (`is_prefill()` covers EXTEND and MIXED);
    /// `None` for IDLE.
    pub fn of(mode: ForwardMode) -> Option<Stage> {
        match mode {
            ForwardMode::Extend | ForwardMode::Mixed => Some(Stage::Extend),
            ForwardMode::Decode => Some(Stage::Decode),
            ForwardMode::Idle => None,
        }
    }
}

/// One forward step as the engine loop sees it, right after it advanced `forward_ct` and before
/// the forward runs. Borrowed slices, so building it every step allocates nothing.
#[derive(Clone, Copy, Debug)]
pub struct StepInfo<'a> {
    /// SGLang `forward_ct` after the increment: the absolute number of this step (first = 1).
    pub forward_ct: u64,
    pub mode: ForwardMode,
    /// Requests in the batch.
    pub batch_size: usize,
    /// Tokens the forward processes (`extend_num_tokens` for EXTEND; `toks=` in the span name).
    pub num_tokens: usize,
    /// EXTEND/MIXED rows: cached prefix length per request.
    pub extend_prefix_lens: &'a [usize],
    /// EXTEND/MIXED rows: new tokens per request (a running decode row in MIXED has 1).
    pub extend_seq_lens: &'a [usize],
    /// DECODE rows: visible KV length per request (including the new token).
    pub seq_lens: &'a [usize],
    /// When this loop iteration started (before scheduling); `ProfilerStep#N` starts here, so
    /// the scheduling of the batch belongs to its step. `None` means "now".
    pub iter_start: Option<Instant>,
}

impl StepInfo<'static> {
    /// A step with no token batch (`IDLE`): a diffusion denoising step is one, so that
    /// `--profile-start-step`/`--profile-steps` windows count denoising steps.
    pub fn idle(forward_ct: u64) -> Self {
        Self {
            forward_ct,
            mode: ForwardMode::Idle,
            batch_size: 1,
            num_tokens: 0,
            extend_prefix_lens: &[],
            extend_seq_lens: &[],
            seq_lens: &[],
            iter_start: None,
        }
    }
}

/// What the engine reports when a step (forward plus result processing) is over; becomes the
/// `running_reqs`, `waiting_reqs` and `kv_cache` counters and the memory timeline.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepEnd {
    pub running_reqs: usize,
    pub waiting_reqs: usize,
    /// KV slots (tokens) in use and in total.
    pub kv_used_tokens: usize,
    pub kv_total_tokens: usize,
    /// Bytes of one KV slot across all layers (K and V); 0 if unknown.
    pub kv_bytes_per_token: usize,
}

/// `(Σq, Σk, Σq², Σq·k)` over `(q, k)` rows.
fn agg(rows: impl Iterator<Item = (usize, usize)>) -> (u64, u64, u64, u64) {
    let (mut sq, mut sk, mut sqsq, mut sqsk) = (0u64, 0u64, 0u64, 0u64);
    for (q, k) in rows {
        let (q, k) = (q as u64, k as u64);
        sq += q;
        sk += k;
        sqsq += q * q;
        sqsk += q * k;
    }
    (sq, sk, sqsq, sqsk)
}

/// SGLang's roofline suffix (`build_roofline_suffix`): only the terms the base label does not
/// carry, `c_` for context rows and `g_` for generation rows.
///
/// - DECODE: `g_sqsq={} g_sqsk={} g_sk={}` with `q=1`, `k=seq_len`;
/// - EXTEND: `c_sqsq={} c_sqsk={} c_sk={}` with `q=extend_len`, `k=prefix+q`;
/// - MIXED: `c={} g={} c_sq= c_sk= c_sqsq= c_sqsk= g_sq= g_sk= g_sqsq= g_sqsk=` where rows
///   with `q == 1` are generation rows;
/// - IDLE: empty.
pub fn roofline_suffix(step: &StepInfo<'_>) -> String {
    let ext_rows = || {
        step.extend_prefix_lens
            .iter()
            .zip(step.extend_seq_lens)
            .map(|(&p, &q)| (q, p + q))
    };
    match step.mode {
        ForwardMode::Decode => {
            let (_, sk, sqsq, sqsk) = agg(step.seq_lens.iter().map(|&k| (1, k)));
            format!("g_sqsq={sqsq} g_sqsk={sqsk} g_sk={sk}")
        }
        ForwardMode::Extend => {
            let (_, sk, sqsq, sqsk) = agg(ext_rows());
            format!("c_sqsq={sqsq} c_sqsk={sqsk} c_sk={sk}")
        }
        ForwardMode::Mixed => {
            let c_n = ext_rows().filter(|&(q, _)| q != 1).count();
            let g_n = ext_rows().filter(|&(q, _)| q == 1).count();
            let (c_sq, c_sk, c_sqsq, c_sqsk) = agg(ext_rows().filter(|&(q, _)| q != 1));
            let (g_sq, g_sk, g_sqsq, g_sqsk) = agg(ext_rows().filter(|&(q, _)| q == 1));
            format!(
                "c={c_n} g={g_n} c_sq={c_sq} c_sk={c_sk} c_sqsq={c_sqsq} c_sqsk={c_sqsk} \
                 g_sq={g_sq} g_sk={g_sk} g_sqsq={g_sqsq} g_sqsk={g_sqsk}"
            )
        }
        ForwardMode::Idle => String::new(),
    }
}

/// SGLang's step span name: `step[EXTEND bs={bs} toks={n}]`, otherwise `step[{MODE} bs={bs}]`,
/// with the roofline suffix folded in when `roofline` is set. Trace tools (TraceLens'
/// `IterationAnnotation`, SGLang's analysis skill) parse this exact text.
pub fn step_span_name(step: &StepInfo<'_>, roofline: bool) -> String {
    let mut name = match step.mode {
        ForwardMode::Extend => format!(
            "step[EXTEND bs={} toks={}",
            step.batch_size, step.num_tokens
        ),
        mode => format!("step[{} bs={}", mode.name(), step.batch_size),
    };
    if roofline {
        let suffix = roofline_suffix(step);
        if !suffix.is_empty() {
            name.push(' ');
            name.push_str(&suffix);
        }
    }
    name.push(']');
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step<'a>(
        mode: ForwardMode,
        bs: usize,
        toks: usize,
        prefix: &'a [usize],
        ext: &'a [usize],
        seq: &'a [usize],
    ) -> StepInfo<'a> {
        StepInfo {
            forward_ct: 1,
            mode,
            batch_size: bs,
            num_tokens: toks,
            extend_prefix_lens: prefix,
            extend_seq_lens: ext,
            seq_lens: seq,
            iter_start: None,
        }
    }

    #[test]
    fn extend_name() {
        // Two prompts of 4 and 8 new tokens, prefixes 0 and 8:
        // q = [4, 8], k = [4, 16]: sqsq = 16 + 64, sqsk = 16 + 128, sk = 20.
        let s = step(ForwardMode::Extend, 2, 12, &[0, 8], &[4, 8], &[]);
        assert_eq!(step_span_name(&s, false), "step[EXTEND bs=2 toks=12]");
        assert_eq!(
            step_span_name(&s, true),
            "step[EXTEND bs=2 toks=12 c_sqsq=80 c_sqsk=144 c_sk=20]"
        );
    }

    #[test]
    fn decode_name() {
        let s = step(ForwardMode::Decode, 2, 2, &[], &[], &[10, 20]);
        assert_eq!(step_span_name(&s, false), "step[DECODE bs=2]");
        assert_eq!(
            step_span_name(&s, true),
            "step[DECODE bs=2 g_sqsq=2 g_sqsk=30 g_sk=30]"
        );
    }

    #[test]
    fn mixed_name_splits_rows_with_one_token() {
        // One context chunk (prefix 3, 5 new) and one decode row (prefix 11, 1 new).
        let s = step(ForwardMode::Mixed, 2, 6, &[3, 11], &[5, 1], &[]);
        assert_eq!(
            step_span_name(&s, true),
            "step[MIXED bs=2 c=1 g=1 c_sq=5 c_sk=8 c_sqsq=25 c_sqsk=40 g_sq=1 g_sk=12 g_sqsq=1 g_sqsk=12]"
        );
    }

    #[test]
    fn idle_has_no_suffix() {
        let s = step(ForwardMode::Idle, 0, 0, &[], &[], &[]);
        assert_eq!(step_span_name(&s, true), "step[IDLE bs=0]");
        assert_eq!(Stage::of(ForwardMode::Idle), None);
        assert_eq!(Stage::of(ForwardMode::Mixed), Some(Stage::Extend));
    }
}
