//! The run's monotonic clock: every timestamp is nanoseconds since one `Instant`, so records
//! are plain integers and never depend on the wall clock. The wall clock is read once, next to
//! the anchor, so files that must line up with other processes or hosts (the request trace)
//! can map monotonic readings to Unix time without the wall clock's steps during the run.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A monotonic clock anchored at the run start.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
    /// Unix time (ns) read right after `start`.
    unix_ns_at_start: u64,
}

impl Clock {
    /// Anchor a clock at now.
    pub fn start() -> Self {
        let start = Instant::now();
        let unix_ns_at_start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        Self {
            start,
            unix_ns_at_start,
        }
    }

    /// Unix time (ns) of the anchor, read once when the clock started.
    pub fn unix_ns_at_start(&self) -> u64 {
        self.unix_ns_at_start
    }

    /// Unix time (ns) of a reading of this clock.
    pub fn unix_ns(&self, ns: u64) -> u64 {
        self.unix_ns_at_start + ns
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
