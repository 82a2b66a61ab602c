//! Step selection with SGLang semantics: prefill (EXTEND) has priority under a token budget
//! (`--chunked-prefill-size`), long prompts are chunked and only the last chunk samples, decode
//! runs every running request, admission reserves prompt + max_new_tokens, and a request is
//! retracted (recomputed later) if the pool still runs out.

use std::collections::VecDeque;

use crate::hooks::ForwardMode;
use crate::kv::KvPool;
use crate::request::Req;

/// Scheduler limits.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// Prefill token budget per step; `None` = unlimited.
    pub chunked_prefill_size: Option<usize>,
    pub max_running_requests: usize,
    pub enable_mixed_chunk: bool,
}

/// A scheduled step: indices into `Scheduler::running` and how many tokens each computes.
pub struct Step {
    pub mode: ForwardMode,
    /// (index into running, tokens to compute, samples this step)
    pub rows: Vec<(usize, usize, bool)>,
}

/// Waiting and running requests.
pub struct Scheduler {
    pub cfg: SchedulerConfig,
    pub waiting: VecDeque<Req>,
    /// Admitted requests; those with `pending() > 1` are still in prefill.
    pub running: Vec<Req>,
    pub retractions: u64,
}

impl Scheduler {
    pub fn new(cfg: SchedulerConfig) -> Self {
        Self {
            cfg,
            waiting: VecDeque::new(),
            running: Vec::new(),
            retractions: 0,
        }
    }

    pub fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.running.is_empty()
    }

    /// Slots promised to running requests but not yet allocated.
    fn outstanding_reservation(&self, pool: &KvPool) -> usize {
        self.running
            .iter()
            .map(|r| {
                let held = r.pages.len() * pool.page_size();
                (pool.pages_for(r.max_tokens_needed()) * pool.page_size()).saturating_sub(held)
            })
            .sum()
    }

    /// Choose the next step and allocate its KV slots; `None` when nothing can run.
    pub fn next_step(&mut self, pool: &mut KvPool) -> Option<Step> {
        let mut budget = self.cfg.chunked_prefill_size.unwrap_or(usize::MAX);
        let mut rows = Vec::new();
        // 1. Continue a chunked prefill first (at most one request is mid-prompt).
        for (i, r) in self.running.iter_mut().enumerate() {
            if r.in_prefill() && budget > 0 {
                let n = r.pending().min(budget);
                if !pool.ensure(&mut r.pages, r.computed + n) {
                    break;
                }
                budget -= n;
                rows.push((i, n, n == r.pending()));
            }
        }
        // 2. Admit waiting requests in FIFO order while budget and reservations allow.
        let chunk_open = rows.iter().any(|&(_, _, s)| !s);
        if !chunk_open {
            while budget > 0 && self.running.len() < self.cfg.max_running_requests {
                let Some(r) = self.waiting.front() else { break };
                let need =
                    pool.pages_for(r.max_tokens_needed().max(r.total_len() + 1)) * pool.page_size();
                let available = pool
                    .free_slots()
                    .saturating_sub(self.outstanding_reservation(pool));
                if available < need {
                    break;
                }
                let Some(mut r) = self.waiting.pop_front() else {
                    break;
                };
                let n = r.pending().min(budget);
                if !pool.ensure(&mut r.pages, r.computed + n) {
                    self.waiting.push_front(r);
                    break;
                }
                budget -= n;
                let done = n == r.pending();
                self.running.push(r);
                rows.push((self.running.len() - 1, n, done));
                if !done {
                    break;
                }
            }
        }
        let prefill_rows = rows.len();
        if prefill_rows > 0 && !self.cfg.enable_mixed_chunk {
            return Some(Step {
                mode: ForwardMode::Extend,
                rows,
            });
        }
        // 3. Decode every request whose prompt is complete. In a pure decode step a failed
        //    allocation retracts the newest request and the decode set is rebuilt; in a mixed
        //    step the request simply waits for the next step.
        let prefill_idx: Vec<usize> = rows.iter().map(|r| r.0).collect();
        'build: loop {
            rows.truncate(prefill_rows);
            for i in 0..self.running.len() {
                if prefill_idx.contains(&i) || self.running[i].in_prefill() {
                    continue;
                }
                let r = &mut self.running[i];
                if pool.ensure(&mut r.pages, r.computed + 1) {
                    rows.push((i, 1, true));
                } else if prefill_rows == 0 && self.retract_newest(pool) {
                    continue 'build;
                }
            }
            break;
        }
        if rows.is_empty() {
            return None;
        }
        let mode = if prefill_rows == 0 {
            ForwardMode::Decode
        } else if rows.len() > prefill_rows {
            ForwardMode::Mixed
        } else {
            ForwardMode::Extend
        };
        Some(Step { mode, rows })
    }

    /// Free the newest decoding request's KV and put it back in front of the queue to be
    /// recomputed. Returns false if there is nothing to retract.
    fn retract_newest(&mut self, pool: &mut KvPool) -> bool {
        if self.running.len() <= 1 {
            return false;
        }
        let Some(mut r) = self.running.pop() else {
            return false;
        };
        pool.release(&mut r.pages);
        r.computed = 0;
        self.retractions += 1;
        self.waiting.push_front(r);
        true
    }
}
