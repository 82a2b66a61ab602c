//! One submitted engine request as handlers see it: its event receiver, bookkeeping of the
//! live request ids and of the Prometheus counters, and fan-in of several requests (batches).
//!
//! Dropping an [`ActiveRequest`] drops the engine's event receiver, which aborts the request
//! and frees its KV slots; that is how a closed client connection cancels generation.

use std::sync::Arc;
use std::time::Instant;

use futures_util::stream::{self, BoxStream, SelectAll, StreamExt};
use inferperf_engine::api::{
    FinishInfo, FinishReason, GenerateEvent, GenerateRequest, SamplingParams,
};
use inferperf_engine::hooks::FrontEndTimes;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::api_error::ApiError;
use crate::state::AppState;

/// A request submitted to the engine, until it finishes or is dropped.
pub struct ActiveRequest {
    pub rid: String,
    pub prompt_tokens: usize,
    rx: UnboundedReceiver<GenerateEvent>,
    state: Arc<AppState>,
    completion_tokens: usize,
    started: Instant,
    finished: bool,
}

impl ActiveRequest {
    /// The next event; `None` after `Finished`. A channel closed before `Finished` (engine
    /// stopped) yields a synthetic `Finished` with an abort reason, so callers always see one.
    pub async fn recv(&mut self) -> Option<GenerateEvent> {
        if self.finished {
            return None;
        }
        let event = match self.rx.recv().await {
            Some(event) => event,
            None => GenerateEvent::Finished(
                self.abort_info("the engine stopped before the request finished"),
            ),
        };
        match &event {
            GenerateEvent::Tokens { token_ids, .. } => self.completion_tokens += token_ids.len(),
            GenerateEvent::Finished(info) => {
                self.finished = true;
                self.state.metrics.record_finish(info);
                tracing::debug!(rid = %self.rid, reason = ?info.reason,
                    prompt_tokens = info.prompt_tokens, completion_tokens = info.completion_tokens,
                    "request finished");
            }
        }
        Some(event)
    }

    /// The finish of this request cut short with `message`, as far as it got.
    fn abort_info(&self, message: &str) -> FinishInfo {
        FinishInfo {
            reason: FinishReason::Abort {
                message: message.to_string(),
            },
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            cached_tokens: 0,
            e2e_latency: self.started.elapsed().as_secs_f64(),
        }
    }
}

impl Drop for ActiveRequest {
    /// Dropped before `Finished`: the client went away (or the handler gave up on it). The
    /// engine aborts the request when its receiver drops; here it is counted like any other
    /// aborted request (`sglang:num_aborted_requests_total`).
    fn drop(&mut self) {
        if !self.finished {
            tracing::debug!(rid = %self.rid, "client went away; aborting the request");
            let info = self.abort_info("the client disconnected");
            self.state.metrics.record_finish(&info);
        }
        self.state.release_rid(&self.rid);
    }
}

/// A fresh SGLang-style request id (32 hex digits, like `uuid4().hex`).
pub fn new_rid() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Submit one tokenized request that arrived at `arrival` (its lifecycle starts there; it
/// counts as tokenized now). `stream_interval` is `usize::MAX` for non-streamed requests.
pub fn submit(
    state: &Arc<AppState>,
    rid: String,
    input_ids: Vec<u32>,
    sampling: SamplingParams,
    stream_interval: usize,
    arrival: Instant,
) -> Result<ActiveRequest, ApiError> {
    if !state.register_rid(&rid) {
        return Err(ApiError::invalid_param(
            "rid",
            format!("a request with rid `{rid}` is already running"),
        ));
    }
    let prompt_tokens = input_ids.len();
    let req = GenerateRequest {
        rid: rid.clone(),
        input_ids,
        sampling,
        stream_interval,
    };
    let times = FrontEndTimes {
        arrival,
        tokenized: Instant::now(),
    };
    match state.engine.generate_timed(req, times) {
        Ok(rx) => Ok(ActiveRequest {
            rid,
            prompt_tokens,
            rx,
            state: state.clone(),
            completion_tokens: 0,
            started: Instant::now(),
            finished: false,
        }),
        Err(err) => {
            state.release_rid(&rid);
            Err(err.into())
        }
    }
}

/// Events of several requests, each tagged with the request's position, in arrival order.
pub type IndexedEvents = SelectAll<BoxStream<'static, (usize, GenerateEvent)>>;

/// Fan in the events of `requests` (position = index in the vector).
pub fn merge(requests: Vec<ActiveRequest>) -> IndexedEvents {
    stream::select_all(requests.into_iter().enumerate().map(|(i, req)| {
        stream::unfold(req, move |mut req| async move {
            let event = req.recv().await?;
            Some(((i, event), req))
        })
        .boxed()
    }))
}

/// The whole output of one request, for non-streamed replies.
#[derive(Debug, Default)]
pub struct Collected {
    pub text: String,
    pub output_ids: Vec<u32>,
    pub finish: Option<FinishInfo>,
}

/// Drain `requests` to completion, concurrently; results in request order.
pub async fn collect_all(requests: Vec<ActiveRequest>) -> Vec<Collected> {
    let mut out: Vec<Collected> = (0..requests.len()).map(|_| Collected::default()).collect();
    let mut events = merge(requests);
    while let Some((i, event)) = events.next().await {
        let Some(slot) = out.get_mut(i) else { continue };
        match event {
            GenerateEvent::Tokens {
                token_ids, text, ..
            } => {
                slot.output_ids.extend(token_ids);
                slot.text.push_str(&text);
            }
            GenerateEvent::Finished(info) => slot.finish = Some(info),
        }
    }
    out
}
