//! Streaming descriptive statistics (count, sum, min, max, mean, sample std) in integer ns.

use serde::Serialize;

/// Running statistics over durations; `add` is O(1) and memory is constant.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    /// Number of samples.
    pub count: u64,
    /// Exact sum in ns.
    pub sum: i64,
    /// Minimum in ns.
    pub min: i64,
    /// Maximum in ns.
    pub max: i64,
    mean: f64,
    m2: f64,
}

impl Stats {
    /// Adds one duration (ns).
    pub fn add(&mut self, v: i64) {
        if self.count == 0 {
            self.min = v;
            self.max = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.count += 1;
        self.sum += v;
        let x = v as f64;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Merges another accumulator (parallel Welford).
    pub fn merge(&mut self, o: &Stats) {
        if o.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *o;
            return;
        }
        let n = (self.count + o.count) as f64;
        let delta = o.mean - self.mean;
        self.m2 += o.m2 + delta * delta * self.count as f64 * o.count as f64 / n;
        self.mean += delta * o.count as f64 / n;
        self.count += o.count;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    /// Mean in ns.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// Sample standard deviation (ddof = 1, as pandas/HTA report it) in ns; 0 for one sample.
    pub fn std(&self) -> f64 {
        if self.count < 2 {
            0.0
        } else {
            (self.m2 / (self.count - 1) as f64).max(0.0).sqrt()
        }
    }

    /// A serializable summary in microseconds.
    pub fn report(&self) -> StatsReport {
        StatsReport {
            count: self.count,
            sum_us: self.sum as f64 / 1000.0,
            mean_us: self.mean() / 1000.0,
            min_us: self.min as f64 / 1000.0,
            max_us: self.max as f64 / 1000.0,
            std_us: self.std() / 1000.0,
        }
    }
}

/// Statistics in microseconds, for JSON output.
#[derive(Debug, Clone, Serialize)]
pub struct StatsReport {
    /// Number of events.
    pub count: u64,
    /// Total duration.
    pub sum_us: f64,
    /// Mean duration.
    pub mean_us: f64,
    /// Shortest.
    pub min_us: f64,
    /// Longest.
    pub max_us: f64,
    /// Sample standard deviation (ddof = 1).
    pub std_us: f64,
}
