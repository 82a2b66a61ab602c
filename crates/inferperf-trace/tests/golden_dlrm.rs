//! The PARAM DLRM 8-rank set against golden-dlrm-8rank.md (Part A: independent union-based
//! computation; Part B: HTA 0.5.0). All inputs are integer µs, so every number is exact.

mod common;

use inferperf_trace::ranks::{compare_ranks, RanksOptions};
use inferperf_trace::summary::{summarize, SummaryOptions};
use inferperf_trace::taxonomy::Taxonomy;

// rank: kernels, Σcompute, Σcomm, Σmem, span, busy, idle, exposed comm (golden A.1)
const A1: [[i64; 8]; 8] = [
    [245, 1034, 5798, 19, 13009, 6590, 6419, 5537],
    [310, 1246, 11336, 19, 18749, 12321, 6428, 11056],
    [246, 1068, 3492, 19, 11350, 4304, 7046, 3217],
    [315, 1240, 9774, 28, 18853, 10708, 8145, 9450],
    [251, 1126, 6587, 26, 16589, 7702, 8887, 6550],
    [245, 1041, 6251, 19, 16392, 7271, 9121, 6211],
    [246, 1051, 3558, 19, 11410, 4359, 7051, 3289],
    [246, 1059, 1746, 20, 10967, 2659, 8308, 1580],
];

// HTA B.1 compute_time and non_compute_time; B.2 comp_comm_overlap_pctg.
const HTA_COMPUTE: [i64; 8] = [1034, 1246, 1068, 1240, 1126, 1041, 1051, 1059];
const HTA_NON_COMPUTE: [i64; 8] = [5556, 11075, 3236, 9468, 6576, 6230, 3308, 1600];
const HTA_OVERLAP: [f64; 8] = [4.50, 2.47, 7.88, 3.31, 0.56, 0.64, 7.56, 9.51];

#[test]
fn summary_timeline_matches_golden_and_hta() {
    let data: Vec<_> = common::dlrm_files()
        .iter()
        .map(|p| common::load(p))
        .collect();
    let report = summarize(&data, &Taxonomy::builtin(), &SummaryOptions::default());
    assert_eq!(report.traces.len(), 8);
    for t in &report.traces {
        let r = t.rank.expect("rank from distributedInfo") as usize;
        let g = A1[r];
        let tl = t.timeline.as_ref().expect("GPU timeline");
        let got = [
            tl.kernels as i64,
            tl.compute_sum_ns / 1000,
            tl.comm_sum_ns / 1000,
            tl.memory_sum_ns / 1000,
            tl.span_ns / 1000,
            tl.busy_ns / 1000,
            tl.idle_ns / 1000,
            tl.exposed_comm_ns / 1000,
        ];
        assert_eq!(
            got, g,
            "rank {r}: kernels/Σcompute/Σcomm/Σmem/span/busy/idle/exposed comm"
        );
        assert_eq!(tl.span_ns % 1000, 0, "integer µs input stays exact");
        assert_eq!(
            tl.computation_ns / 1000,
            HTA_COMPUTE[r],
            "rank {r}: HTA compute_time"
        );
        assert_eq!(
            (tl.exposed_comm_ns + tl.exposed_memory_ns) / 1000,
            HTA_NON_COMPUTE[r],
            "rank {r}: HTA non_compute_time"
        );
        assert_eq!(
            tl.computation_ns + tl.exposed_comm_ns + tl.exposed_memory_ns + tl.idle_ns,
            tl.span_ns,
            "rank {r}: breakdown sums to the span"
        );
        let ov = tl.comm_overlap_pct.expect("has comm");
        assert!(
            (ov - HTA_OVERLAP[r]).abs() < 0.006,
            "rank {r}: overlap {ov} vs HTA {}",
            HTA_OVERLAP[r]
        );
    }
}

#[test]
fn kernel_sums_match_hta_breakdown() {
    // HTA B.3 per-rank communication kernel rows: sum, max, min, sample std, mean.
    let allreduce: [(i64, i64, i64, f64, f64); 8] = [
        (1799, 952, 246, 353.001889, 599.666667),
        (1830, 922, 307, 307.598765, 610.000000),
        (1685, 915, 198, 358.611675, 561.666667),
        (1772, 879, 291, 294.163787, 590.666667),
        (234, 95, 69, 14.730920, 78.000000),
        (195, 96, 20, 39.887341, 65.000000),
        (1735, 920, 213, 354.093679, 578.333333),
        (1357, 803, 86, 358.756649, 452.333333),
    ];
    let sendrecv: [(i64, i64, i64, f64, f64); 8] = [
        (3999, 2146, 131, 834.307018, 799.800000),
        (9506, 7635, 132, 3225.447752, 1901.200000),
        (1807, 518, 131, 192.793413, 361.400000),
        (8002, 6132, 133, 2558.280340, 1600.400000),
        (6353, 4882, 61, 2063.947141, 1270.600000),
        (6056, 4679, 10, 1983.038250, 1211.200000),
        (1823, 520, 131, 194.296938, 364.600000),
        (389, 357, 7, 156.082350, 77.800000),
    ];
    let data: Vec<_> = common::dlrm_files()
        .iter()
        .map(|p| common::load(p))
        .collect();
    let report = summarize(&data, &Taxonomy::builtin(), &SummaryOptions { top: 50 });
    for t in &report.traces {
        let r = t.rank.unwrap() as usize;
        for (prefix, g) in [
            ("ncclKernel_AllReduce_RING_LL_Sum_float(", allreduce[r]),
            ("ncclKernel_SendRecv_RING_SIMPLE_Sum_int8_t(", sendrecv[r]),
        ] {
            let k = t
                .kernels
                .iter()
                .find(|k| k.name.starts_with(prefix))
                .unwrap_or_else(|| panic!("rank {r}: {prefix} missing"));
            assert_eq!(k.class, "comm");
            assert_eq!(k.category, "comm.nccl");
            assert_eq!(k.stats.sum_us as i64, g.0, "rank {r} {prefix} sum");
            assert_eq!(k.stats.max_us as i64, g.1, "rank {r} {prefix} max");
            assert_eq!(k.stats.min_us as i64, g.2, "rank {r} {prefix} min");
            assert!(
                (k.stats.std_us - g.3).abs() < 1e-4,
                "rank {r} {prefix} std {}",
                k.stats.std_us
            );
            assert!(
                (k.stats.mean_us - g.4).abs() < 1e-4,
                "rank {r} {prefix} mean"
            );
        }
    }
    // HTA B.3 is overlap-aware: COMMUNICATION 46880 + "COMPUTATION overlapping COMMUNICATION"
    // 1652 + "COMMUNICATION overlapping MEMORY" 10 = the plain Σcomm over all ranks, and the
    // compute overlap is exactly Σcomm − Σexposed comm.
    let overall = report.overall.expect("overall view for 8 inputs");
    assert_eq!(overall.timeline.comm_sum_ns / 1000, 46880 + 1652 + 10);
    assert_eq!(
        (overall.timeline.comm_sum_ns - overall.timeline.exposed_comm_ns) / 1000,
        1652
    );
}

#[test]
fn ranks_view_names_rank_7_and_matches_straggler_table() {
    let data: Vec<_> = common::dlrm_files()
        .iter()
        .map(|p| common::load(p))
        .collect();
    let rep = compare_ranks(&data, &RanksOptions::default()).unwrap();
    assert_eq!(rep.straggler, vec!["rank 7".to_string()]);
    // (rank, total wait, times last, times first, Σcomm), sorted by wait (golden A.2).
    let golden = [
        (7, 1534, 5, 0, 1746),
        (2, 3280, 0, 0, 3492),
        (6, 3342, 0, 0, 3558),
        (0, 5580, 0, 2, 5798),
        (5, 6041, 2, 0, 6251),
        (4, 6370, 1, 1, 6587),
        (3, 9571, 0, 2, 9774),
        (1, 11125, 0, 3, 11336),
    ];
    let got: Vec<_> = rep
        .stragglers
        .iter()
        .map(|s| {
            (
                s.rank.trim_start_matches("rank ").parse::<i64>().unwrap(),
                s.total_wait_us as i64,
                s.times_last,
                s.times_first,
                s.comm_sum_us as i64,
            )
        })
        .collect();
    assert_eq!(got, golden);
    // A.3 per-collective start / end spreads.
    let spreads: Vec<(String, usize, i64, i64, String, String)> = rep
        .collectives
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                c.occurrence,
                c.start_skew_us as i64,
                c.end_skew_us as i64,
                c.last.clone(),
                c.first.clone(),
            )
        })
        .collect();
    let ar = "ncclKernel_AllReduce_RING_LL_Sum_float";
    let sr = "ncclKernel_SendRecv_RING_SIMPLE_Sum_int8_t";
    let expect = [
        (ar, 0, 223, 5, 7, 1),
        (ar, 1, 584, 5, 5, 3),
        (ar, 2, 885, 7, 4, 0),
        (sr, 0, 7624, 2, 7, 1),
        (sr, 1, 1101, 2, 7, 4),
        (sr, 2, 168, 1, 7, 0),
        (sr, 3, 125, 2, 7, 3),
        (sr, 4, 534, 3, 5, 1),
    ];
    assert_eq!(spreads.len(), 8, "8 collectives matched on all ranks");
    for (n, occ, ss, es, last, first) in expect {
        let row = spreads
            .iter()
            .find(|s| s.0 == n && s.1 == occ)
            .unwrap_or_else(|| panic!("{n} #{occ} not matched"));
        assert_eq!((row.2, row.3), (ss, es), "{n} #{occ} start/end spread");
        assert_eq!(row.4, format!("rank {last}"), "{n} #{occ} last");
        assert_eq!(row.5, format!("rank {first}"), "{n} #{occ} first");
    }
    assert_eq!(rep.unmatched_comm_kernels, 0);
    // Rank rows: golden idle per rank.
    for (r, row) in rep.ranks.iter().enumerate() {
        assert_eq!(row.rank, format!("rank {r}"));
        assert_eq!(row.timeline.idle_ns / 1000, A1[r][6]);
    }
}
