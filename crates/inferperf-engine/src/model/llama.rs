//! Llama-family decoder with the flattened ragged-batch forward: all tokens of a step form one
//! `[T, hidden]` matrix, each linear layer is one matmul for all requests, and attention runs
//! per request over its KV slots.

use std::time::Instant;

use candle_core::quantized::QMatMul;
use candle_core::{Device, Module, Tensor};

use super::attention::{apply_rope, ragged_attention, AttnDims, AttnSeq, RopeTable};
use super::weights::{MatWeight, WeightSource};
use crate::api::EngineError;
use crate::config::ModelConfig;
use crate::hooks::ModuleTiming;
use crate::kv::KvPool;

fn cerr(e: candle_core::Error) -> EngineError {
    EngineError::Other(format!("forward: {e}"))
}

/// `x · Wᵀ` for a `[T, in]` activation, through candle or our quantized kernels.
fn mat_forward(w: &MatWeight, x: &Tensor) -> Result<Tensor, EngineError> {
    match w {
        MatWeight::Candle(m) => m.forward(x).map_err(cerr),
        MatWeight::Quant(m) => {
            let t = x.dim(0).map_err(cerr)?;
            let xs = x
                .flatten_all()
                .and_then(|f| f.to_vec1::<f32>())
                .map_err(cerr)?;
            if xs.len() != t * m.cols() {
                return Err(EngineError::Other(format!(
                    "forward: activation of {} values for a [{t}, {}] input",
                    xs.len(),
                    m.cols()
                )));
            }
            Tensor::from_vec(m.matmul(&xs, t), (t, m.rows()), &Device::Cpu).map_err(cerr)
        }
    }
}

struct Linear {
    w: MatWeight,
    /// Dense copy of a quantized `w` for large batches (prefill).
    dense: Option<Tensor>,
    b: Option<Tensor>,
}

impl Linear {
    fn new(w: MatWeight, b: Option<Tensor>) -> Result<Self, EngineError> {
        let dense = match &w {
            MatWeight::Quant(q) => Some(
                Tensor::from_vec(q.dequantize(), (q.rows(), q.cols()), &Device::Cpu)
                    .and_then(|t| t.t())
                    .map_err(cerr)?,
            ),
            MatWeight::Candle(_) => None,
        };
        Ok(Self { w, dense, b })
    }

    /// `x · Wᵀ (+ b)`. The first `prefill_rows` rows (prompt tokens) multiply quantized weights
    /// through their dense f32 copy (candle's blocked GEMM: ~3x faster prefill than int8 at 64+
    /// rows); decode rows use the int8 kernels, which read 6x fewer bytes. The choice is per
    /// row kind, not per batch size, so a request's numbers do not depend on its batch.
    fn forward(&self, x: &Tensor, prefill_rows: usize) -> Result<Tensor, EngineError> {
        let t = x.dim(0).map_err(cerr)?;
        let y = match &self.dense {
            Some(wt) if prefill_rows >= t => x.matmul(wt).map_err(cerr)?,
            Some(wt) if prefill_rows > 0 => {
                let head = x.narrow(0, 0, prefill_rows).and_then(|h| h.matmul(wt));
                let tail = mat_forward(
                    &self.w,
                    &x.narrow(0, prefill_rows, t - prefill_rows).map_err(cerr)?,
                )?;
                Tensor::cat(&[head.map_err(cerr)?, tail], 0).map_err(cerr)?
            }
            _ => mat_forward(&self.w, x)?,
        };
        match &self.b {
            Some(b) => y.broadcast_add(b).map_err(cerr),
            None => Ok(y),
        }
    }
}

struct Layer {
    input_norm: Tensor,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    post_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// One request's part of a step.
#[derive(Clone, Debug)]
pub struct SeqInput {
    /// First row of this request in the flattened batch.
    pub row_start: usize,
    /// Rows (tokens) this step computes for it.
    pub len: usize,
    /// Tokens already in its KV cache.
    pub prefix: usize,
    /// KV slots of positions `0..prefix+len`.
    pub slots: Vec<usize>,
    /// Whether the last row's logits are wanted (false for non-final prefill chunks).
    pub sample: bool,
}

/// The inputs of one forward step.
#[derive(Clone, Debug, Default)]
pub struct ForwardBatch {
    pub input_ids: Vec<u32>,
    pub positions: Vec<usize>,
    pub seqs: Vec<SeqInput>,
    /// Leading rows that are prompt (prefill) tokens; the rest are decode tokens.
    pub prefill_rows: usize,
}

/// A loaded Llama-family model.
pub struct LlamaModel {
    pub config: ModelConfig,
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    lm_head: MatWeight,
    inv_freq: Vec<f32>,
}

fn linear(
    src: &mut dyn WeightSource,
    name: String,
    out: usize,
    inp: usize,
    bias: bool,
) -> Result<Linear, EngineError> {
    let fmt = src.format();
    let w = need(
        src.matmul(&format!("{name}.weight"), [out, inp])?,
        &name,
        fmt,
    )?;
    let b = if bias {
        Some(need(
            src.tensor(&format!("{name}.bias"), &[out])?,
            &name,
            fmt,
        )?)
    } else {
        None
    };
    Linear::new(w, b)
}

fn need<T>(v: Option<T>, name: &str, format: &str) -> Result<T, EngineError> {
    v.ok_or_else(|| EngineError::InvalidRequest(format!("{format} weights have no tensor {name}")))
}

impl LlamaModel {
    /// Load every tensor the config needs from `src`.
    pub fn load(config: ModelConfig, src: &mut dyn WeightSource) -> Result<Self, EngineError> {
        let fmt = src.format();
        let h = config.hidden_size;
        let (nh, nkv, hd) = (
            config.num_attention_heads,
            config.num_kv_heads(),
            config.head_dim(),
        );
        let inter = config.intermediate_size;
        let embed = need(
            src.tensor("model.embed_tokens.weight", &[config.vocab_size, h])?,
            "model.embed_tokens.weight",
            fmt,
        )?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let p = format!("model.layers.{i}");
            let bias = config.attention_bias;
            let q = linear(src, format!("{p}.self_attn.q_proj"), nh * hd, h, bias)?;
            let k = linear(src, format!("{p}.self_attn.k_proj"), nkv * hd, h, bias)?;
            let v = linear(src, format!("{p}.self_attn.v_proj"), nkv * hd, h, bias)?;
            let o = linear(src, format!("{p}.self_attn.o_proj"), h, nh * hd, false)?;
            let gate = linear(src, format!("{p}.mlp.gate_proj"), inter, h, false)?;
            let up = linear(src, format!("{p}.mlp.up_proj"), inter, h, false)?;
            let down = linear(src, format!("{p}.mlp.down_proj"), h, inter, false)?;
            let input_norm = need(
                src.tensor(&format!("{p}.input_layernorm.weight"), &[h])?,
                "input_layernorm",
                fmt,
            )?;
            let post_norm = need(
                src.tensor(&format!("{p}.post_attention_layernorm.weight"), &[h])?,
                "post_attention_layernorm",
                fmt,
            )?;
            layers.push(Layer {
                input_norm,
                q,
                k,
                v,
                o,
                post_norm,
                gate,
                up,
                down,
            });
        }
        let norm = need(
            src.tensor("model.norm.weight", &[h])?,
            "model.norm.weight",
            fmt,
        )?;
        let lm_head = match src.matmul("lm_head.weight", [config.vocab_size, h])? {
            Some(w) if !config.tie_word_embeddings || fmt == "gguf" => w,
            _ => match src.matmul("model.embed_tokens.weight", [config.vocab_size, h])? {
                Some(w) => w,
                None => MatWeight::Candle(QMatMul::Tensor(embed.clone())),
            },
        };
        let inv_freq = config.rope_inv_freq();
        Ok(Self {
            config,
            embed,
            layers,
            norm,
            lm_head,
            inv_freq,
        })
    }

    /// Run one step: writes the new tokens' K/V into `kv` and returns the logits of every
    /// sequence with `sample == true`, in order.
    pub fn forward(
        &self,
        batch: &ForwardBatch,
        kv: &mut KvPool,
        mut on_module: Option<&mut dyn FnMut(ModuleTiming)>,
    ) -> Result<Vec<Vec<f32>>, EngineError> {
        let cfg = &self.config;
        let t = batch.input_ids.len();
        let (nh, nkv, hd) = (cfg.num_attention_heads, cfg.num_kv_heads(), cfg.head_dim());
        let eps = cfg.rms_norm_eps as f32;
        let dev = Device::Cpu;
        let mut timed =
            |layer: Option<usize>, module: &'static str, start: Instant, shape: &[usize]| {
                if let Some(f) = on_module.as_deref_mut() {
                    f(ModuleTiming {
                        layer,
                        module,
                        start,
                        end: Instant::now(),
                        input_shape: shape.to_vec(),
                    });
                }
            };
        let ids = Tensor::from_slice(&batch.input_ids, t, &dev).map_err(cerr)?;
        let start = Instant::now();
        let mut x = self.embed.index_select(&ids, 0).map_err(cerr)?;
        timed(None, "embed_tokens", start, &[t]);
        let rope = RopeTable::new(&batch.positions, &self.inv_freq);
        let pr = batch.prefill_rows.min(t);
        let dims = AttnDims {
            heads: nh,
            kv_heads: nkv,
            head_dim: hd,
        };
        for (li, layer) in self.layers.iter().enumerate() {
            let s = Instant::now();
            let hn = candle_nn::ops::rms_norm(&x, &layer.input_norm, eps).map_err(cerr)?;
            timed(Some(li), "input_layernorm", s, &[t, cfg.hidden_size]);
            let s = Instant::now();
            let mut q = flat(&layer.q.forward(&hn, pr)?)?;
            let mut k = flat(&layer.k.forward(&hn, pr)?)?;
            let v = flat(&layer.v.forward(&hn, pr)?)?;
            timed(Some(li), "self_attn.qkv_proj", s, &[t, cfg.hidden_size]);
            let s = Instant::now();
            for row in 0..t {
                let (cos, sin) = rope.row(row);
                apply_rope(
                    &mut q[row * nh * hd..(row + 1) * nh * hd],
                    hd,
                    cos,
                    sin,
                    cfg.rope_style,
                );
                apply_rope(
                    &mut k[row * nkv * hd..(row + 1) * nkv * hd],
                    hd,
                    cos,
                    sin,
                    cfg.rope_style,
                );
            }
            let kvrow = nkv * hd;
            for seq in &batch.seqs {
                for i in 0..seq.len {
                    let row = seq.row_start + i;
                    let slot = seq.slots[seq.prefix + i];
                    kv.write(
                        li,
                        slot,
                        &k[row * kvrow..(row + 1) * kvrow],
                        &v[row * kvrow..(row + 1) * kvrow],
                    );
                }
            }
            let (kp, vp) = kv.layer(li);
            let attn_seqs: Vec<AttnSeq<'_>> = batch
                .seqs
                .iter()
                .map(|s| AttnSeq {
                    row_start: s.row_start,
                    len: s.len,
                    prefix: s.prefix,
                    slots: &s.slots,
                })
                .collect();
            let attn = ragged_attention(&q, kp, vp, &attn_seqs, &dims, t);
            timed(Some(li), "self_attn.attn", s, &[t, nh * hd]);
            let s = Instant::now();
            let attn = Tensor::from_vec(attn, (t, nh * hd), &dev).map_err(cerr)?;
            x = (x + layer.o.forward(&attn, pr)?).map_err(cerr)?;
            timed(Some(li), "self_attn.o_proj", s, &[t, nh * hd]);
            let s = Instant::now();
            let hn = candle_nn::ops::rms_norm(&x, &layer.post_norm, eps).map_err(cerr)?;
            let g = candle_nn::ops::silu(&layer.gate.forward(&hn, pr)?).map_err(cerr)?;
            let u = layer.up.forward(&hn, pr)?;
            let m = layer.down.forward(&(g * u).map_err(cerr)?, pr)?;
            x = (x + m).map_err(cerr)?;
            timed(Some(li), "mlp", s, &[t, cfg.hidden_size]);
        }
        let rows: Vec<u32> = batch
            .seqs
            .iter()
            .filter(|s| s.sample)
            .map(|s| (s.row_start + s.len - 1) as u32)
            .collect();
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let s = Instant::now();
        let idx = Tensor::from_slice(&rows, rows.len(), &dev).map_err(cerr)?;
        let last = x.index_select(&idx, 0).map_err(cerr)?;
        let last = candle_nn::ops::rms_norm(&last, &self.norm, eps).map_err(cerr)?;
        let logits = mat_forward(&self.lm_head, &last)?;
        let out = logits.to_vec2::<f32>().map_err(cerr)?;
        timed(None, "lm_head", s, &[rows.len(), cfg.hidden_size]);
        Ok(out)
    }
}

fn flat(t: &Tensor) -> Result<Vec<f32>, EngineError> {
    t.flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(cerr)
}
