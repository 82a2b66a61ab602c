//! The reference inference engine: model (candle, CPU), tokenizer, KV pool, scheduler, sampling
//! and the engine thread that owns them.
//!
//! The public contract is [`api`]: a cloneable [`api::EngineHandle`] that HTTP handlers (or
//! in-process benchmarks) use to submit requests and control commands. One engine thread owns the
//! model and the KV pool; requests arrive on a channel with their own response channel, and a
//! dropped response receiver aborts the request and frees its KV slots.

pub mod api;
pub mod diffusion;
pub mod simulated;
