//! Pooled inter-token samples (ITL, inter-chunk gaps) in 4 bytes each instead of 8: a gap is
//! kept as integer nanoseconds (`u32`, up to 4.29 s; longer gaps in a `u64` side list, all of
//! which sort after the short ones), and becomes seconds only when read. Reading converts
//! exactly as the records' own `ns_to_s` does, so the summary is the same number, bit for bit,
//! as one computed over an `f64` list -- with half the memory and no sorted copy, which is
//! what lets `bench merge` keep the gaps of a million requests. A value that is not whole
//! nanoseconds (SGLang's ITL splits a multi-token chunk's gap evenly) switches the store to
//! plain `f64` seconds.

use crate::record::ns_to_s;
use crate::stats::{percentile_of, Summary};

/// Samples in seconds, stored compactly while they are whole nanoseconds.
#[derive(Clone, Debug)]
pub enum PooledSeconds {
    Nanos { short: Vec<u32>, long: Vec<u64> },
    Seconds(Vec<f64>),
}

impl Default for PooledSeconds {
    fn default() -> Self {
        Self::Nanos {
            short: Vec::new(),
            long: Vec::new(),
        }
    }
}

impl PooledSeconds {
    /// Add a gap of `ns` nanoseconds.
    pub fn push_ns(&mut self, ns: u64) {
        match self {
            Self::Nanos { short, long } => match u32::try_from(ns) {
                Ok(n) => short.push(n),
                Err(_) => long.push(ns),
            },
            Self::Seconds(v) => v.push(ns_to_s(ns)),
        }
    }

    /// Add one chunk gap as SGLang's ITL samples (`RequestRecord::sglang_itl_s`): the gap
    /// itself for a chunk of one token, else `tokens` equal shares of it.
    pub fn push_itl(&mut self, gap_ns: u64, tokens: u32) {
        match tokens.max(1) {
            1 => self.push_ns(gap_ns),
            n => {
                for _ in 0..n {
                    self.push_s(ns_to_s(gap_ns) / f64::from(n));
                }
            }
        }
    }

    /// Add a value in seconds that need not be whole nanoseconds.
    pub fn push_s(&mut self, s: f64) {
        if let Self::Nanos { short, long } = self {
            // Insertion order is kept only within each list; the mean and std tolerate that
            // (their sums differ in the last bits at most).
            let mut v: Vec<f64> = short.iter().map(|&n| ns_to_s(u64::from(n))).collect();
            v.extend(long.iter().map(|&n| ns_to_s(n)));
            *self = Self::Seconds(v);
        }
        if let Self::Seconds(v) = self {
            v.push(s);
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Self::Nanos { short, long } => short.len() + long.len(),
            Self::Seconds(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`-th value in seconds, in the current order (sorted after [`Self::summarize`]).
    fn at(&self, i: usize) -> f64 {
        match self {
            Self::Nanos { short, long } => match short.get(i) {
                Some(&n) => ns_to_s(u64::from(n)),
                None => ns_to_s(long[i - short.len()]),
            },
            Self::Seconds(v) => v[i],
        }
    }

    /// Mean, median, std, p90/p95/p99 and max (NumPy's definitions, as
    /// [`crate::stats::summarize`]), each multiplied by `scale`. Sorts the store in place
    /// (after the mean and std, which are summed in insertion order).
    pub fn summarize(&mut self, scale: f64) -> Summary {
        let n = self.len();
        if n == 0 {
            return Summary::default();
        }
        let mean = (0..n).map(|i| self.at(i)).sum::<f64>() / n as f64;
        let var = (0..n)
            .map(|i| {
                let d = self.at(i) - mean;
                d * d
            })
            .sum::<f64>()
            / n as f64;
        self.sort();
        Summary {
            mean: mean * scale,
            median: self.percentile_sorted(50.0) * scale,
            std: var.sqrt() * scale,
            p90: self.percentile_sorted(90.0) * scale,
            p95: self.percentile_sorted(95.0) * scale,
            p99: self.percentile_sorted(99.0) * scale,
            max: self.at(n - 1) * scale,
        }
    }

    /// Sort in place (every long gap is longer than every short one).
    pub fn sort(&mut self) {
        match self {
            Self::Nanos { short, long } => {
                short.sort_unstable();
                long.sort_unstable();
            }
            Self::Seconds(v) => v.sort_by(|a, b| a.total_cmp(b)),
        }
    }

    /// NumPy's percentile of the values; call after [`Self::sort`] or [`Self::summarize`].
    pub fn percentile_sorted(&self, p: f64) -> f64 {
        percentile_of(self.len(), |i| self.at(i), p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::summarize;

    #[test]
    fn same_summary_as_plain_seconds_bit_for_bit() {
        let ns: Vec<u64> = vec![5_000_123, 4_999_877, 6_000_000_000, 1, 5_400_000, 7_000_001];
        let mut pooled = PooledSeconds::default();
        for &n in &ns {
            pooled.push_ns(n);
        }
        let plain: Vec<f64> = ns.iter().map(|&n| ns_to_s(n)).collect();
        let a = pooled.summarize(1000.0);
        let b = summarize(&plain, 1000.0);
        assert_eq!(a.median.to_bits(), b.median.to_bits());
        assert_eq!(a.p90.to_bits(), b.p90.to_bits());
        assert_eq!(a.p99.to_bits(), b.p99.to_bits());
        assert_eq!(
            a.max,
            6_000_000_000.0 * 1e-9 * 1000.0,
            "a gap over 4.29 s is kept"
        );
        assert!((a.mean - b.mean).abs() <= 1e-12 * b.mean.abs());
        assert!((a.std - b.std).abs() <= 1e-9 * b.std.abs());
    }

    #[test]
    fn fractional_values_switch_to_seconds_without_losing_any() {
        let mut pooled = PooledSeconds::default();
        pooled.push_ns(3_000_000);
        pooled.push_ns(5_000_000_000);
        pooled.push_s(0.0015);
        assert!(matches!(pooled, PooledSeconds::Seconds(_)));
        assert_eq!(pooled.len(), 3);
        let s = pooled.summarize(1000.0);
        assert_eq!(s.median, 3.0);
        assert_eq!(s.max, 5000.0);
    }
}
