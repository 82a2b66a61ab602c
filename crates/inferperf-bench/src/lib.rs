//! The HTTP benchmarks: what each command measures against a running server, built on the one
//! load engine in `inferperf-loadgen` (plan -> pacer -> measured client -> records -> metrics).
//! [`serving`] is `bench serving` (SGLang's `bench_serving`), [`sweep`] and [`slo`] drive it
//! over load points, [`one_batch_server`] is `bench_one_batch_server`, [`diffusion`] the
//! image/video serving benchmark, [`calibrate`] the client's own ceiling; [`profiling`] opens
//! server-side profile windows around a run, [`scenario`] holds genai-bench's traffic
//! scenarios, [`plot`] and [`upload`] publish results. [`config`] holds `bench serving`'s settings,
//! [`multipart`] builds upload bodies; [`shard`] cuts one run into deterministic shards and
//! [`shard_merge`] recomputes the run's result from their records (`bench merge`);
//! [`steady_report`] adds the steady-state section to `bench serving`'s output. The load
//! engine's own modules are named from `inferperf_loadgen` wherever they are used.

pub mod calibrate;
pub mod config;
pub mod diffusion;
pub mod multipart;
pub mod one_batch_server;
pub mod plot;
pub mod profiling;
pub mod scenario;
pub mod server_clock;
pub mod serving;
pub mod shard;
pub mod shard_merge;
pub mod slo;
pub mod steady_report;
pub mod sweep;
pub mod upload;
