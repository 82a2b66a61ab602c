//! A small deterministic engine behind the real `EngineHandle` contract, for server tests that
//! need exact outputs or a request that stays running until the client goes away.
//!
//! - Tokenizer: bytes are tokens 0..=255, BOS = 256, EOS = 257 (vocabulary 258).
//! - Generation: the i-th generated token is `b'a' + i % 26`; a request ends with `length` at
//!   `max_new_tokens`, or with `stop` when the text so far ends with a stop string (the stop
//!   string is not trimmed: trimming is the real engine's job).
//! - A request whose rid starts with `hold` emits one token and then stays running until it is
//!   aborted (`/abort_request`) or its receiver is dropped (client gone); each such abort is
//!   reported on [`FakeEngine::aborted`].

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use inferperf_engine::api::{
    ControlCommand, EngineHandle, EngineMessage, FinishInfo, FinishReason, GenerateEvent,
    GenerateRequest, InternalState, ModelInfo, StopMatch, TextTokenizer,
};
use inferperf_engine::tokenizer::TokenizerError;
use inferperf_server::EngineParts;
use tokio::sync::mpsc;

pub const BOS: u32 = 256;
pub const EOS: u32 = 257;
pub const VOCAB: usize = 258;
pub const CONTEXT: usize = 512;

pub struct ByteTokenizer;

impl TextTokenizer for ByteTokenizer {
    fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, TokenizerError> {
        let mut ids: Vec<u32> = Vec::with_capacity(text.len() + 1);
        if add_special_tokens {
            ids.push(BOS);
        }
        ids.extend(text.bytes().map(u32::from));
        Ok(ids)
    }

    fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, TokenizerError> {
        let mut bytes = Vec::new();
        for &id in ids {
            match id {
                0..=255 => bytes.push(id as u8),
                BOS if !skip_special_tokens => bytes.extend_from_slice(b"<s>"),
                EOS if !skip_special_tokens => bytes.extend_from_slice(b"</s>"),
                _ => {}
            }
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn apply_chat_template(
        &self,
        messages: &serde_json::Value,
        add_generation_prompt: bool,
    ) -> Result<String, TokenizerError> {
        let list = messages
            .as_array()
            .ok_or_else(|| TokenizerError::Render("messages must be an array".into()))?;
        let mut out = String::new();
        for m in list {
            let role = m["role"].as_str().unwrap_or("user");
            let content = m["content"].as_str().unwrap_or("");
            out.push_str(&format!("<|{role}|>{content}\n"));
        }
        if add_generation_prompt {
            out.push_str("<|assistant|>");
        }
        Ok(out)
    }

    fn vocab_size(&self) -> usize {
        VOCAB
    }

    fn eos_token_ids(&self) -> Vec<u32> {
        vec![EOS]
    }
}

struct Running {
    req: GenerateRequest,
    tx: mpsc::UnboundedSender<GenerateEvent>,
    generated: Vec<u32>,
    text: String,
    unsent: Vec<u32>,
    unsent_text: String,
    started: Instant,
    hold: bool,
}

/// The fake engine's handle, tokenizer and test hooks.
pub struct FakeEngine {
    pub handle: EngineHandle,
    /// Rids of requests aborted because their receiver was dropped or `/abort_request` hit.
    pub aborted: Arc<Mutex<std_mpsc::Receiver<String>>>,
}

impl FakeEngine {
    pub fn start() -> Self {
        let (tx, rx) = std_mpsc::channel();
        let (aborted_tx, aborted_rx) = std_mpsc::channel();
        std::thread::Builder::new()
            .name("fake-engine".into())
            .spawn(move || run(rx, aborted_tx))
            .expect("spawn fake engine");
        Self {
            handle: EngineHandle::new(tx),
            aborted: Arc::new(Mutex::new(aborted_rx)),
        }
    }

    pub fn parts(&self) -> EngineParts {
        EngineParts {
            handle: self.handle.clone(),
            tokenizer: Arc::new(ByteTokenizer),
            model_info: ModelInfo {
                model_path: "fake".into(),
                tokenizer_path: "fake-bytes".into(),
                architecture: "FakeForCausalLM".into(),
                load_format: "dummy".into(),
                context_length: CONTEXT,
                vocab_size: VOCAB,
                hidden_size: 8,
                num_hidden_layers: 1,
                num_attention_heads: 1,
                num_key_value_heads: 1,
                is_generation: true,
            },
        }
    }

    /// Block (on the blocking pool) until the engine reports an abort; returns its rid.
    pub async fn next_abort(&self) -> String {
        let aborted = self.aborted.clone();
        tokio::task::spawn_blocking(move || {
            aborted
                .lock()
                .expect("abort receiver lock")
                .recv_timeout(Duration::from_secs(60))
                .expect("the fake engine reported no abort within 60 s")
        })
        .await
        .expect("join")
    }
}

/// The text the fake engine generates for `n` tokens.
pub fn expected_text(n: usize) -> String {
    (0..n).map(|i| (b'a' + (i % 26) as u8) as char).collect()
}

fn run(rx: std_mpsc::Receiver<EngineMessage>, aborted: std_mpsc::Sender<String>) {
    let mut running: Vec<Running> = Vec::new();
    let mut forward_ct = 0u64;
    loop {
        // Wait for work when idle; poll (1 ms) while only held requests remain, so that
        // dropped receivers are noticed; otherwise take what is queued and step.
        let only_held = running.iter().all(|r| r.hold);
        let msg = if running.is_empty() {
            match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => return,
            }
        } else if only_held {
            match rx.recv_timeout(Duration::from_millis(1)) {
                Ok(m) => Some(m),
                Err(std_mpsc::RecvTimeoutError::Timeout) => None,
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
            }
        } else {
            match rx.try_recv() {
                Ok(m) => Some(m),
                Err(std_mpsc::TryRecvError::Empty) => None,
                Err(std_mpsc::TryRecvError::Disconnected) => return,
            }
        };
        match msg {
            Some(EngineMessage::Shutdown) => return,
            Some(EngineMessage::Generate(req, tx, _)) => {
                let hold = req.rid.starts_with("hold");
                running.push(Running {
                    req,
                    tx,
                    generated: Vec::new(),
                    text: String::new(),
                    unsent: Vec::new(),
                    unsent_text: String::new(),
                    started: Instant::now(),
                    hold,
                });
                continue;
            }
            Some(EngineMessage::GenerateBatch(_)) => continue,
            Some(EngineMessage::Control(cmd)) => {
                match cmd {
                    ControlCommand::FlushCache(reply) => {
                        let _ = reply.send(running.is_empty());
                    }
                    ControlCommand::Abort(rid) => {
                        running.retain(|r| {
                            let hit = rid.as_deref().is_none_or(|rid| rid == r.req.rid);
                            if hit {
                                finish(
                                    r,
                                    FinishReason::Abort {
                                        message: "Abort requested".into(),
                                    },
                                );
                                let _ = aborted.send(r.req.rid.clone());
                            }
                            !hit
                        });
                    }
                    ControlCommand::GetInternalState(reply) => {
                        let _ = reply.send(InternalState {
                            forward_ct,
                            num_running_reqs: running.len(),
                            num_waiting_reqs: 0,
                            token_usage: 0.0,
                            kv_total_slots: 100_000,
                            kv_free_slots: 100_000,
                            last_gen_throughput: 123.0,
                            max_total_num_tokens: 100_000,
                            max_running_requests: 64,
                            max_req_input_len: CONTEXT - 1,
                            prompt_tokens_total: 0,
                            cached_tokens_total: 0,
                            generation_tokens_total: 0,
                        });
                    }
                    ControlCommand::PollHooks => {}
                }
                continue;
            }
            None => {}
        }

        forward_ct += 1;
        let mut done = Vec::new();
        for (i, r) in running.iter_mut().enumerate() {
            if r.tx.is_closed() {
                let _ = aborted.send(r.req.rid.clone());
                done.push(i);
                continue;
            }
            if r.hold && !r.generated.is_empty() {
                continue;
            }
            let n = r.generated.len();
            let token = u32::from(b'a' + (n % 26) as u8);
            let piece = ((b'a' + (n % 26) as u8) as char).to_string();
            r.generated.push(token);
            r.text.push_str(&piece);
            r.unsent.push(token);
            r.unsent_text.push_str(&piece);
            let stop_hit = r
                .req
                .sampling
                .stop
                .iter()
                .find(|s| r.text.ends_with(s.as_str()))
                .cloned();
            let finished = stop_hit.is_some() || r.generated.len() >= r.req.sampling.max_new_tokens;
            if r.unsent.len() >= r.req.stream_interval || (r.hold && r.generated.len() == 1) {
                flush(r);
            }
            if finished {
                flush(r);
                let reason = match stop_hit {
                    Some(s) => FinishReason::Stop {
                        matched: StopMatch::Text(s),
                    },
                    None => FinishReason::Length {
                        length: r.generated.len(),
                    },
                };
                finish(r, reason);
                done.push(i);
            }
        }
        for i in done.into_iter().rev() {
            running.remove(i);
        }
    }
}

fn flush(r: &mut Running) {
    if r.unsent.is_empty() {
        return;
    }
    let _ = r.tx.send(GenerateEvent::Tokens {
        token_ids: std::mem::take(&mut r.unsent),
        text: std::mem::take(&mut r.unsent_text),
        cached_tokens: 0,
    });
}

fn finish(r: &Running, reason: FinishReason) {
    let _ = r.tx.send(GenerateEvent::Finished(FinishInfo {
        reason,
        prompt_tokens: r.req.input_ids.len(),
        completion_tokens: r.generated.len(),
        cached_tokens: 0,
        e2e_latency: r.started.elapsed().as_secs_f64(),
    }));
}
