//! Model sizes of the tiny diffusion pipeline, loadable from JSON so that tests and benchmarks
//! can scale the work without code changes.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::diffusion::error::DiffusionError;

/// Sizes of the text encoder, the DiT and the decoder, plus sampler defaults.
///
/// The default is small enough for a few hundred milliseconds per 256x256 image on two CPU
/// cores. Unknown keys are rejected, so a typo in a config file is an error, not a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiffusionConfig {
    /// Channels of the latent the DiT denoises.
    pub latent_channels: usize,
    /// Pixels per latent cell along each axis; the decoder upsamples 2x per block, so this is
    /// `2^decoder_channels.len()`.
    pub vae_scale_factor: usize,
    /// Latent cells per DiT token along each axis (FLUX packs 2x2).
    pub patch_size: usize,
    /// Largest number of DiT tokens per image; larger requests are decoded at a smaller native
    /// resolution and upsampled.
    pub max_image_tokens: usize,
    /// Largest number of DiT tokens per video frame (all frames attend to each other).
    pub max_video_tokens_per_frame: usize,
    /// Most frames a video request may ask for.
    pub max_frames: usize,
    /// Largest output width or height accepted.
    pub max_output_side: usize,
    /// DiT width (a multiple of 16: the 3-axis position code splits it).
    pub hidden_size: usize,
    pub num_heads: usize,
    pub num_layers: usize,
    pub mlp_ratio: usize,
    /// Text encoder width, depth and heads (bidirectional blocks over byte tokens).
    pub text_hidden_size: usize,
    pub text_num_layers: usize,
    pub text_num_heads: usize,
    /// Text tokens after padding/truncation (FLUX pads its T5 sequence the same way).
    pub max_text_len: usize,
    /// Decoder widths, one upsampling block each.
    pub decoder_channels: Vec<usize>,
    /// Time shift of the flow-matching schedule (`shift * t / (1 + (shift - 1) * t)`).
    pub flow_shift: f64,
    /// Steps when the request does not say.
    pub default_num_inference_steps: usize,
    /// Most steps a request may ask for.
    pub max_num_inference_steps: usize,
    /// Seed of the dummy weights (the request seed only drives the noise).
    pub weights_seed: u64,
}

impl Default for DiffusionConfig {
    fn default() -> Self {
        Self {
            latent_channels: 4,
            vae_scale_factor: 8,
            patch_size: 2,
            max_image_tokens: 256,
            max_video_tokens_per_frame: 64,
            max_frames: 16,
            max_output_side: 4096,
            hidden_size: 64,
            num_heads: 4,
            num_layers: 2,
            mlp_ratio: 4,
            text_hidden_size: 64,
            text_num_layers: 2,
            text_num_heads: 4,
            max_text_len: 48,
            decoder_channels: vec![32, 16, 8],
            flow_shift: 3.0,
            default_num_inference_steps: 20,
            max_num_inference_steps: 1000,
            weights_seed: 0,
        }
    }
}

impl DiffusionConfig {
    /// Read a JSON config file (missing keys take the defaults) and validate it.
    pub fn from_json_file(path: &Path) -> Result<Self, DiffusionError> {
        let text = std::fs::read_to_string(path).map_err(|e| DiffusionError::Load {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let config: Self = serde_json::from_str(&text).map_err(|e| DiffusionError::Load {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Pixels per DiT token along each axis: `vae_scale_factor * patch_size`. Requested widths
    /// and heights must be multiples of it.
    pub fn pixel_multiple(&self) -> usize {
        self.vae_scale_factor * self.patch_size
    }

    /// Native (largest, square) image resolution: the token budget as a square grid.
    pub fn native_image_side(&self) -> usize {
        isqrt(self.max_image_tokens) * self.pixel_multiple()
    }

    /// Native (largest, square) video frame resolution.
    pub fn native_video_side(&self) -> usize {
        isqrt(self.max_video_tokens_per_frame) * self.pixel_multiple()
    }

    /// Check that the sizes fit together.
    pub fn validate(&self) -> Result<(), DiffusionError> {
        let bad = |m: String| Err(DiffusionError::InvalidConfig(m));
        let positive = [
            ("latent_channels", self.latent_channels),
            ("patch_size", self.patch_size),
            ("max_image_tokens", self.max_image_tokens),
            (
                "max_video_tokens_per_frame",
                self.max_video_tokens_per_frame,
            ),
            ("max_frames", self.max_frames),
            ("hidden_size", self.hidden_size),
            ("num_heads", self.num_heads),
            ("num_layers", self.num_layers),
            ("mlp_ratio", self.mlp_ratio),
            ("text_hidden_size", self.text_hidden_size),
            ("text_num_layers", self.text_num_layers),
            ("text_num_heads", self.text_num_heads),
            ("max_text_len", self.max_text_len),
            ("max_num_inference_steps", self.max_num_inference_steps),
        ];
        for (name, v) in positive {
            if v == 0 {
                return bad(format!("{name} must be at least 1"));
            }
        }
        if self.decoder_channels.is_empty() {
            return bad("decoder_channels needs at least one block".into());
        }
        if self.vae_scale_factor != 1 << self.decoder_channels.len() {
            return bad(format!(
                "vae_scale_factor {} must be 2^len(decoder_channels) = {}",
                self.vae_scale_factor,
                1usize << self.decoder_channels.len()
            ));
        }
        if let Some(c) = self
            .decoder_channels
            .iter()
            .find(|c| **c == 0 || **c % 4 != 0)
        {
            return bad(format!(
                "decoder channel {c} must be a positive multiple of 4 (group norm groups)"
            ));
        }
        if self.hidden_size % 16 != 0 {
            return bad(format!(
                "hidden_size {} must be a multiple of 16",
                self.hidden_size
            ));
        }
        if self.hidden_size % self.num_heads != 0 {
            return bad("hidden_size must be divisible by num_heads".into());
        }
        if self.text_hidden_size % self.text_num_heads != 0 {
            return bad("text_hidden_size must be divisible by text_num_heads".into());
        }
        if self.max_text_len < 2 {
            return bad("max_text_len must be at least 2 (BOS plus one byte)".into());
        }
        if !(self.flow_shift.is_finite() && self.flow_shift > 0.0) {
            return bad("flow_shift must be a positive number".into());
        }
        if self.default_num_inference_steps == 0
            || self.default_num_inference_steps > self.max_num_inference_steps
        {
            return bad(
                "default_num_inference_steps must be in 1..=max_num_inference_steps".into(),
            );
        }
        Ok(())
    }
}

/// Integer square root (floor).
pub(crate) fn isqrt(n: usize) -> usize {
    let mut r = (n as f64).sqrt() as usize;
    while r * r > n {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= n {
        r += 1;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_native_sizes_follow_the_budget() {
        let c = DiffusionConfig::default();
        c.validate().unwrap();
        assert_eq!(c.pixel_multiple(), 16);
        assert_eq!(c.native_image_side(), 256);
        assert_eq!(c.native_video_side(), 128);
    }

    #[test]
    fn inconsistent_sizes_are_named() {
        let c = DiffusionConfig {
            vae_scale_factor: 4,
            ..DiffusionConfig::default()
        };
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("vae_scale_factor"), "{err}");
        let err = serde_json::from_str::<DiffusionConfig>(r#"{"hiden_size": 8}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("hiden_size"), "{err}");
    }
}
