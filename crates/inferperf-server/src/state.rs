//! Shared state of all handlers: the engine handle, the tokenizer, model facts, flags and the
//! server-side counters behind `/metrics`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use inferperf_engine::api::{EngineHandle, FinishInfo, ModelInfo, TextTokenizer};

use crate::config::ServerConfig;

/// The parts of a running engine the server needs; what `inferperf_engine::launch` returns,
/// or a simulated engine injected by tests and benchmarks.
#[derive(Clone)]
pub struct EngineParts {
    pub handle: EngineHandle,
    pub tokenizer: Arc<dyn TextTokenizer>,
    pub model_info: ModelInfo,
}

impl From<&inferperf_engine::simulated::SimulatedEngine> for EngineParts {
    /// Serve a simulated engine; the caller keeps the `SimulatedEngine` alive (it stops its
    /// thread when dropped).
    fn from(sim: &inferperf_engine::simulated::SimulatedEngine) -> Self {
        Self {
            handle: sim.handle.clone(),
            tokenizer: sim.tokenizer.clone(),
            model_info: sim.model_info.clone(),
        }
    }
}

impl std::fmt::Debug for EngineParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineParts")
            .field("handle", &self.handle)
            .field("model_info", &self.model_info)
            .finish_non_exhaustive()
    }
}

/// Everything handlers share, behind an `Arc`.
pub struct AppState {
    pub engine: EngineHandle,
    pub tokenizer: Arc<dyn TextTokenizer>,
    pub model_info: ModelInfo,
    pub args: ServerConfig,
    /// The model path reported to clients: the engine's own (`ModelInfo::model_path`), so an
    /// injected engine shows what it is; `--model-path` when the engine leaves it empty.
    pub model_path: String,
    /// `--served-model-name`, else [`AppState::model_path`].
    pub served_model_name: String,
    /// Context length in tokens (the model's, or `--context-length`).
    pub context_length: usize,
    /// Longest prompt the engine accepts (from its first internal state).
    pub max_req_input_len: usize,
    /// KV capacity in tokens, as the engine reported it at start.
    pub max_total_num_tokens: usize,
    /// Max running requests, as the engine reported it at start.
    pub max_running_requests: usize,
    /// Unix seconds at start (`created` of `/v1/models`).
    pub created: u64,
    pub metrics: Metrics,
    live: Mutex<HashSet<String>>,
}

impl AppState {
    /// Assemble the state; `internal` is the engine's first state snapshot.
    pub fn new(
        args: ServerConfig,
        parts: EngineParts,
        internal: &inferperf_engine::api::InternalState,
    ) -> Self {
        let context_length = args
            .context_length
            .unwrap_or(parts.model_info.context_length);
        let max_req_input_len = if internal.max_req_input_len > 0 {
            internal.max_req_input_len.min(context_length)
        } else {
            context_length.saturating_sub(1)
        };
        let model_path = if parts.model_info.model_path.is_empty() {
            args.model_path.clone()
        } else {
            parts.model_info.model_path.clone()
        };
        let served_model_name = args
            .served_model_name
            .clone()
            .unwrap_or_else(|| model_path.clone());
        Self {
            model_path,
            served_model_name,
            engine: parts.handle,
            tokenizer: parts.tokenizer,
            model_info: parts.model_info,
            args,
            context_length,
            max_req_input_len,
            max_total_num_tokens: internal.max_total_num_tokens,
            max_running_requests: internal.max_running_requests,
            created: unix_now(),
            metrics: Metrics::default(),
            live: Mutex::new(HashSet::new()),
        }
    }

    /// The name accepted in `model` and reported by `/v1/models`.
    pub fn served_model_name(&self) -> &str {
        &self.served_model_name
    }

    /// Whether a client-supplied `model` names the served model (its served name, its path or
    /// the `--model-path` flag).
    pub fn accepts_model(&self, model: &str) -> bool {
        model == self.served_model_name || model == self.model_path || model == self.args.model_path
    }

    /// Register a live request id; `false` when one with that id is already running.
    pub fn register_rid(&self, rid: &str) -> bool {
        self.live_set().insert(rid.to_string())
    }

    /// Forget a finished or dropped request id.
    pub fn release_rid(&self, rid: &str) {
        self.live_set().remove(rid);
    }

    /// Number of requests the front end is currently serving.
    pub fn num_live(&self) -> usize {
        self.live_set().len()
    }

    fn live_set(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A panic while holding this lock cannot leave the set inconsistent (single insert or
        // remove), so a poisoned lock is safe to keep using.
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Server-side Prometheus counters, updated when a request finishes (as SGLang's tokenizer
/// manager does), so they do not depend on what a (possibly simulated) engine reports.
#[derive(Debug, Default)]
pub struct Metrics {
    pub prompt_tokens_total: AtomicU64,
    pub generation_tokens_total: AtomicU64,
    pub cached_tokens_total: AtomicU64,
    pub num_requests_total: AtomicU64,
    pub num_aborted_requests_total: AtomicU64,
    /// Sum of end-to-end latencies in microseconds (for `e2e_request_latency_seconds_sum`).
    pub e2e_latency_us_total: AtomicU64,
}

impl Metrics {
    /// Account one finished request.
    pub fn record_finish(&self, info: &FinishInfo) {
        self.prompt_tokens_total
            .fetch_add(info.prompt_tokens as u64, Ordering::Relaxed);
        self.generation_tokens_total
            .fetch_add(info.completion_tokens as u64, Ordering::Relaxed);
        self.cached_tokens_total
            .fetch_add(info.cached_tokens as u64, Ordering::Relaxed);
        self.num_requests_total.fetch_add(1, Ordering::Relaxed);
        if matches!(
            info.reason,
            inferperf_engine::api::FinishReason::Abort { .. }
        ) {
            self.num_aborted_requests_total
                .fetch_add(1, Ordering::Relaxed);
        }
        let us = (info.e2e_latency.max(0.0) * 1e6) as u64;
        self.e2e_latency_us_total.fetch_add(us, Ordering::Relaxed);
    }
}

/// Seconds since the Unix epoch (wall clock; only for `created` fields, never for durations).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
