//! The text encoder: UTF-8 bytes as tokens, learned positions, bidirectional transformer
//! blocks; per-token context for joint attention and a mean-pooled vector for adaLN.

use candle_core::{Device, Module, Result, Tensor};
use candle_nn::{embedding, layer_norm, Embedding, LayerNorm, VarBuilder};

use crate::diffusion::config::DiffusionConfig;
use crate::diffusion::layers::{Mlp, SelfAttention};

/// Token ids: 0..=255 bytes, then BOS and PAD.
const BOS: u32 = 256;
const PAD: u32 = 257;
const VOCAB: usize = 258;

struct Block {
    ln1: LayerNorm,
    attn: SelfAttention,
    ln2: LayerNorm,
    mlp: Mlp,
}

impl Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = (x + self.attn.forward(&self.ln1.forward(x)?)?)?;
        &x + self.mlp.forward(&self.ln2.forward(&x)?)?
    }
}

/// Encodes prompts into `(context (b, L, d_text), pooled (b, d_text))`.
pub(crate) struct TextEncoder {
    embed: Embedding,
    pos: Tensor,
    blocks: Vec<Block>,
    norm: LayerNorm,
    max_len: usize,
}

impl TextEncoder {
    pub fn new(c: &DiffusionConfig, vb: VarBuilder) -> Result<Self> {
        let d = c.text_hidden_size;
        let blocks = (0..c.text_num_layers)
            .map(|i| {
                let vb = vb.pp(format!("blocks.{i}"));
                Ok(Block {
                    ln1: layer_norm(d, 1e-5, vb.pp("ln1"))?,
                    attn: SelfAttention::new(d, c.text_num_heads, vb.pp("attn"))?,
                    ln2: layer_norm(d, 1e-5, vb.pp("ln2"))?,
                    mlp: Mlp::new(d, d * c.mlp_ratio, vb.pp("mlp"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embed: embedding(VOCAB, d, vb.pp("embed"))?,
            pos: vb.get((c.max_text_len, d), "pos_embed")?,
            blocks,
            norm: layer_norm(d, 1e-5, vb.pp("norm"))?,
            max_len: c.max_text_len,
        })
    }

    /// BOS, the prompt's bytes (truncated), PAD to `max_len`; also the unpadded length.
    pub fn tokenize(&self, prompt: &str) -> (Vec<u32>, usize) {
        let mut ids = vec![BOS];
        ids.extend(prompt.bytes().take(self.max_len - 1).map(u32::from));
        let len = ids.len();
        ids.resize(self.max_len, PAD);
        (ids, len)
    }

    pub fn encode(&self, prompts: &[&str]) -> Result<(Tensor, Tensor)> {
        let mut ids = Vec::with_capacity(prompts.len() * self.max_len);
        let mut lens = Vec::with_capacity(prompts.len());
        for p in prompts {
            let (t, len) = self.tokenize(p);
            ids.extend(t);
            lens.push(len);
        }
        let ids = Tensor::from_vec(ids, (prompts.len(), self.max_len), &Device::Cpu)?;
        let mut x = self.embed.forward(&ids)?.broadcast_add(&self.pos)?;
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        let x = self.norm.forward(&x)?;
        // Mean over the real tokens only, so padding does not dilute short prompts.
        let pooled = lens
            .iter()
            .enumerate()
            .map(|(i, &len)| x.get(i)?.narrow(0, 0, len)?.mean(0))
            .collect::<Result<Vec<_>>>()?;
        let pooled = Tensor::stack(&pooled, 0)?;
        Ok((x, pooled))
    }
}
