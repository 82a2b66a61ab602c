//! The diffusion transformer: patch tokens and text tokens in one sequence (joint attention),
//! adaLN modulation from the timestep plus pooled text (and image) conditioning.

use candle_core::{Device, Module, Result, Tensor};
use candle_nn::{linear, Linear, VarBuilder};

use crate::diffusion::config::DiffusionConfig;
use crate::diffusion::layers::{layer_norm_plain, modulate, sinusoidal, Mlp, SelfAttention};

struct Block {
    modulation: Linear,
    attn: SelfAttention,
    mlp: Mlp,
}

impl Block {
    /// `x`: `(b, n, d)`, `c`: `silu(conditioning)` of shape `(b, d)`.
    fn forward(&self, x: &Tensor, c: &Tensor) -> Result<Tensor> {
        let m = self.modulation.forward(c)?.unsqueeze(1)?.chunk(6, 2)?;
        let h = modulate(&layer_norm_plain(x)?, &m[0], &m[1])?;
        let x = (x + self.attn.forward(&h)?.broadcast_mul(&m[2])?)?;
        let h = modulate(&layer_norm_plain(&x)?, &m[3], &m[4])?;
        &x + self.mlp.forward(&h)?.broadcast_mul(&m[5])?
    }
}

/// Conditioning computed once per request (the Conditioning stage).
pub(crate) struct Conditioning {
    /// Text tokens projected to the DiT width, `(b, L, d)`.
    pub context: Tensor,
    /// Pooled text (+ image) vector, `(b, d)`.
    pub vector: Tensor,
}

pub(crate) struct Dit {
    x_embed: Linear,
    context_embed: Linear,
    pooled_embed: Linear,
    image_embed: Linear,
    t_mlp1: Linear,
    t_mlp2: Linear,
    blocks: Vec<Block>,
    final_modulation: Linear,
    final_out: Linear,
    hidden: usize,
}

impl Dit {
    pub fn new(c: &DiffusionConfig, vb: VarBuilder) -> Result<Self> {
        let d = c.hidden_size;
        let patch_dim = c.latent_channels * c.patch_size * c.patch_size;
        let blocks = (0..c.num_layers)
            .map(|i| {
                let vb = vb.pp(format!("blocks.{i}"));
                Ok(Block {
                    modulation: linear(d, 6 * d, vb.pp("modulation"))?,
                    attn: SelfAttention::new(d, c.num_heads, vb.pp("attn"))?,
                    mlp: Mlp::new(d, d * c.mlp_ratio, vb.pp("mlp"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            x_embed: linear(patch_dim, d, vb.pp("x_embed"))?,
            context_embed: linear(c.text_hidden_size, d, vb.pp("context_embed"))?,
            pooled_embed: linear(c.text_hidden_size, d, vb.pp("pooled_embed"))?,
            image_embed: linear(3, d, vb.pp("image_embed"))?,
            t_mlp1: linear(d, d, vb.pp("t_embed.fc1"))?,
            t_mlp2: linear(d, d, vb.pp("t_embed.fc2"))?,
            blocks,
            final_modulation: linear(d, 2 * d, vb.pp("final.modulation"))?,
            final_out: linear(d, patch_dim, vb.pp("final.out"))?,
            hidden: d,
        })
    }

    /// Project the text outputs (and the optional image's mean colour, `(1, 3)` in [-1, 1]).
    pub fn condition(
        &self,
        context: &Tensor,
        pooled: &Tensor,
        image_mean: Option<&Tensor>,
    ) -> Result<Conditioning> {
        let mut vector = self.pooled_embed.forward(pooled)?;
        if let Some(img) = image_mean {
            vector = vector.broadcast_add(&self.image_embed.forward(img)?)?;
        }
        Ok(Conditioning {
            context: self.context_embed.forward(context)?,
            vector,
        })
    }

    /// Fixed 3-axis (frame, row, column) sinusoidal codes for `frames x rows x cols` tokens,
    /// `(n, d)`: a quarter of the width for the frame, three eighths each for row and column.
    pub fn position_codes(&self, frames: usize, rows: usize, cols: usize) -> Result<Tensor> {
        let d = self.hidden;
        let (df, dr) = (d / 4, 3 * d / 8);
        let mut out = Vec::with_capacity(frames * rows * cols * d);
        for f in 0..frames {
            let cf = sinusoidal(&[f as f32], df);
            for r in 0..rows {
                let cr = sinusoidal(&[r as f32], dr);
                for col in 0..cols {
                    out.extend_from_slice(&cf);
                    out.extend_from_slice(&cr);
                    out.extend(sinusoidal(&[col as f32], d - df - dr));
                }
            }
        }
        Tensor::from_vec(out, (frames * rows * cols, d), &Device::Cpu)
    }

    /// Velocity for patch tokens `x` `(b, n, patch_dim)` at time `t` in [0, 1].
    pub fn forward(&self, x: &Tensor, pos: &Tensor, cond: &Conditioning, t: f64) -> Result<Tensor> {
        let (b, n, _) = x.dims3()?;
        let temb = Tensor::from_vec(
            sinusoidal(&[(t * 1000.0) as f32], self.hidden),
            (1, self.hidden),
            &Device::Cpu,
        )?;
        let temb = self
            .t_mlp2
            .forward(&candle_nn::ops::silu(&self.t_mlp1.forward(&temb)?)?)?;
        let c = candle_nn::ops::silu(&cond.vector.broadcast_add(&temb)?)?;
        let img = self.x_embed.forward(x)?.broadcast_add(pos)?;
        let ctx_len = cond.context.dim(1)?;
        let mut h = Tensor::cat(&[&cond.context, &img], 1)?;
        for block in &self.blocks {
            h = block.forward(&h, &c)?;
        }
        let h = h.narrow(1, ctx_len, n)?;
        let m = self
            .final_modulation
            .forward(&c)?
            .unsqueeze(1)?
            .chunk(2, 2)?;
        let h = modulate(&layer_norm_plain(&h)?, &m[0], &m[1])?;
        let out = self.final_out.forward(&h)?;
        debug_assert_eq!(out.dim(0)?, b);
        Ok(out)
    }
}

/// `(frames, C, H, W)` latents to `(1, frames*(H/p)*(W/p), C*p*p)` tokens.
pub(crate) fn patchify(latent: &Tensor, p: usize) -> Result<Tensor> {
    let (f, c, h, w) = latent.dims4()?;
    latent
        .reshape((f, c, h / p, p, w / p, p))?
        .permute((0, 2, 4, 1, 3, 5))?
        .reshape((1, f * (h / p) * (w / p), c * p * p))
}

/// Inverse of [`patchify`].
pub(crate) fn unpatchify(
    tokens: &Tensor,
    frames: usize,
    channels: usize,
    h: usize,
    w: usize,
    p: usize,
) -> Result<Tensor> {
    tokens
        .reshape((frames, h / p, w / p, channels, p, p))?
        .permute((0, 3, 1, 4, 2, 5))?
        .reshape((frames, channels, h, w))
}
