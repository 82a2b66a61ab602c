//! The arrival pacer: releases request `i` at `start + offset[i]` on its own OS thread, sleeping
//! with the kernel's finest timer slack until just before the deadline and spinning the last
//! tens of microseconds. Deadlines are absolute (no drift); a late release is recorded, never
//! silently absorbed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::clock::Clock;

/// Spin (instead of sleeping) when a deadline is this close.
const SPIN_NS: u64 = 60_000;
/// Wake this early from a sleep to absorb wake-up latency.
const WAKE_EARLY_NS: u64 = 120_000;
/// Longest single sleep, so that a stop request is noticed promptly.
const MAX_SLEEP_NS: u64 = 20_000_000;

/// Release every request at its offset; `release(i, now_ns)` is called in order. Returns the
/// number released (fewer than `offsets.len()` when `stop` was raised).
pub fn run(
    offsets: &[u64],
    clock: &Clock,
    stop: &AtomicBool,
    mut release: impl FnMut(usize, u64),
) -> usize {
    crate::cpu::tighten_timer_slack();
    for (i, &due) in offsets.iter().enumerate() {
        loop {
            if stop.load(Ordering::Relaxed) {
                return i;
            }
            let now = clock.now_ns();
            if now >= due {
                release(i, now);
                break;
            }
            let wait = due - now;
            if wait > SPIN_NS {
                let nap = (wait.saturating_sub(WAKE_EARLY_NS)).clamp(1, MAX_SLEEP_NS);
                std::thread::sleep(Duration::from_nanos(nap));
            } else {
                std::hint::spin_loop();
            }
        }
    }
    offsets.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_in_order_and_never_early() {
        let clock = Clock::start();
        let base = clock.now_ns();
        let offsets: Vec<u64> = (0..20).map(|i| base + i * 300_000).collect();
        let stop = AtomicBool::new(false);
        let mut seen = vec![];
        let n = run(&offsets, &clock, &stop, |i, now| seen.push((i, now)));
        assert_eq!(n, 20);
        for (k, (i, now)) in seen.iter().enumerate() {
            assert_eq!(*i, k);
            assert!(*now >= offsets[k]);
        }
    }

    #[test]
    fn stop_ends_early() {
        let clock = Clock::start();
        let stop = AtomicBool::new(true);
        assert_eq!(run(&[u64::MAX], &clock, &stop, |_, _| {}), 0);
    }
}
