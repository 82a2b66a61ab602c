//! A simulated engine: the engine thread protocol of [`crate::api`] with no model behind it,
//! for measuring and testing clients. It is labelled as simulated everywhere it shows
//! (`ModelInfo.architecture = "Simulated"`, `load_format = "simulated"`), so its numbers are
//! never mistaken for a model's.
//!
//! Two schedules:
//! * [`TokenSchedule::ZeroLatency`]: every token of a request is emitted as soon as the request
//!   arrives (the client ceiling: all time and CPU beyond this is the client's or the server's);
//! * [`TokenSchedule::Fixed`]: the first token `ttft` after submission, then one every `itl`,
//!   against absolute deadlines (no drift; never early), so tests know every timestamp.
//!
//! The tokenizer ([`SimTokenizer`], from `inferperf-tokenizer`) is trivial and exact: every
//! generated token re-tokenizes to exactly one token.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use crate::api::{
    ControlCommand, EngineError, EngineHandle, EngineMessage, FinishInfo, FinishReason,
    GenerateEvent, GenerateRequest, InternalState, ModelInfo,
};

pub use inferperf_tokenizer::SimTokenizer;

const NUM_SPECIAL: u32 = SimTokenizer::NUM_SPECIAL;

/// When the simulated engine emits tokens.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TokenSchedule {
    /// All tokens immediately.
    ZeroLatency,
    /// First token `ttft` after submission, then one every `itl` (absolute deadlines).
    Fixed { ttft: Duration, itl: Duration },
}

impl TokenSchedule {
    /// Human label, e.g. `simulated zero-latency` or `simulated ttft=50ms itl=10ms`.
    pub fn label(&self) -> String {
        match self {
            TokenSchedule::ZeroLatency => "simulated zero-latency".into(),
            TokenSchedule::Fixed { ttft, itl } => format!(
                "simulated ttft={}ms itl={}ms",
                ttft.as_secs_f64() * 1e3,
                itl.as_secs_f64() * 1e3
            ),
        }
    }
}

/// A running simulated engine: its handle, tokenizer and model info, ready to be injected into
/// the server (or driven directly).
pub struct SimulatedEngine {
    pub handle: EngineHandle,
    pub tokenizer: Arc<SimTokenizer>,
    pub model_info: ModelInfo,
    pub schedule: TokenSchedule,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SimulatedEngine {
    /// Start the engine thread with a vocabulary of `vocab_size` tokens.
    pub fn start(schedule: TokenSchedule, vocab_size: u32) -> Result<Self, EngineError> {
        let vocab_size = vocab_size.max(NUM_SPECIAL + 26);
        let (tx, rx) = std::sync::mpsc::channel();
        let tokenizer = Arc::new(SimTokenizer::new(vocab_size));
        let thread = std::thread::Builder::new()
            .name("inferperf-simulated-engine".into())
            .spawn(move || Sim::new(schedule, vocab_size).run(rx))
            .map_err(|e| EngineError::Other(format!("cannot start the simulated engine: {e}")))?;
        Ok(Self {
            handle: EngineHandle::new(tx),
            tokenizer,
            model_info: model_info(&schedule, vocab_size),
            schedule,
            thread: Some(thread),
        })
    }
}

impl Drop for SimulatedEngine {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Model info that says "simulated" wherever a reader looks; `model_path` carries the
/// schedule label (e.g. `simulated-zero-latency`), so `/v1/models` shows it too.
pub fn model_info(schedule: &TokenSchedule, vocab_size: u32) -> ModelInfo {
    ModelInfo {
        model_path: schedule.label().replace(' ', "-"),
        tokenizer_path: "simulated".into(),
        architecture: "Simulated".into(),
        load_format: "simulated".into(),
        context_length: 1 << 20,
        vocab_size: vocab_size as usize,
        hidden_size: 0,
        num_hidden_layers: 0,
        num_attention_heads: 0,
        num_key_value_heads: 0,
        is_generation: true,
    }
}

struct Live {
    tx: UnboundedSender<GenerateEvent>,
    rid: String,
    submitted: Instant,
    prompt_tokens: usize,
    max_new: usize,
    emitted: usize,
    stream_interval: usize,
    pending: Vec<u32>,
    pending_text: String,
}

struct Sim {
    schedule: TokenSchedule,
    vocab: u32,
    live: HashMap<u64, Live>,
    /// (deadline, key) of the next token of each live request.
    due: BinaryHeap<Reverse<(Instant, u64)>>,
    next_key: u64,
    state: InternalState,
}

impl Sim {
    fn new(schedule: TokenSchedule, vocab: u32) -> Self {
        Self {
            schedule,
            vocab,
            live: HashMap::new(),
            due: BinaryHeap::new(),
            next_key: 0,
            state: InternalState {
                max_total_num_tokens: usize::MAX,
                max_running_requests: usize::MAX,
                max_req_input_len: 1 << 20,
                ..Default::default()
            },
        }
    }

    fn run(mut self, rx: Receiver<EngineMessage>) {
        loop {
            let msg = match self.due.peek() {
                None => match rx.recv() {
                    Ok(m) => Some(m),
                    Err(_) => return,
                },
                Some(Reverse((deadline, _))) => {
                    let now = Instant::now();
                    if *deadline <= now {
                        None
                    } else {
                        match rx.recv_timeout(*deadline - now) {
                            Ok(m) => Some(m),
                            Err(RecvTimeoutError::Timeout) => None,
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                }
            };
            match msg {
                Some(EngineMessage::Shutdown) => return,
                Some(EngineMessage::Generate(req, tx, _)) => self.submit(req, tx),
                Some(EngineMessage::GenerateBatch(batch)) => {
                    for (req, tx) in batch {
                        self.submit(req, tx);
                    }
                }
                Some(EngineMessage::Control(c)) => self.control(c),
                None => {}
            }
            self.emit_due();
        }
    }

    fn submit(&mut self, req: GenerateRequest, tx: UnboundedSender<GenerateEvent>) {
        let now = Instant::now();
        let key = self.next_key;
        self.next_key += 1;
        self.state.prompt_tokens_total += req.input_ids.len() as u64;
        let live = Live {
            tx,
            rid: req.rid,
            submitted: now,
            prompt_tokens: req.input_ids.len(),
            max_new: req.sampling.max_new_tokens,
            emitted: 0,
            stream_interval: req.stream_interval.max(1),
            pending: Vec::new(),
            pending_text: String::new(),
        };
        if live.max_new == 0 {
            finish(live, 0);
            return;
        }
        let first = match self.schedule {
            TokenSchedule::ZeroLatency => now,
            TokenSchedule::Fixed { ttft, .. } => now + ttft,
        };
        self.live.insert(key, live);
        self.due.push(Reverse((first, key)));
        self.state.num_running_reqs = self.live.len();
    }

    fn control(&mut self, c: ControlCommand) {
        match c {
            ControlCommand::FlushCache(reply) => {
                let _ = reply.send(true);
            }
            ControlCommand::Abort(rid) => {
                let keys: Vec<u64> = self
                    .live
                    .iter()
                    .filter(|(_, l)| rid.as_ref().is_none_or(|r| *r == l.rid))
                    .map(|(k, _)| *k)
                    .collect();
                for k in keys {
                    if let Some(l) = self.live.remove(&k) {
                        let info = FinishInfo {
                            reason: FinishReason::Abort {
                                message: "aborted".into(),
                            },
                            prompt_tokens: l.prompt_tokens,
                            completion_tokens: l.emitted,
                            cached_tokens: 0,
                            e2e_latency: l.submitted.elapsed().as_secs_f64(),
                        };
                        let _ = l.tx.send(GenerateEvent::Finished(info));
                    }
                }
                self.state.num_running_reqs = self.live.len();
            }
            ControlCommand::GetInternalState(reply) => {
                let _ = reply.send(self.state.clone());
            }
            // No step hooks in the simulated engine.
            ControlCommand::PollHooks => {}
        }
    }

    /// Emit every token whose deadline has passed; a request whose receiver is gone is dropped.
    fn emit_due(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((deadline, key))) = self.due.peek().copied() {
            if deadline > now {
                break;
            }
            self.due.pop();
            let Some(mut l) = self.live.remove(&key) else {
                continue;
            };
            self.state.forward_ct += 1;
            // Zero latency: the whole request at once. Fixed: one token per deadline.
            let burst = match self.schedule {
                TokenSchedule::ZeroLatency => l.max_new - l.emitted,
                TokenSchedule::Fixed { .. } => 1,
            };
            let mut alive = true;
            for _ in 0..burst {
                let id =
                    NUM_SPECIAL + ((l.emitted as u32 + key as u32) % (self.vocab - NUM_SPECIAL));
                l.pending.push(id);
                l.pending_text.push_str(&SimTokenizer::word(id));
                l.emitted += 1;
                self.state.generation_tokens_total += 1;
                if l.pending.len() >= l.stream_interval || l.emitted == l.max_new {
                    let ev = GenerateEvent::Tokens {
                        token_ids: std::mem::take(&mut l.pending),
                        text: std::mem::take(&mut l.pending_text),
                        cached_tokens: 0,
                    };
                    if l.tx.send(ev).is_err() {
                        alive = false;
                        break;
                    }
                }
            }
            if !alive {
                continue;
            }
            if l.emitted >= l.max_new {
                let n = l.emitted;
                finish(l, n);
            } else {
                let next = match self.schedule {
                    TokenSchedule::ZeroLatency => now,
                    TokenSchedule::Fixed { ttft, itl } => {
                        l.submitted + ttft + itl * (l.emitted as u32)
                    }
                };
                self.live.insert(key, l);
                self.due.push(Reverse((next, key)));
            }
        }
        self.state.num_running_reqs = self.live.len();
    }
}

fn finish(l: Live, completion_tokens: usize) {
    let info = FinishInfo {
        reason: FinishReason::Length {
            length: completion_tokens,
        },
        prompt_tokens: l.prompt_tokens,
        completion_tokens,
        cached_tokens: 0,
        e2e_latency: l.submitted.elapsed().as_secs_f64(),
    };
    let _ = l.tx.send(GenerateEvent::Finished(info));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SamplingParams;

    fn collect(
        engine: &SimulatedEngine,
        max_new: usize,
        interval: usize,
    ) -> (Vec<GenerateEvent>, Vec<Instant>, Instant) {
        let req = GenerateRequest {
            rid: "r".into(),
            input_ids: vec![5, 6, 7],
            sampling: SamplingParams {
                max_new_tokens: max_new,
                ..Default::default()
            },
            stream_interval: interval,
        };
        let t0 = Instant::now();
        let mut rx = engine
            .handle
            .generate(req)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut evs = vec![];
        let mut times = vec![];
        while let Some(ev) = rx.blocking_recv() {
            times.push(Instant::now());
            let last = matches!(ev, GenerateEvent::Finished(_));
            evs.push(ev);
            if last {
                break;
            }
        }
        (evs, times, t0)
    }

    #[test]
    fn zero_latency_streams_every_token_then_finishes() {
        let e = SimulatedEngine::start(TokenSchedule::ZeroLatency, 1000)
            .unwrap_or_else(|e| panic!("{e}"));
        let (evs, _, _) = collect(&e, 16, 1);
        assert_eq!(evs.len(), 17);
        match evs.last() {
            Some(GenerateEvent::Finished(f)) => {
                assert_eq!(f.completion_tokens, 16);
                assert_eq!(f.prompt_tokens, 3);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(e.model_info.load_format, "simulated");
    }

    #[test]
    fn fixed_schedule_is_never_early() {
        let (ttft, itl) = (Duration::from_millis(5), Duration::from_millis(2));
        let e = SimulatedEngine::start(TokenSchedule::Fixed { ttft, itl }, 1000)
            .unwrap_or_else(|e| panic!("{e}"));
        let (evs, times, t0) = collect(&e, 4, 1);
        assert_eq!(evs.len(), 5);
        for (k, t) in times.iter().take(4).enumerate() {
            assert!(*t >= t0 + ttft + itl * k as u32);
        }
    }
}
