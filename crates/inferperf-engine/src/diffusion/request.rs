//! What one generation asks for, and its validation against a config: the resolved shape
//! (native grid, output size, upsampling factor) every later stage works from.

use crate::diffusion::config::DiffusionConfig;
use crate::diffusion::error::DiffusionError;

/// Test-only knob: make denoising step `step` slower by `ms` milliseconds (a real sleep inside
/// the step), so that tools comparing perf dumps can be tested against a known regression.
/// Mirrors the wire field `inferperf_diffusion_test_delay`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InferperfDiffusionTestDelay {
    /// Zero-based denoising step to slow down.
    pub step: usize,
    /// Extra milliseconds spent in that step.
    pub ms: u64,
}

/// A conditioning image (already decoded), RGB8, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputImage {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

/// One text-to-image or text-to-video request (`num_frames > 1` is a video).
#[derive(Clone, Debug, PartialEq)]
pub struct DiffusionRequest {
    /// Names the trace and perf-dump files.
    pub request_id: String,
    pub prompt: String,
    /// Used for the unconditional branch when classifier-free guidance is on.
    pub negative_prompt: String,
    /// Drives the initial noise; the same seed gives the same bytes.
    pub seed: u64,
    /// `None`: the config's default.
    pub num_inference_steps: Option<usize>,
    /// CFG scale; values `<= 1` run one forward per step without guidance.
    pub guidance_scale: f64,
    /// `None`: the native resolution.
    pub width: Option<usize>,
    pub height: Option<usize>,
    /// 1 for an image.
    pub num_frames: usize,
    /// Frames per second of a video (APNG frame delay).
    pub fps: u32,
    /// Optional conditioning image (image-to-image / image-to-video).
    pub image: Option<InputImage>,
    /// See [`InferperfDiffusionTestDelay`].
    pub test_delay: Option<InferperfDiffusionTestDelay>,
}

impl Default for DiffusionRequest {
    fn default() -> Self {
        Self {
            request_id: "mocked_fake_id_for_offline_generate".into(),
            prompt: String::new(),
            negative_prompt: String::new(),
            seed: 1024,
            num_inference_steps: None,
            guidance_scale: 1.0,
            width: None,
            height: None,
            num_frames: 1,
            fps: 24,
            image: None,
            test_delay: None,
        }
    }
}

/// Image or video.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Video,
}

/// A validated request shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResolvedShape {
    pub kind: MediaKind,
    pub num_frames: usize,
    pub num_inference_steps: usize,
    pub cfg: bool,
    /// Requested output size.
    pub output_width: usize,
    pub output_height: usize,
    /// Size the decoder produces; the output is this times `upsample`.
    pub native_width: usize,
    pub native_height: usize,
    /// Integer nearest-neighbour factor from native to output (1 = none).
    pub upsample: usize,
    /// Latent grid (cells) per frame.
    pub latent_height: usize,
    pub latent_width: usize,
}

impl ResolvedShape {
    /// DiT tokens per frame.
    pub fn tokens_per_frame(&self, patch: usize) -> usize {
        (self.latent_height / patch) * (self.latent_width / patch)
    }
}

/// Check `req` against `config` and work out the native grid.
///
/// Widths and heights must be multiples of `vae_scale_factor * patch_size` (16 by default). The
/// native size is `output / f` for the smallest integer `f` that keeps the DiT within its token
/// budget and the native size on the same 16-pixel grid; the decoded image is then upsampled
/// `f`x (nearest). A size with no such `f` is refused with the reason.
pub fn resolve(
    req: &DiffusionRequest,
    config: &DiffusionConfig,
) -> Result<ResolvedShape, DiffusionError> {
    if req.num_frames == 0 {
        return Err(DiffusionError::invalid("num_frames", "must be at least 1"));
    }
    if req.num_frames > config.max_frames {
        return Err(DiffusionError::invalid(
            "num_frames",
            format!(
                "{} exceeds this model's maximum of {}",
                req.num_frames, config.max_frames
            ),
        ));
    }
    let kind = if req.num_frames > 1 {
        MediaKind::Video
    } else {
        MediaKind::Image
    };
    if kind == MediaKind::Video && req.fps == 0 {
        return Err(DiffusionError::invalid("fps", "must be at least 1"));
    }
    let steps = req
        .num_inference_steps
        .unwrap_or(config.default_num_inference_steps);
    if steps == 0 {
        return Err(DiffusionError::invalid(
            "num_inference_steps",
            "must be at least 1",
        ));
    }
    if steps > config.max_num_inference_steps {
        return Err(DiffusionError::invalid(
            "num_inference_steps",
            format!(
                "{steps} exceeds the maximum of {}",
                config.max_num_inference_steps
            ),
        ));
    }
    if !req.guidance_scale.is_finite() || req.guidance_scale < 0.0 {
        return Err(DiffusionError::invalid(
            "guidance_scale",
            "must be a finite number >= 0",
        ));
    }
    if let Some(d) = req.test_delay {
        if d.step >= steps {
            return Err(DiffusionError::invalid(
                "inferperf_diffusion_test_delay",
                format!("step {} is not below num_inference_steps {steps}", d.step),
            ));
        }
    }
    if let Some(img) = &req.image {
        if img.width == 0 || img.height == 0 || img.rgb.len() != img.width * img.height * 3 {
            return Err(DiffusionError::invalid(
                "image",
                "empty or inconsistent RGB image",
            ));
        }
    }
    let (budget, default_side) = match kind {
        MediaKind::Image => (config.max_image_tokens, config.native_image_side()),
        MediaKind::Video => (
            config.max_video_tokens_per_frame,
            config.native_video_side(),
        ),
    };
    let width = req.width.unwrap_or(default_side);
    let height = req.height.unwrap_or(default_side);
    let m = config.pixel_multiple();
    for (field, v) in [("width", width), ("height", height)] {
        if v == 0 || v % m != 0 {
            return Err(DiffusionError::invalid(
                field,
                format!(
                    "{v} is not a positive multiple of {m} (VAE scale factor {} x patch size {})",
                    config.vae_scale_factor, config.patch_size
                ),
            ));
        }
        if v > config.max_output_side {
            return Err(DiffusionError::invalid(
                field,
                format!("{v} exceeds the maximum of {}", config.max_output_side),
            ));
        }
    }
    let (gw, gh) = (width / m, height / m);
    let factor = (1..=gw.max(gh))
        .find(|f| gw % f == 0 && gh % f == 0 && (gw / f) * (gh / f) <= budget)
        .ok_or_else(|| {
            DiffusionError::invalid(
                "width",
                format!("{width}x{height} has no integer downscale within {budget} tokens"),
            )
        })?;
    let native_width = width / factor;
    let native_height = height / factor;
    Ok(ResolvedShape {
        kind,
        num_frames: req.num_frames,
        num_inference_steps: steps,
        cfg: req.guidance_scale > 1.0,
        output_width: width,
        output_height: height,
        native_width,
        native_height,
        upsample: factor,
        latent_height: native_height / config.vae_scale_factor,
        latent_width: native_width / config.vae_scale_factor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(w: usize, h: usize, frames: usize) -> DiffusionRequest {
        DiffusionRequest {
            width: Some(w),
            height: Some(h),
            num_frames: frames,
            ..DiffusionRequest::default()
        }
    }

    #[test]
    fn native_grid_stays_within_the_token_budget() {
        let c = DiffusionConfig::default();
        let s = resolve(&req(1024, 1024, 1), &c).unwrap();
        assert_eq!((s.native_width, s.native_height, s.upsample), (256, 256, 4));
        assert_eq!((s.latent_width, s.latent_height), (32, 32));
        assert_eq!(s.tokens_per_frame(2), 256);
        let s = resolve(&req(1280, 720, 1), &c).unwrap();
        assert_eq!((s.native_width, s.native_height, s.upsample), (256, 144, 5));
        let s = resolve(&req(256, 128, 1), &c).unwrap();
        assert_eq!(s.upsample, 1);
        let s = resolve(&req(256, 256, 8), &c).unwrap();
        assert_eq!(
            (s.kind, s.native_width, s.upsample),
            (MediaKind::Video, 128, 2)
        );
    }

    #[test]
    fn bad_sizes_and_steps_name_the_field() {
        let c = DiffusionConfig::default();
        let err = resolve(&req(1000, 256, 1), &c).unwrap_err().to_string();
        assert!(
            err.contains("width") && err.contains("multiple of 16"),
            "{err}"
        );
        let r = DiffusionRequest {
            num_inference_steps: Some(0),
            ..DiffusionRequest::default()
        };
        let err = resolve(&r, &c).unwrap_err().to_string();
        assert!(err.contains("num_inference_steps"), "{err}");
        let r = DiffusionRequest {
            num_inference_steps: Some(3),
            test_delay: Some(InferperfDiffusionTestDelay { step: 3, ms: 1 }),
            ..DiffusionRequest::default()
        };
        assert!(resolve(&r, &c).is_err());
        assert!(resolve(&req(256, 256, 17), &c).is_err());
    }
}
