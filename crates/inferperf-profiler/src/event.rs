//! The in-memory trace event and the clock that maps monotonic instants to trace timestamps.

use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Trace categories, with torch/Kineto's names so analyzers classify our events like theirs.
pub mod cat {
    /// `record_function` ranges: `ProfilerStep#N`, `step[...]`, scheduler phases.
    pub const USER_ANNOTATION: &str = "user_annotation";
    /// Operators: one per module call (layerwise markers).
    pub const CPU_OP: &str = "cpu_op";
    /// Instants such as `retract`.
    pub const CPU_INSTANT: &str = "cpu_instant_event";
    /// One async track per request (`ph` `b`/`n`/`e`, `id` from the rid).
    pub const REQUEST: &str = "request";
}

/// What kind of Chrome trace event this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `ph: "X"` with a duration.
    Complete,
    /// `ph: "C"`: the args are the counter series.
    Counter,
    /// `ph: "i"`, thread scope.
    Instant,
    /// `ph: "b"`: a nestable async slice opens on track `id` (one per request).
    AsyncBegin(u64),
    /// `ph: "n"`: an instant on async track `id`.
    AsyncInstant(u64),
    /// `ph: "e"`: the async slice on track `id` closes.
    AsyncEnd(u64),
}

impl Kind {
    /// The async track of an async event.
    pub fn async_id(self) -> Option<u64> {
        match self {
            Kind::AsyncBegin(id) | Kind::AsyncInstant(id) | Kind::AsyncEnd(id) => Some(id),
            _ => None,
        }
    }
}

/// The async track id of request `rid` (64-bit FNV-1a of the rid; written as `0x…` hex).
pub fn request_track_id(rid: &str) -> u64 {
    inferperf_protocol::hash::fnv1a(rid.as_bytes())
}

/// One recorded event; converted to JSON only on the writer thread.
#[derive(Clone, Debug)]
pub(crate) struct Event {
    pub name: Cow<'static, str>,
    pub cat: &'static str,
    pub kind: Kind,
    pub start: Instant,
    pub dur: Duration,
    pub args: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Kineto's base-time period: `baseTimeNanoseconds` is the wall clock floored to a multiple of
/// 7,889,238 s ("3 months") so that f64 microsecond offsets keep nanosecond precision.
const BASE_PERIOD_NS: u128 = 7_889_238 * 1_000_000_000;

/// One (monotonic, wall) anchor per process, so that every rank thread of one server maps its
/// instants to the same wall-clock axis and per-rank files line up when merged. It is the
/// engine's [`inferperf_engine::hooks::WallClock`] anchor, so trace timestamps and the request
/// log (`--log-requests`) share one mapping.
pub(crate) struct TraceClock {
    anchor: Instant,
    anchor_unix_ns: u128,
}

impl TraceClock {
    /// The process-wide clock, created on first use.
    pub fn global() -> &'static TraceClock {
        static CLOCK: OnceLock<TraceClock> = OnceLock::new();
        CLOCK.get_or_init(|| {
            let wall = inferperf_engine::hooks::WallClock::global();
            TraceClock {
                anchor: wall.anchor,
                anchor_unix_ns: wall.anchor_unix_ns,
            }
        })
    }

    /// `baseTimeNanoseconds` for files written by this process.
    pub fn base_ns(&self) -> u128 {
        self.anchor_unix_ns - self.anchor_unix_ns % BASE_PERIOD_NS
    }

    /// Nanoseconds of `t` relative to [`Self::base_ns`] (negative only for instants taken long
    /// before the anchor, which the engine does not produce).
    pub fn rel_ns(&self, t: Instant) -> i128 {
        let since_base = (self.anchor_unix_ns - self.base_ns()) as i128;
        if t >= self.anchor {
            since_base + (t - self.anchor).as_nanos() as i128
        } else {
            since_base - (self.anchor - t).as_nanos() as i128
        }
    }
}
