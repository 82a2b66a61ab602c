//! `trace ranks`: the imbalance view across ranks -- per-rank busy/idle/comm, per-kernel
//! cross-rank spread (max/min, coefficient of variation, worst rank), per-collective start and
//! end skew, and the straggler summary (total wait, times arrived last) that names the rank(s)
//! holding the others back: the one(s) with the lowest total wait, since everyone else waits
//! for them at the collectives (TraceLens `straggler_summary` convention).
//!
//! Ranks with GPU activity are compared on their GPU kernels (communication = NCCL/RCCL...
//! kernels). When no rank has GPU events but they have CPU collectives (gloo, `c10d::`,
//! `record_param_comms`, the reference server's tensor-parallel `all_reduce`), the same tables
//! are filled from the CPU side: computation is CPU op time outside collectives, communication
//! the collective calls ([`crate::cpucomm`]), and the collectives are matched by (process group,
//! sequence number) when every call records them, else by name and order of occurrence -- which
//! requires every rank to hold the same number of calls of each name.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::align::{self, CommKernel};
use crate::collect::TraceData;
use crate::error::TraceError;
use crate::table::{us, us_f, Table};
use crate::timeline::Timeline;

/// Per-rank timeline row.
#[derive(Debug, Clone, Serialize)]
pub struct RankRow {
    /// Rank label.
    pub rank: String,
    /// Input file.
    pub file: String,
    /// The breakdown.
    pub timeline: Timeline,
}

/// One kernel's totals across ranks.
#[derive(Debug, Clone, Serialize)]
pub struct KernelSpread {
    /// Kernel name.
    pub name: String,
    /// Total duration per rank (µs), in rank order.
    pub per_rank_us: Vec<f64>,
    /// Count per rank.
    pub per_rank_count: Vec<u64>,
    /// max/min of the per-rank totals (None when some rank has none).
    pub max_min_ratio: Option<f64>,
    /// Population standard deviation / mean of the per-rank totals.
    pub cv: f64,
    /// Rank with the largest total.
    pub worst_rank: String,
}

/// What the ranks were compared on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RankKind {
    /// GPU kernels (communication = communication kernels).
    GpuKernels,
    /// CPU ops and CPU collectives (no rank has GPU events).
    CpuCollectives,
}

/// How collectives were matched across ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKey {
    /// The n-th collective of a name on one rank is the n-th on every other.
    NameOccurrence,
    /// `record_param_comms`' (`Process Group Name`, `Seq`).
    GroupSeq,
}

/// One collective matched on all ranks.
#[derive(Debug, Clone, Serialize)]
pub struct CollectiveRow {
    /// Kernel base name (CPU ranks: the collective call's name, e.g. `gloo:all_reduce`).
    pub name: String,
    /// Occurrence index (of this name, on the first rank).
    pub occurrence: usize,
    /// Process group, when matched by group and sequence number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Sequence number, when matched by group and sequence number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    /// max start − min start (µs).
    pub start_skew_us: f64,
    /// max end − min end (µs).
    pub end_skew_us: f64,
    /// Rank that started last.
    pub last: String,
    /// Rank that started first.
    pub first: String,
    /// Duration per rank (µs).
    pub dur_us: Vec<f64>,
}

/// Straggler statistics of one rank.
#[derive(Debug, Clone, Serialize)]
pub struct StragglerRow {
    /// Rank label.
    pub rank: String,
    /// Σ over matched collectives of (latest start − this rank's start) (µs).
    pub total_wait_us: f64,
    /// Collectives where this rank started last.
    pub times_last: usize,
    /// Collectives where this rank started first.
    pub times_first: usize,
    /// Σ comm kernel durations (µs); CPU ranks: Σ collective call durations.
    pub comm_sum_us: f64,
}

/// The whole rank comparison.
#[derive(Debug, Clone, Serialize)]
pub struct RanksReport {
    /// What the ranks were compared on: GPU kernels, or (no GPU events anywhere) CPU ops and
    /// CPU collectives.
    pub kind: RankKind,
    /// How collectives were matched across ranks.
    pub matched_by: MatchKey,
    /// Per-rank timelines, in rank order.
    pub ranks: Vec<RankRow>,
    /// Top kernels by total time across ranks, with their spread (CPU ranks: CPU ops).
    pub kernels: Vec<KernelSpread>,
    /// Matched collectives.
    pub collectives: Vec<CollectiveRow>,
    /// Communication kernels (CPU ranks: collective calls) that could not be matched on every
    /// rank.
    pub unmatched_comm_kernels: usize,
    /// Straggler table sorted by total wait, ascending.
    pub stragglers: Vec<StragglerRow>,
    /// The rank(s) the others wait for (lowest total wait); empty without matched collectives.
    pub straggler: Vec<String>,
    /// What a user should know about the matching (e.g. calls missing on some rank).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Options of the rank comparison.
#[derive(Debug, Clone)]
pub struct RanksOptions {
    /// Kernels in the spread table.
    pub top: usize,
}

impl Default for RanksOptions {
    fn default() -> Self {
        RanksOptions { top: 10 }
    }
}

/// Compares ranks (one collected trace per rank). Ranks are ordered by `distributedInfo.rank`,
/// else by input order; two inputs with the same rank are an error.
pub fn compare_ranks<'a>(
    data: &'a [TraceData],
    opts: &RanksOptions,
) -> Result<RanksReport, TraceError> {
    if data.is_empty() {
        return Err(TraceError::Empty("ranks: no input traces".into()));
    }
    let mut order: Vec<usize> = (0..data.len()).collect();
    order.sort_by_key(|&i| (data[i].rank.unwrap_or(i64::MAX), i));
    for w in order.windows(2) {
        let (a, b) = (&data[w[0]], &data[w[1]]);
        if a.rank.is_some() && a.rank == b.rank {
            return Err(TraceError::Rank(format!(
                "{} and {} both have distributedInfo.rank {}",
                a.path.display(),
                b.path.display(),
                a.rank.unwrap_or_default()
            )));
        }
    }
    let data: Vec<&'a TraceData> = order.iter().map(|&i| &data[i]).collect();
    let labels: Vec<String> = data.iter().map(|d| d.label()).collect();

    let n = data.len();
    let cpu =
        data.iter().all(|d| d.gpu.is_empty()) && data.iter().any(|d| !d.cpu_collectives.is_empty());
    let kind = if cpu {
        RankKind::CpuCollectives
    } else {
        RankKind::GpuKernels
    };

    let ranks: Vec<RankRow> = data
        .iter()
        .zip(&labels)
        .map(|(d, l)| RankRow {
            rank: l.clone(),
            file: d.path.display().to_string(),
            timeline: if cpu {
                d.cpu_timeline.clone().unwrap_or_default()
            } else {
                Timeline::of(&d.gpu)
            },
        })
        .collect();

    // Kernel (CPU ranks: CPU op) spread.
    let mut per: HashMap<&str, (Vec<i64>, Vec<u64>)> = HashMap::new();
    for (r, d) in data.iter().enumerate() {
        let mut add = |name: &'a str, dur: i64, count: u64| {
            let entry = per.entry(name).or_insert_with(|| (vec![0; n], vec![0; n]));
            entry.0[r] += dur;
            entry.1[r] += count;
        };
        if cpu {
            for ((cat, id), st) in &d.cpu_spans {
                let name = d.name(*id);
                // Collective spans are communication, tabulated with the collectives.
                if matches!(cat.as_str(), "cpu_op" | "Operator")
                    && crate::cpucomm::span_kind(cat, name).is_none()
                {
                    add(name, st.sum, st.count);
                }
            }
        } else {
            for e in &d.gpu {
                add(d.name(e.name), e.end - e.start, 1);
            }
        }
    }
    let mut kernels: Vec<KernelSpread> = per
        .into_iter()
        .map(|(name, (sums, counts))| {
            let max = sums.iter().copied().max().unwrap_or(0);
            let min = sums.iter().copied().min().unwrap_or(0);
            let mean = sums.iter().sum::<i64>() as f64 / n as f64;
            let var = sums.iter().map(|s| (*s as f64 - mean).powi(2)).sum::<f64>() / n as f64;
            let worst = sums.iter().position(|s| *s == max).unwrap_or(0);
            KernelSpread {
                name: name.to_string(),
                per_rank_us: sums.iter().map(|s| *s as f64 / 1000.0).collect(),
                per_rank_count: counts,
                max_min_ratio: (min > 0).then(|| max as f64 / min as f64),
                cv: if mean > 0.0 { var.sqrt() / mean } else { 0.0 },
                worst_rank: labels[worst].clone(),
            }
        })
        .collect();
    kernels.sort_by(|a, b| {
        let ta: f64 = a.per_rank_us.iter().sum();
        let tb: f64 = b.per_rank_us.iter().sum();
        tb.total_cmp(&ta).then_with(|| a.name.cmp(&b.name))
    });
    kernels.truncate(opts.top);

    // Collectives: one arrival list per rank, keyed for matching.
    let (arrivals, matched_by, notes) = if cpu {
        cpu_arrivals(&data, &labels)?
    } else {
        let a = data
            .iter()
            .map(|d| {
                align::comm_kernels(d)
                    .into_iter()
                    .map(Arrival::from_kernel)
                    .collect()
            })
            .collect();
        (a, MatchKey::NameOccurrence, Vec::new())
    };
    let lookup: Vec<HashMap<&Key, &Arrival>> = arrivals
        .iter()
        .map(|s| s.iter().map(|k| (&k.key, k)).collect())
        .collect();
    let mut wait = vec![0i64; n];
    let mut last = vec![0usize; n];
    let mut first = vec![0usize; n];
    let mut collectives = Vec::new();
    // In the first rank's start order.
    for a0 in arrivals.first().into_iter().flatten() {
        let ks: Vec<&Arrival> = lookup
            .iter()
            .filter_map(|l| l.get(&a0.key).copied())
            .collect();
        if ks.len() != n {
            continue;
        }
        let max_start = ks.iter().map(|k| k.start).max().unwrap_or(0);
        let min_start = ks.iter().map(|k| k.start).min().unwrap_or(0);
        let max_end = ks.iter().map(|k| k.end).max().unwrap_or(0);
        let min_end = ks.iter().map(|k| k.end).min().unwrap_or(0);
        let l = ks.iter().position(|k| k.start == max_start).unwrap_or(0);
        let f = ks.iter().position(|k| k.start == min_start).unwrap_or(0);
        last[l] += 1;
        first[f] += 1;
        for (r, k) in ks.iter().enumerate() {
            wait[r] += max_start - k.start;
        }
        let (group, seq) = match (&a0.key, matched_by) {
            (Key(g, s), MatchKey::GroupSeq) => (Some(g.clone()), Some(*s)),
            _ => (None, None),
        };
        collectives.push(CollectiveRow {
            name: a0.name.clone(),
            occurrence: a0.occurrence,
            group,
            seq,
            start_skew_us: (max_start - min_start) as f64 / 1000.0,
            end_skew_us: (max_end - min_end) as f64 / 1000.0,
            last: labels[l].clone(),
            first: labels[f].clone(),
            dur_us: ks
                .iter()
                .map(|k| (k.end - k.start) as f64 / 1000.0)
                .collect(),
        });
    }
    let total_comm: usize = arrivals.iter().map(Vec::len).sum();
    let unmatched = total_comm - collectives.len() * n;
    let mut stragglers: Vec<StragglerRow> = (0..n)
        .map(|r| StragglerRow {
            rank: labels[r].clone(),
            total_wait_us: wait[r] as f64 / 1000.0,
            times_last: last[r],
            times_first: first[r],
            comm_sum_us: ranks[r].timeline.comm_sum_ns as f64 / 1000.0,
        })
        .collect();
    stragglers.sort_by(|a, b| a.total_wait_us.total_cmp(&b.total_wait_us));
    let straggler = if collectives.is_empty() || n < 2 {
        Vec::new()
    } else {
        let min = stragglers[0].total_wait_us;
        stragglers
            .iter()
            .filter(|s| s.total_wait_us == min)
            .map(|s| s.rank.clone())
            .collect()
    };
    Ok(RanksReport {
        kind,
        matched_by,
        ranks,
        kernels,
        collectives,
        unmatched_comm_kernels: unmatched,
        stragglers,
        straggler,
        notes,
    })
}

/// Matching key of a collective: (name, occurrence) or (process group, sequence number).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key(String, i64);

/// One rank's arrival at one collective.
#[derive(Debug, Clone)]
struct Arrival {
    key: Key,
    name: String,
    occurrence: usize,
    start: i64,
    end: i64,
}

impl Arrival {
    fn from_kernel(k: CommKernel) -> Arrival {
        Arrival {
            key: Key(k.base.clone(), k.occurrence as i64),
            name: k.base,
            occurrence: k.occurrence,
            start: k.start,
            end: k.end,
        }
    }
}

/// Every rank's arrivals, how they are keyed, and notes on the matching.
type Arrivals = (Vec<Vec<Arrival>>, MatchKey, Vec<String>);

/// The CPU collective calls of every rank, keyed by (group, seq) when every call on every rank
/// records both, else by (name, occurrence). Ranks holding different numbers of calls of a name
/// are an error when matching by order (it would pair unrelated calls), and a note when matching
/// by sequence number (the missing calls stay unmatched).
fn cpu_arrivals(data: &[&TraceData], labels: &[String]) -> Result<Arrivals, TraceError> {
    let by_seq = data.iter().all(|d| {
        d.cpu_collectives
            .iter()
            .all(|c| c.group.is_some() && c.seq.is_some())
    });
    let mut counts: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut out = Vec::with_capacity(data.len());
    for (r, d) in data.iter().enumerate() {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut v = Vec::with_capacity(d.cpu_collectives.len());
        for c in &d.cpu_collectives {
            let occ = seen.entry(c.name.as_str()).or_insert(0);
            let occurrence = *occ;
            *occ += 1;
            counts
                .entry(c.name.as_str())
                .or_insert_with(|| vec![0; data.len()])[r] += 1;
            let key = match (by_seq, &c.group, c.seq) {
                (true, Some(g), Some(s)) => Key(g.clone(), s),
                _ => Key(c.name.clone(), occurrence as i64),
            };
            v.push(Arrival {
                key,
                name: c.name.clone(),
                occurrence,
                start: c.start,
                end: c.end,
            });
        }
        out.push(v);
    }
    let uneven: Vec<String> = counts
        .iter()
        .filter(|(_, per)| per.iter().any(|c| *c != per[0]))
        .map(|(name, per)| {
            let each: Vec<String> = per
                .iter()
                .zip(data.iter().zip(labels))
                .map(|(c, (d, l))| format!("{l} ({}) {c}", d.path.display()))
                .collect();
            format!("`{name}`: {}", each.join(", "))
        })
        .collect();
    if uneven.is_empty() {
        let key = if by_seq {
            MatchKey::GroupSeq
        } else {
            MatchKey::NameOccurrence
        };
        return Ok((out, key, Vec::new()));
    }
    if by_seq {
        return Ok((
            out,
            MatchKey::GroupSeq,
            vec![format!(
                "the ranks hold different numbers of CPU collectives -- {}; matched by process \
                 group and sequence number, the calls missing on some rank are left unmatched",
                uneven.join("; ")
            )],
        ));
    }
    Err(TraceError::Rank(format!(
        "ranks: the CPU collectives carry no process group and sequence number, so they are \
         matched by name and order of occurrence, but the ranks hold different numbers of them \
         -- {}. Give traces of the same steps on every rank (e.g. `trace trim --profiler-steps \
         A..B` on each)",
        uneven.join("; ")
    )))
}

impl RanksReport {
    /// Human/CSV tables.
    pub fn tables(&self) -> Vec<Table> {
        let mut out = Vec::new();
        let cpu = self.kind == RankKind::CpuCollectives;
        let (title, count, kernel_title) = if cpu {
            (
                "Per-rank CPU time (µs) -- CPU-only ranks: computation = CPU ops outside \
                 collectives, comm = CPU collectives (gloo, c10d, record_param_comms, all_reduce)",
                "ops",
                "Top CPU ops (collectives excluded): total per rank (µs), spread across ranks",
            )
        } else {
            (
                "Per-rank GPU time (µs)",
                "kernels",
                "Top kernels: total per rank (µs), spread across ranks",
            )
        };
        let mut t = Table::new(
            "ranks",
            title,
            &[
                "rank",
                count,
                "span",
                "busy",
                "idle",
                "computation",
                "exposed comm",
                "exposed mem",
                "Σcomm",
                "idle%",
            ],
        );
        for r in &self.ranks {
            let x = &r.timeline;
            t.push(vec![
                r.rank.clone(),
                x.kernels.to_string(),
                us(x.span_ns),
                us(x.busy_ns),
                us(x.idle_ns),
                us(x.computation_ns),
                us(x.exposed_comm_ns),
                us(x.exposed_memory_ns),
                us(x.comm_sum_ns),
                crate::table::pct(x.idle_ns as f64, x.span_ns as f64),
            ]);
        }
        out.push(t);
        let mut k = Table::new(
            "kernel_spread",
            kernel_title,
            &["name", "min", "max", "max/min", "cv", "worst rank"],
        );
        for s in &self.kernels {
            let mn = s.per_rank_us.iter().copied().fold(f64::INFINITY, f64::min);
            let mx = s.per_rank_us.iter().copied().fold(0.0, f64::max);
            k.push(vec![
                s.name.clone(),
                us_f(mn),
                us_f(mx),
                s.max_min_ratio.map_or("inf".into(), |r| format!("{r:.2}")),
                format!("{:.3}", s.cv),
                s.worst_rank.clone(),
            ]);
        }
        out.push(k);
        let matched = match (self.kind, self.matched_by) {
            (RankKind::GpuKernels, _) => "Collectives matched on all ranks (name + occurrence)",
            (RankKind::CpuCollectives, MatchKey::NameOccurrence) => {
                "CPU collectives matched on all ranks (name + occurrence)"
            }
            (RankKind::CpuCollectives, MatchKey::GroupSeq) => {
                "CPU collectives matched on all ranks (process group + seq)"
            }
        };
        let mut c = Table::new(
            "collectives",
            matched,
            &[
                "collective",
                "#",
                "start skew µs",
                "end skew µs",
                "last",
                "first",
            ],
        );
        for r in &self.collectives {
            c.push(vec![
                r.name.clone(),
                r.occurrence.to_string(),
                us_f(r.start_skew_us),
                us_f(r.end_skew_us),
                r.last.clone(),
                r.first.clone(),
            ]);
        }
        out.push(c);
        let mut s = Table::new(
            "stragglers",
            &format!(
                "Straggler summary (lowest total wait first = the rank the others wait for): {}",
                if self.straggler.is_empty() {
                    "none (no collectives matched on all ranks)".to_string()
                } else {
                    self.straggler.join(", ")
                }
            ),
            &[
                "rank",
                "total wait µs",
                "arrived last",
                "arrived first",
                "Σcomm µs",
            ],
        );
        for r in &self.stragglers {
            s.push(vec![
                r.rank.clone(),
                us_f(r.total_wait_us),
                r.times_last.to_string(),
                r.times_first.to_string(),
                us_f(r.comm_sum_us),
            ]);
        }
        out.push(s);
        out
    }
}
