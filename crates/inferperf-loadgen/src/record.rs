//! What the client observed for one request: monotonic timestamps (nanoseconds since the run's
//! start instant), token accounting and the outcome. Filled on the hot path with plain stores;
//! every derived metric is computed after the run.

use serde::{Deserialize, Serialize};

/// Where `output_len` came from, so that a reader knows whether it is the server's count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenCountSource {
    /// `usage.completion_tokens` or `meta_info.completion_tokens` from the server.
    Server,
    /// The requested `max_tokens` (SGLang's fallback when the server sends no usage).
    #[default]
    Requested,
}

/// Why a request failed. Failed requests stay in the records and in the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// TCP connect failed (refused, unreachable).
    Connect,
    /// Non-200 HTTP status.
    HttpStatus,
    /// Per-request timeout elapsed.
    Timeout,
    /// Connection reset or closed mid-response, or another transport error.
    Transport,
    /// A stream line or body that is not the expected JSON.
    MalformedResponse,
    /// The server sent an error object inside the stream.
    ServerError,
    /// The stream ended without `[DONE]`.
    TruncatedStream,
    /// The response ended cleanly but carried no generated content (e.g. only `[DONE]`).
    EmptyStream,
    /// No byte arrived for `--stall-timeout-sec` (before the headers or between chunks).
    Stalled,
    /// Interrupted by Ctrl-C or an aborted run.
    Cancelled,
    /// The client ran out of its own resources to open a connection (open files, ephemeral
    /// ports): the load generator's limit, not the server's failure.
    ClientLimit,
}

/// A failure with a short human-readable message (status and body excerpt, error text).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestError {
    pub kind: ErrorKind,
    pub message: String,
}

/// One request's observations. Times are nanoseconds since the run's start instant; 0 means
/// "did not happen" for the optional events (the run start itself is never an event time).
#[derive(Clone, Debug, Default, Serialize)]
pub struct RequestRecord {
    /// Index of the request in the plan.
    pub index: usize,
    /// The request id sent with it (`X-Request-Id`, and `rid` in SGLang bodies), which the
    /// server keeps through scheduling; empty when the plan gave none.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub rid: String,
    /// Round of a multi-turn conversation (0 for single requests).
    pub turn: usize,
    /// When the arrival schedule said the request should start.
    pub scheduled_ns: u64,
    /// When the pacer released it (pacing lag = released - scheduled).
    pub released_ns: u64,
    /// Immediately before the request was written (after the concurrency slot and connection).
    pub sent_ns: u64,
    /// Response headers received.
    pub first_byte_ns: u64,
    /// First chunk carrying generated content (SGLang's TTFT event).
    pub first_token_ns: u64,
    /// Arrival time of every content chunk, the first one included.
    pub chunk_ns: Vec<u64>,
    /// Tokens carried by each content chunk, when the server tells (native `/generate`
    /// `completion_tokens` deltas); empty means one token event per chunk.
    pub chunk_tokens: Vec<u32>,
    /// Last stream line (including `[DONE]`): SGLang's `latency` end point.
    pub last_ns: u64,
    /// Prompt length of the dataset row.
    pub prompt_len: usize,
    /// `prompt_tokens` reported by the server, if any.
    pub server_prompt_len: Option<usize>,
    /// Output tokens (server count or the requested length, see `output_len_source`).
    pub output_len: usize,
    pub output_len_source: TokenCountSource,
    /// Requested output length.
    pub requested_output_len: usize,
    /// Concatenated generated text (reasoning + content for chat).
    pub generated_text: String,
    /// Spec-decoding accept length from `meta_info`, if the server reports it.
    pub spec_accept_length: Option<f64>,
    /// Cached prompt tokens from `meta_info`/`usage`, if reported.
    pub cached_tokens: Option<usize>,
    pub error: Option<RequestError>,
    /// Whether this was a warmup request (never part of the metrics).
    pub warmup: bool,
    /// What a JSON document response said (diffusion images and video jobs); `None` for the
    /// LLM protocols. Kept small: the facts, not the document (images can be megabytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<Box<DocumentFacts>>,
    /// Every stream data line with its arrival time, unparsed, when the benchmark reads the
    /// stream after the run (one-batch-server's batched streams); empty otherwise.
    #[serde(skip)]
    pub stream_lines: Vec<(u64, Vec<u8>)>,
}

/// The fields the client reads from a JSON document response: a job's `id`, `status` and
/// `error.message` (video jobs), and the server's `peak_memory_mb` (SGLang diffusion).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DocumentFacts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_memory_mb: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

impl RequestRecord {
    /// SGLang's `success`: finished without an error.
    pub fn success(&self) -> bool {
        self.error.is_none() && self.last_ns > 0
    }

    /// End-to-end latency from send to the last line, in seconds (SGLang `latency`).
    pub fn latency_s(&self) -> f64 {
        ns_to_s(self.last_ns.saturating_sub(self.sent_ns))
    }

    /// Time to first token from send, in seconds (0 when no token arrived).
    pub fn ttft_s(&self) -> f64 {
        if self.first_token_ns == 0 {
            0.0
        } else {
            ns_to_s(self.first_token_ns.saturating_sub(self.sent_ns))
        }
    }

    /// Time spent waiting in the client between the scheduled arrival and the send.
    pub fn client_queue_s(&self) -> f64 {
        ns_to_s(self.sent_ns.saturating_sub(self.scheduled_ns))
    }

    /// Coordinated-omission-aware latency: from the scheduled arrival to the last line.
    pub fn latency_from_schedule_s(&self) -> f64 {
        ns_to_s(self.last_ns.saturating_sub(self.scheduled_ns))
    }

    /// SGLang's `itl` list (seconds): one gap per content chunk after the first; when a chunk
    /// carries `n` tokens (native backend), its gap is split evenly and repeated `n` times.
    pub fn sglang_itl_s(&self) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.chunk_ns.len().saturating_sub(1));
        for k in 1..self.chunk_ns.len() {
            let gap = ns_to_s(self.chunk_ns[k].saturating_sub(self.chunk_ns[k - 1]));
            let n = self.chunk_tokens.get(k).copied().unwrap_or(1).max(1);
            for _ in 0..n {
                out.push(gap / n as f64);
            }
        }
        out
    }

    /// Plain chunk gaps (seconds), whatever the tokens per chunk: the "inter-chunk latency".
    pub fn chunk_gaps_s(&self) -> impl Iterator<Item = f64> + '_ {
        self.chunk_ns
            .windows(2)
            .map(|w| ns_to_s(w[1].saturating_sub(w[0])))
    }

    /// SGLang's TPOT sample: `(latency - ttft) / (output_len - 1)` when `output_len > 1`.
    pub fn tpot_s(&self) -> Option<f64> {
        (self.output_len > 1)
            .then(|| (self.latency_s() - self.ttft_s()) / (self.output_len - 1) as f64)
    }
}

/// Nanoseconds to seconds.
pub fn ns_to_s(ns: u64) -> f64 {
    ns as f64 * 1e-9
}

/// A run's tag for its request ids (`{tag}-{index}`): 8 hex digits from the wall clock and
/// the process id, so that runs (and load-generator hosts) do not reuse each other's ids.
/// Not seeded on purpose: ids name requests, they are not part of any measurement.
pub fn new_run_tag() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut key = now.to_le_bytes().to_vec();
    key.extend(std::process::id().to_le_bytes());
    format!("{:08x}", inferperf_protocol::hash::fnv1a(&key) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_chunks_split_gaps_evenly() {
        let r = RequestRecord {
            sent_ns: 0,
            first_token_ns: 10_000_000,
            chunk_ns: vec![10_000_000, 30_000_000, 31_000_000],
            chunk_tokens: vec![1, 2, 1],
            last_ns: 31_000_000,
            output_len: 4,
            ..Default::default()
        };
        let itl = r.sglang_itl_s();
        assert_eq!(itl.len(), 3);
        assert!((itl[0] - 0.010).abs() < 1e-12 && (itl[1] - 0.010).abs() < 1e-12);
        assert!((itl[2] - 0.001).abs() < 1e-12);
        assert!((r.tpot_s().unwrap_or(0.0) - 0.007).abs() < 1e-12);
    }
}
