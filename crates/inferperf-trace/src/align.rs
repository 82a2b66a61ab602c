//! Cross-rank collective matching and clock alignment.
//!
//! Collectives are matched across ranks by (kernel base name, occurrence index): the n-th
//! `ncclKernel_AllReduce_...` on one rank is the n-th on every other. Collectives end together
//! (everyone leaves when the last one arrives), so the median difference of matched end times
//! estimates each rank's clock offset; start times are not used because they contain the very
//! waiting that the rank analysis wants to measure.

use std::collections::HashMap;

use serde::Serialize;

use crate::collect::TraceData;
use crate::taxonomy::KernelClass;

/// Offsets smaller than this (ns) are reported but not applied: same-node ranks share a clock
/// and their collective end times agree within a few µs.
pub const MIN_APPLIED_OFFSET_NS: i64 = 10_000;

/// One communication kernel of one rank, keyed for cross-rank matching.
#[derive(Debug, Clone)]
pub struct CommKernel {
    /// Kernel name up to its first `(`.
    pub base: String,
    /// 0-based occurrence of `base` on this rank, in start order.
    pub occurrence: usize,
    /// Start (ns).
    pub start: i64,
    /// End (ns).
    pub end: i64,
}

/// The communication kernels of a rank, in start order, with occurrence indices.
pub fn comm_kernels(d: &TraceData) -> Vec<CommKernel> {
    let mut evs: Vec<_> = d
        .gpu
        .iter()
        .filter(|e| e.class == KernelClass::Comm)
        .collect();
    evs.sort_by_key(|e| (e.start, e.end));
    let mut seen: HashMap<String, usize> = HashMap::new();
    evs.into_iter()
        .map(|e| {
            let name = d.name(e.name);
            let base = name.split('(').next().unwrap_or(name).trim().to_string();
            let n = seen.entry(base.clone()).or_insert(0);
            let occurrence = *n;
            *n += 1;
            CommKernel {
                base,
                occurrence,
                start: e.start,
                end: e.end,
            }
        })
        .collect()
}

/// Keys `(base, occurrence)` present on every rank, in the first rank's start order.
pub fn matched_keys(ranks: &[Vec<CommKernel>]) -> Vec<(String, usize)> {
    let Some(first) = ranks.first() else {
        return Vec::new();
    };
    let sets: Vec<HashMap<(&str, usize), ()>> = ranks
        .iter()
        .map(|r| {
            r.iter()
                .map(|k| ((k.base.as_str(), k.occurrence), ()))
                .collect()
        })
        .collect();
    first
        .iter()
        .filter(|k| {
            sets.iter()
                .all(|s| s.contains_key(&(k.base.as_str(), k.occurrence)))
        })
        .map(|k| (k.base.clone(), k.occurrence))
        .collect()
}

/// Estimated clock offsets, relative to the first rank.
#[derive(Debug, Clone, Serialize)]
pub struct ClockAlignment {
    /// Collectives matched on all ranks (the evidence).
    pub matched_collectives: usize,
    /// Per rank: median(end_rank − end_reference) over matched collectives (ns); subtract it to
    /// align.
    pub offsets_ns: Vec<i64>,
    /// Per rank: whether the offset was large enough to apply.
    pub applied: Vec<bool>,
    /// Largest cross-rank end-time spread of a matched collective after correction (ns): the
    /// alignment quality.
    pub residual_end_spread_ns: i64,
}

/// Estimates per-rank clock offsets from matched collective end times.
pub fn estimate(ranks: &[Vec<CommKernel>]) -> ClockAlignment {
    let keys = matched_keys(ranks);
    let lookup: Vec<HashMap<(String, usize), i64>> = ranks
        .iter()
        .map(|r| {
            r.iter()
                .map(|k| ((k.base.clone(), k.occurrence), k.end))
                .collect()
        })
        .collect();
    let mut offsets = vec![0i64; ranks.len()];
    if !keys.is_empty() {
        for (r, l) in lookup.iter().enumerate().skip(1) {
            let mut diffs: Vec<i64> = keys
                .iter()
                .filter_map(|k| Some(l.get(k)? - lookup[0].get(k)?))
                .collect();
            diffs.sort_unstable();
            if !diffs.is_empty() {
                offsets[r] = diffs[diffs.len() / 2];
            }
        }
    }
    let applied: Vec<bool> = offsets
        .iter()
        .map(|o| o.abs() >= MIN_APPLIED_OFFSET_NS)
        .collect();
    let mut residual = 0i64;
    for k in &keys {
        let ends: Vec<i64> = lookup
            .iter()
            .enumerate()
            .filter_map(|(r, l)| {
                l.get(k)
                    .map(|e| e - if applied[r] { offsets[r] } else { 0 })
            })
            .collect();
        if let (Some(mx), Some(mn)) = (ends.iter().max(), ends.iter().min()) {
            residual = residual.max(mx - mn);
        }
    }
    ClockAlignment {
        matched_collectives: keys.len(),
        offsets_ns: offsets,
        applied,
        residual_end_spread_ns: residual,
    }
}
