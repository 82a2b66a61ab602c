//! Micro-benchmark of the int8 quantized matmul kernels (`model::qmat`): GMAC/s and ns per
//! (32-value block, activation row) pair for a SmolLM2-sized MLP matrix at several batch sizes.
//! Best of several repetitions, so other load on the machine inflates numbers less.
//!
//! `cargo run --release -p inferperf-engine --example qmat_bench`

use std::time::Instant;

use inferperf_engine::model::qmat::{QKind, QMatrix};

fn main() {
    let (rows, cols) = (1536usize, 576usize);
    for kind in [QKind::Q4_1, QKind::Q8_0] {
        let block = if kind == QKind::Q4_1 { 20 } else { 34 };
        // Deterministic pseudo-random bytes with small f16 scales (0x2c00 = 1/16).
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut bytes = Vec::with_capacity(rows * cols / 32 * block);
        for _ in 0..rows * cols / 32 {
            bytes.extend_from_slice(&0x2c00u16.to_le_bytes());
            if kind == QKind::Q4_1 {
                bytes.extend_from_slice(&0xac00u16.to_le_bytes());
            }
            for _ in 0..block - bytes.len() % block {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                bytes.push(state as u8);
            }
        }
        let Some(m) = QMatrix::from_gguf_bytes(kind, &bytes, rows, cols) else {
            eprintln!("bad sizes");
            return;
        };
        for t in [1usize, 4, 16, 64] {
            let x: Vec<f32> = (0..t * cols)
                .map(|i| ((i % 97) as f32 - 48.0) / 31.0)
                .collect();
            let reps = (256 / t).max(8);
            let mut best = f64::MAX;
            for _ in 0..5 {
                let start = Instant::now();
                for _ in 0..reps {
                    std::hint::black_box(m.matmul(std::hint::black_box(&x), t));
                }
                best = best.min(start.elapsed().as_secs_f64() / reps as f64);
            }
            let macs = (rows * cols * t) as f64;
            let pairs = (rows * cols / 32 * t) as f64;
            println!(
                "{kind:?} [{rows}x{cols}] t={t:3}: {:8.1} us  {:6.1} GMAC/s  {:5.2} ns/pair",
                best * 1e6,
                macs / best / 1e9,
                best * 1e9 / pairs
            );
        }
    }
}
