//! A real, tiny text-to-image / text-to-video diffusion pipeline on CPU (candle), with SGLang's
//! stage names, so that the diffusion benchmarking and profiling loop runs without a GPU.
//!
//! Stages (SGLang class names): `InputValidationStage` -> `TextEncodingStage` (byte tokens,
//! bidirectional blocks) -> `ConditioningStage` (text/image projections) ->
//! `TimestepPreparationStage` (shifted flow-matching schedule) -> `LatentPreparationStage`
//! (seeded noise, patchify) -> `DenoisingStage` (DiT with adaLN and joint text-image attention,
//! Euler steps, optional CFG) -> `DecodingStage` (conv/upsample decoder, nearest upsampling from
//! the native resolution to the requested one).
//!
//! Everything really runs on the CPU; the only deliberate delay is the test-only
//! [`InferperfDiffusionTestDelay`]. Observers ([`PipelineObserver`]) see every stage and step,
//! which is how the CLI profiler and, later, the server hook in.

pub mod config;
mod decoder;
mod dit;
pub mod error;
mod layers;
pub mod media;
pub mod model_path;
pub mod observer;
pub mod pipeline;
pub mod request;
pub mod scheduler;
mod text_encoder;
pub mod weights;

pub use config::DiffusionConfig;
pub use error::DiffusionError;
pub use media::{decode_png, encode_rgb_frames, DecodedMedia};
pub use model_path::{is_diffusion_model, load_model, BUILTIN_DIFFUSION_MODEL};
pub use observer::{NoopObserver, PipelineObserver, Stage};
pub use pipeline::{DiffusionPipeline, GeneratedMedia, PipelineInfo, PipelineTimings};
pub use request::{
    DiffusionRequest, InferperfDiffusionTestDelay, InputImage, MediaKind, ResolvedShape,
};
pub use weights::WeightSource;

#[cfg(test)]
mod tests;
