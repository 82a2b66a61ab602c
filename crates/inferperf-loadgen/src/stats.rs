//! NumPy-compatible summary statistics (mean, population std, linear-interpolated percentiles),
//! so that our numbers match SGLang's `calculate_metrics` to the last digit.

/// Summary of one sample set, in the unit of the input (callers convert to ms).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    pub mean: f64,
    pub median: f64,
    pub std: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// Sort a copy of `xs` (NaN-safe total order) for repeated percentile queries.
pub fn sorted(xs: &[f64]) -> Vec<f64> {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// NumPy `percentile(x, p)` with the default linear interpolation on an already sorted slice.
/// Returns 0 for an empty slice (SGLang substitutes `[0]` for empty TTFT/TPOT/ITL lists).
pub fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    percentile_of(sorted.len(), |i| sorted[i], p)
}

/// [`percentile_sorted`] over `n` sorted values read through `at` (a sorted store that is not
/// one `f64` slice, such as [`crate::pooled::PooledSeconds`]).
pub fn percentile_of(n: usize, at: impl Fn(usize) -> f64, p: f64) -> f64 {
    match n {
        0 => 0.0,
        1 => at(0),
        n => {
            let h = (n - 1) as f64 * p / 100.0;
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            let (a, b) = (at(lo), at(hi));
            if a == b || (a.is_infinite() && b.is_infinite()) {
                return a;
            }
            if b.is_infinite() {
                // NumPy yields inf (or nan) here; an error-adjusted percentile that touches a
                // failed request is "infinite", which is what the caller wants to see.
                return if h > lo as f64 { b } else { a };
            }
            a + (h - lo as f64) * (b - a)
        }
    }
}

/// Mean (0 for empty input, as SGLang's `[0]` substitution gives).
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// Population standard deviation (NumPy `std`, ddof = 0).
pub fn std_pop(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let m = mean(xs);
    (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / xs.len() as f64).sqrt()
}

/// Mean, median, std, p90/p95/p99 and max of `xs`, each multiplied by `scale`.
pub fn summarize(xs: &[f64], scale: f64) -> Summary {
    let s = sorted(xs);
    Summary {
        mean: mean(xs) * scale,
        median: percentile_sorted(&s, 50.0) * scale,
        std: std_pop(xs) * scale,
        p90: percentile_sorted(&s, 90.0) * scale,
        p95: percentile_sorted(&s, 95.0) * scale,
        p99: percentile_sorted(&s, 99.0) * scale,
        max: s.last().copied().unwrap_or(0.0) * scale,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_numpy_reference_values() {
        let s = sorted(&[4.0, 1.0, 3.0, 2.0]);
        assert!((percentile_sorted(&s, 90.0) - 3.7).abs() < 1e-12);
        assert!((percentile_sorted(&s, 50.0) - 2.5).abs() < 1e-12);
        assert!((std_pop(&[1.0, 2.0, 3.0, 4.0]) - 1.118_033_988_749_895).abs() < 1e-12);
        assert_eq!(percentile_sorted(&[], 99.0), 0.0);
        assert_eq!(mean(&[]), 0.0);
    }

    #[test]
    fn infinite_tail_is_reported_as_infinite() {
        let s = sorted(&[1.0, 2.0, f64::INFINITY]);
        assert_eq!(percentile_sorted(&s, 99.0), f64::INFINITY);
        assert!((percentile_sorted(&s, 25.0) - 1.5).abs() < 1e-12);
    }
}
