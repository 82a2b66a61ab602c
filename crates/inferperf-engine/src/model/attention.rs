//! Rotary embeddings and per-request attention over the KV pool, on plain f32 slices.
//!
//! The linear layers run as one candle matmul over all rows of a step; attention is the one part
//! that must look at each request's own KV slots, so it is written directly against the pool.

use rayon::prelude::*;

use crate::config::RopeStyle;

/// cos/sin of every row's position, computed once per step and shared by all layers.
pub struct RopeTable {
    half: usize,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl RopeTable {
    /// Angles `pos * inv_freq[i]` for each row's position.
    pub fn new(positions: &[usize], inv_freq: &[f32]) -> Self {
        let half = inv_freq.len();
        let mut cos = Vec::with_capacity(positions.len() * half);
        let mut sin = Vec::with_capacity(positions.len() * half);
        for &p in positions {
            for f in inv_freq {
                let (s, c) = (p as f32 * f).sin_cos();
                cos.push(c);
                sin.push(s);
            }
        }
        Self { half, cos, sin }
    }

    /// cos and sin of one row.
    pub fn row(&self, row: usize) -> (&[f32], &[f32]) {
        let r = row * self.half..(row + 1) * self.half;
        (&self.cos[r.clone()], &self.sin[r])
    }
}

/// Rotate every `head_dim` vector in `x` (one token's heads) by the row's `cos`/`sin`.
pub fn apply_rope(x: &mut [f32], head_dim: usize, cos: &[f32], sin: &[f32], style: RopeStyle) {
    let half = head_dim / 2;
    for v in x.chunks_exact_mut(head_dim) {
        for (i, (&cos, &sin)) in cos.iter().zip(sin).enumerate().take(half) {
            let (a, b) = match style {
                RopeStyle::Neox => (i, i + half),
                RopeStyle::Interleaved => (2 * i, 2 * i + 1),
            };
            let (x0, x1) = (v[a], v[b]);
            v[a] = x0 * cos - x1 * sin;
            v[b] = x0 * sin + x1 * cos;
        }
    }
}

/// Dot product with eight independent partial sums: a plain `sum()` is one serial chain of
/// float adds (no reassociation without fast-math), which made decode attention latency-bound.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Shape of one attention call.
pub struct AttnDims {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

/// One request's query rows: `q` rows `[row_start, row_start+len)` sit at positions
/// `prefix..prefix+len`, and see keys at positions `0..=pos` through `slots`.
pub struct AttnSeq<'a> {
    pub row_start: usize,
    pub len: usize,
    pub prefix: usize,
    pub slots: &'a [usize],
}

/// Causal attention for every request of a step; returns `[T, heads*head_dim]`.
pub fn ragged_attention(
    q: &[f32],
    k_pool: &[f32],
    v_pool: &[f32],
    seqs: &[AttnSeq<'_>],
    d: &AttnDims,
    total_rows: usize,
) -> Vec<f32> {
    let qrow = d.heads * d.head_dim;
    let kvrow = d.kv_heads * d.head_dim;
    let group = d.heads / d.kv_heads;
    let scale = 1.0 / (d.head_dim as f32).sqrt();
    // One task per (request, head): independent outputs, gathered afterwards.
    let tasks: Vec<(usize, usize)> = (0..seqs.len())
        .flat_map(|s| (0..d.heads).map(move |h| (s, h)))
        .collect();
    // A few splits per thread: a decode step has (requests x heads) tiny tasks, and one split
    // per task would cost more in scheduling than the attention itself.
    let min_len = (tasks.len() / (4 * rayon::current_num_threads())).max(1);
    let parts: Vec<Vec<f32>> = tasks
        .par_iter()
        .with_min_len(min_len)
        .map(|&(s, h)| {
            let seq = &seqs[s];
            let kvh = h / group;
            let mut out = vec![0.0f32; seq.len * d.head_dim];
            let mut scores = Vec::with_capacity(seq.prefix + seq.len);
            for i in 0..seq.len {
                let qv = &q[(seq.row_start + i) * qrow + h * d.head_dim..][..d.head_dim];
                let visible = seq.prefix + i + 1;
                scores.clear();
                let mut max = f32::NEG_INFINITY;
                for &slot in &seq.slots[..visible] {
                    let kv = &k_pool[slot * kvrow + kvh * d.head_dim..][..d.head_dim];
                    let s = dot(qv, kv) * scale;
                    max = max.max(s);
                    scores.push(s);
                }
                let mut sum = 0.0;
                for s in scores.iter_mut() {
                    *s = (*s - max).exp();
                    sum += *s;
                }
                let o = &mut out[i * d.head_dim..(i + 1) * d.head_dim];
                for (w, &slot) in scores.iter().zip(&seq.slots[..visible]) {
                    let vv = &v_pool[slot * kvrow + kvh * d.head_dim..][..d.head_dim];
                    let w = w / sum;
                    for (acc, x) in o.iter_mut().zip(vv) {
                        *acc += w * x;
                    }
                }
            }
            out
        })
        .collect();
    let mut out = vec![0.0f32; total_rows * qrow];
    for (&(s, h), part) in tasks.iter().zip(parts) {
        let seq = &seqs[s];
        for i in 0..seq.len {
            let dst = (seq.row_start + i) * qrow + h * d.head_dim;
            out[dst..dst + d.head_dim].copy_from_slice(&part[i * d.head_dim..][..d.head_dim]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rope_styles_agree_at_position_zero_and_preserve_norm() {
        let inv = [1.0f32, 0.1];
        let table = RopeTable::new(&[0, 7], &inv);
        let mut a = vec![1.0, 2.0, 3.0, 4.0];
        let (c, s) = table.row(0);
        apply_rope(&mut a, 4, c, s, RopeStyle::Neox);
        assert_eq!(a, vec![1.0, 2.0, 3.0, 4.0]);
        let n0: f32 = a.iter().map(|x| x * x).sum();
        let (c, s) = table.row(1);
        apply_rope(&mut a, 4, c, s, RopeStyle::Interleaved);
        let n1: f32 = a.iter().map(|x| x * x).sum();
        assert!((n0 - n1).abs() < 1e-4);
    }

    #[test]
    fn single_key_attention_returns_its_value() {
        let d = AttnDims {
            heads: 2,
            kv_heads: 1,
            head_dim: 2,
        };
        let q = vec![1.0, 0.0, 0.0, 1.0];
        let k = vec![0.5, 0.5];
        let v = vec![3.0, -1.0];
        let slots = [0usize];
        let seqs = [AttnSeq {
            row_start: 0,
            len: 1,
            prefix: 0,
            slots: &slots,
        }];
        let out = ragged_attention(&q, &k, &v, &seqs, &d, 1);
        assert_eq!(out, vec![3.0, -1.0, 3.0, -1.0]);
    }
}
