//! `ServerConfig`: how the reference server is set up, field for field the flags of
//! `sglang.launch_server` that apply (the CLI's `ServerFlags` parse them; this library takes
//! the plain struct). `Default` is what no flags give.

use std::path::PathBuf;

use serde::Serialize;

/// The reference server's settings, with SGLang's names and defaults where they apply.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServerConfig {
    /// Address to listen on.
    pub host: String,

    /// Port to listen on (0 picks a free port).
    pub port: u16,

    /// Model to serve: `default` (built-in dummy model with a byte tokenizer), a GGUF file, a
    /// Hugging Face style directory, or `simulated` (no model: the simulated engine, for
    /// measuring client overheads).
    pub model_path: String,

    /// Model name reported by `/v1/models` and accepted in the `model` field (default: the
    /// model path).
    pub served_model_name: Option<String>,

    /// Tokenizer to use instead of the model's own (a `tokenizer.json` or its directory).
    pub tokenizer_path: Option<String>,

    /// Where the weights come from: `auto`, `dummy` (random weights), `gguf`, `safetensors`.
    pub load_format: String,

    /// JSON object overriding model config fields (e.g. `{"num_hidden_layers": 2}`).
    pub json_model_override_args: String,

    /// Server-wide random seed (dummy weights, per-request sampling seeds). Default: the
    /// engine's fixed seed (0), so runs are reproducible (SGLang picks a random one).
    pub random_seed: Option<u64>,

    /// Tokens per stream chunk (SGLang `--stream-interval`).
    pub stream_interval: u32,

    /// KV cache capacity in tokens (default: derived from the model and memory).
    pub max_total_tokens: Option<usize>,

    /// KV page size in tokens.
    pub page_size: Option<usize>,

    /// Largest prefill chunk in tokens; -1 disables chunking.
    pub chunked_prefill_size: Option<i64>,

    /// Maximum number of requests in a running batch.
    pub max_running_requests: Option<usize>,

    /// Mix prefill chunks with decode requests in one batch.
    pub enable_mixed_chunk: bool,

    /// Override the model's context length.
    pub context_length: Option<usize>,
    /// Do not keep finished requests' KV pages for prefix reuse (the radix cache).
    pub disable_radix_cache: bool,
    /// Test only: admit at most this many generation requests per second (the rest queue),
    /// so capacity searches have a server of known capacity. Labelled in /get_server_info.
    pub inferperf_test_admit_rate: Option<f64>,

    /// Require `Authorization: Bearer <key>` on every route except `/health*` and `/metrics`.
    #[serde(skip)]
    pub api_key: Option<String>,

    /// Tensor-parallel size: this many rank threads, each with its share of the attention
    /// heads and MLP columns and its own profiler trace (`-TP-{r}` files); must divide the
    /// model's heads, KV heads and MLP size.
    pub tp_size: u32,

    /// Data-parallel size: this many engine replicas behind one front end (requests
    /// round-robin), each its own profiler rank (`-DP-{i}` trace files).
    pub dp_size: u32,

    /// One span per module per layer in every CPU profile (SGLang's layerwise NVTX markers),
    /// even when the request turns `record_shapes` off.
    pub enable_layerwise_nvtx_marker: bool,

    /// Threads the model's kernels run on (default: one per core). Benchmarks that embed the
    /// server use cores - 1, so that the client keeps a core of its own.
    pub engine_threads: Option<u32>,

    /// Not a flag: set by benchmarks that embed the server, so that the engine's compute
    /// threads run at a lower priority than the client sharing the process.
    #[serde(skip)]
    pub engine_yields_to_client: bool,
    /// Confine every file a client can make the server write (`/start_profile` traces, a
    /// diffusion request's `perf_dump_path` and profile) to this directory (created if
    /// missing): an `output_dir` that resolves outside it, through `..` or symlinks, is a 403.
    /// Relative paths are taken relative to it, and it is the default `output_dir`. Without
    /// it, the server writes wherever the client asks (SGLang's behaviour).
    pub profile_output_root: Option<PathBuf>,

    /// Seconds a client may take to send a request's headers, on a new connection and between
    /// requests of a kept-alive one; then the connection is closed (idle keep-alive
    /// connections close after this long too).
    pub header_read_timeout_sec: f64,

    /// Most client connections served at once. Beyond it, a few spare connections answer
    /// `/health` and a quick 503 to everything else; more are closed at once.
    pub max_connections: u32,

    /// Append one JSON line per finished or aborted request to FILE: its rid, token counts,
    /// wall-clock times (arrival, tokenized, enqueued, first token, every chunk, finish), the
    /// engine steps it took part in and its queue/prefill/decode/e2e durations. Unlike
    /// SGLang's boolean `--log-requests` (which logs request bodies at
    /// `--log-requests-level`), this takes the file to write. Off by default.
    #[serde(rename = "log_requests_file")]
    pub log_requests: Option<PathBuf>,
}

/// Default of `--header-read-timeout-sec`.
pub const DEFAULT_HEADER_READ_TIMEOUT_SEC: f64 = 30.0;
/// Default of `--max-connections`: far above a benchmark's concurrency, well below what
/// exhausts the process (one file descriptor and a few KiB each).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 32_768;

impl Default for ServerConfig {
    /// The same values as passing no flags at all.
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_string(),
            port: 30000,
            model_path: "default".to_string(),
            served_model_name: None,
            tokenizer_path: None,
            load_format: "auto".to_string(),
            json_model_override_args: "{}".to_string(),
            random_seed: None,
            stream_interval: 1,
            max_total_tokens: None,
            page_size: None,
            chunked_prefill_size: None,
            max_running_requests: None,
            enable_mixed_chunk: false,
            context_length: None,
            disable_radix_cache: false,
            inferperf_test_admit_rate: None,
            api_key: None,
            tp_size: 1,
            dp_size: 1,
            enable_layerwise_nvtx_marker: false,
            engine_threads: None,
            engine_yields_to_client: false,
            profile_output_root: None,
            header_read_timeout_sec: DEFAULT_HEADER_READ_TIMEOUT_SEC,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            log_requests: None,
        }
    }
}

impl ServerConfig {
    /// Defaults for an embedded server on an ephemeral loopback port (tests, `bench serving`).
    pub fn ephemeral() -> Self {
        Self {
            port: 0,
            ..Self::default()
        }
    }

    /// The name clients must use in `model` (`--served-model-name`, else the model path).
    pub fn served_model_name(&self) -> &str {
        self.served_model_name
            .as_deref()
            .unwrap_or(&self.model_path)
    }
}
