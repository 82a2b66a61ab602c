//! The seam through which a server or profiler watches a generation: stage and denoising-step
//! boundaries, called on the generating thread in order.

use std::time::Duration;

/// SGLang's pipeline stages, in execution order. [`Stage::name`] is the stage class name that
/// SGLang writes into perf dumps and traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    InputValidation,
    TextEncoding,
    Conditioning,
    TimestepPreparation,
    LatentPreparation,
    Denoising,
    Decoding,
}

impl Stage {
    /// Every stage, in the order the pipeline runs them.
    pub const ALL: [Stage; 7] = [
        Stage::InputValidation,
        Stage::TextEncoding,
        Stage::Conditioning,
        Stage::TimestepPreparation,
        Stage::LatentPreparation,
        Stage::Denoising,
        Stage::Decoding,
    ];

    /// The SGLang class name, e.g. `DenoisingStage`.
    pub fn name(self) -> &'static str {
        match self {
            Stage::InputValidation => "InputValidationStage",
            Stage::TextEncoding => "TextEncodingStage",
            Stage::Conditioning => "ConditioningStage",
            Stage::TimestepPreparation => "TimestepPreparationStage",
            Stage::LatentPreparation => "LatentPreparationStage",
            Stage::Denoising => "DenoisingStage",
            Stage::Decoding => "DecodingStage",
        }
    }
}

/// Called by [`crate::diffusion::DiffusionPipeline::generate`] around every stage and every
/// denoising step. All methods default to doing nothing. Durations passed to the `end` calls
/// are the pipeline's own measurements (the same numbers that go into the perf dump); the
/// observer's own work is never inside them.
pub trait PipelineObserver {
    /// `stage` is about to run.
    fn on_stage_begin(&mut self, _stage: Stage) {}
    /// `stage` finished after `elapsed`.
    fn on_stage_end(&mut self, _stage: Stage, _elapsed: Duration) {}
    /// Denoising step `step` of `total` (zero-based) is about to run.
    fn on_denoise_step_begin(&mut self, _step: usize, _total: usize) {}
    /// Denoising step `step` finished after `elapsed`.
    fn on_denoise_step_end(&mut self, _step: usize, _total: usize, _elapsed: Duration) {}
}

/// An observer that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopObserver;

impl PipelineObserver for NoopObserver {}

/// An optional observer (a profiler only some requests ask for) sees the calls when present.
impl<O: PipelineObserver> PipelineObserver for Option<O> {
    fn on_stage_begin(&mut self, stage: Stage) {
        if let Some(o) = self {
            o.on_stage_begin(stage);
        }
    }
    fn on_stage_end(&mut self, stage: Stage, elapsed: Duration) {
        if let Some(o) = self {
            o.on_stage_end(stage, elapsed);
        }
    }
    fn on_denoise_step_begin(&mut self, step: usize, total: usize) {
        if let Some(o) = self {
            o.on_denoise_step_begin(step, total);
        }
    }
    fn on_denoise_step_end(&mut self, step: usize, total: usize, elapsed: Duration) {
        if let Some(o) = self {
            o.on_denoise_step_end(step, total, elapsed);
        }
    }
}
