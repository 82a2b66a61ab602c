//! GGUF `Q4_1` matrices with a SIMD integer dot product.
//!
//! candle 0.11 runs `Q4_1` through its generic scalar `vec_dot`, which made Q4_1 GGUF files
//! (SmolLM2-135M-Instruct.Q4_1, the reference model) decode several times slower than
//! llama.cpp. This is llama.cpp's scheme: activations are quantized per 32-value block to int8
//! (`Q8_1`: scale `d` and `s = d * sum(q)`), the 4-bit weights (`x = d*q + m`) are multiplied
//! as unsigned bytes with `maddubs`, and the offset term is `m * s` per block. Results are the
//! same arithmetic as llama.cpp's `ggml_vec_dot_q4_1_q8_1`, with a scalar fallback for CPUs
//! without AVX2.

use rayon::prelude::*;

/// Values per quantization block (GGUF `QK4_1`).
const QK: usize = 32;
/// Bytes of one GGUF `block_q4_1`: f16 d, f16 m, 16 bytes of nibbles.
const BLOCK_BYTES: usize = 20;
/// Weight rows per parallel work item.
const ROWS_PER_TASK: usize = 16;

/// A `[rows, cols]` Q4_1 matrix, stored as per-block f32 scale/min and packed nibbles.
pub struct Q41Matrix {
    rows: usize,
    cols: usize,
    /// Blocks per row (`cols / 32`).
    nb: usize,
    d: Vec<f32>,
    m: Vec<f32>,
    qs: Vec<[u8; 16]>,
    simd: bool,
}

/// One activation row quantized to int8 blocks (llama.cpp `block_q8_1`).
struct Q81 {
    d: Vec<f32>,
    s: Vec<f32>,
    qs: Vec<[i8; QK]>,
}

/// IEEE half to f32 (GGUF stores block scales as f16).
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: value = man * 2^-24.
            let v = man as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, _) => sign | 0x7fc0_0000,
        _ => sign | ((exp + 112) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

impl Q41Matrix {
    /// Parse raw GGUF `Q4_1` bytes of a `[rows, cols]` tensor; `None` if the sizes disagree.
    pub fn from_gguf_bytes(data: &[u8], rows: usize, cols: usize) -> Option<Self> {
        if cols % QK != 0 || data.len() != rows * (cols / QK) * BLOCK_BYTES {
            return None;
        }
        let n = rows * (cols / QK);
        let mut d = Vec::with_capacity(n);
        let mut m = Vec::with_capacity(n);
        let mut qs = Vec::with_capacity(n);
        for b in data.chunks_exact(BLOCK_BYTES) {
            d.push(f16_to_f32(u16::from_le_bytes([b[0], b[1]])));
            m.push(f16_to_f32(u16::from_le_bytes([b[2], b[3]])));
            let mut q = [0u8; 16];
            q.copy_from_slice(&b[4..20]);
            qs.push(q);
        }
        Some(Self {
            rows,
            cols,
            nb: cols / QK,
            d,
            m,
            qs,
            simd: simd_available(),
        })
    }

    /// Output features.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input features.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// `out[t, rows] = x[t, cols] · selfᵀ`, parallel over weight rows.
    pub fn matmul(&self, x: &[f32], t: usize) -> Vec<f32> {
        debug_assert_eq!(x.len(), t * self.cols);
        let acts: Vec<Q81> = x.chunks_exact(self.cols).map(quantize_q8_1).collect();
        // Computed as [rows, t] so that each task owns a contiguous output range; each weight
        // row is read once and reused for all t activation rows while it sits in L1.
        let mut out_t = vec![0.0f32; self.rows * t];
        out_t
            .par_chunks_mut(ROWS_PER_TASK * t)
            .enumerate()
            .for_each(|(task, chunk)| {
                let r0 = task * ROWS_PER_TASK;
                for (j, dst) in chunk.chunks_exact_mut(t).enumerate() {
                    let r = r0 + j;
                    let w = r * self.nb..(r + 1) * self.nb;
                    let (d, m, q) = (&self.d[w.clone()], &self.m[w.clone()], &self.qs[w]);
                    for (o, a) in dst.iter_mut().zip(&acts) {
                        *o = self.dot(d, m, q, a);
                    }
                }
            });
        if t == 1 {
            return out_t;
        }
        let mut out = vec![0.0f32; self.rows * t];
        for (r, row) in out_t.chunks_exact(t).enumerate() {
            for (ti, &v) in row.iter().enumerate() {
                out[ti * self.rows + r] = v;
            }
        }
        out
    }

    #[inline]
    fn dot(&self, d: &[f32], m: &[f32], q: &[[u8; 16]], a: &Q81) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if self.simd {
            // SAFETY: `simd` is true only when AVX2 and FMA were detected at runtime.
            return unsafe { dot_avx2(d, m, q, a) };
        }
        dot_scalar(d, m, q, a)
    }
}

fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// llama.cpp `quantize_row_q8_1`: per block `d = amax/127`, `q = round(x/d)`, `s = d*sum(q)`.
fn quantize_q8_1(x: &[f32]) -> Q81 {
    let nb = x.len() / QK;
    let mut out = Q81 {
        d: Vec::with_capacity(nb),
        s: Vec::with_capacity(nb),
        qs: Vec::with_capacity(nb),
    };
    for blk in x.chunks_exact(QK) {
        let amax = blk.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut q = [0i8; QK];
        let mut sum = 0i32;
        for (qi, &v) in q.iter_mut().zip(blk) {
            let r = (v * id).round() as i32;
            *qi = r as i8;
            sum += r;
        }
        out.d.push(d);
        out.s.push(d * sum as f32);
        out.qs.push(q);
    }
    out
}

fn dot_scalar(d: &[f32], m: &[f32], q: &[[u8; 16]], a: &Q81) -> f32 {
    let mut sum = 0.0f32;
    for b in 0..q.len() {
        let mut isum = 0i32;
        for (j, &byte) in q[b].iter().enumerate() {
            let lo = (byte & 0x0f) as i32;
            let hi = (byte >> 4) as i32;
            isum += lo * a.qs[b][j] as i32 + hi * a.qs[b][j + 16] as i32;
        }
        sum += d[b] * a.d[b] * isum as f32 + m[b] * a.s[b];
    }
    sum
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(d: &[f32], m: &[f32], q: &[[u8; 16]], a: &Q81) -> f32 {
    use std::arch::x86_64::*;
    let nb = q.len().min(a.qs.len());
    let low_mask = _mm256_set1_epi8(0x0f);
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_ps();
    let mut offset = 0.0f32;
    for b in 0..nb {
        // Nibbles: low halves are elements 0..16, high halves 16..32.
        let packed = _mm_loadu_si128(q[b].as_ptr() as *const __m128i);
        let hi = _mm_srli_epi16(packed, 4);
        let w = _mm256_and_si256(_mm256_set_m128i(hi, packed), low_mask);
        let x = _mm256_loadu_si256(a.qs[b].as_ptr() as *const __m256i);
        let p16 = _mm256_maddubs_epi16(w, x);
        let p32 = _mm256_madd_epi16(p16, ones);
        let scale = _mm256_set1_ps(d[b] * a.d[b]);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p32), scale, acc);
        offset += m[b] * a.s[b];
    }
    let lo = _mm256_castps256_ps128(acc);
    let hi = _mm256_extractf128_ps(acc, 1);
    let s4 = _mm_add_ps(lo, hi);
    let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    let s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
    _mm_cvtss_f32(s1) + offset
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_to_f16_bits(v: f32) -> u16 {
        // Exact for the small integers and halves used below.
        let bits = v.to_bits();
        let sign = ((bits >> 16) & 0x8000) as u16;
        if v == 0.0 {
            return sign;
        }
        let exp = ((bits >> 23) & 0xff) as i32 - 127 + 15;
        let man = ((bits >> 13) & 0x3ff) as u16;
        sign | ((exp as u16) << 10) | man
    }

    /// A Q4_1 matrix whose dequantized values are known exactly.
    fn matrix(rows: usize, cols: usize) -> (Vec<u8>, Vec<f32>) {
        let mut bytes = Vec::new();
        let mut dense = vec![0.0f32; rows * cols];
        for r in 0..rows {
            for b in 0..cols / QK {
                let d = 0.5 + (r % 3) as f32 * 0.25;
                let m = -(b as f32) - 1.0;
                bytes.extend_from_slice(&f32_to_f16_bits(d).to_le_bytes());
                bytes.extend_from_slice(&f32_to_f16_bits(m).to_le_bytes());
                for j in 0..16 {
                    let lo = ((r + j) % 16) as u8;
                    let hi = ((r * 7 + j * 3) % 16) as u8;
                    bytes.push(lo | (hi << 4));
                    dense[r * cols + b * QK + j] = d * lo as f32 + m;
                    dense[r * cols + b * QK + j + 16] = d * hi as f32 + m;
                }
            }
        }
        (bytes, dense)
    }

    #[test]
    fn f16_conversion_covers_normal_and_special_values() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3800), 0.5);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert!(f16_to_f32(0x7c00).is_infinite());
    }

    #[test]
    fn matmul_matches_dense_within_activation_quantization_error() {
        let (rows, cols, t) = (40, 96, 3);
        let (bytes, dense) = matrix(rows, cols);
        let w = Q41Matrix::from_gguf_bytes(&bytes, rows, cols).unwrap();
        let x: Vec<f32> = (0..t * cols)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
            .collect();
        let got = w.matmul(&x, t);
        for ti in 0..t {
            for r in 0..rows {
                let want: f32 = (0..cols)
                    .map(|c| x[ti * cols + c] * dense[r * cols + c])
                    .sum();
                // int8 activations are off by at most amax/254 per element.
                let scale: f32 = (0..cols)
                    .map(|c| (x[ti * cols + c] * dense[r * cols + c]).abs())
                    .sum();
                let g = got[ti * rows + r];
                assert!(
                    (g - want).abs() <= 0.01 * scale,
                    "row {r} t {ti}: {g} vs {want}"
                );
            }
        }
        // The SIMD and scalar kernels agree.
        let acts = quantize_q8_1(&x[..cols]);
        let (d, m, q) = (&w.d[..w.nb], &w.m[..w.nb], &w.qs[..w.nb]);
        let s = dot_scalar(d, m, q, &acts);
        assert!((w.dot(d, m, q, &acts) - s).abs() <= 1e-3 * s.abs().max(1.0));
    }

    #[test]
    fn wrong_sizes_are_refused() {
        assert!(Q41Matrix::from_gguf_bytes(&[0; 20], 2, 32).is_none());
        assert!(Q41Matrix::from_gguf_bytes(&[0; 20], 1, 16).is_none());
    }
}
