//! The run's monotonic clock: every timestamp is nanoseconds since one `Instant`, so records
//! are plain integers and never depend on the wall clock.

use std::time::Instant;

/// A monotonic clock anchored at the run start.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    /// Anchor a clock at now.
    pub fn start() -> Self {
        Self {
            start: Instant::now(),
        }
    }

    /// Nanoseconds since the anchor; never 0 (0 means "did not happen" in records).
    #[inline]
    pub fn now_ns(&self) -> u64 {
        (self.start.elapsed().as_nanos() as u64).max(1)
    }

    /// Nanoseconds since the anchor of an instant observed elsewhere (a kernel receive time);
    /// at least 1, like [`Clock::now_ns`].
    #[inline]
    pub fn ns_of(&self, at: Instant) -> u64 {
        (at.saturating_duration_since(self.start).as_nanos() as u64).max(1)
    }

    /// The anchor instant.
    pub fn anchor(&self) -> Instant {
        self.start
    }
}
