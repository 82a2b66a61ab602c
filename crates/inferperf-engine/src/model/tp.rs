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

    /// SmolLM2 split over some ranks, and a KV pool for one sequence at a time.
    struct Smollm2 {
        model: crate::model::LlamaModel,
    }

    const SLOTS: usize = 256;

    impl Smollm2 {
        fn load(tp: usize) -> Self {
            let config = crate::engine::EngineConfig {
                model_path: inferperf_test_support::smollm2_gguf()
                    .to_string_lossy()
                    .into_owned(),
                ..Default::default()
            };
            let loaded = crate::load::load(&config).expect("SmolLM2 loads");
            let hooks: Vec<Box<dyn StepHooks>> = (1..tp)
                .map(|_| Box::new(crate::hooks::NoHooks) as _)
                .collect();
            let model = loaded
                .model
                .into_tensor_parallel(hooks, SLOTS)
                .expect("tp divides SmolLM2");
            Self { model }
        }

        /// Logits of `prompt` (one prefill step) and then of each token `feed` names, one
        /// decode step at a time; also the tokens fed.
        fn logits(&self, prompt: &[u32], feed: Feed) -> (Vec<Vec<f32>>, Vec<u32>) {
            use crate::kv::KvPool;
            use crate::model::{ForwardBatch, SeqInput};
            let cfg = &self.model.config;
            let mut kv = KvPool::new(
                cfg.num_hidden_layers,
                self.model.local_kv_heads(),
                cfg.head_dim(),
                SLOTS,
                1,
            )
            .expect("pool");
            let step = |kv: &mut KvPool, ids: &[u32], prefix: usize| -> Vec<f32> {
                let batch = ForwardBatch {
                    input_ids: ids.to_vec(),
                    positions: (prefix..prefix + ids.len()).collect(),
                    seqs: vec![SeqInput {
                        row_start: 0,
                        len: ids.len(),
                        prefix,
                        slots: (0..prefix + ids.len()).collect(),
                        sample: true,
                    }],
                    prefill_rows: if prefix == 0 { ids.len() } else { 0 },
                    summary: None,
                };
                let mut out = self.model.forward(&batch, kv, None).expect("forward");
                out.pop().expect("one sampled row")
            };
            let mut logits = vec![step(&mut kv, prompt, 0)];
            let mut fed = Vec::new();
            let steps = match &feed {
                Feed::Greedy(n) => *n,
                Feed::Tokens(t) => t.len(),
            };
            for i in 0..steps {
                let next = match &feed {
                    Feed::Greedy(_) => argmax(&logits[i]),
                    Feed::Tokens(t) => t[i],
                };
                fed.push(next);
                logits.push(step(&mut kv, &[next], prompt.len() + i));
            }
            (logits, fed)
        }
    }

    enum Feed {
        Greedy(usize),
        Tokens(Vec<u32>),
    }

    fn argmax(v: &[f32]) -> u32 {
        let mut best = 0;
        for (i, x) in v.iter().enumerate() {
            if *x > v[best] {
                best = i;
            }
        }
        best as u32
    }

    /// TP=3 (9 heads, 3 KV heads, quantized o_proj/down_proj split on block boundaries) computes
    /// TP=1's logits.
    ///
    /// Prefill rows multiply the dense f32 weights, so there the ranks' partial sums differ
    /// from TP=1 only in float summation order: checked tightly, at every length the decode
    /// below reaches. Decode rows go through the int8 kernels, which quantize activations per
    /// 32-wide block: a 1e-5 difference can move a value across a rounding step, so decode
    /// logits differ from the dense ones by quantization noise (about 3 % of the logit range
    /// here, on one rank as on three) and a greedy near-tie can go either way (on one Xeon,
    /// token 5 of this prompt did). So decode is checked for being no noisier with TP=3 than
    /// with TP=1, teacher-forced with TP=1's tokens; a wrong shard would scramble the logits.
    #[test]
    fn tp3_computes_tp1_logits_on_smollm2() {
        let prompt: Vec<u32> = (0..30).map(|i| 1 + (i * 11) % 240).collect();
        let (tp1, tp3) = (Smollm2::load(1), Smollm2::load(3));
        let (one, greedy) = tp1.logits(&prompt, Feed::Greedy(12));
        let (three, _) = tp3.logits(&prompt, Feed::Tokens(greedy.clone()));
        let diff = |a: &[f32], b: &[f32]| {
            assert_eq!(a.len(), b.len());
            a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
        };
        let (mut one_noise, mut three_noise, mut apart) = (0f32, 0f32, 0f32);
        for step in 0..one.len() {
            let mut seq = prompt.clone();
            seq.extend(&greedy[..step]);
            let (dense_one, _) = tp1.logits(&seq, Feed::Tokens(Vec::new()));
            let (dense_three, _) = tp3.logits(&seq, Feed::Tokens(Vec::new()));
            let range = dense_one[0].iter().fold(1f32, |m, x| m.max(x.abs()));
            let dense_apart = diff(&dense_one[0], &dense_three[0]);
            assert!(
                dense_apart <= 1e-3 * range,
                "{} tokens: TP=3 prefill logits differ from TP=1 by {dense_apart} (max |logit| {range})",
                seq.len()
            );
            if step > 0 {
                one_noise = one_noise.max(diff(&one[step], &dense_one[0]));
                three_noise = three_noise.max(diff(&three[step], &dense_one[0]));
                apart = apart.max(diff(&one[step], &three[step]));
            }
        }
        assert!(
            three_noise <= 2.0 * one_noise && apart <= 3.0 * one_noise,
            "int8 decode: TP=3 is {three_noise} from the dense logits and {apart} from TP=1, \
             TP=1 is {one_noise} from the dense logits"
        );
    }
}
