//! Load generation: datasets -> request plan -> pacer -> HTTP client -> per-request records ->
//! metrics, compatible with SGLang's `bench_serving` (flags, request bodies, console table and
//! JSONL keys) and built so that the client is never the bottleneck: bodies are serialized
//! before the run, arrivals follow a fixed schedule released by a dedicated pacer thread,
//! streams are parsed without re-tokenizing, and every measurement uses one monotonic clock.
//!
//! Module map (one role each): [`args`] flags, [`dataset`] rows, [`backend`] bodies and routes,
//! [`arrival`] schedule, [`pacer`] release thread, [`client`] HTTP, [`sse`] stream parser,
//! [`record`] per-request observations, [`runner`] the measured run, [`metrics`] / [`stats`]
//! numbers, [`table`] console output, [`result`] / [`jsonl`] the record file, [`validity`] the
//! verdict, [`profiling`] server-side profile windows around the run, [`calibrate`] the client ceiling, [`serving`] the whole command.

pub mod args;
pub mod arrival;
pub mod backend;
pub mod calibrate;
pub mod client;
pub mod clock;
pub mod conversation;
pub mod cpu;
pub mod dataset;
pub mod diffusion;
pub mod diffusion_offline;
pub mod error;
pub mod inproc;
pub mod jsonl;
pub mod lora;
pub mod metrics;
pub mod offline;
pub mod one_batch;
pub mod one_batch_server;
pub mod ops_table;
pub mod pacer;
pub mod plot;
pub mod profiling;
pub mod progress;
pub mod record;
pub mod request_log;
pub mod result;
pub mod runner;
pub mod rx_stamp;
pub mod scenario;
pub mod serving;
pub mod slo;
pub mod sse;
pub mod stats;
pub mod sweep;
pub mod table;
pub mod tokenizer;
pub mod upload;
pub mod validity;

pub use error::BenchError;

/// Build the client's multi-threaded runtime with its threads registered for CPU accounting.
pub fn client_runtime(
    threads: usize,
    cpu: &cpu::ThreadCpu,
) -> std::io::Result<tokio::runtime::Runtime> {
    let cpu = cpu.clone();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("inferperf-client")
        .on_thread_start(move || cpu.register_current())
        .enable_all()
        .build()
}
