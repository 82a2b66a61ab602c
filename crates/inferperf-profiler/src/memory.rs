//! The MEM activity: a memory timeline (KV pool usage and process RSS) sampled at the end of
//! each captured step, written as a Chrome trace of counters.
//!
//! Torch writes a `torch.cuda.memory._dump_snapshot` pickle for pytorch.org/memory_viz; a CPU
//! engine has no CUDA caching allocator to snapshot, and a pickle is useless outside Python, so
//! we write `ph: "C"` counters any trace viewer plots: `kv_cache` (`used_tokens`,
//! `total_tokens`, `used_bytes`) and `process_rss` (`bytes`).

use std::borrow::Cow;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::event::{cat, Event, Kind};
use crate::step::StepEnd;

/// One sample of the memory timeline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct MemSample {
    pub at: Instant,
    pub kv_used_tokens: usize,
    pub kv_total_tokens: usize,
    pub kv_bytes_per_token: usize,
    pub rss_bytes: Option<u64>,
}

impl MemSample {
    pub fn take(end: &StepEnd) -> Self {
        Self {
            at: Instant::now(),
            kv_used_tokens: end.kv_used_tokens,
            kv_total_tokens: end.kv_total_tokens,
            kv_bytes_per_token: end.kv_bytes_per_token,
            rss_bytes: process_rss_bytes(),
        }
    }
}

/// Resident set size of this process (`/proc/self/statm`), `None` where unavailable.
pub fn process_rss_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = u64::try_from(page).ok().filter(|&p| p > 0)?;
    Some(pages * page)
}

/// The counter events of a timeline.
pub(crate) fn samples_to_events(samples: &[MemSample]) -> Vec<Event> {
    let mut out = Vec::with_capacity(samples.len() * 2);
    for s in samples {
        let mut kv = Map::new();
        kv.insert("used_tokens".into(), Value::from(s.kv_used_tokens));
        kv.insert("total_tokens".into(), Value::from(s.kv_total_tokens));
        kv.insert(
            "used_bytes".into(),
            Value::from(s.kv_used_tokens as u64 * s.kv_bytes_per_token as u64),
        );
        out.push(counter("kv_cache", s.at, kv));
        if let Some(rss) = s.rss_bytes {
            let mut m = Map::new();
            m.insert("bytes".into(), Value::from(rss));
            out.push(counter("process_rss", s.at, m));
        }
    }
    out
}

fn counter(name: &'static str, at: Instant, args: Map<String, Value>) -> Event {
    Event {
        name: Cow::Borrowed(name),
        cat: cat::USER_ANNOTATION,
        kind: Kind::Counter,
        start: at,
        dur: Duration::ZERO,
        args: Some(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_readable_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(process_rss_bytes().unwrap() > 0);
        }
    }

    #[test]
    fn samples_become_counters() {
        let s = MemSample::take(&StepEnd {
            kv_used_tokens: 10,
            kv_total_tokens: 100,
            kv_bytes_per_token: 4,
            ..Default::default()
        });
        let ev = samples_to_events(&[s]);
        assert_eq!(ev[0].name, "kv_cache");
        assert_eq!(ev[0].args.as_ref().unwrap()["used_bytes"], 40);
        assert_eq!(ev.len(), if s.rss_bytes.is_some() { 2 } else { 1 });
    }
}
