//! [`DiffusionPipeline`]: loads the three models once and runs the seven SGLang stages for each
//! request, timing every stage and denoising step and reporting them to a
//! [`PipelineObserver`].

use std::path::Path;
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::diffusion::config::DiffusionConfig;
use crate::diffusion::decoder::Decoder;
use crate::diffusion::dit::{patchify, unpatchify, Conditioning, Dit};
use crate::diffusion::error::DiffusionError;
use crate::diffusion::media::{encode_rgb_frames, mean_color, upsample_nearest_rgb};
use crate::diffusion::observer::{PipelineObserver, Stage};
use crate::diffusion::request::{resolve, DiffusionRequest, MediaKind, ResolvedShape};
use crate::diffusion::scheduler::{euler_step, flow_timesteps};
use crate::diffusion::text_encoder::TextEncoder;
use crate::diffusion::weights::{normal_vec, save_safetensors, var_builder, Made, WeightSource};

/// Stage and step durations of one generation, measured by the pipeline itself (monotonic
/// clock). This is what perf dumps are made of.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PipelineTimings {
    /// Each stage once, in execution order.
    pub stages: Vec<(Stage, Duration)>,
    /// Each denoising step, in order.
    pub denoise_steps: Vec<Duration>,
    /// Wall time of the whole pipeline (first stage start to last stage end).
    pub total: Duration,
}

impl PipelineTimings {
    /// The duration of `stage`, if it ran.
    pub fn stage(&self, stage: Stage) -> Option<Duration> {
        self.stages
            .iter()
            .find(|(s, _)| *s == stage)
            .map(|(_, d)| *d)
    }
}

/// The output of one request: RGB8 frames at the requested size plus the facts needed to
/// label it honestly (native size, upsampling) and its timings.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratedMedia {
    pub request_id: String,
    pub kind: MediaKind,
    /// Output size (what was asked for).
    pub width: usize,
    pub height: usize,
    /// Size the decoder produced before upsampling.
    pub native_width: usize,
    pub native_height: usize,
    /// Integer nearest-neighbour factor from native to output; 1 means not upsampled.
    pub upsample_factor: usize,
    pub num_inference_steps: usize,
    pub fps: u32,
    /// One RGB8 buffer per frame, `width * height * 3` bytes each.
    pub frames: Vec<Vec<u8>>,
    pub timings: PipelineTimings,
}

impl GeneratedMedia {
    /// True when the output is larger than what the model produced.
    pub fn upsampled(&self) -> bool {
        self.upsample_factor > 1
    }

    /// PNG bytes for an image, APNG bytes for a video.
    pub fn encode(&self) -> Result<Vec<u8>, DiffusionError> {
        encode_rgb_frames(self.width, self.height, &self.frames, self.fps)
    }

    /// `image/png` or `image/apng`.
    pub fn mime_type(&self) -> &'static str {
        match self.kind {
            MediaKind::Image => "image/png",
            MediaKind::Video => "image/apng",
        }
    }

    /// File extension without the dot: `png` or `apng`.
    pub fn extension(&self) -> &'static str {
        match self.kind {
            MediaKind::Image => "png",
            MediaKind::Video => "apng",
        }
    }
}

/// Facts about a loaded pipeline, for `/models`-style reporting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineInfo {
    /// `dummy` or `safetensors`.
    pub load_format: &'static str,
    pub num_params: usize,
    /// Largest native image side and video frame side.
    pub native_image_side: usize,
    pub native_video_side: usize,
}

/// The tiny text-to-image/video pipeline on CPU. Immutable after loading, so one instance can
/// serve requests from any thread (`&self`).
pub struct DiffusionPipeline {
    config: DiffusionConfig,
    source: WeightSource,
    text: TextEncoder,
    dit: Dit,
    decoder: Decoder,
    dummy_tensors: Option<Made>,
    num_params: usize,
}

impl std::fmt::Debug for DiffusionPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiffusionPipeline")
            .field("config", &self.config)
            .field("source", &self.source)
            .finish()
    }
}

/// Run `f` as `stage`: time it, tell the observer, record the duration.
fn run_stage<T>(
    stage: Stage,
    obs: &mut dyn PipelineObserver,
    timings: &mut PipelineTimings,
    f: impl FnOnce(&mut dyn PipelineObserver, &mut PipelineTimings) -> Result<T, DiffusionError>,
) -> Result<T, DiffusionError> {
    obs.on_stage_begin(stage);
    let start = Instant::now();
    let out = f(obs, timings)?;
    let elapsed = start.elapsed();
    timings.stages.push((stage, elapsed));
    tracing::debug!(
        stage = stage.name(),
        ms = elapsed.as_secs_f64() * 1e3,
        "stage done"
    );
    obs.on_stage_end(stage, elapsed);
    Ok(out)
}

impl DiffusionPipeline {
    /// Build the models from `config` and `source`.
    pub fn load(config: DiffusionConfig, source: WeightSource) -> Result<Self, DiffusionError> {
        config.validate()?;
        let (vb, made) = var_builder(&source)?;
        let wrap = |e: candle_core::Error| match &source {
            WeightSource::Safetensors(path) => DiffusionError::Load {
                path: path.clone(),
                message: e.to_string(),
            },
            WeightSource::Dummy { .. } => DiffusionError::Compute(e),
        };
        let text = TextEncoder::new(&config, vb.pp("text_encoder")).map_err(wrap)?;
        let dit = Dit::new(&config, vb.pp("dit")).map_err(wrap)?;
        let decoder = Decoder::new(&config, vb.pp("decoder")).map_err(wrap)?;
        let num_params = count_params(&config);
        tracing::info!(
            load_format = source.load_format(),
            num_params,
            native = config.native_image_side(),
            "diffusion pipeline loaded"
        );
        Ok(Self {
            config,
            source,
            text,
            dit,
            decoder,
            dummy_tensors: made,
            num_params,
        })
    }

    /// The built-in tiny model with dummy weights seeded by the config.
    pub fn dummy(config: DiffusionConfig) -> Result<Self, DiffusionError> {
        let seed = config.weights_seed;
        Self::load(config, WeightSource::Dummy { seed })
    }

    pub fn config(&self) -> &DiffusionConfig {
        &self.config
    }

    pub fn info(&self) -> PipelineInfo {
        PipelineInfo {
            load_format: self.source.load_format(),
            num_params: self.num_params,
            native_image_side: self.config.native_image_side(),
            native_video_side: self.config.native_video_side(),
        }
    }

    /// Write the dummy weights as safetensors (same names [`WeightSource::Safetensors`]
    /// expects), e.g. to start from them or to test loading. Errors for loaded weights.
    pub fn save_dummy_weights(&self, path: &Path) -> Result<(), DiffusionError> {
        let Some(made) = &self.dummy_tensors else {
            return Err(DiffusionError::InvalidConfig(
                "only dummy weights can be saved".into(),
            ));
        };
        let tensors = made.lock().unwrap_or_else(|e| e.into_inner()).clone();
        save_safetensors(&tensors, path)
    }

    /// Check a request without running it (what the InputValidation stage does).
    pub fn validate(&self, req: &DiffusionRequest) -> Result<ResolvedShape, DiffusionError> {
        resolve(req, &self.config)
    }

    /// Run every stage for `req` on this thread. Deterministic: the same request (seed
    /// included) gives the same frames on the same machine and thread count.
    pub fn generate(
        &self,
        req: &DiffusionRequest,
        observer: &mut dyn PipelineObserver,
    ) -> Result<GeneratedMedia, DiffusionError> {
        let c = &self.config;
        let mut timings = PipelineTimings::default();
        let t0 = Instant::now();
        let shape = run_stage(Stage::InputValidation, observer, &mut timings, |_, _| {
            resolve(req, c)
        })?;
        let (context, pooled) = run_stage(Stage::TextEncoding, observer, &mut timings, |_, _| {
            let mut prompts = vec![req.prompt.as_str()];
            if shape.cfg {
                prompts.push(req.negative_prompt.as_str());
            }
            Ok(self.text.encode(&prompts)?)
        })?;
        let cond = run_stage(Stage::Conditioning, observer, &mut timings, |_, _| {
            let image = match &req.image {
                Some(img) => Some(Tensor::from_vec(
                    mean_color(&img.rgb).to_vec(),
                    (1, 3),
                    &Device::Cpu,
                )?),
                None => None,
            };
            self.dit
                .condition(&context, &pooled, image.as_ref())
                .map_err(DiffusionError::from)
        })?;
        let times = run_stage(
            Stage::TimestepPreparation,
            observer,
            &mut timings,
            |_, _| Ok(flow_timesteps(shape.num_inference_steps, c.flow_shift)),
        )?;
        let (mut x, pos) = run_stage(Stage::LatentPreparation, observer, &mut timings, |_, _| {
            let (f, ch, h, w) = (
                shape.num_frames,
                c.latent_channels,
                shape.latent_height,
                shape.latent_width,
            );
            let mut rng = ChaCha8Rng::seed_from_u64(req.seed);
            let noise = Tensor::from_vec(
                normal_vec(&mut rng, f * ch * h * w),
                (f, ch, h, w),
                &Device::Cpu,
            )?;
            let p = c.patch_size;
            Ok((
                patchify(&noise, p)?,
                self.dit.position_codes(f, h / p, w / p)?,
            ))
        })?;
        run_stage(Stage::Denoising, observer, &mut timings, |obs, timings| {
            let n = shape.num_inference_steps;
            for i in 0..n {
                obs.on_denoise_step_begin(i, n);
                let start = Instant::now();
                x = self.denoise_step(
                    &x,
                    &pos,
                    &cond,
                    req.guidance_scale,
                    shape.cfg,
                    times[i],
                    times[i + 1],
                )?;
                if let Some(delay) = req.test_delay.filter(|d| d.step == i) {
                    // The test-only knob: a deliberate, labelled slowdown of one step.
                    std::thread::sleep(Duration::from_millis(delay.ms));
                }
                let elapsed = start.elapsed();
                timings.denoise_steps.push(elapsed);
                obs.on_denoise_step_end(i, n, elapsed);
            }
            Ok(())
        })?;
        let frames = run_stage(Stage::Decoding, observer, &mut timings, |_, _| {
            self.decode(&x, &shape)
        })?;
        timings.total = t0.elapsed();
        Ok(GeneratedMedia {
            request_id: req.request_id.clone(),
            kind: shape.kind,
            width: shape.output_width,
            height: shape.output_height,
            native_width: shape.native_width,
            native_height: shape.native_height,
            upsample_factor: shape.upsample,
            num_inference_steps: shape.num_inference_steps,
            fps: req.fps,
            frames,
            timings,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn denoise_step(
        &self,
        x: &Tensor,
        pos: &Tensor,
        cond: &Conditioning,
        guidance: f64,
        cfg: bool,
        t_cur: f64,
        t_next: f64,
    ) -> Result<Tensor, DiffusionError> {
        let v = if cfg {
            // Conditional and unconditional rows in one batch of two.
            let xx = Tensor::cat(&[x, x], 0)?;
            let v = self.dit.forward(&xx, pos, cond, t_cur)?;
            let (vc, vu) = (v.narrow(0, 0, 1)?, v.narrow(0, 1, 1)?);
            (&vu + ((vc - &vu)? * guidance)?)?
        } else {
            self.dit.forward(x, pos, cond, t_cur)?
        };
        Ok(euler_step(x, &v, t_cur, t_next)?)
    }

    fn decode(&self, x: &Tensor, shape: &ResolvedShape) -> Result<Vec<Vec<u8>>, DiffusionError> {
        let c = &self.config;
        let latent = unpatchify(
            x,
            shape.num_frames,
            c.latent_channels,
            shape.latent_height,
            shape.latent_width,
            c.patch_size,
        )?;
        let pixels = self.decoder.forward(&latent)?;
        let bytes = ((pixels + 1.0)? * 127.5)?
            .clamp(0f32, 255f32)?
            .round()?
            .to_dtype(DType::U8)?
            .permute((0, 2, 3, 1))?
            .contiguous()?;
        let (nw, nh) = (shape.native_width, shape.native_height);
        (0..shape.num_frames)
            .map(|f| {
                let rgb = bytes.get(f)?.flatten_all()?.to_vec1::<u8>()?;
                Ok(upsample_nearest_rgb(&rgb, nw, nh, shape.upsample))
            })
            .collect()
    }
}

/// Parameter count of a config (for model info; matches what the constructors ask for).
fn count_params(c: &DiffusionConfig) -> usize {
    let lin = |i: usize, o: usize| i * o + o;
    let ln = |d: usize| 2 * d;
    let td = c.text_hidden_size;
    let text_block = ln(td) * 2
        + lin(td, 3 * td)
        + lin(td, td)
        + lin(td, td * c.mlp_ratio)
        + lin(td * c.mlp_ratio, td);
    let text = 258 * td + c.max_text_len * td + c.text_num_layers * text_block + ln(td);
    let d = c.hidden_size;
    let pd = c.latent_channels * c.patch_size * c.patch_size;
    let dit_block = lin(d, 6 * d)
        + lin(d, 3 * d)
        + lin(d, d)
        + lin(d, d * c.mlp_ratio)
        + lin(d * c.mlp_ratio, d);
    let dit = lin(pd, d)
        + lin(td, d) * 2
        + lin(3, d)
        + lin(d, d) * 2
        + c.num_layers * dit_block
        + lin(d, 2 * d)
        + lin(d, pd);
    let conv = |i: usize, o: usize| i * o * 9 + o;
    let ch = &c.decoder_channels;
    let first = ch.first().copied().unwrap_or(0);
    let last = ch.last().copied().unwrap_or(0);
    let mut dec = conv(c.latent_channels, first) + ln(last) + conv(last, 3);
    for (i, &cin) in ch.iter().enumerate() {
        dec += ln(cin) + conv(cin, ch.get(i + 1).copied().unwrap_or(cin));
    }
    text + dit + dec
}
