//! The reference server's flags (`inferperf serve`, and the commands that start an embedded
//! server: `bench one-batch`, `bench one-batch-server`, `bench offline`), named after
//! `sglang.launch_server`. The server library takes the plain [`ServerConfig`] they turn into.

use std::path::PathBuf;

use inferperf_server::ServerConfig;

/// Flags of the reference server, with SGLang's names and defaults where they apply.
#[derive(clap::Args, Clone, Debug, PartialEq)]
pub struct ServerFlags {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// Port to listen on (0 picks a free port).
    #[arg(long, default_value_t = 30000)]
    pub port: u16,

    /// Model to serve: `default` (built-in dummy model with a byte tokenizer), a GGUF file, a
    /// Hugging Face style directory, or `simulated` (no model: the simulated engine, for
    /// measuring client overheads).
    #[arg(long, default_value = "default")]
    pub model_path: String,

    /// Model name reported by `/v1/models` and accepted in the `model` field (default: the
    /// model path).
    #[arg(long)]
    pub served_model_name: Option<String>,

    /// Tokenizer to use instead of the model's own (a `tokenizer.json` or its directory).
    #[arg(long)]
    pub tokenizer_path: Option<String>,

    /// Where the weights come from: `auto`, `dummy` (random weights), `gguf`, `safetensors`.
    #[arg(long, default_value = "auto", value_parser = ["auto", "dummy", "gguf", "safetensors"])]
    pub load_format: String,

    /// JSON object overriding model config fields (e.g. `{"num_hidden_layers": 2}`).
    #[arg(long, default_value = "{}")]
    pub json_model_override_args: String,

    /// Server-wide random seed (dummy weights, per-request sampling seeds). Default: the
    /// engine's fixed seed (0), so runs are reproducible (SGLang picks a random one).
    #[arg(long)]
    pub random_seed: Option<u64>,

    /// Tokens per stream chunk (SGLang `--stream-interval`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub stream_interval: u32,

    /// KV cache capacity in tokens (default: derived from the model and memory).
    #[arg(long)]
    pub max_total_tokens: Option<usize>,

    /// KV page size in tokens.
    #[arg(long)]
    pub page_size: Option<usize>,

    /// Largest prefill chunk in tokens; -1 disables chunking.
    #[arg(long, allow_negative_numbers = true)]
    pub chunked_prefill_size: Option<i64>,

    /// Maximum number of requests in a running batch.
    #[arg(long)]
    pub max_running_requests: Option<usize>,

    /// Mix prefill chunks with decode requests in one batch.
    #[arg(long)]
    pub enable_mixed_chunk: bool,

    /// Override the model's context length.
    #[arg(long)]
    pub context_length: Option<usize>,
    /// Do not keep finished requests' KV pages for prefix reuse (the radix cache).
    #[arg(long)]
    pub disable_radix_cache: bool,
    /// Test only: admit at most this many generation requests per second (the rest queue),
    /// so capacity searches have a server of known capacity. Labelled in /get_server_info.
    #[arg(long)]
    pub inferperf_test_admit_rate: Option<f64>,

    /// Require `Authorization: Bearer <key>` on every route except `/health*` and `/metrics`.
    #[arg(long)]
    pub api_key: Option<String>,

    /// Tensor-parallel size: this many rank threads, each with its share of the attention
    /// heads and MLP columns and its own profiler trace (`-TP-{r}` files); must divide the
    /// model's heads, KV heads and MLP size.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub tp_size: u32,

    /// Data-parallel size: this many engine replicas behind one front end (requests
    /// round-robin), each its own profiler rank (`-DP-{i}` trace files).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub dp_size: u32,

    /// One span per module per layer in every CPU profile (SGLang's layerwise NVTX markers),
    /// even when the request turns `record_shapes` off.
    #[arg(long)]
    pub enable_layerwise_nvtx_marker: bool,

    /// Threads the model's kernels run on (default: one per core). Benchmarks that embed the
    /// server use cores - 1, so that the client keeps a core of its own.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub engine_threads: Option<u32>,

    /// Confine every file a client can make the server write (`/start_profile` traces, a
    /// diffusion request's `perf_dump_path` and profile) to this directory (created if
    /// missing): an `output_dir` that resolves outside it, through `..` or symlinks, is a 403.
    /// Relative paths are taken relative to it, and it is the default `output_dir`. Without
    /// it, the server writes wherever the client asks (SGLang's behaviour).
    #[arg(long)]
    pub profile_output_root: Option<PathBuf>,

    /// Seconds a client may take to send a request's headers, on a new connection and between
    /// requests of a kept-alive one; then the connection is closed (idle keep-alive
    /// connections close after this long too).
    #[arg(long, default_value_t = inferperf_server::config::DEFAULT_HEADER_READ_TIMEOUT_SEC)]
    pub header_read_timeout_sec: f64,

    /// Most client connections served at once. Beyond it, a few spare connections answer
    /// `/health` and a quick 503 to everything else; more are closed at once.
    #[arg(long, default_value_t = inferperf_server::config::DEFAULT_MAX_CONNECTIONS, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Append one JSON line per finished or aborted request to FILE: its rid, token counts,
    /// wall-clock times (arrival, tokenized, enqueued, first token, every chunk, finish), the
    /// engine steps it took part in and its queue/prefill/decode/e2e durations. Unlike
    /// SGLang's boolean `--log-requests` (which logs request bodies at
    /// `--log-requests-level`), this takes the file to write. Off by default.
    #[arg(long, value_name = "FILE")]
    pub log_requests: Option<PathBuf>,
}

impl ServerFlags {
    /// The server configuration these flags ask for.
    pub fn to_config(&self) -> ServerConfig {
        let f = self.clone();
        ServerConfig {
            host: f.host,
            port: f.port,
            model_path: f.model_path,
            served_model_name: f.served_model_name,
            tokenizer_path: f.tokenizer_path,
            load_format: f.load_format,
            json_model_override_args: f.json_model_override_args,
            random_seed: f.random_seed,
            stream_interval: f.stream_interval,
            max_total_tokens: f.max_total_tokens,
            page_size: f.page_size,
            chunked_prefill_size: f.chunked_prefill_size,
            max_running_requests: f.max_running_requests,
            enable_mixed_chunk: f.enable_mixed_chunk,
            context_length: f.context_length,
            disable_radix_cache: f.disable_radix_cache,
            inferperf_test_admit_rate: f.inferperf_test_admit_rate,
            api_key: f.api_key,
            tp_size: f.tp_size,
            dp_size: f.dp_size,
            enable_layerwise_nvtx_marker: f.enable_layerwise_nvtx_marker,
            engine_threads: f.engine_threads,
            profile_output_root: f.profile_output_root,
            header_read_timeout_sec: f.header_read_timeout_sec,
            max_connections: f.max_connections,
            log_requests: f.log_requests,
            engine_yields_to_client: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        flags: ServerFlags,
    }

    #[test]
    fn no_flags_give_the_default_config() {
        let parsed = Cli::try_parse_from(["x"]).unwrap().flags;
        assert_eq!(parsed.to_config(), ServerConfig::default());
    }

    #[test]
    fn sglang_flag_names() {
        let a = Cli::try_parse_from([
            "x",
            "--model-path",
            "m.gguf",
            "--port",
            "0",
            "--served-model-name",
            "tiny",
            "--chunked-prefill-size",
            "-1",
            "--enable-mixed-chunk",
            "--stream-interval",
            "4",
            "--json-model-override-args",
            "{\"a\":1}",
        ])
        .unwrap()
        .flags
        .to_config();
        assert_eq!(a.model_path, "m.gguf");
        assert_eq!(a.served_model_name(), "tiny");
        assert_eq!(a.chunked_prefill_size, Some(-1));
        assert!(a.enable_mixed_chunk);
        assert_eq!(a.stream_interval, 4);
        assert!(Cli::try_parse_from(["x", "--stream-interval", "0"]).is_err());
        // Unlike SGLang's boolean flag, --log-requests takes the file.
        assert!(Cli::try_parse_from(["x", "--log-requests"]).is_err());
    }
}
