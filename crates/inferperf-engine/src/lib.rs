//! The reference inference engine: model (candle, CPU), tokenizer, KV pool, scheduler, sampling
//! and the engine thread that owns them.
//!
//! The public contract is [`api`]: a cloneable [`api::EngineHandle`] that HTTP handlers (or
//! in-process benchmarks) use to submit requests and control commands. One engine thread owns the
//! model and the KV pool; requests arrive on a channel with their own response channel, and a
//! dropped response receiver aborts the request and frees its KV slots. [`launch`] loads a model
//! (`default`, GGUF, HF directory) and starts that thread; [`hooks`] is the profiler's seam.

pub mod api;
pub mod config;
pub mod diffusion;
mod dp;
mod engine;
pub mod hooks;
pub mod kv;
mod load;
pub mod model;
pub mod prefix_cache;
mod request;
pub mod sampler;
mod scheduler;
pub mod simulated;
pub mod tokenizer;

pub use dp::launch_dp;
pub use engine::{launch, launch_with_hooks, launch_with_rank_hooks, EngineConfig, LaunchedEngine};
