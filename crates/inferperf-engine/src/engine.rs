//! The engine thread: owns the model, the KV pool and the scheduler; drains requests and control
//! commands between steps, runs one forward batch per step, samples and streams results.

use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::api::{
    ControlCommand, EngineError, EngineHandle, EngineMessage, FinishReason, GenerateEvent,
    GenerateRequest, InternalState, ModelInfo, TextTokenizer,
};
use crate::hooks::{
    BatchSummary, FrontEndTimes, NoHooks, RequestEvent, RequestStage, StepHooks, StepOutcome,
};
use crate::kv::KvPool;
use crate::load::{load, LoadedModel};
use crate::model::{ForwardBatch, LlamaModel, SeqInput};
use crate::request::Req;
use crate::sampler::sample;
use crate::scheduler::{Scheduler, SchedulerConfig};

/// Engine settings, with SGLang's server-argument names.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// `default` (built-in tiny model), a `.gguf` file, an HF directory, or a cached hub id.
    pub model_path: String,
    pub tokenizer_path: Option<String>,
    /// `auto`, `dummy`, `gguf` or `safetensors`.
    pub load_format: String,
    pub json_model_override_args: Option<String>,
    /// KV pool size in tokens; default fits about 1 GiB of KV (at most 65536 tokens).
    pub max_total_tokens: Option<usize>,
    pub page_size: usize,
    /// Prefill token budget per step; `-1` (or 0) disables chunking.
    pub chunked_prefill_size: i64,
    pub max_running_requests: Option<usize>,
    pub enable_mixed_chunk: bool,
    pub random_seed: u64,
    pub context_length: Option<usize>,
    /// Do not keep finished requests' KV for prefix reuse (SGLang `--disable-radix-cache`).
    pub disable_radix_cache: bool,
    /// Tensor-parallel ranks (SGLang `--tp-size`): rank 0 on the engine thread, the others on
    /// worker threads, each with its share of the heads and MLP columns.
    pub tp_size: usize,
    /// Threads rank 0's kernels run on: `None` uses rayon's global pool (one per core); `Some(n)`
    /// runs the engine loop inside its own pool of `n` threads, leaving the other cores to
    /// whatever shares the host (an embedded benchmark client).
    pub compute_threads: Option<usize>,
    /// Run the compute threads at a lower scheduling priority (nice 10): a benchmark client
    /// sharing the host wins the CPU whenever it wakes, so its timestamps and pacing are not
    /// delayed behind a forward pass. Used when the server is embedded in a benchmark.
    pub yield_to_client: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            model_path: "default".into(),
            tokenizer_path: None,
            load_format: "auto".into(),
            json_model_override_args: None,
            max_total_tokens: None,
            page_size: 1,
            chunked_prefill_size: 512,
            max_running_requests: None,
            enable_mixed_chunk: false,
            random_seed: 0,
            context_length: None,
            disable_radix_cache: false,
            tp_size: 1,
            compute_threads: None,
            yield_to_client: false,
        }
    }
}

/// A started engine: its handle, tokenizer and description.
pub struct LaunchedEngine {
    pub handle: EngineHandle,
    pub tokenizer: Arc<dyn TextTokenizer>,
    pub model_info: ModelInfo,
    pub thread: Option<JoinHandle<()>>,
}

impl LaunchedEngine {
    /// Stop the engine thread and wait for it.
    pub fn shutdown(mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Load the model and start the engine thread.
pub fn launch(config: EngineConfig) -> Result<LaunchedEngine, EngineError> {
    launch_with_hooks(config, Box::new(NoHooks))
}

/// [`launch`] with step hooks (the profiler's seam).
pub fn launch_with_hooks(
    config: EngineConfig,
    hooks: Box<dyn StepHooks>,
) -> Result<LaunchedEngine, EngineError> {
    launch_with_rank_hooks(config, vec![hooks])
}

/// [`launch`] with one hooks object per tensor-parallel rank (`hooks[0]` for rank 0 on the
/// engine thread; missing ones report nowhere).
pub fn launch_with_rank_hooks(
    config: EngineConfig,
    mut hooks: Vec<Box<dyn StepHooks>>,
) -> Result<LaunchedEngine, EngineError> {
    let tp = config.tp_size.max(1);
    while hooks.len() < tp {
        hooks.push(Box::new(NoHooks));
    }
    let worker_hooks = hooks.split_off(1);
    let Some(hooks) = hooks.pop() else {
        return Err(EngineError::Other("no step hooks for rank 0".into()));
    };
    let LoadedModel {
        model,
        tokenizer,
        info,
    } = load(&config)?;
    let cfg = model.config.clone();
    let row_bytes = cfg.num_hidden_layers * 2 * cfg.num_kv_heads() * cfg.head_dim() * 4;
    let max_total = config
        .max_total_tokens
        .unwrap_or_else(|| ((1usize << 30) / row_bytes.max(1)).clamp(1024, 65536));
    let model = model.into_tensor_parallel(worker_hooks, max_total)?;
    let pool = KvPool::new(
        cfg.num_hidden_layers,
        model.local_kv_heads(),
        cfg.head_dim(),
        max_total,
        config.page_size,
    )?;
    let pool = if config.disable_radix_cache {
        pool.without_prefix_cache()
    } else {
        pool
    };
    let sched = Scheduler::new(SchedulerConfig {
        chunked_prefill_size: (config.chunked_prefill_size > 0)
            .then_some(config.chunked_prefill_size as usize),
        max_running_requests: config.max_running_requests.unwrap_or(256).max(1),
        enable_mixed_chunk: config.enable_mixed_chunk,
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let req_events = hooks.wants_request_events();
    let mut state = EngineLoop {
        req_events,
        context_len: info.context_length,
        eos: tokenizer.eos_token_ids(),
        model,
        pool,
        sched,
        tokenizer: tokenizer.clone(),
        hooks,
        seed: config.random_seed,
        forward_ct: 0,
        totals: Totals::default(),
        throughput: ThroughputWindow::new(),
    };
    let yield_to_client = config.yield_to_client;
    let compute = match config.compute_threads {
        Some(n) => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(n.max(1))
                .thread_name(|i| format!("inferperf-compute-{i}"))
                .start_handler(move |_| {
                    if yield_to_client {
                        lower_thread_priority();
                    }
                })
                .build()
                .map_err(|e| {
                    EngineError::Other(format!("cannot start {n} compute threads: {e}"))
                })?,
        ),
        None => None,
    };
    let thread = std::thread::Builder::new()
        .name("inferperf-engine".into())
        .spawn(move || match compute {
            Some(pool) => pool.install(|| state.run(rx)),
            None => state.run(rx),
        })
        .map_err(|e| EngineError::Other(format!("cannot start the engine thread: {e}")))?;
    Ok(LaunchedEngine {
        handle: EngineHandle::new(tx),
        tokenizer,
        model_info: info,
        thread: Some(thread),
    })
}

/// Nice 10 for the calling thread (Linux applies `setpriority` per thread). Best effort: a
/// failure only means the client competes at equal priority.
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid and setpriority on the calling thread, no pointers involved.
        let rc = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, 10)
        };
        if rc != 0 {
            tracing::debug!(
                "could not lower the compute thread's priority: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

#[derive(Default)]
struct Totals {
    prompt: u64,
    cached: u64,
    generated: u64,
}

/// Decode throughput over the last second or so (SGLang's `last_gen_throughput`).
struct ThroughputWindow {
    since: Instant,
    tokens: u64,
    last: f64,
}

impl ThroughputWindow {
    fn new() -> Self {
        Self {
            since: Instant::now(),
            tokens: 0,
            last: 0.0,
        }
    }
    fn add(&mut self, n: usize) {
        self.tokens += n as u64;
        let dt = self.since.elapsed().as_secs_f64();
        if dt >= 1.0 {
            self.last = self.tokens as f64 / dt;
            self.tokens = 0;
            self.since = Instant::now();
        }
    }
}

struct EngineLoop {
    model: LlamaModel,
    pool: KvPool,
    sched: Scheduler,
    tokenizer: Arc<dyn TextTokenizer>,
    hooks: Box<dyn StepHooks>,
    /// The hooks want request lifecycle events (asked once at start).
    req_events: bool,
    eos: Vec<u32>,
    context_len: usize,
    seed: u64,
    forward_ct: u64,
    totals: Totals,
    throughput: ThroughputWindow,
}

impl EngineLoop {
    fn run(&mut self, rx: Receiver<EngineMessage>) {
        loop {
            if self.sched.is_idle() {
                match rx.recv() {
                    Ok(m) => {
                        if !self.handle(m) {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
            let mut stop = false;
            loop {
                match rx.try_recv() {
                    Ok(m) => {
                        if !self.handle(m) {
                            stop = true;
                            break;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        stop = true;
                        break;
                    }
                }
            }
            if stop {
                break;
            }
            self.drop_closed();
            if !self.step() && !self.sched.is_idle() {
                // Nothing can run now (should not happen with reservations): wait for input.
                match rx.recv() {
                    Ok(m) => {
                        if !self.handle(m) {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        }
        self.abort_all("the engine is shutting down");
    }

    /// Apply one message; false means shut down.
    fn handle(&mut self, msg: EngineMessage) -> bool {
        match msg {
            EngineMessage::Generate(req, tx, times) => self.admit(req, tx, times),
            EngineMessage::GenerateBatch(batch) => {
                for (req, tx) in batch {
                    self.admit(req, tx, None);
                }
            }
            EngineMessage::Control(c) => self.control(c),
            EngineMessage::Shutdown => return false,
        }
        true
    }

    fn admit(
        &mut self,
        req: GenerateRequest,
        tx: tokio::sync::mpsc::UnboundedSender<GenerateEvent>,
        times: Option<FrontEndTimes>,
    ) {
        let mut r = Req::new(req, tx, self.seed);
        if let Some(t) = times {
            r.arrival = t.arrival;
        }
        if self.req_events {
            let now = Instant::now();
            let t = times.unwrap_or(FrontEndTimes {
                arrival: now,
                tokenized: now,
            });
            report(
                &mut self.hooks,
                true,
                &r.rid,
                RequestStage::Received {
                    arrival: t.arrival,
                    tokenized: t.tokenized,
                    prompt_tokens: r.prompt_len,
                },
            );
        }
        let reject = if r.input_ids.is_empty() {
            Some("the prompt is empty".to_string())
        } else if r.input_ids.len() >= self.context_len {
            Some(format!(
                "the prompt has {} tokens, which is not below the context length {}",
                r.input_ids.len(),
                self.context_len
            ))
        } else if let Some(bad) = r
            .input_ids
            .iter()
            .find(|&&t| t as usize >= self.model.config.vocab_size)
        {
            Some(format!(
                "token id {bad} is outside the vocabulary (size {})",
                self.model.config.vocab_size
            ))
        } else {
            None
        };
        if let Some(message) = reject {
            end_request(
                &mut self.hooks,
                self.req_events,
                &mut r,
                FinishReason::Abort { message },
            );
            return;
        }
        // Never promise more than the context allows.
        let room = self.context_len - r.input_ids.len();
        r.sampling.max_new_tokens = r.sampling.max_new_tokens.min(room);
        if r.sampling.max_new_tokens == 0 {
            // Nothing to generate (SGLang answers such requests without sampling).
            self.totals.prompt += r.input_ids.len() as u64;
            end_request(
                &mut self.hooks,
                self.req_events,
                &mut r,
                FinishReason::Length { length: 0 },
            );
            return;
        }
        let need = r.reserved_slots(&self.pool);
        if need > self.pool.total_slots() {
            let message = format!(
                "prompt ({}) + max_new_tokens ({}) = {} tokens exceeds the KV pool (--max-total-tokens {})",
                r.input_ids.len(),
                r.sampling.max_new_tokens,
                r.max_tokens_needed(),
                self.pool.total_slots()
            );
            end_request(
                &mut self.hooks,
                self.req_events,
                &mut r,
                FinishReason::Abort { message },
            );
            return;
        }
        self.totals.prompt += r.input_ids.len() as u64;
        report(
            &mut self.hooks,
            self.req_events,
            &r.rid,
            RequestStage::Enqueued {
                queue_pos: self.sched.waiting.len(),
            },
        );
        self.sched.waiting.push_back(r);
    }

    fn control(&mut self, cmd: ControlCommand) {
        match cmd {
            ControlCommand::FlushCache(reply) => {
                // As in SGLang: only when idle (no request holds cached pages).
                let idle = self.sched.is_idle();
                if idle {
                    self.pool.flush_cache();
                }
                let _ = reply.send(idle);
            }
            ControlCommand::Abort(rid) => {
                let matches = |r: &Req| rid.as_deref().is_none_or(|x| x == r.rid);
                let mut kept = std::collections::VecDeque::new();
                for mut r in self.sched.waiting.drain(..) {
                    if matches(&r) {
                        end_request(
                            &mut self.hooks,
                            self.req_events,
                            &mut r,
                            FinishReason::Abort {
                                message: "aborted".into(),
                            },
                        );
                        self.pool.release(&mut r.pages);
                    } else {
                        kept.push_back(r);
                    }
                }
                self.sched.waiting = kept;
                let mut i = 0;
                while i < self.sched.running.len() {
                    if matches(&self.sched.running[i]) {
                        let mut r = self.sched.running.remove(i);
                        end_request(
                            &mut self.hooks,
                            self.req_events,
                            &mut r,
                            FinishReason::Abort {
                                message: "aborted".into(),
                            },
                        );
                        self.pool.release(&mut r.pages);
                    } else {
                        i += 1;
                    }
                }
            }
            ControlCommand::GetInternalState(reply) => {
                let _ = reply.send(self.internal_state());
            }
            ControlCommand::PollHooks => {
                self.hooks.on_control();
                self.model.poll_rank_hooks();
            }
        }
    }

    fn internal_state(&self) -> InternalState {
        let total = self.pool.total_slots();
        let free = self.pool.free_slots();
        InternalState {
            forward_ct: self.forward_ct,
            num_running_reqs: self.sched.running.len(),
            num_waiting_reqs: self.sched.waiting.len(),
            token_usage: (total - free) as f64 / total.max(1) as f64,
            kv_total_slots: total,
            kv_free_slots: free,
            last_gen_throughput: self.throughput.last,
            max_total_num_tokens: total,
            max_running_requests: self.sched.cfg.max_running_requests,
            max_req_input_len: self.context_len.saturating_sub(1),
            prompt_tokens_total: self.totals.prompt,
            cached_tokens_total: self.totals.cached + self.sched.cached_tokens_total,
            generation_tokens_total: self.totals.generated,
        }
    }

    /// Abort requests whose receiver was dropped and free their KV.
    fn drop_closed(&mut self) {
        let pool = &mut self.pool;
        let hooks = &mut self.hooks;
        let on = self.req_events;
        let mut close = |r: &mut Req| {
            let closed = r.is_closed();
            if closed {
                pool.release(&mut r.pages);
                if on {
                    // Nobody listens any more; only the lifecycle hears of the abort.
                    end_request(
                        hooks,
                        true,
                        r,
                        FinishReason::Abort {
                            message: "the client disconnected".into(),
                        },
                    );
                }
            }
            !closed
        };
        self.sched.waiting.retain_mut(&mut close);
        self.sched.running.retain_mut(&mut close);
    }

    fn abort_all(&mut self, message: &str) {
        for mut r in self
            .sched
            .waiting
            .drain(..)
            .chain(self.sched.running.drain(..))
        {
            end_request(
                &mut self.hooks,
                self.req_events,
                &mut r,
                FinishReason::Abort {
                    message: message.into(),
                },
            );
            self.pool.release(&mut r.pages);
        }
    }

    /// Run one step; false if nothing could be scheduled.
    fn step(&mut self) -> bool {
        let schedule_start = Instant::now();
        let Some(step) = self.sched.next_step(&mut self.pool) else {
            return false;
        };
        self.forward_ct += 1;
        let mut batch = ForwardBatch::default();
        for (j, &(i, n, sample)) in step.rows.iter().enumerate() {
            let r = &self.sched.running[i];
            let row_start = batch.input_ids.len();
            for pos in r.computed..r.computed + n {
                batch.input_ids.push(r.token_at(pos));
                batch.positions.push(pos);
            }
            batch.seqs.push(SeqInput {
                row_start,
                len: n,
                prefix: r.computed,
                slots: (0..r.computed + n)
                    .map(|p| self.pool.slot(&r.pages, p))
                    .collect(),
                sample,
            });
            if j + 1 == step.prefill_rows {
                batch.prefill_rows = batch.input_ids.len();
            }
        }
        let summary = BatchSummary {
            forward_ct: self.forward_ct,
            mode: step.mode,
            batch_size: step.rows.len(),
            num_tokens: batch.input_ids.len(),
            prefix_lens: batch.seqs.iter().map(|s| s.prefix).collect(),
            extend_lens: batch.seqs.iter().map(|s| s.len).collect(),
            schedule_start: Some(schedule_start),
            rids: if self.req_events {
                step.rows
                    .iter()
                    .map(|&(i, _, _)| self.sched.running[i].rid.clone())
                    .collect()
            } else {
                Vec::new()
            },
        };
        if self.model.tp_size() > 1 {
            batch.summary = Some(summary.clone());
        }
        let detailed = self.hooks.on_step_begin(&summary);
        let start = Instant::now();
        let result = if detailed {
            let hooks = &mut self.hooks;
            let mut sink = |t| hooks.on_module(t);
            self.model.forward(&batch, &mut self.pool, Some(&mut sink))
        } else {
            self.model.forward(&batch, &mut self.pool, None)
        };
        self.hooks.on_forward(start, Instant::now());
        let mut new_tokens = 0;
        match result {
            Ok(mut logits) => {
                let mut logit_rows = logits.iter_mut();
                let mut finished = Vec::new();
                for &(i, n, sampled) in &step.rows {
                    let r = &mut self.sched.running[i];
                    r.computed += n;
                    if !sampled {
                        continue;
                    }
                    let Some(row) = logit_rows.next() else { break };
                    if r.output_ids.len() < r.sampling.min_new_tokens {
                        for &e in self.eos.iter().chain(&r.sampling.stop_token_ids) {
                            if let Some(l) = row.get_mut(e as usize) {
                                *l = f32::NEG_INFINITY;
                            }
                        }
                    }
                    let tok = sample(row, &r.sampling, &mut r.rng);
                    new_tokens += 1;
                    let pushed =
                        r.push_token(tok, self.tokenizer.as_ref(), &self.eos, self.context_len);
                    if self.req_events && r.output_ids.len() == 1 {
                        report(&mut self.hooks, true, &r.rid, RequestStage::FirstToken);
                    }
                    match pushed {
                        Some(reason) => finished.push((i, reason)),
                        None => {
                            let tokens = r.maybe_emit(false);
                            if tokens > 0 {
                                report(
                                    &mut self.hooks,
                                    self.req_events,
                                    &r.rid,
                                    RequestStage::Chunk { tokens },
                                );
                            }
                        }
                    }
                }
                finished.sort_by_key(|f| std::cmp::Reverse(f.0));
                for (i, reason) in finished {
                    let mut r = self.sched.running.remove(i);
                    end_request(&mut self.hooks, self.req_events, &mut r, reason);
                    if self.pool.caches_prefixes() {
                        let tokens: Vec<u32> =
                            r.input_ids.iter().chain(&r.output_ids).copied().collect();
                        self.pool.cache_finished(&tokens, &r.pages, r.computed);
                    }
                    self.pool.release(&mut r.pages);
                }
            }
            Err(e) => {
                let mut idx: Vec<usize> = step.rows.iter().map(|r| r.0).collect();
                idx.sort_unstable_by(|a, b| b.cmp(a));
                for i in idx {
                    let mut r = self.sched.running.remove(i);
                    end_request(
                        &mut self.hooks,
                        self.req_events,
                        &mut r,
                        FinishReason::Abort {
                            message: e.to_string(),
                        },
                    );
                    self.pool.release(&mut r.pages);
                }
            }
        }
        self.totals.generated += new_tokens as u64;
        self.throughput.add(new_tokens);
        let total = self.pool.total_slots();
        self.hooks.on_step_end(&StepOutcome {
            forward_ct: self.forward_ct,
            running_reqs: self.sched.running.len(),
            waiting_reqs: self.sched.waiting.len(),
            kv_used_tokens: total - self.pool.free_slots(),
            kv_total_tokens: total,
            new_tokens,
        });
        true
    }
}

/// Report one lifecycle event of `rid` to hooks that want them (`on`); one branch otherwise.
#[inline]
fn report(hooks: &mut Box<dyn StepHooks>, on: bool, rid: &str, stage: RequestStage<'_>) {
    if on {
        hooks.on_request(&RequestEvent {
            rid,
            at: Instant::now(),
            stage,
        });
    }
}

/// End `r` with `reason` (its last chunk and `Finished` go to the client) and report the last
/// chunk and the finish to hooks that want them (`on`).
fn end_request(hooks: &mut Box<dyn StepHooks>, on: bool, r: &mut Req, reason: FinishReason) {
    if !on {
        r.finish(reason);
        return;
    }
    let flushed = r.finish(reason.clone());
    if flushed > 0 {
        report(hooks, true, &r.rid, RequestStage::Chunk { tokens: flushed });
    }
    report(
        hooks,
        true,
        &r.rid,
        RequestStage::Finished {
            reason: &reason,
            prompt_tokens: r.prompt_len,
            completion_tokens: r.output_ids.len(),
            cached_tokens: r.cached_tokens,
        },
    );
}
