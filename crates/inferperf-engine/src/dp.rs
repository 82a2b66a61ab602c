//! Data parallelism (SGLang `--dp-size N`): N independent engine replicas behind one handle.
//!
//! Each replica is a full engine thread (own model copy, KV pool, scheduler, `forward_ct` and
//! step hooks, i.e. its own profiler rank). A dispatcher thread owns the front-end channel:
//! requests go to the replicas round-robin (SGLang's default `round_robin` load balancing);
//! control commands are broadcast and their replies combined.

use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::api::{ControlCommand, EngineError, EngineHandle, EngineMessage, InternalState};
use crate::engine::{launch_with_hooks, EngineConfig, LaunchedEngine};
use crate::hooks::StepHooks;

/// Start one replica per entry of `hooks` (replica `i` reports to `hooks[i]`) and a
/// dispatcher in front of them. With one entry this is a plain [`launch_with_hooks`].
pub fn launch_dp(
    config: EngineConfig,
    mut hooks: Vec<Box<dyn StepHooks>>,
) -> Result<LaunchedEngine, EngineError> {
    if hooks.len() <= 1 {
        return match hooks.pop() {
            Some(h) => launch_with_hooks(config, h),
            None => Err(EngineError::Other("--dp-size must be at least 1".into())),
        };
    }
    let mut replicas: Vec<LaunchedEngine> = Vec::with_capacity(hooks.len());
    for h in hooks {
        match launch_with_hooks(config.clone(), h) {
            Ok(r) => replicas.push(r),
            Err(e) => {
                for r in replicas {
                    r.shutdown();
                }
                return Err(e);
            }
        }
    }
    let tokenizer = replicas[0].tokenizer.clone();
    let model_info = replicas[0].model_info.clone();
    let handles: Vec<EngineHandle> = replicas.iter().map(|r| r.handle.clone()).collect();
    let threads: Vec<JoinHandle<()>> = replicas
        .iter_mut()
        .filter_map(|r| r.thread.take())
        .collect();
    let (tx, rx) = std::sync::mpsc::channel();
    let dispatcher = Dispatcher {
        replicas: Arc::new(handles),
        next: 0,
    };
    let thread = std::thread::Builder::new()
        .name("inferperf-dp-dispatch".into())
        .spawn(move || {
            dispatcher.run(rx);
            for t in threads {
                if t.join().is_err() {
                    tracing::warn!("a DP engine replica panicked");
                }
            }
        })
        .map_err(|e| EngineError::Other(format!("cannot start the DP dispatcher: {e}")))?;
    Ok(LaunchedEngine {
        handle: EngineHandle::new(tx),
        tokenizer,
        model_info,
        thread: Some(thread),
    })
}

struct Dispatcher {
    replicas: Arc<Vec<EngineHandle>>,
    next: usize,
}

impl Dispatcher {
    fn run(mut self, rx: Receiver<EngineMessage>) {
        while let Ok(msg) = rx.recv() {
            match msg {
                EngineMessage::Generate(req, tx, times) => {
                    let i = self.next % self.replicas.len();
                    self.next = self.next.wrapping_add(1);
                    if let Some(r) = self.replicas.get(i) {
                        let _ = r.send_message(EngineMessage::Generate(req, tx, times));
                    }
                }
                // Spread over the replicas like single requests (each replica batches its share).
                EngineMessage::GenerateBatch(batch) => {
                    let n = self.replicas.len().max(1);
                    let mut shares: Vec<Vec<_>> = (0..n).map(|_| Vec::new()).collect();
                    for item in batch {
                        shares[self.next % n].push(item);
                        self.next = self.next.wrapping_add(1);
                    }
                    for (r, share) in self.replicas.iter().zip(shares) {
                        if !share.is_empty() {
                            let _ = r.send_message(EngineMessage::GenerateBatch(share));
                        }
                    }
                }
                EngineMessage::Control(cmd) => self.control(cmd),
                EngineMessage::Shutdown => break,
            }
        }
        for r in self.replicas.iter() {
            r.shutdown();
        }
    }

    /// Broadcast; replies are gathered on a helper thread so the dispatcher never blocks on a
    /// busy replica (requests keep flowing while one replica finishes a long step).
    fn control(&self, cmd: ControlCommand) {
        match cmd {
            ControlCommand::Abort(rid) => {
                for r in self.replicas.iter() {
                    let _ = r.control(ControlCommand::Abort(rid.clone()));
                }
            }
            ControlCommand::PollHooks => {
                for r in self.replicas.iter() {
                    let _ = r.control(ControlCommand::PollHooks);
                }
            }
            ControlCommand::FlushCache(reply) => {
                let rxs = self.broadcast(ControlCommand::FlushCache);
                gather(rxs, move |all: Vec<bool>| {
                    let _ = reply.send(!all.is_empty() && all.iter().all(|&ok| ok));
                });
            }
            ControlCommand::GetInternalState(reply) => {
                let rxs = self.broadcast(ControlCommand::GetInternalState);
                gather(rxs, move |all: Vec<InternalState>| {
                    let _ = reply.send(combine(&all));
                });
            }
        }
    }

    fn broadcast<T>(
        &self,
        make: impl Fn(oneshot::Sender<T>) -> ControlCommand,
    ) -> Vec<oneshot::Receiver<T>> {
        self.replicas
            .iter()
            .filter_map(|r| {
                let (tx, rx) = oneshot::channel();
                r.control(make(tx)).ok().map(|_| rx)
            })
            .collect()
    }
}

fn gather<T: Send + 'static>(
    rxs: Vec<oneshot::Receiver<T>>,
    done: impl FnOnce(Vec<T>) + Send + 'static,
) {
    let spawned = std::thread::Builder::new()
        .name("inferperf-dp-gather".into())
        .spawn(move || {
            let all: Vec<T> = rxs
                .into_iter()
                .filter_map(|rx| rx.blocking_recv().ok())
                .collect();
            done(all);
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot gather DP replies: {e}");
    }
}

/// One scheduler view of all replicas: counts and totals add up, `forward_ct` is the sum of
/// the replicas' steps (each replica keeps its own counter for profiling windows), usage is
/// over the combined KV pools.
fn combine(all: &[InternalState]) -> InternalState {
    let mut out = InternalState::default();
    for s in all {
        out.forward_ct += s.forward_ct;
        out.num_running_reqs += s.num_running_reqs;
        out.num_waiting_reqs += s.num_waiting_reqs;
        out.kv_total_slots += s.kv_total_slots;
        out.kv_free_slots += s.kv_free_slots;
        out.last_gen_throughput += s.last_gen_throughput;
        out.max_total_num_tokens += s.max_total_num_tokens;
        out.max_running_requests += s.max_running_requests;
        out.max_req_input_len = s.max_req_input_len;
        out.prompt_tokens_total += s.prompt_tokens_total;
        out.cached_tokens_total += s.cached_tokens_total;
        out.generation_tokens_total += s.generation_tokens_total;
    }
    out.token_usage = (out.kv_total_slots - out.kv_free_slots.min(out.kv_total_slots)) as f64
        / out.kv_total_slots.max(1) as f64;
    out
}
