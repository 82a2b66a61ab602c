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
    /// (index into running, tokens to compute, samples this step); prefill rows first.
    pub rows: Vec<(usize, usize, bool)>,
    /// How many leading entries of `rows` are prefill (prompt or recompute) rows.
    pub prefill_rows: usize,
}

/// Waiting and running requests.
pub struct Scheduler {
    pub cfg: SchedulerConfig,
    pub waiting: VecDeque<Req>,
    /// Admitted requests; those with `pending() > 1` are still in prefill.
    pub running: Vec<Req>,
    pub retractions: u64,
    /// Prompt tokens served from the prefix cache so far (Prometheus `cached_tokens_total`).
    pub cached_tokens_total: u64,
}

impl Scheduler {
    pub fn new(cfg: SchedulerConfig) -> Self {
        Self {
            cfg,
            waiting: VecDeque::new(),
            running: Vec::new(),
            retractions: 0,
            cached_tokens_total: 0,
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
                r.reserved_slots(pool).saturating_sub(held)
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
                // Reuse the longest cached prefix: those pages are already there, and the
                // cached ones nobody held stop counting as available once taken.
                let cached = if r.computed == 0 && r.pages.is_empty() {
                    pool.lookup_prefix(&r.input_ids)
                } else {
                    Default::default()
                };
                let page = pool.page_size();
                let need = r
                    .reserved_slots(pool)
                    .saturating_sub(cached.pages.len() * page);
                let available = pool
                    .free_slots()
                    .saturating_sub(cached.unreferenced * page)
                    .saturating_sub(self.outstanding_reservation(pool));
                if available < need {
                    break;
                }
                let Some(mut r) = self.waiting.pop_front() else {
                    break;
                };
                let matched = cached.pages.len() * page;
                if matched > 0 {
                    pool.take_prefix(&cached);
                    r.pages = cached.pages;
                    r.computed = matched;
                }
                let n = r.pending().min(budget);
                if !pool.ensure(&mut r.pages, r.computed + n) {
                    pool.release(&mut r.pages);
                    r.computed = 0;
                    self.waiting.push_front(r);
                    break;
                }
                if matched > 0 {
                    r.cached_tokens = matched;
                    self.cached_tokens_total += matched as u64;
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
                prefill_rows,
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
        Some(Step {
            mode,
            rows,
            prefill_rows,
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{GenerateRequest, SamplingParams};

    fn req(rid: &str, prompt: usize, max_new: usize) -> Req {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        // The scheduler never sends; keep the receiver alive so the request is not "closed".
        std::mem::forget(rx);
        Req::new(
            GenerateRequest {
                rid: rid.into(),
                input_ids: vec![7; prompt],
                sampling: SamplingParams {
                    max_new_tokens: max_new,
                    ..Default::default()
                },
                stream_interval: 1,
            },
            tx,
            0,
        )
    }

    fn sched(budget: Option<usize>, max_running: usize) -> Scheduler {
        Scheduler::new(SchedulerConfig {
            chunked_prefill_size: budget,
            max_running_requests: max_running,
            enable_mixed_chunk: false,
        })
    }

    /// Run `next_step` and apply what the engine would: advance `computed`, append a token
    /// for every sampling row. Returns (mode, [(rid, tokens, sampled)]).
    fn step(s: &mut Scheduler, pool: &mut KvPool) -> (ForwardMode, Vec<(String, usize, bool)>) {
        let st = s.next_step(pool).expect("a step");
        let mut rows = Vec::new();
        for &(i, n, sample) in &st.rows {
            let r = &mut s.running[i];
            assert!(
                r.pages.len() * pool.page_size() >= r.computed + n,
                "slots allocated"
            );
            r.computed += n;
            if sample {
                r.output_ids.push(1);
            }
            rows.push((r.rid.clone(), n, sample));
        }
        (st.mode, rows)
    }

    fn pool(slots: usize) -> KvPool {
        KvPool::new(1, 1, 2, slots, 1).unwrap()
    }

    #[test]
    fn long_prompts_are_chunked_under_the_budget_and_only_the_last_chunk_samples() {
        let mut p = pool(1000);
        let mut s = sched(Some(64), 8);
        s.waiting.push_back(req("a", 150, 4));
        let chunks: Vec<_> = (0..3).map(|_| step(&mut s, &mut p)).collect();
        assert_eq!(
            chunks,
            vec![
                (ForwardMode::Extend, vec![("a".into(), 64, false)]),
                (ForwardMode::Extend, vec![("a".into(), 64, false)]),
                (ForwardMode::Extend, vec![("a".into(), 22, true)]),
            ]
        );
        assert_eq!(
            step(&mut s, &mut p),
            (ForwardMode::Decode, vec![("a".into(), 1, true)])
        );
        // 150 prompt slots plus one for the first sampled token, written by the decode.
        assert_eq!(p.free_slots(), 1000 - 151);
    }

    #[test]
    fn budget_is_shared_by_several_prompts_in_one_extend() {
        let mut p = pool(1000);
        let mut s = sched(Some(100), 8);
        for (rid, n) in [("a", 30), ("b", 50), ("c", 40)] {
            s.waiting.push_back(req(rid, n, 4));
        }
        let (mode, rows) = step(&mut s, &mut p);
        assert_eq!(mode, ForwardMode::Extend);
        // a and b fit; c gets the remaining 20 tokens as a first chunk.
        assert_eq!(
            rows,
            vec![
                ("a".into(), 30, true),
                ("b".into(), 50, true),
                ("c".into(), 20, false)
            ]
        );
        assert_eq!(step(&mut s, &mut p).1, vec![("c".into(), 20, true)]);
    }

    #[test]
    fn prefill_has_priority_over_decode() {
        let mut p = pool(1000);
        let mut s = sched(Some(512), 8);
        s.waiting.push_back(req("a", 10, 8));
        assert_eq!(step(&mut s, &mut p).0, ForwardMode::Extend);
        assert_eq!(step(&mut s, &mut p).0, ForwardMode::Decode);
        s.waiting.push_back(req("b", 10, 8));
        // The new prompt runs alone first; then both decode together.
        assert_eq!(
            step(&mut s, &mut p),
            (ForwardMode::Extend, vec![("b".into(), 10, true)])
        );
        assert_eq!(
            step(&mut s, &mut p),
            (
                ForwardMode::Decode,
                vec![("a".into(), 1, true), ("b".into(), 1, true)]
            )
        );
    }

    #[test]
    fn admission_reserves_prompt_plus_max_new_tokens() {
        let mut p = pool(100);
        let mut s = sched(None, 8);
        s.waiting.push_back(req("a", 10, 60)); // reserves 70
        s.waiting.push_back(req("b", 10, 40)); // needs 50, only 30 unreserved
        let (_, rows) = step(&mut s, &mut p);
        assert_eq!(rows, vec![("a".into(), 10, true)]);
        assert_eq!(
            s.waiting.len(),
            1,
            "b waits although 90 slots are still free"
        );
        assert_eq!(step(&mut s, &mut p).0, ForwardMode::Decode);
        // When a finishes and frees its slots, b is admitted.
        let mut a = s.running.remove(0);
        p.release(&mut a.pages);
        assert_eq!(step(&mut s, &mut p).1, vec![("b".into(), 10, true)]);
    }

    #[test]
    fn max_running_requests_caps_admission() {
        let mut p = pool(1000);
        let mut s = sched(None, 2);
        for rid in ["a", "b", "c"] {
            s.waiting.push_back(req(rid, 5, 4));
        }
        let (_, rows) = step(&mut s, &mut p);
        assert_eq!(rows.len(), 2);
        assert_eq!(s.running.len(), 2);
        assert_eq!(s.waiting.len(), 1);
        // With two running, the third keeps waiting: the next step is a decode of two.
        let (mode, rows) = step(&mut s, &mut p);
        assert_eq!((mode, rows.len()), (ForwardMode::Decode, 2));
    }

    #[test]
    fn mixed_chunk_runs_new_prompts_and_decodes_in_one_step() {
        let mut p = pool(1000);
        let mut s = Scheduler::new(SchedulerConfig {
            chunked_prefill_size: Some(512),
            max_running_requests: 8,
            enable_mixed_chunk: true,
        });
        s.waiting.push_back(req("a", 10, 8));
        assert_eq!(step(&mut s, &mut p).0, ForwardMode::Extend);
        s.waiting.push_back(req("b", 10, 8));
        assert_eq!(
            step(&mut s, &mut p),
            (
                ForwardMode::Mixed,
                vec![("b".into(), 10, true), ("a".into(), 1, true)]
            )
        );
    }

    #[test]
    fn decode_retracts_the_newest_request_when_the_pool_runs_out() {
        let mut p = pool(8);
        let mut s = sched(None, 8);
        // Two running requests that each hold 4 slots and need a 5th to decode (as can
        // happen when admission is bypassed, e.g. after a retraction shrank the pool's slack).
        for rid in ["a", "b"] {
            let mut r = req(rid, 3, 10);
            r.output_ids.push(1);
            r.output_ids.push(1);
            r.computed = 4;
            assert!(p.ensure(&mut r.pages, 4));
            s.running.push(r);
        }
        assert_eq!(p.free_slots(), 0);
        let (mode, rows) = step(&mut s, &mut p);
        assert_eq!(
            (mode, rows),
            (ForwardMode::Decode, vec![("a".into(), 1, true)])
        );
        assert_eq!(s.retractions, 1);
        let b = s.waiting.front().expect("b is back in the queue");
        assert_eq!((b.rid.as_str(), b.computed, b.pages.len()), ("b", 0, 0));
        // Its generated tokens are kept and recomputed with the prompt later.
        assert_eq!(b.total_len(), 5);
        assert_eq!(p.free_slots(), 8 - 5);
    }
}
