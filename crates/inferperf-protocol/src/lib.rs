//! Wire types shared by the inferperf client and server: OpenAI, SGLang `/generate`,
//! `ProfileReqInput`, diffusion API and the perf-dump schema. One definition, used on both sides.

pub mod error;
pub mod generate;
pub mod openai;
pub mod profile;
