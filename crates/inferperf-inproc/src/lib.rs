//! In-process benchmarks: they drive the reference engine directly, without HTTP, next to the
//! engine they measure. [`one_batch`] is SGLang's `bench_one_batch` (one static batch, prefill
//! then decode, per-step latencies), [`offline`] is `bench_offline_throughput` (the whole
//! dataset through the engine's scheduler), [`diffusion_offline`] the diffusion pipeline's
//! stage timings; [`inproc`] starts the engine (and its profiler hooks) for all three, and
//! [`ops_table`] reads the per-op table of a profiled run. Datasets, records and metrics come
//! from `inferperf-loadgen`, so a prompt or a number means the same as in `bench serving`.

pub mod diffusion_offline;
pub mod inproc;
pub mod offline;
pub mod one_batch;
pub mod ops_table;
