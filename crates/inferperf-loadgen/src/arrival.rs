//! The arrival schedule, fixed up front from the seed: offsets (ns from the run start) at which
//! each request is released. Poisson by default (SGLang), gamma with `--burstiness` (vLLM),
//! everything at t=0 for an infinite rate, or a trace's own timestamps (Mooncake).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma};

use crate::error::BenchError;

/// How arrivals are spaced.
#[derive(Clone, Debug, PartialEq)]
pub enum Arrivals {
    /// All requests at t = 0 (`--request-rate inf`).
    Burst,
    /// Gamma inter-arrivals with mean `1/rate`; `burstiness` 1 is Poisson.
    Rate { rate: f64, burstiness: f64 },
    /// Offsets in milliseconds from a trace, multiplied by a slowdown factor.
    Trace { offsets_ms: Vec<f64>, slowdown: f64 },
}

/// Offsets (ns) for `n` requests. Request 0 is at 0, as in SGLang's `get_request`.
pub fn schedule(a: &Arrivals, n: usize, seed: u64) -> Result<Vec<u64>, BenchError> {
    match a {
        Arrivals::Burst => Ok(vec![0; n]),
        Arrivals::Rate { rate, burstiness } => {
            if rate.is_nan() || *rate <= 0.0 || burstiness.is_nan() || *burstiness <= 0.0 {
                return Err(BenchError::Config(format!(
                    "--request-rate ({rate}) and --burstiness ({burstiness}) must be positive"
                )));
            }
            let gamma = Gamma::new(*burstiness, 1.0 / (rate * burstiness))
                .map_err(|e| BenchError::Config(format!("gamma arrivals: {e}")))?;
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xA5A5_0000_0000_0001);
            let mut t = 0.0f64;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                out.push((t * 1e9) as u64);
                t += gamma.sample(&mut rng);
            }
            Ok(out)
        }
        Arrivals::Trace {
            offsets_ms,
            slowdown,
        } => {
            let first = offsets_ms.first().copied().unwrap_or(0.0);
            Ok(offsets_ms
                .iter()
                .take(n)
                .map(|t| (((t - first).max(0.0)) * slowdown * 1e6) as u64)
                .collect())
        }
    }
}

/// Requests per second the schedule offers (for the calibration warning); `None` for a burst.
pub fn offered_rate(offsets: &[u64]) -> Option<f64> {
    let last = *offsets.last()?;
    (last > 0).then(|| (offsets.len() - 1) as f64 / (last as f64 * 1e-9))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_and_monotonic() {
        let a = Arrivals::Rate {
            rate: 100.0,
            burstiness: 1.0,
        };
        let x = schedule(&a, 2000, 42).unwrap_or_default();
        assert_eq!(x, schedule(&a, 2000, 42).unwrap_or_default());
        assert_ne!(x, schedule(&a, 2000, 43).unwrap_or_default());
        assert_eq!(x[0], 0);
        assert!(x.windows(2).all(|w| w[0] <= w[1]));
        let rate = offered_rate(&x).unwrap_or(0.0);
        assert!((rate - 100.0).abs() < 10.0, "{rate}");
    }

    #[test]
    fn trace_offsets_scale() {
        let a = Arrivals::Trace {
            offsets_ms: vec![1000.0, 1500.0, 3000.0],
            slowdown: 2.0,
        };
        assert_eq!(
            schedule(&a, 3, 0).unwrap_or_default(),
            vec![0, 1_000_000_000, 4_000_000_000]
        );
    }
}
