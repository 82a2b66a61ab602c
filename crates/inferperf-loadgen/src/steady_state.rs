//! The steady-state window of a run and its metrics (SGLang's `steady_state.py`): the part of
//! the run in which the load held, without the ramp-up while requests pile up and the drain at
//! the end, which whole-run throughput averages in.
//!
//! Two rules choose the window:
//! - **concurrency ratio** (SGLang's): every successful request is in flight from its send to
//!   its last line; walking the sorted start/end times gives intervals of constant
//!   concurrency; `threshold = max(1, ceil(peak * ratio))`, and the window is the longest
//!   continuous run of intervals with concurrency >= threshold (the first one on ties);
//! - **warm-up / cool-down** (ours, for open-loop runs): the fixed interval
//!   `[earliest send + warmup, latest end - cooldown]`.
//!
//! Inside the window: output tokens count by their arrival times in `[start, end]` (each
//! request contributes its output length times the fraction of its token events inside),
//! input tokens by the requests that *start* in `[start, end)`, `completed` by the requests
//! that *end* in `[start, end]`, average concurrency is Σ overlap / duration, and the peak
//! output throughput is the fullest one-second bucket from the window's start.
//!
//! Differences from SGLang: token events are the chunks' kernel receive times
//! (`RequestRecord::chunk_ns`), each weighted by the tokens it carried (`chunk_tokens`, one
//! when the server does not say), where SGLang rebuilds one timestamp per token from
//! `start + ttft` and the ITL list; window times are seconds since the run's earliest
//! successful send (SGLang reports raw `perf_counter` times); and the latency summaries of the
//! requests that started and ended inside the window are ours.
//!
//! The API streams: [`find_window`] (or [`fixed_window`]) takes `(start_ns, end_ns)` pairs
//! from a first pass, [`SteadyStateAccumulator`] takes the records one by one in a second
//! pass; neither holds the records. [`steady_state`] does both over a slice.

use serde::Serialize;

use crate::record::{ns_to_s, RequestRecord};
use crate::stats::{summarize, Summary};

/// Why no steady-state window was found.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SteadyStateError {
    #[error("--steady-state-concurrency-ratio must be in (0, 1], got {0}")]
    BadRatio(f64),
    #[error("no successful requests with positive latency")]
    NoSuccessfulRequests,
    #[error("no steady-state measurement window could be determined")]
    NoWindow,
    #[error(
        "--warmup-duration and --cooldown-duration must be finite and >= 0 seconds, got {warmup_s} and {cooldown_s}"
    )]
    BadExclusion { warmup_s: f64, cooldown_s: f64 },
    #[error(
        "--warmup-duration {warmup_s} s and --cooldown-duration {cooldown_s} s leave no window: the requests span {span_s:.3} s"
    )]
    NothingLeft {
        warmup_s: f64,
        cooldown_s: f64,
        span_s: f64,
    },
}

/// The chosen window, in nanoseconds on the records' clock (since the run's start instant).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SteadyStateWindow {
    pub start_ns: u64,
    pub end_ns: u64,
    /// Concurrency ratio rule: the threshold every instant of the window meets. Warm-up /
    /// cool-down rule: the lowest concurrency inside the window (which it meets too).
    pub concurrency_threshold: usize,
    /// The most requests in flight at once over the whole run.
    pub peak_concurrency: usize,
}

/// Which rule chose the window.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowRule {
    /// SGLang's `--steady-state-concurrency-ratio`.
    ConcurrencyRatio(f64),
    /// `--warmup-duration` / `--cooldown-duration` seconds cut from the run's two ends.
    WarmupCooldown { warmup_s: f64, cooldown_s: f64 },
}

impl WindowRule {
    /// The rule's name in the record (`window_rule`).
    pub fn name(&self) -> &'static str {
        match self {
            WindowRule::ConcurrencyRatio(_) => "concurrency_ratio",
            WindowRule::WarmupCooldown { .. } => "warmup_cooldown",
        }
    }
}

/// The `(start_ns, end_ns)` a record contributes to the window search: successful measured
/// requests with positive latency, from the send to the last line (as `latency_s`).
pub fn interval_of(r: &RequestRecord) -> Option<(u64, u64)> {
    (r.success() && !r.warmup && r.last_ns > r.sent_ns).then_some((r.sent_ns, r.last_ns))
}

/// Sorted event times with their net change in concurrency (equal times merged).
fn events(intervals: impl IntoIterator<Item = (u64, u64)>) -> Vec<(u64, i64)> {
    let mut ev = Vec::new();
    for (s, e) in intervals {
        if e > s {
            ev.push((s, 1i64));
            ev.push((e, -1i64));
        }
    }
    ev.sort_unstable_by_key(|&(t, _)| t);
    let mut merged: Vec<(u64, i64)> = Vec::with_capacity(ev.len());
    for (t, d) in ev {
        match merged.last_mut() {
            Some((lt, ld)) if *lt == t => *ld += d,
            _ => merged.push((t, d)),
        }
    }
    merged
}

/// The intervals `[t_k, t_k+1)` of constant concurrency between consecutive event times.
fn steps(ev: &[(u64, i64)]) -> impl Iterator<Item = (u64, u64, usize)> + '_ {
    let mut conc = 0i64;
    ev.windows(2).map(move |w| {
        conc += w[0].1;
        (w[0].0, w[1].0, conc.max(0) as usize)
    })
}

/// SGLang's window: the longest continuous span in which at least `max(1, ceil(peak *
/// ratio))` requests were in flight (the first on ties), over `(start_ns, end_ns)` of the
/// successful requests (see [`interval_of`]; pairs with `end <= start` are skipped).
pub fn find_window(
    intervals: impl IntoIterator<Item = (u64, u64)>,
    ratio: f64,
) -> Result<SteadyStateWindow, SteadyStateError> {
    if !(ratio > 0.0 && ratio <= 1.0) {
        return Err(SteadyStateError::BadRatio(ratio));
    }
    let ev = events(intervals);
    if ev.is_empty() {
        return Err(SteadyStateError::NoSuccessfulRequests);
    }
    let peak = steps(&ev).map(|(_, _, c)| c).max().unwrap_or(0);
    // As NumPy's ceil of the same float product, so the threshold matches SGLang's.
    let threshold = ((peak as f64 * ratio).ceil() as usize).max(1);
    let mut best: Option<(u64, u64)> = None;
    let mut open: Option<(u64, u64)> = None;
    let close = |span: Option<(u64, u64)>, best: &mut Option<(u64, u64)>| {
        if let Some((s, e)) = span {
            // Strictly longer only: the first span wins ties.
            if best.is_none_or(|(bs, be)| e - s > be - bs) {
                *best = Some((s, e));
            }
        }
    };
    for (s, e, c) in steps(&ev) {
        if c >= threshold {
            open = Some((open.map_or(s, |(os, _)| os), e));
        } else {
            close(open.take(), &mut best);
        }
    }
    close(open.take(), &mut best);
    let (start_ns, end_ns) = best.ok_or(SteadyStateError::NoWindow)?;
    Ok(SteadyStateWindow {
        start_ns,
        end_ns,
        concurrency_threshold: threshold,
        peak_concurrency: peak,
    })
}

/// The warm-up / cool-down window `[earliest start + warmup, latest end - cooldown]` over the
/// same intervals as [`find_window`]; its threshold is the lowest concurrency inside it.
pub fn fixed_window(
    intervals: impl IntoIterator<Item = (u64, u64)>,
    warmup_s: f64,
    cooldown_s: f64,
) -> Result<SteadyStateWindow, SteadyStateError> {
    let ok = |x: f64| x.is_finite() && x >= 0.0;
    if !ok(warmup_s) || !ok(cooldown_s) {
        return Err(SteadyStateError::BadExclusion {
            warmup_s,
            cooldown_s,
        });
    }
    let ev = events(intervals);
    let (Some(&(first, _)), Some(&(last, _))) = (ev.first(), ev.last()) else {
        return Err(SteadyStateError::NoSuccessfulRequests);
    };
    let ns = |s: f64| (s * 1e9).round() as u64;
    let start_ns = first.saturating_add(ns(warmup_s));
    let end_ns = last.saturating_sub(ns(cooldown_s));
    if end_ns <= start_ns {
        return Err(SteadyStateError::NothingLeft {
            warmup_s,
            cooldown_s,
            span_s: ns_to_s(last - first),
        });
    }
    let peak = steps(&ev).map(|(_, _, c)| c).max().unwrap_or(0);
    let lowest = steps(&ev)
        .filter(|&(s, e, _)| s < end_ns && e > start_ns)
        .map(|(_, _, c)| c)
        .min()
        .unwrap_or(0);
    Ok(SteadyStateWindow {
        start_ns,
        end_ns,
        concurrency_threshold: lowest,
        peak_concurrency: peak,
    })
}

/// The window a rule chooses (see [`find_window`], [`fixed_window`]).
pub fn window_by_rule(
    intervals: impl IntoIterator<Item = (u64, u64)>,
    rule: WindowRule,
) -> Result<SteadyStateWindow, SteadyStateError> {
    match rule {
        WindowRule::ConcurrencyRatio(r) => find_window(intervals, r),
        WindowRule::WarmupCooldown {
            warmup_s,
            cooldown_s,
        } => fixed_window(intervals, warmup_s, cooldown_s),
    }
}

/// The steady-state section: SGLang's keys (same names and meaning; `window_start` and
/// `window_end` in seconds since the run's earliest successful send, the origin of
/// `metrics::Timeline`, where SGLang writes raw `perf_counter` times), then ours.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SteadyStateMetrics {
    /// The ratio of the concurrency-ratio rule; `null` under the warm-up / cool-down rule.
    pub concurrency_ratio: Option<f64>,
    pub window_start: f64,
    pub window_end: f64,
    /// Seconds.
    pub duration: f64,
    pub concurrency_threshold: usize,
    /// Requests that ended in `[start, end]`.
    pub completed: usize,
    /// Prompt tokens of the successful requests that started in `[start, end)`.
    pub total_input: usize,
    pub input_throughput: f64,
    /// Output tokens timed inside `[start, end]` (fractions of requests cut by the window).
    pub total_output: f64,
    pub total_output_retokenized: f64,
    pub output_throughput: f64,
    pub output_throughput_retokenized: f64,
    /// Σ time each request was in flight inside the window / duration.
    pub average_concurrency: f64,
    pub peak_concurrency: usize,
    /// The fullest one-second bucket from the window's start (a token on a boundary belongs
    /// to the second that just ended), tokens/s.
    pub peak_output_throughput: f64,
    /// Ours: `concurrency_ratio` or `warmup_cooldown`.
    pub window_rule: &'static str,
    /// Ours: the warm-up / cool-down seconds of that rule (`null` otherwise).
    pub warmup_duration: Option<f64>,
    pub cooldown_duration: Option<f64>,
    /// Ours: the requests that started and ended inside the window, and their latencies
    /// (ms, same definitions as the whole-run ones).
    pub requests_within_window: usize,
    pub within_window_ttft_ms: Summary,
    pub within_window_tpot_ms: Summary,
    pub within_window_itl_ms: Summary,
    pub within_window_e2e_latency_ms: Summary,
    /// The window on the records' clock, for callers that select records by it.
    #[serde(skip)]
    pub window: SteadyStateWindow,
}

/// The second pass: feed every record (in any order) with [`add`](Self::add), then
/// [`finish`](Self::finish). Holds per-window sums and the latency samples of the requests
/// inside the window (as the whole-run metrics hold theirs), never the records.
pub struct SteadyStateAccumulator {
    window: SteadyStateWindow,
    rule: WindowRule,
    origin_ns: Option<u64>,
    completed: usize,
    total_input: usize,
    total_output: f64,
    total_output_retokenized: f64,
    overlap_ns: u128,
    buckets: Vec<f64>,
    ttft: Vec<f64>,
    tpot: Vec<f64>,
    itl: crate::pooled::PooledSeconds,
    e2e: Vec<f64>,
}

impl SteadyStateAccumulator {
    /// For a window from [`find_window`] with this ratio.
    pub fn new(window: SteadyStateWindow, ratio: f64) -> Self {
        Self::with_rule(window, WindowRule::ConcurrencyRatio(ratio))
    }

    /// For a window chosen by any rule (the record says which).
    pub fn with_rule(window: SteadyStateWindow, rule: WindowRule) -> Self {
        let secs = ns_to_s(window.end_ns.saturating_sub(window.start_ns))
            .ceil()
            .max(1.0) as usize;
        Self {
            window,
            rule,
            origin_ns: None,
            completed: 0,
            total_input: 0,
            total_output: 0.0,
            total_output_retokenized: 0.0,
            overlap_ns: 0,
            buckets: vec![0.0; secs],
            ttft: Vec::new(),
            tpot: Vec::new(),
            itl: crate::pooled::PooledSeconds::default(),
            e2e: Vec::new(),
        }
    }

    /// Count one record; failed and warm-up records are ignored. `retokenized_len` is the
    /// client's count of its generated text (0 when `None`).
    pub fn add(&mut self, r: &RequestRecord, retokenized_len: Option<usize>) {
        if r.warmup || !r.success() {
            return;
        }
        let (ws, we) = (self.window.start_ns, self.window.end_ns);
        self.origin_ns = Some(self.origin_ns.map_or(r.sent_ns, |o| o.min(r.sent_ns)));
        if (ws..we).contains(&r.sent_ns) {
            self.total_input += r.prompt_len;
        }
        if r.last_ns <= r.sent_ns {
            return;
        }
        self.add_tokens(r, retokenized_len.unwrap_or(0));
        if (ws..=we).contains(&r.last_ns) {
            self.completed += 1;
        }
        let (a, b) = (r.sent_ns.max(ws), r.last_ns.min(we));
        self.overlap_ns += u128::from(b.saturating_sub(a));
        if r.sent_ns >= ws && r.last_ns <= we {
            self.ttft.push(r.ttft_s());
            if let Some(t) = r.tpot_s() {
                self.tpot.push(t);
            }
            for k in 1..r.chunk_ns.len() {
                let gap_ns = r.chunk_ns[k].saturating_sub(r.chunk_ns[k - 1]);
                self.itl
                    .push_itl(gap_ns, r.chunk_tokens.get(k).copied().unwrap_or(1));
            }
            self.e2e.push(r.latency_s());
        }
    }

    /// The output tokens inside the window: each chunk's receive time with the tokens it
    /// carried; a response without chunks is one event at its first token (else its end).
    fn add_tokens(&mut self, r: &RequestRecord, retokenized_len: usize) {
        let fallback = [if r.first_token_ns > 0 {
            r.first_token_ns
        } else {
            r.last_ns
        }];
        let times: &[u64] = if r.chunk_ns.is_empty() {
            &fallback
        } else {
            &r.chunk_ns
        };
        let weight = |k: usize| f64::from(r.chunk_tokens.get(k).copied().unwrap_or(1).max(1));
        let total: f64 = (0..times.len()).map(weight).sum();
        let (ws, we) = (self.window.start_ns, self.window.end_ns);
        let mut inside = 0.0;
        for (k, &t) in times.iter().enumerate() {
            if !(ws..=we).contains(&t) {
                continue;
            }
            inside += weight(k);
            let elapsed = ns_to_s(t - ws);
            let b = (elapsed.ceil() as usize)
                .saturating_sub(1)
                .min(self.buckets.len() - 1);
            self.buckets[b] += r.output_len as f64 * weight(k) / total;
        }
        let fraction = inside / total;
        self.total_output += r.output_len as f64 * fraction;
        self.total_output_retokenized += retokenized_len as f64 * fraction;
    }

    /// The window's metrics.
    pub fn finish(mut self) -> SteadyStateMetrics {
        let w = self.window;
        let dur = ns_to_s(w.end_ns.saturating_sub(w.start_ns));
        let per_s = |x: f64| if dur > 0.0 { x / dur } else { 0.0 };
        let origin = self.origin_ns.unwrap_or(w.start_ns) as f64;
        let (ratio, warmup, cooldown) = match self.rule {
            WindowRule::ConcurrencyRatio(r) => (Some(r), None, None),
            WindowRule::WarmupCooldown {
                warmup_s,
                cooldown_s,
            } => (None, Some(warmup_s), Some(cooldown_s)),
        };
        SteadyStateMetrics {
            concurrency_ratio: ratio,
            window_start: (w.start_ns as f64 - origin) * 1e-9,
            window_end: (w.end_ns as f64 - origin) * 1e-9,
            duration: dur,
            concurrency_threshold: w.concurrency_threshold,
            completed: self.completed,
            total_input: self.total_input,
            input_throughput: per_s(self.total_input as f64),
            total_output: self.total_output,
            total_output_retokenized: self.total_output_retokenized,
            output_throughput: per_s(self.total_output),
            output_throughput_retokenized: per_s(self.total_output_retokenized),
            average_concurrency: per_s(self.overlap_ns as f64 * 1e-9),
            peak_concurrency: w.peak_concurrency,
            peak_output_throughput: self.buckets.iter().copied().fold(0.0, f64::max),
            window_rule: self.rule.name(),
            warmup_duration: warmup,
            cooldown_duration: cooldown,
            requests_within_window: self.e2e.len(),
            within_window_ttft_ms: summarize(&self.ttft, 1000.0),
            within_window_tpot_ms: summarize(&self.tpot, 1000.0),
            within_window_itl_ms: self.itl.summarize(1000.0),
            within_window_e2e_latency_ms: summarize(&self.e2e, 1000.0),
            window: w,
        }
    }
}

/// Both passes over records in memory (one client's run) with SGLang's concurrency-ratio
/// rule; `retokenized` is aligned with `records`.
pub fn steady_state(
    records: &[RequestRecord],
    retokenized: Option<&[usize]>,
    ratio: f64,
) -> Result<SteadyStateMetrics, SteadyStateError> {
    steady_state_by_rule(records, retokenized, WindowRule::ConcurrencyRatio(ratio))
}

/// [`steady_state`] with any window rule.
pub fn steady_state_by_rule(
    records: &[RequestRecord],
    retokenized: Option<&[usize]>,
    rule: WindowRule,
) -> Result<SteadyStateMetrics, SteadyStateError> {
    let window = window_by_rule(records.iter().filter_map(interval_of), rule)?;
    let mut acc = SteadyStateAccumulator::with_rule(window, rule);
    for (i, r) in records.iter().enumerate() {
        acc.add(r, retokenized.and_then(|v| v.get(i).copied()));
    }
    Ok(acc.finish())
}

#[cfg(test)]
mod tests;
