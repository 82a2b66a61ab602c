//! vLLM's traces: the worker's `execute_context_N(T)_generation_M(U)` step annotations and the
//! API-server front end's second trace (`*.async_llm.*`, Python functions only).
//!
//! The fixtures in `tests/data/vllm/` have the shapes and names vLLM's torch profiler writes on
//! CPU (`docs/trace-conventions.md` says where in vLLM they come from): a worker trace
//! `rank0.<ns>.pt.trace.json` with `distributedInfo`, `user_annotation` steps, `cpu_op` and
//! `python_function` events and no GPU kernels; and a front-end trace
//! `<host>_<pid>.async_llm.<ns>.pt.trace.json` with Python functions only and no
//! `distributedInfo`.

mod common;

use std::path::{Path, PathBuf};

use inferperf_trace::collect::parse_step;
use inferperf_trace::merge::{merge_files, MergeOptions};
use inferperf_trace::naming::parse_file_name;
use inferperf_trace::progress::Progress;
use inferperf_trace::summary::{summarize, SummaryOptions, TraceSummary};
use inferperf_trace::taxonomy::Taxonomy;
use inferperf_trace::trim::{trim, TrimOptions};

fn vllm_dir() -> PathBuf {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    dir.join("tests/data/vllm")
}

fn worker() -> PathBuf {
    vllm_dir().join("rank0.1754560861234567890.pt.trace.json")
}

fn frontend() -> PathBuf {
    vllm_dir().join("node1_4242.async_llm.1754560861345678901.pt.trace.json")
}

fn summary(path: &Path) -> TraceSummary {
    let d = common::load(path);
    summarize(&[d], &Taxonomy::builtin(), &SummaryOptions::default())
        .traces
        .remove(0)
}

#[test]
fn step_names_map_to_stages_by_request_counts() {
    let stage = |name: &str| parse_step("user_annotation", name, 0, 1).map(|s| s.stage);
    assert_eq!(
        stage("execute_context_2(512)_generation_0(0)").as_deref(),
        Some("prefill")
    );
    assert_eq!(
        stage("execute_context_0(0)_generation_8(8)").as_deref(),
        Some("decode")
    );
    assert_eq!(
        stage("execute_context_1(96)_generation_7(7)").as_deref(),
        Some("mixed")
    );
    assert_eq!(
        stage("execute_context_0(0)_generation_0(0)").as_deref(),
        Some("idle")
    );
    // vLLM's detailed annotation (profiler_config.detailed_trace_annotation).
    let s = parse_step(
        "user_annotation",
        "execute_9_context_1(sq8sk8sqsq64sqsk64)_generation_1(sq1sk9sqsq1sqsk9)",
        0,
        1,
    )
    .unwrap();
    assert_eq!(s.stage, "mixed");
    assert_eq!((s.bs, s.toks), (Some(2), Some(9)));
    let b = s.batch.unwrap();
    assert_eq!(
        (b.context_requests, b.context_tokens),
        (1, 8),
        "context tokens are the sq (query) count"
    );
    assert_eq!((b.generation_requests, b.generation_tokens), (1, 1));
    // The detailed form as it appears in a real trace (TraceLens' SGLang prefill trace in
    // ../shared/data/traces/sglang_mi300x, where the `step[...]` span inside it is the one
    // counted; see `keep_one_step_convention`).
    let s = parse_step(
        "user_annotation",
        "execute_15360_context_15(sq15360sk15360sqsq15728640sqsk15728640)_generation_0(sq0sk0sqsq0sqsk0)",
        0,
        1,
    )
    .unwrap();
    assert_eq!(
        (s.stage.as_str(), s.bs, s.toks),
        ("prefill", Some(15), Some(15360))
    );
    // Other names are not steps; nor are GPU-side copies of the annotation.
    for name in [
        "execute_model",
        "execute_context_1(7)",
        "execute_context_x(7)_generation_0(0)",
        "execute_context_1(7)_generation_0(0)_extra",
    ] {
        assert!(stage(name).is_none(), "{name}");
    }
    assert!(parse_step(
        "gpu_user_annotation",
        "execute_context_1(7)_generation_0(0)",
        0,
        1
    )
    .is_none());
}

#[test]
fn summary_splits_vllm_steps_into_prefill_mixed_and_decode() {
    let t = summary(&worker());
    assert!(t.timeline.is_none(), "a CPU trace has no GPU timeline");
    assert_eq!(t.rank, Some(0));
    let stages: Vec<(&str, u64, u64, f64)> = t
        .stages
        .iter()
        .map(|s| {
            (
                s.stage.as_str(),
                s.steps,
                s.tokens,
                s.step_stats.as_ref().unwrap().sum_us,
            )
        })
        .collect();
    assert_eq!(
        stages,
        vec![
            ("prefill", 1, 7, 8200.0),
            ("mixed", 1, 6, 7000.0),
            ("decode", 3, 5, 12000.0)
        ]
    );
    assert!(t.nothing_to_tabulate.is_none());
    let r = summarize(
        &[common::load(&worker())],
        &Taxonomy::builtin(),
        &SummaryOptions::default(),
    );
    let stage_table = r
        .tables()
        .into_iter()
        .find(|t| t.name == "stages:rank 0")
        .expect("a stages table");
    assert_eq!(stage_table.rows.len(), 3);
}

#[test]
fn trim_selects_vllm_steps_by_index() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("decode.trace.json");
    // Steps 2 and 3 are the two `execute_context_0(0)_generation_2(2)` decode steps.
    let opts = TrimOptions {
        steps: Some((2, 3)),
        ..Default::default()
    };
    let r = trim(&worker(), &out, &opts, &Progress::hidden()).unwrap();
    assert!(r.window_ns.is_some());
    let kept = common::load(&out);
    let names: Vec<&str> = kept.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "execute_context_0(0)_generation_2(2)",
            "execute_context_0(0)_generation_2(2)"
        ]
    );
    // Each step's cpu_ops and Python function came along; the other steps' did not.
    assert_eq!(kept.by_category.get("cpu_op"), Some(&10));
    assert_eq!(kept.by_category.get("python_function"), Some(&2));

    // `--profiler-steps` on a trace without ProfilerStep#N points to --steps.
    let opts = TrimOptions {
        profiler_steps: Some((0, 1)),
        ..Default::default()
    };
    let e = trim(&worker(), &out, &opts, &Progress::hidden())
        .unwrap_err()
        .to_string();
    assert!(e.contains("--steps 0..4"), "{e}");
}

#[test]
fn file_names_tell_workers_from_the_front_end() {
    let f = parse_file_name("node1_4242.async_llm.1754560861345678901.pt.trace.json.gz");
    assert_eq!(f.frontend.as_deref(), Some("node1_4242"));
    assert_eq!(f.label(), "vLLM frontend (async_llm, pid 4242)");
    // A front end on a host named like a worker is still the front end.
    let f = parse_file_name("gpu-worker-3_77.async_llm.1.pt.trace.json.gz");
    assert_eq!((f.rank, f.frontend.is_some()), (None, true));
    // Worker names: `{instance}-rank-{N}`, `rank{N}`, `[prefix_]dp_pp_tp_dcp_ep_rank{N}`.
    assert_eq!(
        parse_file_name("a1b2c3-rank-1.1754560861.pt.trace.json.gz").rank,
        Some(1)
    );
    assert_eq!(
        parse_file_name("rank0.1754560861.pt.trace.json.gz").label(),
        "[RANK00]"
    );
    let w = parse_file_name("warm_dp1_pp0_tp3_dcp0_ep3_rank7.1754560861.pt.trace.json.gz");
    assert_eq!(
        (w.dp, w.pp, w.tp, w.ep, w.rank),
        (Some(1), Some(0), Some(3), Some(3), Some(7))
    );
    assert_eq!(w.label(), "[TP03 DP01 PP00 EP03]");
}

#[test]
fn merge_labels_the_front_end_and_the_worker_without_a_rank_map() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("merged.trace.json");
    let rep = merge_files(&[worker(), frontend()], &out, &MergeOptions::default()).unwrap();
    let labels: Vec<&str> = rep.ranks.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["vLLM frontend (async_llm, pid 4242)", "[RANK00]"]);
    assert_eq!(
        rep.events_in,
        rep.ranks.iter().map(|r| r.events_in).sum::<u64>()
    );

    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let events = doc["traceEvents"].as_array().unwrap();
    // Every process of the merged trace is labelled as the front end or as rank 0: the
    // front end's Python functions in the first, the worker's steps in the second.
    let names_of = |pid: i64| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["ph"] == "M" && e["name"] == "process_name" && e["pid"] == pid)
            .map(|e| e["args"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let labelled_as = |pred: &dyn Fn(&str) -> bool, prefix: &str| {
        let pids: std::collections::BTreeSet<i64> = events
            .iter()
            .filter(|e| e["ph"] == "X" && e["name"].as_str().is_some_and(pred))
            .map(|e| e["pid"].as_i64().unwrap())
            .collect();
        assert!(!pids.is_empty());
        for pid in pids {
            let names = names_of(pid);
            assert!(
                !names.is_empty() && names.iter().all(|n| n.starts_with(prefix)),
                "pid {pid}: {names:?}"
            );
        }
    };
    labelled_as(
        &|n| n.contains("async_llm.py"),
        "vLLM frontend (async_llm, pid 4242) CPU",
    );
    labelled_as(&|n| n.starts_with("execute_context_"), "[RANK00] CPU");

    // The merged trace still summarizes into the worker's stages.
    let t = summary(&out);
    let stages: Vec<&str> = t.stages.iter().map(|s| s.stage.as_str()).collect();
    assert_eq!(stages, ["prefill", "mixed", "decode"]);
}

#[test]
fn summary_of_the_front_end_alone_explains_why_it_has_no_tables() {
    let t = summary(&frontend());
    assert!(t.kernels.is_empty() && t.stages.is_empty() && t.cpu_spans.is_empty());
    let why = t.nothing_to_tabulate.as_deref().expect("an explanation");
    assert!(why.contains("15 python_function"), "{why}");
    assert!(why.contains("--python"), "{why}");
    let r = summarize(
        &[common::load(&frontend())],
        &Taxonomy::builtin(),
        &SummaryOptions::default(),
    );
    let text = inferperf_trace::table::render_all(&r.tables());
    assert!(text.contains("Nothing to summarize"), "{text}");
    assert!(text.contains("python_function"), "{text}");

    // With --python the Python functions are the table.
    let d = inferperf_trace::collect::collect(
        &frontend(),
        &Taxonomy::builtin(),
        &inferperf_trace::collect::CollectOptions {
            include_python: true,
            ..Default::default()
        },
        &Progress::hidden(),
    )
    .unwrap();
    let r = summarize(&[d], &Taxonomy::builtin(), &SummaryOptions::default());
    assert!(r.traces[0].nothing_to_tabulate.is_none());
    assert!(r.traces[0]
        .cpu_spans
        .iter()
        .any(|s| s.name.contains("async_llm.py") && s.stats.count == 3));
}
