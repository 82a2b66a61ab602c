//! SGLang's `compute_random_lens`: uniform integers in `[max(floor(L * ratio), 1), L]`.

use rand::Rng;

/// `n` lengths for target `len` and `--random-range-ratio`; `len == 0` gives zeros.
pub fn random_lens(rng: &mut impl Rng, len: usize, ratio: f64, n: usize) -> Vec<usize> {
    if len == 0 {
        return vec![0; n];
    }
    let low = ((len as f64 * ratio).floor() as usize).clamp(1, len);
    (0..n).map(|_| rng.gen_range(low..=len)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn bounds() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        assert!(random_lens(&mut rng, 10, 1.0, 50).iter().all(|&l| l == 10));
        let v = random_lens(&mut rng, 10, 0.5, 500);
        assert!(v.iter().all(|&l| (5..=10).contains(&l)));
        assert!(random_lens(&mut rng, 10, 0.0, 500).contains(&1));
    }
}
