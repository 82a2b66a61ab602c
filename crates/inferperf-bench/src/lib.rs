//! The HTTP benchmarks: what each command measures against a running server, built on the one
//! load engine in `inferperf-loadgen` (plan -> pacer -> measured client -> records -> metrics).
//! [`serving`] is `bench serving` (SGLang's `bench_serving`), [`sweep`] and [`slo`] drive it
//! over load points, [`one_batch_server`] is `bench_one_batch_server`, [`diffusion`] the
//! image/video serving benchmark, [`calibrate`] the client's own ceiling; [`profiling`] opens
//! server-side profile windows around a run, [`scenario`] holds genai-bench's traffic
//! scenarios, [`plot`] and [`upload`] publish results. [`config`] holds `bench serving`'s settings.
//!
//! The load-generator modules are re-exported so that a benchmark names them as its own
//! building blocks (`crate::client`, `crate::runner`, ...).

pub mod calibrate;
pub mod config;
pub mod diffusion;
pub mod multipart;
pub mod one_batch_server;
pub mod plot;
pub mod profiling;
pub mod scenario;
pub mod serving;
pub mod slo;
pub mod sweep;
pub mod upload;

pub use inferperf_loadgen::{
    arrival, backend, batch_case, client, client_runtime, clock, conversation, cpu, dataset, error,
    jsonl, lora, metrics, pacer, progress, record, request_log, result, runner, rx_stamp, sse,
    stats, table, tokenizer, validity, BenchError,
};
