//! The load generator: dataset -> request plan -> pacer -> HTTP client -> per-request records ->
//! metrics -> result, compatible with SGLang's `bench_serving` (request bodies, console table
//! and JSONL keys) and built so that the client is never the bottleneck: bodies are serialized
//! before the run, arrivals follow a fixed schedule released by a dedicated pacer thread,
//! streams are parsed without re-tokenizing, and every measurement uses one monotonic clock.
//!
//! This crate is the measured core every HTTP benchmark runs on (`inferperf-bench`); it knows
//! nothing of the engine or of which benchmark drives it. Module map, in data-flow order:
//! [`dataset`] rows (and [`tokenizer`], [`conversation`], [`lora`], [`batch_case`] for what
//! shapes them), [`backend`] bodies and routes, [`arrival`] the schedule, [`pacer`] the
//! release thread, [`client`] HTTP with [`rx_stamp`] kernel receive times and [`sse`] the
//! stream parser, [`runner`] the measured run, [`record`] per-request observations,
//! [`metrics`] / [`stats`] the numbers, [`steady_state`] the window in which the load held,
//! [`validity`] the verdict, [`table`] the console table, [`result`] / [`jsonl`] the record
//! file; [`clock`], [`cpu`], [`progress`] and [`request_log`] serve the run.

pub mod arrival;
pub mod backend;
pub mod batch_case;
pub mod client;
pub mod clock;
pub mod conversation;
pub mod cpu;
pub mod dataset;
pub mod error;
pub mod jsonl;
pub mod lora;
pub mod metrics;
pub mod pacer;
pub mod pooled;
pub mod progress;
pub mod record;
pub mod records_file;
pub mod request_log;
pub mod request_trace;
pub mod result;
pub mod runner;
pub mod rx_stamp;
pub mod sse;
pub mod stats;
pub mod steady_state;
pub mod table;
pub mod tokenizer;
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
