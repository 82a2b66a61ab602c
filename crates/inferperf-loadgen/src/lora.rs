//! Which `--lora-name` each request carries (`--lora-request-distribution`), reproducible from
//! `--seed`: `uniform` picks at random, `distinct` goes round-robin, `skewed` weights name `i`
//! by `alpha^-i` (SGLang's three policies).

use rand::distributions::{Distribution, WeightedIndex};
use rand::{Rng, SeedableRng};

use crate::error::BenchError;

/// `--lora-request-distribution`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LoraDistribution {
    Uniform,
    Distinct,
    Skewed,
}

/// The LoRA name of each of `n` requests (`None` everywhere when no names are given).
pub fn assign(
    names: &[String],
    n: usize,
    distribution: LoraDistribution,
    alpha: f64,
    seed: u64,
) -> Result<Vec<Option<&str>>, BenchError> {
    if names.is_empty() {
        return Ok(vec![None; n]);
    }
    if distribution != LoraDistribution::Uniform && names.len() < 2 {
        return Err(BenchError::Config(
            "--lora-request-distribution distinct/skewed needs at least two --lora-name values"
                .into(),
        ));
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x10AA);
    Ok(match distribution {
        LoraDistribution::Uniform => (0..n)
            .map(|_| Some(names[rng.gen_range(0..names.len())].as_str()))
            .collect(),
        LoraDistribution::Distinct => (0..n)
            .map(|i| Some(names[i % names.len()].as_str()))
            .collect(),
        LoraDistribution::Skewed => {
            if alpha.is_nan() || alpha <= 1.0 || !alpha.is_finite() {
                return Err(BenchError::Config(format!(
                    "--lora-zipf-alpha must be a finite number > 1, got {alpha}"
                )));
            }
            let weights: Vec<f64> = (0..names.len()).map(|i| alpha.powi(-(i as i32))).collect();
            let pick = WeightedIndex::new(&weights)
                .map_err(|e| BenchError::Config(format!("--lora-zipf-alpha: {e}")))?;
            (0..n)
                .map(|_| Some(names[pick.sample(&mut rng)].as_str()))
                .collect()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["a", "b", "c"].iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn distinct_is_round_robin_and_skewed_prefers_the_first() {
        let n = names();
        let d = assign(&n, 5, LoraDistribution::Distinct, 1.5, 1).expect("distinct");
        assert_eq!(d, [Some("a"), Some("b"), Some("c"), Some("a"), Some("b")]);
        let s = assign(&n, 3000, LoraDistribution::Skewed, 2.0, 1).expect("skewed");
        let count = |x| s.iter().filter(|v| **v == Some(x)).count();
        // weights 1, 1/2, 1/4: a is picked about 4/7 of the time, c about 1/7.
        assert!(
            count("a") > count("b") && count("b") > count("c"),
            "{} {} {}",
            count("a"),
            count("b"),
            count("c")
        );
        assert_eq!(
            s,
            assign(&n, 3000, LoraDistribution::Skewed, 2.0, 1).expect("again")
        );
    }

    #[test]
    fn bad_settings_are_named() {
        let one = vec!["a".to_string()];
        assert!(assign(&one, 2, LoraDistribution::Distinct, 1.5, 1).is_err());
        let e = assign(&names(), 2, LoraDistribution::Skewed, 1.0, 1).expect_err("alpha 1");
        assert!(e.to_string().contains("--lora-zipf-alpha"));
        assert_eq!(
            assign(&[], 2, LoraDistribution::Skewed, 0.0, 1).expect("no names"),
            [None, None]
        );
    }
}
