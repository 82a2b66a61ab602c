//! The latent decoder: conv stacks with 2x nearest upsampling per block (a VAE decoder's shape
//! without its residual blocks), ending in RGB through `tanh`.

use candle_core::{Module, Result, Tensor};
use candle_nn::{conv2d, group_norm, Conv2d, Conv2dConfig, GroupNorm, VarBuilder};

use crate::diffusion::config::DiffusionConfig;

struct UpBlock {
    norm: GroupNorm,
    conv: Conv2d,
}

pub(crate) struct Decoder {
    conv_in: Conv2d,
    blocks: Vec<UpBlock>,
    norm_out: GroupNorm,
    conv_out: Conv2d,
}

const GROUPS: usize = 4;

impl Decoder {
    pub fn new(c: &DiffusionConfig, vb: VarBuilder) -> Result<Self> {
        let cfg = Conv2dConfig {
            padding: 1,
            ..Default::default()
        };
        let ch = &c.decoder_channels;
        let first = ch.first().copied().unwrap_or(GROUPS);
        let last = ch.last().copied().unwrap_or(GROUPS);
        let blocks = ch
            .iter()
            .enumerate()
            .map(|(i, &cin)| {
                let cout = ch.get(i + 1).copied().unwrap_or(cin);
                let vb = vb.pp(format!("up.{i}"));
                Ok(UpBlock {
                    norm: group_norm(GROUPS, cin, 1e-6, vb.pp("norm"))?,
                    conv: conv2d(cin, cout, 3, cfg, vb.pp("conv"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            conv_in: conv2d(c.latent_channels, first, 3, cfg, vb.pp("conv_in"))?,
            blocks,
            norm_out: group_norm(GROUPS, last, 1e-6, vb.pp("norm_out"))?,
            conv_out: conv2d(last, 3, 3, cfg, vb.pp("conv_out"))?,
        })
    }

    /// `(n, C, h, w)` latents to `(n, 3, h*s, w*s)` pixels in [-1, 1].
    pub fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let mut x = self.conv_in.forward(z)?;
        for b in &self.blocks {
            let (_, _, h, w) = x.dims4()?;
            let y = candle_nn::ops::silu(&b.norm.forward(&x)?)?;
            x = b.conv.forward(&y.upsample_nearest2d(2 * h, 2 * w)?)?;
        }
        let y = candle_nn::ops::silu(&self.norm_out.forward(&x)?)?;
        self.conv_out.forward(&y)?.tanh()
    }
}
