//! Token sampling: greedy, temperature, top-k, top-p and min-p, with a per-request seeded RNG.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::api::SamplingParams;

/// Pick the next token from `logits` (modified in place). Temperatures at or below 1e-5 (or
/// `top_k == 1`) are greedy, as in SGLang.
pub fn sample(logits: &mut [f32], p: &SamplingParams, rng: &mut ChaCha8Rng) -> u32 {
    if p.temperature <= 1e-5 || p.top_k == 1 {
        return argmax(logits);
    }
    let inv_t = 1.0 / p.temperature;
    let mut cand: Vec<(u32, f32)> = logits
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_finite())
        .map(|(i, &l)| (i as u32, l * inv_t))
        .collect();
    if cand.is_empty() {
        return argmax(logits);
    }
    cand.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if p.top_k > 0 && (p.top_k as usize) < cand.len() {
        cand.truncate(p.top_k as usize);
    }
    let max = cand[0].1;
    let mut sum = 0.0f32;
    for c in cand.iter_mut() {
        c.1 = (c.1 - max).exp();
        sum += c.1;
    }
    for c in cand.iter_mut() {
        c.1 /= sum;
    }
    if p.min_p > 0.0 {
        let floor = cand[0].1 * p.min_p;
        cand.retain(|c| c.1 >= floor);
    }
    if p.top_p < 1.0 {
        let mut acc = 0.0;
        let mut keep = cand.len();
        for (i, c) in cand.iter().enumerate() {
            acc += c.1;
            if acc >= p.top_p {
                keep = i + 1;
                break;
            }
        }
        cand.truncate(keep.max(1));
    }
    let total: f32 = cand.iter().map(|c| c.1).sum();
    let mut r = rng.gen::<f32>() * total;
    for c in &cand {
        if r < c.1 {
            return c.0;
        }
        r -= c.1;
    }
    cand[cand.len() - 1].0
}

fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn params(t: f32) -> SamplingParams {
        SamplingParams {
            temperature: t,
            ..Default::default()
        }
    }

    #[test]
    fn greedy_takes_the_max() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert_eq!(sample(&mut [0.1, 3.0, 2.0], &params(0.0), &mut rng), 1);
    }

    #[test]
    fn top_k_one_and_top_p_restrict_choices() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut p = params(1.0);
        p.top_p = 0.5;
        for _ in 0..50 {
            assert_eq!(sample(&mut [0.0, 5.0, 0.0], &p, &mut rng), 1);
        }
        p.top_p = 1.0;
        p.min_p = 0.5;
        for _ in 0..50 {
            let t = sample(&mut [3.0, 3.0, -10.0], &p, &mut rng);
            assert!(t < 2);
        }
    }

    #[test]
    fn seeded_sampling_is_reproducible() {
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..20)
                .map(|_| sample(&mut [1.0, 1.0, 1.0, 1.0], &params(1.0), &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }
}
