//! Tensor parallelism on CPU threads: rank `r` of `N` holds attention heads
//! `[r·H/N, (r+1)·H/N)` (their q/k/v rows, their KV heads and the matching o_proj columns) and
//! MLP columns `[r·I/N, (r+1)·I/N)` (gate/up rows, down_proj columns). Each rank computes partial
//! o_proj and down_proj outputs that an all-reduce sums, in rank order on every rank, so all
//! ranks keep identical activations. Rank 0 runs on the engine thread (scheduler, embedding,
//! sampling, as SGLang's TP0); ranks 1.. are worker threads that receive each step's batch.
//! Every rank reports to its own step hooks (its own profiler rank and trace file).

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::api::EngineError;
use crate::hooks::{BatchSummary, StepHooks, StepOutcome};

/// Sums equal-length vectors across the ranks; every rank gets the same sum.
pub struct AllReduce {
    parts: Vec<Mutex<Vec<f32>>>,
    barrier: Barrier,
}

impl AllReduce {
    pub fn new(ranks: usize) -> Self {
        Self {
            parts: (0..ranks).map(|_| Mutex::new(Vec::new())).collect(),
            barrier: Barrier::new(ranks),
        }
    }

    /// Contribute `part` as `rank` and return the sum over all ranks (added in rank order).
    pub fn reduce(&self, rank: usize, part: Vec<f32>) -> Vec<f32> {
        *self.parts[rank].lock().unwrap_or_else(|e| e.into_inner()) = part;
        self.barrier.wait();
        let mut sum = self.parts[0]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for p in &self.parts[1..] {
            let p = p.lock().unwrap_or_else(|e| e.into_inner());
            for (s, x) in sum.iter_mut().zip(p.iter()) {
                *s += x;
            }
        }
        // Nobody overwrites a part before every rank has read them all.
        self.barrier.wait();
        sum
    }
}

/// One step's work for the worker ranks.
pub struct Job {
    /// Embedding output `[t, hidden]`, computed once by rank 0.
    pub x0: Vec<f32>,
    pub batch: Arc<super::ForwardBatch>,
    pub summary: Option<BatchSummary>,
}

enum Msg {
    Forward(Arc<Job>),
    Poll,
    Stop,
}

/// What a worker rank runs per step: its layers over the batch, reducing through `reduce`.
pub type RankForward = Box<
    dyn FnMut(
            &Job,
            &dyn Fn(Vec<f32>) -> Vec<f32>,
            Option<&mut dyn FnMut(crate::hooks::ModuleTiming)>,
        ) -> Result<(), EngineError>
        + Send,
>;

struct Worker {
    tx: Sender<Msg>,
    done: Receiver<Result<(), EngineError>>,
    thread: Option<JoinHandle<()>>,
}

/// The worker ranks of one engine.
pub struct TpGroup {
    workers: Vec<Worker>,
    pub reduce: Arc<AllReduce>,
    world: usize,
}

impl TpGroup {
    /// Start ranks `1..` with their forward closures and step hooks (`ranks[i]` is rank i+1).
    /// `reduces_per_step` is how many all-reduces one forward does (a failing rank still
    /// joins the rest with zeros so the others never wait forever).
    pub fn start(
        ranks: Vec<(RankForward, Box<dyn StepHooks>)>,
        reduces_per_step: usize,
        width: impl Fn(&Job) -> usize + Send + Sync + 'static,
    ) -> Result<Self, EngineError> {
        let world = ranks.len() + 1;
        let reduce = Arc::new(AllReduce::new(world));
        let width = Arc::new(width);
        let mut workers = Vec::new();
        for (i, (mut forward, mut hooks)) in ranks.into_iter().enumerate() {
            let rank = i + 1;
            let (tx, rx) = channel::<Msg>();
            let (done_tx, done) = channel();
            let reduce = reduce.clone();
            let width = width.clone();
            let thread = std::thread::Builder::new()
                .name(format!("inferperf-tp{rank}"))
                .spawn(move || {
                    let mut last = StepOutcome {
                        forward_ct: 0,
                        running_reqs: 0,
                        waiting_reqs: 0,
                        kv_used_tokens: 0,
                        kv_total_tokens: 0,
                        new_tokens: 0,
                    };
                    while let Ok(msg) = rx.recv() {
                        match msg {
                            Msg::Stop => break,
                            Msg::Poll => hooks.on_control(),
                            Msg::Forward(job) => {
                                let detailed =
                                    job.summary.as_ref().is_some_and(|s| hooks.on_step_begin(s));
                                let calls = std::sync::atomic::AtomicUsize::new(0);
                                let red = |part: Vec<f32>| {
                                    calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                    reduce.reduce(rank, part)
                                };
                                let start = Instant::now();
                                let result = if detailed {
                                    let h = &mut hooks;
                                    let mut sink = |t| h.on_module(t);
                                    forward(&job, &red, Some(&mut sink))
                                } else {
                                    forward(&job, &red, None)
                                };
                                // A failed rank still takes part in the remaining reductions.
                                let w = width(&job);
                                while calls.load(std::sync::atomic::Ordering::Relaxed)
                                    < reduces_per_step
                                {
                                    red(vec![0.0; w]);
                                }
                                hooks.on_forward(start, Instant::now());
                                if let Some(s) = &job.summary {
                                    last.forward_ct = s.forward_ct;
                                    last.new_tokens = 0;
                                    hooks.on_step_end(&last);
                                }
                                let _ = done_tx.send(result);
                            }
                        }
                    }
                })
                .map_err(|e| EngineError::Other(format!("cannot start TP rank {rank}: {e}")))?;
            workers.push(Worker {
                tx,
                done,
                thread: Some(thread),
            });
        }
        Ok(Self {
            workers,
            reduce,
            world,
        })
    }

    pub fn world(&self) -> usize {
        self.world
    }

    /// Hand the step to every worker rank.
    pub fn dispatch(&self, job: Arc<Job>) {
        for w in &self.workers {
            let _ = w.tx.send(Msg::Forward(job.clone()));
        }
    }

    /// Wait until every worker finished the step; the first error wins.
    pub fn join_step(&self) -> Result<(), EngineError> {
        let mut first = Ok(());
        for (i, w) in self.workers.iter().enumerate() {
            let r = w
                .done
                .recv()
                .unwrap_or_else(|_| Err(EngineError::Other(format!("TP rank {} stopped", i + 1))));
            if first.is_ok() {
                first = r;
            }
        }
        first
    }

    /// Let every worker rank apply its hooks' queued commands (profiler start/stop).
    pub fn poll_hooks(&self) {
        for w in &self.workers {
            let _ = w.tx.send(Msg::Poll);
        }
    }
}

impl Drop for TpGroup {
    fn drop(&mut self) {
        for w in &self.workers {
            let _ = w.tx.send(Msg::Stop);
        }
        for w in &mut self.workers {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rank_gets_the_same_sum() {
        let ar = Arc::new(AllReduce::new(3));
        let handles: Vec<_> = (0..3)
            .map(|r| {
                let ar = ar.clone();
                std::thread::spawn(move || {
                    (0..50)
                        .map(|round| ar.reduce(r, vec![r as f32 + round as f32, 1.0]))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let results: Vec<Vec<Vec<f32>>> = handles
            .into_iter()
            .map(|h| h.join().expect("rank thread"))
            .collect();
        for round in 0..50 {
            let want = vec![3.0 + 3.0 * round as f32, 3.0];
            for r in &results {
                assert_eq!(r[round], want);
            }
        }
    }
}
