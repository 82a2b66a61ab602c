//! CPU-only ranks: `trace ranks` and `trace summary` on gloo traces (c10d::allreduce_ >
//! record_param_comms > gloo:all_reduce, as PyTorch writes them) and on traces shaped like the
//! reference server's tensor-parallel profiler output (`model.layers.N.all_reduce` cpu_op
//! spans). The traces are generated here with known timings, so the expected waits are exact.

mod common;

use std::path::{Path, PathBuf};

use inferperf_trace::ranks::{compare_ranks, MatchKey, RankKind, RanksOptions};
use inferperf_trace::summary::{summarize, SummaryOptions};
use inferperf_trace::taxonomy::Taxonomy;
use inferperf_trace::TraceError;
use serde_json::{json, Value};

const WORLD: usize = 4;
const ITERS: usize = 5;
/// Compute per iteration (µs) of every rank but rank 2, which does four times as much.
const COMPUTE_US: f64 = 100.0;
/// Time in the collective after the last rank arrived (µs).
const TRANSFER_US: f64 = 50.0;

fn compute_us(rank: usize) -> f64 {
    if rank == 2 {
        4.0 * COMPUTE_US
    } else {
        COMPUTE_US
    }
}

fn x(name: &str, cat: &str, tid: u64, ts: f64, dur: f64, args: Value) -> Value {
    json!({"ph": "X", "cat": cat, "name": name, "pid": 1000, "tid": tid,
           "ts": ts, "dur": dur, "args": args})
}

fn write_trace(
    dir: &Path,
    file: &str,
    rank: usize,
    world: usize,
    backend: &str,
    events: Vec<Value>,
) -> PathBuf {
    let doc = json!({
        "schemaVersion": 1,
        "deviceProperties": [],
        "distributedInfo": {"backend": backend, "rank": rank, "world_size": world},
        "traceEvents": events,
    });
    let path = dir.join(file);
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    path
}

/// One gloo rank: per iteration, `aten::mm` compute on the main thread, then
/// `dist.all_reduce`: `c10d::allreduce_` > `record_param_comms` > `gloo:all_reduce`, all
/// ending together once the last rank has arrived (plus the transfer). A gloo worker thread
/// runs an op inside the collective (not computation). `with_seq` adds recent PyTorch's
/// process group and sequence number; `iters` lets a test drop calls.
fn gloo_rank(dir: &Path, rank: usize, iters: usize, with_seq: bool) -> PathBuf {
    let main = 1000 + rank as u64;
    let worker = 2000 + rank as u64;
    let slowest = (0..WORLD).map(compute_us).fold(0.0, f64::max);
    let period = slowest + TRANSFER_US + 20.0;
    let mut ev = Vec::new();
    for i in 0..iters {
        let t0 = 1_000_000.0 + i as f64 * period;
        ev.push(x(
            &format!("ProfilerStep#{i}"),
            "user_annotation",
            main,
            t0,
            period - 10.0,
            json!({}),
        ));
        let c = compute_us(rank);
        ev.push(x("aten::linear", "cpu_op", main, t0, c, json!({})));
        ev.push(x("aten::mm", "cpu_op", main, t0 + 1.0, c - 2.0, json!({})));
        let arrive = t0 + c;
        let end = t0 + slowest + TRANSFER_US;
        let mut rpc = json!({"Collective name": "allreduce", "dtype": "Float",
                             "In msg nelems": 1024, "Out msg nelems": 1024, "Group size": WORLD});
        if with_seq {
            rpc["Process Group Name"] = json!("0");
            rpc["Seq"] = json!(i + 1);
        }
        ev.push(x(
            "c10d::allreduce_",
            "cpu_op",
            main,
            arrive,
            end - arrive,
            json!({}),
        ));
        ev.push(x(
            "record_param_comms",
            "cpu_op",
            main,
            arrive + 1.0,
            end - arrive - 2.0,
            rpc,
        ));
        ev.push(x(
            "gloo:all_reduce",
            "user_annotation",
            main,
            arrive + 2.0,
            end - arrive - 3.0,
            json!({}),
        ));
        ev.push(x("aten::add_", "cpu_op", worker, end - 5.0, 3.0, json!({})));
    }
    write_trace(
        dir,
        &format!("worker{rank}.pt.trace.json"),
        rank,
        WORLD,
        "gloo",
        ev,
    )
}

fn gloo_set(dir: &Path, with_seq: bool) -> Vec<PathBuf> {
    (0..WORLD)
        .map(|r| gloo_rank(dir, r, ITERS, with_seq))
        .collect()
}

#[test]
fn gloo_ranks_name_the_rank_with_four_times_the_compute_as_straggler() {
    for with_seq in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<_> = gloo_set(dir.path(), with_seq)
            .iter()
            .map(|p| common::load(p))
            .collect();
        let rep = compare_ranks(&data, &RanksOptions::default()).unwrap();
        let ctx = format!("with_seq={with_seq}");
        assert_eq!(rep.kind, RankKind::CpuCollectives, "{ctx}");
        let key = if with_seq {
            MatchKey::GroupSeq
        } else {
            MatchKey::NameOccurrence
        };
        assert_eq!(rep.matched_by, key, "{ctx}");
        assert_eq!(rep.straggler, vec!["rank 2".to_string()], "{ctx}");
        // One matched collective per all_reduce: the nested spans count once.
        assert_eq!(rep.collectives.len(), ITERS, "{ctx}");
        assert_eq!(rep.unmatched_comm_kernels, 0, "{ctx}");
        assert!(rep.notes.is_empty(), "{ctx}: {:?}", rep.notes);
        for c in &rep.collectives {
            assert_eq!(c.name, "gloo:all_reduce", "{ctx}");
            assert_eq!(c.last, "rank 2", "{ctx}");
            assert!(
                (c.start_skew_us - 3.0 * COMPUTE_US).abs() < 1e-6,
                "{ctx}: {c:?}"
            );
            assert!(c.end_skew_us.abs() < 1e-6, "{ctx}: {c:?}");
            if with_seq {
                assert_eq!(c.group.as_deref(), Some("0"));
                assert_eq!(c.seq, Some(c.occurrence as i64 + 1));
            }
        }
        let row = |r: usize| &rep.ranks[r].timeline;
        for (r, rr) in rep.ranks.iter().enumerate() {
            assert_eq!(rr.rank, format!("rank {r}"));
            let t = &rr.timeline;
            assert!(
                t.busy_ns > 0 && t.computation_ns > 0,
                "{ctx} rank {r}: {t:?}"
            );
            assert!(t.comm_sum_ns > 0, "{ctx} rank {r}: {t:?}");
            assert_eq!(
                t.computation_ns + t.exposed_comm_ns + t.exposed_memory_ns + t.idle_ns,
                t.span_ns
            );
        }
        // Rank 2 computes 4x; the others wait for it at every all_reduce: their total wait
        // is the compute they did not do.
        assert_eq!(row(2).computation_ns, 4 * row(0).computation_ns, "{ctx}");
        for s in &rep.stragglers {
            let r: usize = s.rank.trim_start_matches("rank ").parse().unwrap();
            let diff_us = (row(2).computation_ns - row(r).computation_ns) as f64 / 1000.0;
            assert!(
                (s.total_wait_us - diff_us).abs() <= 0.01 * diff_us.max(1.0),
                "{ctx} rank {r}: wait {} vs compute difference {diff_us}",
                s.total_wait_us
            );
            let last = if r == 2 { ITERS } else { 0 };
            assert_eq!(s.times_last, last, "{ctx} rank {r}");
            // The slow rank spends less time in collectives than those who wait for it.
            if r != 2 {
                assert!(s.comm_sum_us > rep.stragglers[0].comm_sum_us, "{ctx}");
            }
        }
        assert_eq!(rep.stragglers[0].rank, "rank 2");
        // The CPU ops spread names the compute op and rank 2 as its worst rank.
        let mm = rep.kernels.iter().find(|k| k.name == "aten::mm").unwrap();
        assert_eq!(mm.worst_rank, "rank 2");
        // The tables say these are CPU ranks.
        let tables = rep.tables();
        assert!(tables[0].title.contains("CPU"), "{}", tables[0].title);
        let json = serde_json::to_value(&rep).unwrap();
        assert_eq!(json["kind"], "cpu_collectives");
    }
}

/// One rank of the reference server at TP=2, as its profiler writes it (`engine_hooks.rs`,
/// `trace_json.rs`): one thread per rank, `ProfilerStep#N` and `step[...]` user annotations,
/// one `cpu_op` per module named `model.layers.{l}.{module}` with a `Module` arg, and two
/// `model.layers.{l}.all_reduce` spans per layer (after `self_attn.o_proj` and after `mlp`).
/// Rank 1's mlp is slow, so rank 0 waits in the all_reduce after each mlp.
fn server_rank(dir: &Path, rank: usize, steps: usize, layers: usize) -> PathBuf {
    let tid = 7000 + rank as u64;
    let mlp = |r: usize| if r == 1 { 60.0 } else { 20.0 };
    let module = |l: usize, m: &str, ts: f64, dur: f64| {
        let name = format!("model.layers.{l}.{m}");
        x(
            &name,
            "cpu_op",
            tid,
            ts,
            dur,
            json!({"Module": name, "Input Dims": [[1, 64]], "Inputs": [[1, 64]]}),
        )
    };
    let mut ev = Vec::new();
    let mut t = 5_000.0;
    for s in 0..steps {
        let step_start = t;
        ev.push(x("schedule", "user_annotation", tid, t, 5.0, json!({})));
        t += 6.0;
        let fwd = t;
        for l in 0..layers {
            ev.push(module(l, "input_layernorm", t, 2.0));
            ev.push(module(l, "self_attn.qkv_proj", t + 2.0, 10.0));
            ev.push(module(l, "self_attn.attn", t + 12.0, 8.0));
            ev.push(module(l, "self_attn.o_proj", t + 20.0, 5.0));
            // Both ranks arrive together at the first all_reduce.
            ev.push(module(l, "all_reduce", t + 25.0, 4.0));
            t += 29.0;
            ev.push(module(l, "mlp", t, mlp(rank)));
            let arrive = t + mlp(rank);
            let end = t + mlp(0).max(mlp(1)) + 4.0;
            ev.push(module(l, "all_reduce", arrive, end - arrive));
            t = end;
        }
        ev.push(x(
            "step[DECODE bs=1 toks=0]",
            "user_annotation",
            tid,
            fwd,
            t - fwd,
            json!({}),
        ));
        ev.push(x(
            "process_batch_result",
            "user_annotation",
            tid,
            t,
            3.0,
            json!({}),
        ));
        t += 3.0;
        ev.push(x(
            &format!("ProfilerStep#{}", s + 1),
            "user_annotation",
            tid,
            step_start,
            t - step_start,
            json!({}),
        ));
        t += 10.0;
    }
    write_trace(
        dir,
        &format!("prof-TP-{rank}.trace.json"),
        rank,
        2,
        "none",
        ev,
    )
}

#[test]
fn reference_server_tp2_all_reduce_spans_are_matched_with_skew() {
    let (steps, layers) = (3, 2);
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<_> = (0..2)
        .map(|r| common::load(&server_rank(dir.path(), r, steps, layers)))
        .collect();
    let rep = compare_ranks(&data, &RanksOptions::default()).unwrap();
    assert_eq!(rep.kind, RankKind::CpuCollectives);
    // The server records no process group or sequence number.
    assert_eq!(rep.matched_by, MatchKey::NameOccurrence);
    assert_eq!(rep.collectives.len(), steps * layers * 2);
    assert_eq!(rep.unmatched_comm_kernels, 0);
    for c in &rep.collectives {
        assert!(c.name.starts_with("model.layers.") && c.name.ends_with(".all_reduce"));
        assert_eq!(c.end_skew_us, 0.0, "{c:?}");
    }
    // Occurrences 0, 2, 4 of each layer's all_reduce follow o_proj (no skew); 1, 3, 5 follow
    // the mlp, where rank 1 arrives 40 µs late.
    let skewed: Vec<_> = rep
        .collectives
        .iter()
        .filter(|c| c.start_skew_us > 0.0)
        .collect();
    assert_eq!(skewed.len(), steps * layers);
    for c in skewed {
        assert_eq!(c.occurrence % 2, 1, "{c:?}");
        assert!((c.start_skew_us - 40.0).abs() < 1e-6, "{c:?}");
        assert_eq!(c.last, "rank 1");
    }
    assert_eq!(rep.straggler, vec!["rank 1".to_string()]);
    let wait0 = rep.stragglers.iter().find(|s| s.rank == "rank 0").unwrap();
    assert!((wait0.total_wait_us - 40.0 * (steps * layers) as f64).abs() < 1e-6);
    for r in &rep.ranks {
        assert!(
            r.timeline.computation_ns > 0 && r.timeline.comm_sum_ns > 0,
            "{r:?}"
        );
    }
}

#[test]
fn summary_counts_cpu_collectives_as_communication() {
    let dir = tempfile::tempdir().unwrap();
    let files = gloo_set(dir.path(), true);
    let data: Vec<_> = files.iter().map(|p| common::load(p)).collect();
    let rep = summarize(&data, &Taxonomy::builtin(), &SummaryOptions::default());
    for (r, t) in rep.traces.iter().enumerate() {
        assert!(t.timeline.is_none(), "no GPU timeline on a CPU trace");
        let cpu = t.cpu_timeline.as_ref().expect("CPU breakdown");
        assert_eq!(t.cpu_collectives, Some(ITERS as u64));
        // Each all_reduce lasts from the rank's arrival until the slowest arrived + transfer.
        let per_call = 4.0 * COMPUTE_US - compute_us(r) + TRANSFER_US;
        let want_ns = (per_call * ITERS as f64 * 1000.0) as i64;
        assert_eq!(cpu.comm_union_ns, want_ns, "rank {r}");
        assert_eq!(cpu.comm_sum_ns, want_ns, "rank {r}");
        assert!(cpu.computation_ns > 0, "rank {r}");
    }
    let overall = rep.overall.as_ref().unwrap();
    let cpu_all = overall.cpu_timeline.as_ref().expect("pooled CPU breakdown");
    assert!(cpu_all.comm_union_ns > 0);
    let tables = rep.tables();
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    assert!(names.contains(&"cpu_timeline"), "{names:?}");
    assert!(
        !names.contains(&"timeline"),
        "no all-zero GPU table: {names:?}"
    );
    let cpu_table = tables.iter().find(|t| t.name == "cpu_timeline").unwrap();
    assert_eq!(cpu_table.rows.len(), WORLD + 1);
    assert!(
        cpu_table.rows.iter().all(|row| row[7] != "0"),
        "{:?}",
        cpu_table.rows
    );
}

#[test]
fn uneven_collective_counts_name_the_rank_and_file() {
    // Without sequence numbers, matching is by order: rank 3 missing its last all_reduce
    // is an error naming it and its file.
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<PathBuf> = (0..3)
        .map(|r| gloo_rank(dir.path(), r, ITERS, false))
        .collect();
    files.push(gloo_rank(dir.path(), 3, ITERS - 1, false));
    let data: Vec<_> = files.iter().map(|p| common::load(p)).collect();
    let err = compare_ranks(&data, &RanksOptions::default()).unwrap_err();
    assert!(matches!(err, TraceError::Rank(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("gloo:all_reduce"), "{msg}");
    assert!(
        msg.contains(&format!("rank 3 ({}) {}", files[3].display(), ITERS - 1)),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("rank 0 ({}) {ITERS}", files[0].display())),
        "{msg}"
    );

    // With process group and Seq the other calls still match exactly; the report says which
    // were left unmatched.
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<PathBuf> = (0..3)
        .map(|r| gloo_rank(dir.path(), r, ITERS, true))
        .collect();
    files.push(gloo_rank(dir.path(), 3, ITERS - 1, true));
    let data: Vec<_> = files.iter().map(|p| common::load(p)).collect();
    let rep = compare_ranks(&data, &RanksOptions::default()).unwrap();
    assert_eq!(rep.matched_by, MatchKey::GroupSeq);
    assert_eq!(rep.collectives.len(), ITERS - 1);
    assert_eq!(rep.unmatched_comm_kernels, 3);
    assert_eq!(rep.straggler, vec!["rank 2".to_string()]);
    assert_eq!(rep.notes.len(), 1);
    assert!(rep.notes[0].contains("rank 3"), "{:?}", rep.notes);
}

/// `tests/data/gloo_4rank/` (used by the CLI tests) is the generator's set with `Seq`.
#[test]
fn committed_gloo_fixture_is_the_generated_set() {
    let fixture = inferperf_test_support::manifest_dir!().join("tests/data/gloo_4rank");
    let load_dir = |files: Vec<PathBuf>| {
        let data: Vec<_> = files.iter().map(|p| common::load(p)).collect();
        serde_json::to_value(compare_ranks(&data, &RanksOptions::default()).unwrap()).unwrap()
    };
    let committed = load_dir(
        (0..WORLD)
            .map(|r| fixture.join(format!("worker{r}.pt.trace.json")))
            .collect(),
    );
    let dir = tempfile::tempdir().unwrap();
    let generated = load_dir(gloo_set(dir.path(), true));
    for key in [
        "kind",
        "matched_by",
        "collectives",
        "stragglers",
        "straggler",
        "kernels",
    ] {
        assert_eq!(committed[key], generated[key], "{key}");
    }
}
