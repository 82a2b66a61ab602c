//! GGUF `Q4_1` and `Q8_0` matrices with SIMD integer dot products, row-tiled for batches.
//!
//! candle 0.11 runs `Q4_1` through its generic scalar `vec_dot`, which made Q4_1 GGUF files
//! (SmolLM2-135M-Instruct.Q4_1, the reference model) decode several times slower than
//! llama.cpp, and its matmuls compute one (weight row, activation row) pair at a time. This is
//! llama.cpp's scheme: activations are quantized per 32-value block to int8 (`Q8_1`: scale `d`
//! and `s = d * sum(q)`); 4-bit weights (`x = d*q + m`) are multiplied as unsigned bytes with
//! `maddubs` and the offset term is `m * s` per block (`ggml_vec_dot_q4_1_q8_1`); 8-bit weights
//! use the sign trick of `ggml_vec_dot_q8_0_q8_0`. Each weight block is loaded once for up to
//! four activation rows, which is where batched decode saves time. A scalar fallback serves
//! CPUs without AVX2.

use rayon::prelude::*;

/// Values per quantization block (GGUF `QK4_1`).
const QK: usize = 32;
/// Bytes of one GGUF `block_q4_1`: f16 d, f16 m, 16 bytes of nibbles.
const Q4_1_BYTES: usize = 20;
/// Bytes of one GGUF `block_q8_0`: f16 d, 32 signed bytes.
const Q8_0_BYTES: usize = 34;
/// Smallest number of weight rows per parallel work item (a multiple of 4: the 4-row
/// kernels' groups).
const MIN_ROWS_PER_TASK: usize = 16;
/// Work items per thread: enough for load balance, few enough that big matrices (the 49152-row
/// `lm_head`) are not split into thousands of tiny tasks.
const TASKS_PER_THREAD: usize = 8;

/// The GGUF block types with a kernel here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QKind {
    Q4_1,
    Q8_0,
}

/// Block quants: 4-bit with a per-block minimum, or signed 8-bit.
enum Quants {
    Q4_1 { m: Vec<f32>, qs: Vec<[u8; 16]> },
    Q8_0 { qs: Vec<[i8; QK]> },
}

/// A `[rows, cols]` quantized matrix: per-block f32 scales and the block quants.
pub struct QMatrix {
    rows: usize,
    cols: usize,
    /// Blocks per row (`cols / 32`).
    nb: usize,
    d: Vec<f32>,
    quants: Quants,
    simd: bool,
}

/// Activation rows quantized to int8 blocks (llama.cpp `block_q8_1`), row-major
/// `[t, nb]`: scale `d`, `s = d * sum(q)` and the 32 quants of each block.
struct ActQ8 {
    nb: usize,
    /// Number of rows.
    t: usize,
    d: Vec<f32>,
    s: Vec<f32>,
    qs: Vec<[i8; QK]>,
    /// `d` and `s` transposed to `[nb, t]`, so the 4-row kernels load four rows' scales of a
    /// block with one vector load.
    d_by_block: Vec<f32>,
    s_by_block: Vec<f32>,
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

impl QMatrix {
    /// Parse the raw GGUF bytes of a `[rows, cols]` tensor; `None` if the sizes disagree.
    pub fn from_gguf_bytes(kind: QKind, data: &[u8], rows: usize, cols: usize) -> Option<Self> {
        let block = match kind {
            QKind::Q4_1 => Q4_1_BYTES,
            QKind::Q8_0 => Q8_0_BYTES,
        };
        if cols % QK != 0 || data.len() != rows * (cols / QK) * block {
            return None;
        }
        let n = rows * (cols / QK);
        let mut d = Vec::with_capacity(n);
        let half = |b: &[u8], at: usize| f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]));
        let quants = match kind {
            QKind::Q4_1 => {
                let mut m = Vec::with_capacity(n);
                let mut qs = Vec::with_capacity(n);
                for b in data.chunks_exact(block) {
                    d.push(half(b, 0));
                    m.push(half(b, 2));
                    let mut q = [0u8; 16];
                    q.copy_from_slice(&b[4..20]);
                    qs.push(q);
                }
                Quants::Q4_1 { m, qs }
            }
            QKind::Q8_0 => {
                let mut qs = Vec::with_capacity(n);
                for b in data.chunks_exact(block) {
                    d.push(half(b, 0));
                    let mut q = [0i8; QK];
                    for (dst, &src) in q.iter_mut().zip(&b[2..34]) {
                        *dst = src as i8;
                    }
                    qs.push(q);
                }
                Quants::Q8_0 { qs }
            }
        };
        Some(Self {
            rows,
            cols,
            nb: cols / QK,
            d,
            quants,
            simd: simd_available(),
        })
    }

    /// The matrix as dense row-major f32 (exact: every quantized value is representable).
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.rows * self.cols);
        match &self.quants {
            Quants::Q4_1 { m, qs } => {
                for ((&d, &m), q) in self.d.iter().zip(m).zip(qs) {
                    out.extend(q.iter().map(|&b| d * (b & 0x0f) as f32 + m));
                    out.extend(q.iter().map(|&b| d * (b >> 4) as f32 + m));
                }
            }
            Quants::Q8_0 { qs } => {
                for (&d, q) in self.d.iter().zip(qs) {
                    out.extend(q.iter().map(|&v| d * v as f32));
                }
            }
        }
        out
    }

    /// Rows `r0..r1` (a tensor-parallel shard of output features).
    pub fn slice_rows(&self, r0: usize, r1: usize) -> Option<Self> {
        if r0 > r1 || r1 > self.rows {
            return None;
        }
        let b = r0 * self.nb..r1 * self.nb;
        let quants = match &self.quants {
            Quants::Q4_1 { m, qs } => Quants::Q4_1 {
                m: m[b.clone()].to_vec(),
                qs: qs[b.clone()].to_vec(),
            },
            Quants::Q8_0 { qs } => Quants::Q8_0 {
                qs: qs[b.clone()].to_vec(),
            },
        };
        Some(Self {
            rows: r1 - r0,
            cols: self.cols,
            nb: self.nb,
            d: self.d[b].to_vec(),
            quants,
            simd: self.simd,
        })
    }

    /// Columns `c0..c1` (a shard of input features); both must fall on 32-wide block
    /// boundaries, so the blocks are copied as they are.
    pub fn slice_cols(&self, c0: usize, c1: usize) -> Option<Self> {
        if c0 > c1 || c1 > self.cols || c0 % QK != 0 || c1 % QK != 0 {
            return None;
        }
        let (b0, b1) = (c0 / QK, c1 / QK);
        let idx: Vec<usize> = (0..self.rows)
            .flat_map(|r| (r * self.nb + b0)..(r * self.nb + b1))
            .collect();
        let quants = match &self.quants {
            Quants::Q4_1 { m, qs } => Quants::Q4_1 {
                m: idx.iter().map(|&i| m[i]).collect(),
                qs: idx.iter().map(|&i| qs[i]).collect(),
            },
            Quants::Q8_0 { qs } => Quants::Q8_0 {
                qs: idx.iter().map(|&i| qs[i]).collect(),
            },
        };
        Some(Self {
            rows: self.rows,
            cols: c1 - c0,
            nb: b1 - b0,
            d: idx.iter().map(|&i| self.d[i]).collect(),
            quants,
            simd: self.simd,
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
        let acts = quantize_q8_1(x, self.nb);
        // Computed as [rows, t] so that each task owns a contiguous output range; each weight
        // row is read (and unpacked) once for up to four activation rows at a time.
        let mut out_t = vec![0.0f32; self.rows * t];
        let rows_per_task = (self.rows / (TASKS_PER_THREAD * rayon::current_num_threads()))
            .next_multiple_of(4)
            .max(MIN_ROWS_PER_TASK);
        out_t
            .par_chunks_mut(rows_per_task * t)
            .enumerate()
            .for_each(|(task, chunk)| {
                let r0 = task * rows_per_task;
                for (j, dst) in chunk.chunks_exact_mut(t).enumerate() {
                    self.row_dots(r0 + j, &acts, dst);
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

    /// Dot products of weight row `r` with every activation row, into `dst[t]`.
    fn row_dots(&self, r: usize, a: &ActQ8, dst: &mut [f32]) {
        let w = r * self.nb..(r + 1) * self.nb;
        let d = &self.d[w.clone()];
        match &self.quants {
            Quants::Q4_1 { m, qs } => {
                let (m, q) = (&m[w.clone()], &qs[w]);
                #[cfg(target_arch = "x86_64")]
                if self.simd {
                    // SAFETY: `simd` is true only when AVX2 and FMA were detected at runtime.
                    tiles(dst, |i, out| unsafe {
                        match out.len() {
                            4 => out.copy_from_slice(&dot4_q4_1_avx2(d, m, q, a, i)),
                            _ => out[0] = dot1_q4_1_avx2(d, m, q, a, i),
                        }
                    });
                    return;
                }
                for (i, o) in dst.iter_mut().enumerate() {
                    *o = dot_q4_1_scalar(d, m, q, a, i);
                }
            }
            Quants::Q8_0 { qs } => {
                let q = &qs[w];
                #[cfg(target_arch = "x86_64")]
                if self.simd {
                    // SAFETY: as above.
                    tiles(dst, |i, out| unsafe {
                        match out.len() {
                            4 => out.copy_from_slice(&dot4_q8_0_avx2(d, q, a, i)),
                            _ => out[0] = dot1_q8_0_avx2(d, q, a, i),
                        }
                    });
                    return;
                }
                for (i, o) in dst.iter_mut().enumerate() {
                    *o = dot_q8_0_scalar(d, q, a, i);
                }
            }
        }
    }
}

/// Fill `dst` in groups of four rows (then one at a time) with `dots(first_row, n)`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn tiles(dst: &mut [f32], mut dots: impl FnMut(usize, &mut [f32])) {
    let mut i = 0;
    while i < dst.len() {
        let n = if i + 4 <= dst.len() { 4 } else { 1 };
        dots(i, &mut dst[i..i + n]);
        i += n;
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

/// llama.cpp `quantize_row_q8_1` for every row: per block `d = amax/127`,
/// `q = round(x/d)`, `s = d*sum(q)`.
fn quantize_q8_1(x: &[f32], nb: usize) -> ActQ8 {
    let n = x.len() / QK;
    let mut out = ActQ8 {
        nb,
        t: n / nb.max(1),
        d: Vec::with_capacity(n),
        s: Vec::with_capacity(n),
        qs: Vec::with_capacity(n),
        d_by_block: vec![0.0; n],
        s_by_block: vec![0.0; n],
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
    for (k, (&d, &s)) in out.d.iter().zip(&out.s).enumerate() {
        let (row, b) = (k / nb, k % nb);
        out.d_by_block[b * out.t + row] = d;
        out.s_by_block[b * out.t + row] = s;
    }
    out
}

/// Q4_1 dot product of one weight row with activation row `row` (portable reference).
fn dot_q4_1_scalar(d: &[f32], m: &[f32], q: &[[u8; 16]], a: &ActQ8, row: usize) -> f32 {
    let mut sum = 0.0f32;
    for b in 0..q.len() {
        let i = row * a.nb + b;
        let mut isum = 0i32;
        for (j, &byte) in q[b].iter().enumerate() {
            let lo = (byte & 0x0f) as i32;
            let hi = (byte >> 4) as i32;
            isum += lo * a.qs[i][j] as i32 + hi * a.qs[i][j + 16] as i32;
        }
        sum += d[b] * a.d[i] * isum as f32 + m[b] * a.s[i];
    }
    sum
}

/// Q8_0 dot product of one weight row with activation row `row` (portable reference).
fn dot_q8_0_scalar(d: &[f32], q: &[[i8; QK]], a: &ActQ8, row: usize) -> f32 {
    let mut sum = 0.0f32;
    for b in 0..q.len() {
        let i = row * a.nb + b;
        let isum: i32 = q[b]
            .iter()
            .zip(&a.qs[i])
            .map(|(&w, &x)| w as i32 * x as i32)
            .sum();
        sum += d[b] * a.d[i] * isum as f32;
    }
    sum
}

/// One row's share of [`reduce4`]: the block product's low and high 128-bit halves summed
/// (exactly, in integers) into lanes 0 and 4, as floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn reduce1(p: std::arch::x86_64::__m256i) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    let h = _mm256_hadd_epi32(p, p);
    _mm256_cvtepi32_ps(_mm256_hadd_epi32(h, h))
}

/// `(lo + hi) + extra` from lanes 0 and 4, the same additions as [`halves4`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn halves1(v: std::arch::x86_64::__m256, extra: f32) -> f32 {
    use std::arch::x86_64::*;
    let lo = _mm_cvtss_f32(_mm256_castps256_ps128(v));
    let hi = _mm_cvtss_f32(_mm256_extractf128_ps(v, 1));
    (lo + hi) + extra
}

/// Q8_0 dot product of one weight row with activation row `row`. Bit-identical to the same
/// row's result from [`dot4_q8_0_avx2`] (same integer reductions, same FMA sequence), so a
/// request's tokens do not depend on how many others share its batch.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot1_q8_0_avx2(d: &[f32], q: &[[i8; QK]], a: &ActQ8, row: usize) -> f32 {
    use std::arch::x86_64::*;
    let nb = q.len();
    // Real checks, once: the loop below reads without bounds checks.
    assert!(d.len() == nb && a.nb == nb && (row + 1) * nb <= a.qs.len());
    assert!(a.d.len() == a.qs.len());
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_ps();
    for b in 0..nb {
        let k = row * nb + b;
        let w = _mm256_loadu_si256(q.get_unchecked(b).as_ptr() as *const __m256i);
        let x = _mm256_loadu_si256(a.qs.get_unchecked(k).as_ptr() as *const __m256i);
        // maddubs wants unsigned x signed: |w| times x with w's sign moved onto x.
        let p32 = _mm256_madd_epi16(
            _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w)),
            ones,
        );
        let scale = _mm256_set1_ps(*a.d.get_unchecked(k) * *d.get_unchecked(b));
        acc = _mm256_fmadd_ps(reduce1(p32), scale, acc);
    }
    halves1(acc, 0.0)
}

/// Q4_1 dot product of one weight row with activation row `row`, bit-identical to the same
/// row's result from [`dot4_q4_1_avx2`] (see [`dot1_q8_0_avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot1_q4_1_avx2(d: &[f32], m: &[f32], q: &[[u8; 16]], a: &ActQ8, row: usize) -> f32 {
    use std::arch::x86_64::*;
    let nb = q.len();
    // Real checks, once: the loop below reads without bounds checks.
    assert!(d.len() == nb && m.len() == nb && a.nb == nb && (row + 1) * nb <= a.qs.len());
    assert!(a.d.len() == a.qs.len() && a.s.len() == a.qs.len());
    let low_mask = _mm256_set1_epi8(0x0f);
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_ps();
    let mut offset = 0.0f32;
    for b in 0..nb {
        let k = row * nb + b;
        // Nibbles: low halves are elements 0..16, high halves 16..32.
        let packed = _mm_loadu_si128(q.get_unchecked(b).as_ptr() as *const __m128i);
        let hi = _mm_srli_epi16(packed, 4);
        let w = _mm256_and_si256(_mm256_set_m128i(hi, packed), low_mask);
        let x = _mm256_loadu_si256(a.qs.get_unchecked(k).as_ptr() as *const __m256i);
        let p32 = _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), ones);
        let scale = _mm256_set1_ps(*a.d.get_unchecked(k) * *d.get_unchecked(b));
        acc = _mm256_fmadd_ps(reduce1(p32), scale, acc);
        offset = a.s.get_unchecked(k).mul_add(*m.get_unchecked(b), offset);
    }
    halves1(acc, offset)
}

/// Reduce four rows' 8-lane int32 block products to `[r0, r1, r2, r3]` per 128-bit half, as
/// floats (the two halves are summed at the end).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn reduce4(p: [std::arch::x86_64::__m256i; 4]) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    let h01 = _mm256_hadd_epi32(p[0], p[1]);
    let h23 = _mm256_hadd_epi32(p[2], p[3]);
    _mm256_cvtepi32_ps(_mm256_hadd_epi32(h01, h23))
}

/// Sum the two 128-bit halves of `v` (four rows each) plus `extra`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn halves4(v: std::arch::x86_64::__m256, extra: std::arch::x86_64::__m128) -> [f32; 4] {
    use std::arch::x86_64::*;
    let s = _mm_add_ps(
        _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)),
        extra,
    );
    let mut out = [0.0f32; 4];
    _mm_storeu_ps(out.as_mut_ptr(), s);
    out
}

/// Q4_1 dot products of one weight row with activation rows `first..first+4`: the four
/// rows' block products are reduced together, so block scales and offsets are applied with
/// one vector op per block instead of one scalar chain per row.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot4_q4_1_avx2(
    d: &[f32],
    m: &[f32],
    q: &[[u8; 16]],
    a: &ActQ8,
    first: usize,
) -> [f32; 4] {
    use std::arch::x86_64::*;
    let (nb, t) = (q.len(), a.t);
    // Real checks, once: the loop below reads without bounds checks.
    assert!(d.len() == nb && m.len() == nb && a.nb == nb && first + 4 <= t);
    assert!(a.qs.len() == nb * t && a.d_by_block.len() == nb * t && a.s_by_block.len() == nb * t);
    let low_mask = _mm256_set1_epi8(0x0f);
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_ps();
    let mut offset = _mm_setzero_ps();
    for b in 0..nb {
        let packed = _mm_loadu_si128(q.get_unchecked(b).as_ptr() as *const __m128i);
        let hi = _mm_srli_epi16(packed, 4);
        let w = _mm256_and_si256(_mm256_set_m128i(hi, packed), low_mask);
        let mut p = [_mm256_setzero_si256(); 4];
        for (i, p) in p.iter_mut().enumerate() {
            let k = (first + i) * nb + b;
            let x = _mm256_loadu_si256(a.qs.get_unchecked(k).as_ptr() as *const __m256i);
            *p = _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), ones);
        }
        let at = b * t + first;
        let ad = _mm_loadu_ps(a.d_by_block.as_ptr().add(at));
        let scale = _mm_mul_ps(ad, _mm_set1_ps(*d.get_unchecked(b)));
        acc = _mm256_fmadd_ps(reduce4(p), _mm256_set_m128(scale, scale), acc);
        let as_ = _mm_loadu_ps(a.s_by_block.as_ptr().add(at));
        offset = _mm_fmadd_ps(as_, _mm_set1_ps(*m.get_unchecked(b)), offset);
    }
    halves4(acc, offset)
}

/// Q8_0 dot products of one weight row with activation rows `first..first+4` (see
/// [`dot4_q4_1_avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot4_q8_0_avx2(d: &[f32], q: &[[i8; QK]], a: &ActQ8, first: usize) -> [f32; 4] {
    use std::arch::x86_64::*;
    let (nb, t) = (q.len(), a.t);
    // Real checks, once: the loop below reads without bounds checks.
    assert!(d.len() == nb && a.nb == nb && first + 4 <= t);
    assert!(a.qs.len() == nb * t && a.d_by_block.len() == nb * t);
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_ps();
    for b in 0..nb {
        let w = _mm256_loadu_si256(q.get_unchecked(b).as_ptr() as *const __m256i);
        let aw = _mm256_sign_epi8(w, w);
        let mut p = [_mm256_setzero_si256(); 4];
        for (i, p) in p.iter_mut().enumerate() {
            let k = (first + i) * nb + b;
            let x = _mm256_loadu_si256(a.qs.get_unchecked(k).as_ptr() as *const __m256i);
            let sx = _mm256_sign_epi8(x, w);
            *p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sx), ones);
        }
        let ad = _mm_loadu_ps(a.d_by_block.as_ptr().add(b * t + first));
        let scale = _mm_mul_ps(ad, _mm_set1_ps(*d.get_unchecked(b)));
        acc = _mm256_fmadd_ps(reduce4(p), _mm256_set_m128(scale, scale), acc);
    }
    halves4(acc, _mm_setzero_ps())
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

    #[test]
    fn row_and_column_shards_hold_exactly_their_part() {
        for kind in [QKind::Q4_1, QKind::Q8_0] {
            let (rows, cols) = (6, 128);
            let (bytes, dense) = matrix(kind, rows, cols);
            let q = QMatrix::from_gguf_bytes(kind, &bytes, rows, cols).expect("matrix");
            let r = q.slice_rows(2, 5).expect("rows");
            assert_eq!((r.rows(), r.cols()), (3, cols));
            assert_eq!(r.dequantize(), dense[2 * cols..5 * cols].to_vec());
            let c = q.slice_cols(32, 96).expect("cols");
            assert_eq!((c.rows(), c.cols()), (rows, 64));
            let want: Vec<f32> = (0..rows)
                .flat_map(|row| dense[row * cols + 32..row * cols + 96].to_vec())
                .collect();
            assert_eq!(c.dequantize(), want);
            assert!(q.slice_cols(16, 64).is_none(), "not on a block boundary");
        }
    }

    /// A matrix of `kind` whose dequantized values are known exactly.
    fn matrix(kind: QKind, rows: usize, cols: usize) -> (Vec<u8>, Vec<f32>) {
        let mut bytes = Vec::new();
        let mut dense = vec![0.0f32; rows * cols];
        for r in 0..rows {
            for b in 0..cols / QK {
                let d = 0.5 + (r % 3) as f32 * 0.25;
                let m = -(b as f32) - 1.0;
                bytes.extend_from_slice(&f32_to_f16_bits(d).to_le_bytes());
                let at = r * cols + b * QK;
                match kind {
                    QKind::Q4_1 => {
                        bytes.extend_from_slice(&f32_to_f16_bits(m).to_le_bytes());
                        for j in 0..16 {
                            let lo = ((r + j) % 16) as u8;
                            let hi = ((r * 7 + j * 3) % 16) as u8;
                            bytes.push(lo | (hi << 4));
                            dense[at + j] = d * lo as f32 + m;
                            dense[at + j + 16] = d * hi as f32 + m;
                        }
                    }
                    QKind::Q8_0 => {
                        for j in 0..QK {
                            let q = ((r * 31 + j * 17 + b) % 255) as i32 - 127;
                            bytes.push(q as i8 as u8);
                            dense[at + j] = d * q as f32;
                        }
                    }
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

    fn check_against_dense(kind: QKind) {
        let (rows, cols, t) = (40, 96, 5);
        let (bytes, dense) = matrix(kind, rows, cols);
        let w = QMatrix::from_gguf_bytes(kind, &bytes, rows, cols).unwrap();
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
                    "{kind:?} row {r} t {ti}: {g} vs {want}"
                );
            }
        }
        // The portable path (used without AVX2) gives the same numbers as the SIMD one.
        let portable = QMatrix {
            simd: false,
            ..QMatrix::from_gguf_bytes(kind, &bytes, rows, cols).unwrap()
        };
        for (a, b) in portable.matmul(&x, t).iter().zip(&got) {
            assert!(
                (a - b).abs() <= 1e-3 * a.abs().max(1.0),
                "{kind:?}: {a} vs {b}"
            );
        }
    }

    /// Each row's result is bit-identical whether it is computed alone or in a batch (with
    /// 4-row groups and leftovers): greedy outputs must not depend on the batch.
    fn check_batch_invariance(kind: QKind) {
        let (rows, cols) = (24, 96);
        let (bytes, _) = matrix(kind, rows, cols);
        let w = QMatrix::from_gguf_bytes(kind, &bytes, rows, cols).unwrap();
        let x: Vec<f32> = (0..7 * cols)
            .map(|i| ((i * 53 % 89) as f32 - 44.0) / 13.0)
            .collect();
        let batched = w.matmul(&x, 7);
        for ti in 0..7 {
            let alone = w.matmul(&x[ti * cols..(ti + 1) * cols], 1);
            assert_eq!(
                alone[..],
                batched[ti * rows..(ti + 1) * rows],
                "{kind:?} row {ti}"
            );
        }
    }

    #[test]
    fn results_do_not_depend_on_the_batch() {
        check_batch_invariance(QKind::Q4_1);
        check_batch_invariance(QKind::Q8_0);
    }

    #[test]
    fn q4_1_matmul_matches_dense_within_activation_quantization_error() {
        check_against_dense(QKind::Q4_1);
    }

    #[test]
    fn q8_0_matmul_matches_dense_within_activation_quantization_error() {
        check_against_dense(QKind::Q8_0);
    }

    #[test]
    fn wrong_sizes_are_refused() {
        assert!(QMatrix::from_gguf_bytes(QKind::Q4_1, &[0; 20], 2, 32).is_none());
        assert!(QMatrix::from_gguf_bytes(QKind::Q4_1, &[0; 20], 1, 16).is_none());
        assert!(QMatrix::from_gguf_bytes(QKind::Q8_0, &[0; 34], 1, 32).is_some());
    }
}
