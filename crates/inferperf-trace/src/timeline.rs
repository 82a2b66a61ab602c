//! The union-based GPU temporal breakdown of one rank (HTA / TraceLens definitions):
//! computation + exposed communication + exposed memory + idle = span.
//!
//! A CPU-only rank gets the same breakdown from its CPU spans ([`Timeline::of_cpu`]):
//! computation is CPU op time outside collectives, communication the CPU collectives.

use serde::Serialize;

use crate::collect::GpuEvent;
use crate::intervals::Union;
use crate::taxonomy::KernelClass;

/// Category indices reserved for `gpu_memcpy` / `gpu_memset` events (see `Taxonomy`).
const MEMCPY_CAT: u16 = 1;
const MEMSET_CAT: u16 = 2;

/// GPU time breakdown of one rank, all in ns.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timeline {
    /// GPU events counted (kernels, memcpy, memset).
    pub gpu_events: u64,
    /// Kernel events (category `kernel`; memcpy/memset not counted). For a CPU-only rank: the
    /// CPU ops and CPU collective calls counted.
    pub kernels: u64,
    /// Last GPU end − first GPU start (HTA `kernel_time`).
    pub span_ns: i64,
    /// |union(all GPU events)|.
    pub busy_ns: i64,
    /// span − busy.
    pub idle_ns: i64,
    /// |union(compute kernels)| (HTA `compute_time`).
    pub computation_ns: i64,
    /// Communication time not overlapped by computation.
    pub exposed_comm_ns: i64,
    /// Memory time not overlapped by computation or communication.
    pub exposed_memory_ns: i64,
    /// |union(comm kernels)|.
    pub comm_union_ns: i64,
    /// Plain sum of compute kernel durations.
    pub compute_sum_ns: i64,
    /// Plain sum of comm kernel durations.
    pub comm_sum_ns: i64,
    /// Plain sum of memory event durations.
    pub memory_sum_ns: i64,
    /// Percentage of communication time overlapped by computation (HTA
    /// `comp_comm_overlap_pctg`); None without communication, and for CPU-only ranks (whose
    /// computation is defined outside collectives).
    pub comm_overlap_pct: Option<f64>,
    /// First GPU start (ns, trace clock).
    pub first_ns: i64,
    /// Last GPU end (ns, trace clock).
    pub last_ns: i64,
}

impl Timeline {
    /// The breakdown of a CPU-only rank: `ops` are its CPU op intervals (any threads, nesting
    /// allowed), `collectives` its collective calls. Computation is |union(ops)| outside the
    /// collectives, communication |union(collectives)| (all of it exposed: nothing is counted
    /// as computing during a collective); `compute_sum_ns` equals the computation and
    /// `comm_sum_ns` is the plain sum of the calls' durations.
    pub fn of_cpu(ops: &[(i64, i64)], collectives: &[(i64, i64)]) -> Timeline {
        let mut t = Timeline {
            kernels: (ops.len() + collectives.len()) as u64,
            comm_sum_ns: collectives.iter().map(|(s, e)| e - s).sum(),
            ..Default::default()
        };
        let all = ops.iter().chain(collectives);
        let (Some(first), Some(last)) = (all.clone().map(|i| i.0).min(), all.map(|i| i.1).max())
        else {
            return t;
        };
        let comp = Union::from_intervals(ops.to_vec());
        let comm = Union::from_intervals(collectives.to_vec());
        t.first_ns = first;
        t.last_ns = last;
        t.span_ns = last - first;
        t.computation_ns = comp.len() - comp.overlap(&comm);
        t.compute_sum_ns = t.computation_ns;
        t.comm_union_ns = comm.len();
        t.exposed_comm_ns = t.comm_union_ns;
        t.busy_ns = t.computation_ns + t.comm_union_ns;
        t.idle_ns = t.span_ns - t.busy_ns;
        t
    }

    /// Computes the breakdown of a set of GPU events.
    pub fn of<'a>(events: impl IntoIterator<Item = &'a GpuEvent>) -> Timeline {
        let (mut comp, mut comm, mut mem) = (Vec::new(), Vec::new(), Vec::new());
        let mut t = Timeline {
            first_ns: i64::MAX,
            last_ns: i64::MIN,
            ..Default::default()
        };
        for e in events {
            t.gpu_events += 1;
            if e.category != MEMCPY_CAT && e.category != MEMSET_CAT {
                t.kernels += 1;
            }
            t.first_ns = t.first_ns.min(e.start);
            t.last_ns = t.last_ns.max(e.end);
            let d = e.end - e.start;
            match e.class {
                KernelClass::Compute => {
                    t.compute_sum_ns += d;
                    comp.push((e.start, e.end));
                }
                KernelClass::Comm => {
                    t.comm_sum_ns += d;
                    comm.push((e.start, e.end));
                }
                KernelClass::Memory => {
                    t.memory_sum_ns += d;
                    mem.push((e.start, e.end));
                }
            }
        }
        if t.gpu_events == 0 {
            t.first_ns = 0;
            t.last_ns = 0;
            return t;
        }
        let comp = Union::from_intervals(comp);
        let comm = Union::from_intervals(comm);
        let mem = Union::from_intervals(mem);
        let comp_comm = comp.merge(&comm);
        t.span_ns = t.last_ns - t.first_ns;
        t.computation_ns = comp.len();
        t.comm_union_ns = comm.len();
        let comm_overlap = comm.overlap(&comp);
        t.exposed_comm_ns = t.comm_union_ns - comm_overlap;
        t.exposed_memory_ns = mem.len() - mem.overlap(&comp_comm);
        t.busy_ns = comp_comm.len() + t.exposed_memory_ns;
        t.idle_ns = t.span_ns - t.busy_ns;
        t.comm_overlap_pct = if t.comm_union_ns > 0 {
            Some(100.0 * comm_overlap as f64 / t.comm_union_ns as f64)
        } else {
            None
        };
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_breakdown_counts_ops_outside_collectives_as_computation() {
        // Ops 0..10 (with a nested op), 12..20 partly inside the collective 15..30, then idle
        // until an op 40..45.
        let t = Timeline::of_cpu(&[(0, 10), (2, 5), (12, 20), (40, 45)], &[(15, 30)]);
        assert_eq!(t.span_ns, 45);
        assert_eq!(t.computation_ns, 10 + 3 + 5);
        assert_eq!(t.comm_union_ns, 15);
        assert_eq!(t.exposed_comm_ns, 15);
        assert_eq!(t.comm_sum_ns, 15);
        assert_eq!(t.busy_ns, 33);
        assert_eq!(t.idle_ns, 12);
        assert_eq!(
            t.computation_ns + t.exposed_comm_ns + t.exposed_memory_ns + t.idle_ns,
            t.span_ns
        );
        assert_eq!(t.gpu_events, 0);
        assert_eq!(Timeline::of_cpu(&[], &[]).span_ns, 0);
    }
}
