//! Llama-family decoder with the flattened ragged-batch forward: all tokens of a step form one
//! `[T, hidden]` matrix, each linear layer is one matmul for all requests, and attention runs
//! per request over its KV slots.

use std::time::Instant;

use candle_core::quantized::QMatMul;
use candle_core::{Device, Module, Tensor};

use super::attention::{apply_rope, ragged_attention, AttnDims, AttnSeq, RopeTable};
use super::tp::{Job, RankForward, TpGroup};
use super::weights::{MatWeight, WeightSource};
use crate::api::EngineError;
use crate::config::ModelConfig;
use crate::hooks::{BatchSummary, ModuleTiming, StepHooks};
use crate::kv::KvPool;

/// Where one rank's K/V rows live: the engine's pool (rank 0) or a worker rank's own slots
/// (same slot numbers, its own KV heads).
pub trait KvStore {
    fn write(&mut self, layer: usize, slot: usize, k: &[f32], v: &[f32]);
    fn layer(&self, layer: usize) -> (&[f32], &[f32]);
}

impl KvStore for KvPool {
    fn write(&mut self, layer: usize, slot: usize, k: &[f32], v: &[f32]) {
        KvPool::write(self, layer, slot, k, v)
    }
    fn layer(&self, layer: usize) -> (&[f32], &[f32]) {
        KvPool::layer(self, layer)
    }
}

/// A worker rank's K/V storage: `slots x (kv_heads/N · head_dim)` per layer.
struct RankKv {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    row: usize,
}

impl KvStore for RankKv {
    fn write(&mut self, layer: usize, slot: usize, k: &[f32], v: &[f32]) {
        let at = slot * self.row;
        self.k[layer][at..at + self.row].copy_from_slice(k);
        self.v[layer][at..at + self.row].copy_from_slice(v);
    }
    fn layer(&self, layer: usize) -> (&[f32], &[f32]) {
        (&self.k[layer], &self.v[layer])
    }
}

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

/// Rows (`dim == 0`) or columns (`dim == 1`) `a..b` of a weight matrix.
fn slice_mat(w: &MatWeight, dim: usize, a: usize, b: usize) -> Result<MatWeight, EngineError> {
    use candle_core::quantized::QMatMul;
    let dense = |t: &Tensor| -> Result<MatWeight, EngineError> {
        let t = t
            .to_dtype(candle_core::DType::F32)
            .and_then(|t| t.narrow(dim, a, b - a))
            .and_then(|t| t.contiguous())
            .map_err(cerr)?;
        Ok(MatWeight::Candle(QMatMul::Tensor(t)))
    };
    match w {
        MatWeight::Quant(q) => {
            let part = if dim == 0 {
                q.slice_rows(a, b)
            } else {
                q.slice_cols(a, b)
            };
            part.map(MatWeight::Quant).ok_or_else(|| {
                EngineError::InvalidRequest(format!(
                    "tensor parallelism: cannot split a quantized [{}, {}] matrix at {a}..{b} (input splits must fall on 32-wide blocks)",
                    q.rows(),
                    q.cols()
                ))
            })
        }
        MatWeight::Candle(QMatMul::Tensor(t)) | MatWeight::Candle(QMatMul::TensorF16(t)) => {
            dense(t)
        }
        MatWeight::Candle(QMatMul::QTensor(q)) => dense(&q.dequantize(&Device::Cpu).map_err(cerr)?),
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

    /// Output features `a..b` (a column-parallel shard: q/k/v, gate, up).
    fn rows(&self, a: usize, b: usize) -> Result<Self, EngineError> {
        let bias = match &self.b {
            Some(b0) => Some(b0.narrow(0, a, b - a).map_err(cerr)?),
            None => None,
        };
        Self::new(slice_mat(&self.w, 0, a, b)?, bias)
    }

    /// Input features `a..b` (a row-parallel shard: o_proj, down_proj); the bias, if any,
    /// stays with rank 0 so the reduced sum adds it once.
    fn cols(&self, a: usize, b: usize, keep_bias: bool) -> Result<Self, EngineError> {
        Self::new(
            slice_mat(&self.w, 1, a, b)?,
            if keep_bias { self.b.clone() } else { None },
        )
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
    /// The step as the scheduler described it (for the worker ranks' step hooks).
    pub summary: Option<BatchSummary>,
}

/// One rank's share of the decoder layers (all of them without tensor parallelism).
struct Shard {
    layers: Vec<Layer>,
    heads: usize,
    kv_heads: usize,
}

/// A loaded Llama-family model.
pub struct LlamaModel {
    pub config: ModelConfig,
    embed: Tensor,
    shard: Shard,
    norm: Tensor,
    lm_head: MatWeight,
    inv_freq: Vec<f32>,
    /// Worker ranks 1.. with tensor parallelism.
    tp: Option<TpGroup>,
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
        let shard = Shard {
            layers,
            heads: config.num_attention_heads,
            kv_heads: config.num_kv_heads(),
        };
        Ok(Self {
            config,
            embed,
            shard,
            norm,
            lm_head,
            inv_freq,
            tp: None,
        })
    }

    /// Tensor-parallel size (1 without worker ranks).
    pub fn tp_size(&self) -> usize {
        self.tp.as_ref().map_or(1, |t| t.world())
    }

    /// KV heads this rank stores (the engine's pool is sized with it).
    pub fn local_kv_heads(&self) -> usize {
        self.shard.kv_heads
    }

    /// Split the layers over `1 + worker_hooks.len()` ranks: this model keeps rank 0's share;
    /// ranks 1.. run on their own threads with `kv_slots` KV slots and report to their hooks.
    /// Refuses sizes that do not divide evenly, naming them.
    pub fn into_tensor_parallel(
        mut self,
        worker_hooks: Vec<Box<dyn StepHooks>>,
        kv_slots: usize,
    ) -> Result<Self, EngineError> {
        let n = worker_hooks.len() + 1;
        if n == 1 {
            return Ok(self);
        }
        let cfg = self.config.clone();
        let (nh, nkv, hd, inter) = (
            cfg.num_attention_heads,
            cfg.num_kv_heads(),
            cfg.head_dim(),
            cfg.intermediate_size,
        );
        if nh % n != 0 || nkv % n != 0 || inter % n != 0 {
            return Err(EngineError::InvalidRequest(format!(
                "--tp-size {n} must divide the attention heads ({nh}), the KV heads ({nkv}) and the MLP size ({inter})"
            )));
        }
        let (lh, lkv, li) = (nh / n, nkv / n, inter / n);
        let mut shards: Vec<Vec<Layer>> = (0..n).map(|_| Vec::new()).collect();
        for l in &self.shard.layers {
            for (r, shard) in shards.iter_mut().enumerate() {
                shard.push(Layer {
                    input_norm: l.input_norm.clone(),
                    q: l.q.rows(r * lh * hd, (r + 1) * lh * hd)?,
                    k: l.k.rows(r * lkv * hd, (r + 1) * lkv * hd)?,
                    v: l.v.rows(r * lkv * hd, (r + 1) * lkv * hd)?,
                    o: l.o.cols(r * lh * hd, (r + 1) * lh * hd, r == 0)?,
                    post_norm: l.post_norm.clone(),
                    gate: l.gate.rows(r * li, (r + 1) * li)?,
                    up: l.up.rows(r * li, (r + 1) * li)?,
                    down: l.down.cols(r * li, (r + 1) * li, r == 0)?,
                });
            }
        }
        let mut shards = shards.into_iter();
        self.shard = Shard {
            layers: shards.next().unwrap_or_default(),
            heads: lh,
            kv_heads: lkv,
        };
        let mut ranks: Vec<(RankForward, Box<dyn StepHooks>)> = Vec::new();
        for (layers, hooks) in shards.zip(worker_hooks) {
            let shard = Shard {
                layers,
                heads: lh,
                kv_heads: lkv,
            };
            let row = lkv * hd;
            let mut kv = RankKv {
                k: (0..cfg.num_hidden_layers)
                    .map(|_| vec![0.0; kv_slots * row])
                    .collect(),
                v: (0..cfg.num_hidden_layers)
                    .map(|_| vec![0.0; kv_slots * row])
                    .collect(),
                row,
            };
            let (cfg, inv_freq) = (cfg.clone(), self.inv_freq.clone());
            let forward: RankForward = Box::new(move |job, reduce, on_module| {
                let t = job.batch.input_ids.len();
                let x = Tensor::from_vec(job.x0.clone(), (t, cfg.hidden_size), &Device::Cpu)
                    .map_err(cerr)?;
                run_layers(
                    &cfg,
                    &shard,
                    &inv_freq,
                    x,
                    &job.batch,
                    &mut kv,
                    Some(reduce),
                    on_module,
                )
                .map(|_| ())
            });
            ranks.push((forward, hooks));
        }
        let hidden = cfg.hidden_size;
        self.tp = Some(TpGroup::start(
            ranks,
            2 * cfg.num_hidden_layers,
            move |job: &Job| job.batch.input_ids.len() * hidden,
        )?);
        Ok(self)
    }

    /// Let the worker ranks' hooks apply queued commands (profiler start/stop).
    pub fn poll_rank_hooks(&self) {
        if let Some(tp) = &self.tp {
            tp.poll_hooks();
        }
    }

    /// Run one step: writes the new tokens' K/V into `kv` and returns the logits of every
    /// sequence with `sample == true`, in order. With tensor parallelism the worker ranks run
    /// their shares of the same step and the partial outputs are all-reduced.
    pub fn forward(
        &self,
        batch: &ForwardBatch,
        kv: &mut KvPool,
        mut on_module: Option<&mut dyn FnMut(ModuleTiming)>,
    ) -> Result<Vec<Vec<f32>>, EngineError> {
        let cfg = &self.config;
        let t = batch.input_ids.len();
        let eps = cfg.rms_norm_eps as f32;
        let dev = Device::Cpu;
        let ids = Tensor::from_slice(&batch.input_ids, t, &dev).map_err(cerr)?;
        let start = Instant::now();
        let x = self.embed.index_select(&ids, 0).map_err(cerr)?;
        if let Some(f) = on_module.as_deref_mut() {
            f(ModuleTiming {
                layer: None,
                module: "embed_tokens",
                start,
                end: Instant::now(),
                input_shape: vec![t],
                params: vec![("weight", vec![cfg.vocab_size, cfg.hidden_size])],
            });
        }
        let x = match &self.tp {
            None => run_layers(
                cfg,
                &self.shard,
                &self.inv_freq,
                x,
                batch,
                kv,
                None,
                on_module.as_deref_mut(),
            )?,
            Some(tp) => {
                tp.dispatch(std::sync::Arc::new(Job {
                    x0: flat(&x)?,
                    batch: std::sync::Arc::new(batch.clone()),
                    summary: batch.summary.clone(),
                }));
                let reduce = |part: Vec<f32>| tp.reduce.reduce(0, part);
                let mine = run_layers(
                    cfg,
                    &self.shard,
                    &self.inv_freq,
                    x,
                    batch,
                    kv,
                    Some(&reduce),
                    on_module.as_deref_mut(),
                );
                // Every rank finishes the step (errors included) before the next one starts.
                let others = tp.join_step();
                let x = mine?;
                others?;
                x
            }
        };
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
        if let Some(f) = on_module {
            f(ModuleTiming {
                layer: None,
                module: "lm_head",
                start: s,
                end: Instant::now(),
                input_shape: vec![rows.len(), cfg.hidden_size],
                params: vec![("weight", vec![cfg.vocab_size, cfg.hidden_size])],
            });
        }
        Ok(out)
    }
}

/// The decoder layers of one rank over a step: `x` is the embedding output; with `reduce`
/// (tensor parallelism) the partial attention and MLP outputs are summed across ranks.
#[allow(clippy::too_many_arguments)]
fn run_layers(
    cfg: &ModelConfig,
    shard: &Shard,
    inv_freq: &[f32],
    mut x: Tensor,
    batch: &ForwardBatch,
    kv: &mut dyn KvStore,
    reduce: Option<&dyn Fn(Vec<f32>) -> Vec<f32>>,
    mut on_module: Option<&mut (dyn FnMut(ModuleTiming) + '_)>,
) -> Result<Tensor, EngineError> {
    let t = batch.input_ids.len();
    let (nh, nkv, hd) = (shard.heads, shard.kv_heads, cfg.head_dim());
    let h = cfg.hidden_size;
    let eps = cfg.rms_norm_eps as f32;
    let dev = Device::Cpu;
    // Parameter shapes of the modules that own weights on this rank (SGLang's fused
    // QKVParallelLinear holds q, k and v in one weight).
    let params = |module: &str| -> Vec<(&'static str, Vec<usize>)> {
        match module {
            "input_layernorm" => vec![("weight", vec![h])],
            "self_attn.qkv_proj" => vec![("weight", vec![(nh + 2 * nkv) * hd, h])],
            "self_attn.o_proj" => vec![("weight", vec![h, nh * hd])],
            _ => Vec::new(),
        }
    };
    let mut timed =
        |layer: Option<usize>, module: &'static str, start: Instant, shape: &[usize]| {
            if let Some(f) = on_module.as_deref_mut() {
                f(ModuleTiming {
                    layer,
                    module,
                    start,
                    end: Instant::now(),
                    input_shape: shape.to_vec(),
                    params: params(module),
                });
            }
        };
    let rope = RopeTable::new(&batch.positions, inv_freq);
    let pr = batch.prefill_rows.min(t);
    let dims = AttnDims {
        heads: nh,
        kv_heads: nkv,
        head_dim: hd,
    };
    for (li, layer) in shard.layers.iter().enumerate() {
        let s = Instant::now();
        let hn = candle_nn::ops::rms_norm(&x, &layer.input_norm, eps).map_err(cerr)?;
        timed(Some(li), "input_layernorm", s, &[t, h]);
        let s = Instant::now();
        let mut q = flat(&layer.q.forward(&hn, pr)?)?;
        let mut k = flat(&layer.k.forward(&hn, pr)?)?;
        let v = flat(&layer.v.forward(&hn, pr)?)?;
        timed(Some(li), "self_attn.qkv_proj", s, &[t, h]);
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
        let o = layer.o.forward(&attn, pr)?;
        timed(Some(li), "self_attn.o_proj", s, &[t, nh * hd]);
        let (o, reduced_from) = all_reduce(o, reduce, (t, h))?;
        if let Some(s) = reduced_from {
            timed(Some(li), "all_reduce", s, &[t, h]);
        }
        x = (x + o).map_err(cerr)?;
        let s = Instant::now();
        let hn = candle_nn::ops::rms_norm(&x, &layer.post_norm, eps).map_err(cerr)?;
        let g = candle_nn::ops::silu(&layer.gate.forward(&hn, pr)?).map_err(cerr)?;
        let u = layer.up.forward(&hn, pr)?;
        let m = layer.down.forward(&(g * u).map_err(cerr)?, pr)?;
        timed(Some(li), "mlp", s, &[t, h]);
        let (m, reduced_from) = all_reduce(m, reduce, (t, h))?;
        if let Some(s) = reduced_from {
            timed(Some(li), "all_reduce", s, &[t, h]);
        }
        x = (x + m).map_err(cerr)?;
    }
    Ok(x)
}

/// Sum a `(t, h)` partial result over the tensor-parallel ranks with `reduce` (unchanged on a
/// single rank); also returns when the reduction started, for its timing span.
fn all_reduce(
    y: Tensor,
    reduce: Option<&dyn Fn(Vec<f32>) -> Vec<f32>>,
    shape: (usize, usize),
) -> Result<(Tensor, Option<Instant>), EngineError> {
    let Some(r) = reduce else {
        return Ok((y, None));
    };
    let start = Instant::now();
    let sum = Tensor::from_vec(r(flat(&y)?), shape, &Device::Cpu).map_err(cerr)?;
    Ok((sum, Some(start)))
}

fn flat(t: &Tensor) -> Result<Vec<f32>, EngineError> {
    t.flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(cerr)
}
