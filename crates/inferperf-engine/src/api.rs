//! The engine's public contract, shared by the HTTP server, the in-process benchmarks and tests.
//!
//! Everything here is plain data plus a handle around channels, so that the front end never
//! touches the model or the KV pool directly.

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::hooks::FrontEndTimes;

/// Sampling parameters, with SGLang's names and defaults (`sampling_params` of `/generate`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplingParams {
    /// Maximum number of generated tokens (SGLang default 128).
    pub max_new_tokens: usize,
    /// Minimum number of generated tokens before EOS/stop may end the request.
    pub min_new_tokens: usize,
    /// 0.0 means greedy.
    pub temperature: f32,
    /// -1 (or 0) means the whole vocabulary.
    pub top_k: i32,
    pub top_p: f32,
    pub min_p: f32,
    /// Per-request seed; `None` derives one from the server's `--random-seed` and the request id.
    pub seed: Option<u64>,
    /// Stop strings; generation ends when the decoded text contains one.
    pub stop: Vec<String>,
    /// Extra stop token ids, on top of the model's EOS ids.
    pub stop_token_ids: Vec<u32>,
    pub ignore_eos: bool,
    pub skip_special_tokens: bool,
    /// Keep the matched stop string in the output text (SGLang `no_stop_trim`).
    pub no_stop_trim: bool,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            max_new_tokens: 128,
            min_new_tokens: 0,
            temperature: 1.0,
            top_k: -1,
            top_p: 1.0,
            min_p: 0.0,
            seed: None,
            stop: Vec::new(),
            stop_token_ids: Vec::new(),
            ignore_eos: false,
            skip_special_tokens: true,
            no_stop_trim: false,
        }
    }
}

/// One generation request, already tokenized by the front end.
#[derive(Clone, Debug)]
pub struct GenerateRequest {
    /// Request id (SGLang `rid`); unique among live requests.
    pub rid: String,
    pub input_ids: Vec<u32>,
    pub sampling: SamplingParams,
    /// Emit a `Tokens` event every this many tokens (SGLang `--stream-interval`, default 1).
    /// Non-streaming callers may set it to `usize::MAX` and read only `Finished`.
    pub stream_interval: usize,
}

/// Why a request ended, serialized as SGLang's `meta_info.finish_reason`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FinishReason {
    /// `max_new_tokens` (or the context length) reached: `{"type":"length","length":N}`.
    Length { length: usize },
    /// EOS, a stop token or a stop string: `{"type":"stop","matched":<token id or string>}`.
    Stop { matched: StopMatch },
    /// Aborted by `/abort_request`, a closed client or an engine error.
    Abort { message: String },
}

/// What ended a request with `FinishReason::Stop`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StopMatch {
    Token(u32),
    Text(String),
}

/// Events streamed back to the submitter of one request, in order; `Finished` is always last.
#[derive(Clone, Debug)]
pub enum GenerateEvent {
    /// Newly generated tokens and the text they complete (never a split UTF-8 character),
    /// with the prompt tokens the prefix cache served (known once the prompt is prefilled;
    /// SGLang reports it in every streamed `meta_info`).
    Tokens {
        token_ids: Vec<u32>,
        text: String,
        cached_tokens: usize,
    },
    /// The request ended; no further events follow.
    Finished(FinishInfo),
}

/// Final accounting of one request (`meta_info` / OpenAI `usage`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinishInfo {
    pub reason: FinishReason,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// Prompt tokens served from the prefix cache (0 without a radix cache).
    pub cached_tokens: usize,
    /// Seconds from submission to finish, measured by the engine on a monotonic clock.
    pub e2e_latency: f64,
}

/// A snapshot of the scheduler for `/get_server_info`'s `internal_states` and for tests.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InternalState {
    /// Forward steps run since start (SGLang `forward_ct`); each step is one forward batch.
    pub forward_ct: u64,
    pub num_running_reqs: usize,
    pub num_waiting_reqs: usize,
    /// Used KV slots / total KV slots.
    pub token_usage: f64,
    pub kv_total_slots: usize,
    pub kv_free_slots: usize,
    /// Decode tokens per second over the last logging interval.
    pub last_gen_throughput: f64,
    pub max_total_num_tokens: usize,
    pub max_running_requests: usize,
    /// Longest prompt the engine accepts.
    pub max_req_input_len: usize,
    /// Cumulative prompt tokens and cached prompt tokens (Prometheus counters).
    pub prompt_tokens_total: u64,
    pub cached_tokens_total: u64,
    pub generation_tokens_total: u64,
}

/// Errors the engine reports to callers.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the engine has stopped")]
    Stopped,
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("{0}")]
    Other(String),
}

/// Tokenizer errors are about the request's text, ids or messages (or the tokenizer files the
/// engine was given): invalid requests.
impl From<inferperf_tokenizer::TokenizerError> for EngineError {
    fn from(e: inferperf_tokenizer::TokenizerError) -> Self {
        EngineError::InvalidRequest(e.to_string())
    }
}

/// Commands applied by the engine thread between two steps, each with a reply channel.
#[derive(Debug)]
pub enum ControlCommand {
    /// Drop the prefix cache; replies false when requests are running (as SGLang does).
    FlushCache(oneshot::Sender<bool>),
    /// Abort one request by rid (or all when `None`).
    Abort(Option<String>),
    GetInternalState(oneshot::Sender<InternalState>),
    /// Wake the engine thread and let its step hooks apply commands queued on their own
    /// channel ([`crate::hooks::StepHooks::on_control`]), e.g. a profiler start/stop, between
    /// steps and also while the engine is idle. Engines without hooks ignore it.
    PollHooks,
}

/// Messages on the engine's input channel.
#[derive(Debug)]
pub enum EngineMessage {
    /// One request, with the front end's times when it has them (the lifecycle's arrival and
    /// tokenization; see [`crate::hooks::RequestStage::Received`]).
    Generate(
        GenerateRequest,
        mpsc::UnboundedSender<GenerateEvent>,
        Option<FrontEndTimes>,
    ),
    /// Several requests admitted together, before the next step: one static batch (the
    /// offline and one-batch benchmarks), never split by a step starting in between.
    GenerateBatch(Vec<(GenerateRequest, mpsc::UnboundedSender<GenerateEvent>)>),
    Control(ControlCommand),
    Shutdown,
}

/// Cloneable handle to a running engine thread.
#[derive(Clone, Debug)]
pub struct EngineHandle {
    tx: std::sync::mpsc::Sender<EngineMessage>,
}

impl EngineHandle {
    /// Wrap the sending side of an engine thread's input channel.
    pub fn new(tx: std::sync::mpsc::Sender<EngineMessage>) -> Self {
        Self { tx }
    }

    /// Submit a request; events arrive on the returned receiver. Dropping the receiver aborts
    /// the request and frees its KV slots.
    pub fn generate(
        &self,
        req: GenerateRequest,
    ) -> Result<mpsc::UnboundedReceiver<GenerateEvent>, EngineError> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.send(EngineMessage::Generate(req, tx, None))?;
        Ok(rx)
    }

    /// [`EngineHandle::generate`] with the times the front end took (arrival, tokenized),
    /// which start the request's lifecycle.
    pub fn generate_timed(
        &self,
        req: GenerateRequest,
        times: FrontEndTimes,
    ) -> Result<mpsc::UnboundedReceiver<GenerateEvent>, EngineError> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.send(EngineMessage::Generate(req, tx, Some(times)))?;
        Ok(rx)
    }

    /// Submit requests that the scheduler sees at once (they can share the first step).
    pub fn generate_batch(
        &self,
        reqs: Vec<GenerateRequest>,
    ) -> Result<Vec<mpsc::UnboundedReceiver<GenerateEvent>>, EngineError> {
        let mut batch = Vec::with_capacity(reqs.len());
        let mut receivers = Vec::with_capacity(reqs.len());
        for r in reqs {
            let (tx, rx) = mpsc::unbounded_channel();
            batch.push((r, tx));
            receivers.push(rx);
        }
        self.send(EngineMessage::GenerateBatch(batch))?;
        Ok(receivers)
    }

    /// Send a control command; the reply (if any) comes through the command's own channel.
    pub fn control(&self, cmd: ControlCommand) -> Result<(), EngineError> {
        self.send(EngineMessage::Control(cmd))
    }

    /// Convenience: ask for the scheduler state.
    pub async fn internal_state(&self) -> Result<InternalState, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.control(ControlCommand::GetInternalState(tx))?;
        rx.await.map_err(|_| EngineError::Stopped)
    }

    /// Pass a message on as is (a dispatcher in front of several engines forwards requests
    /// with their original response channel).
    pub fn send_message(&self, msg: EngineMessage) -> Result<(), EngineError> {
        self.send(msg)
    }

    /// Ask the engine thread to finish and exit.
    pub fn shutdown(&self) {
        let _ = self.tx.send(EngineMessage::Shutdown);
    }

    fn send(&self, msg: EngineMessage) -> Result<(), EngineError> {
        self.tx.send(msg).map_err(|_| EngineError::Stopped)
    }
}

/// Tokenization and chat templating (from `inferperf-tokenizer`, re-exported so engine users
/// keep their paths).
pub use inferperf_tokenizer::TextTokenizer;

/// What the server reports in `/get_model_info`, `/v1/models` and `/get_server_info`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// As given by `--model-path` (`default` for the built-in model).
    pub model_path: String,
    pub tokenizer_path: String,
    /// e.g. `LlamaForCausalLM`.
    pub architecture: String,
    /// `dummy`, `gguf` or `safetensors`: where the weights came from.
    pub load_format: String,
    pub context_length: usize,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub is_generation: bool,
}
