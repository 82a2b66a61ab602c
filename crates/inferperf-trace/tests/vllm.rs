//! vLLM's worker traces: `execute_context_N(T)_generation_M(U)` step annotations.
//!
//! The fixture in `tests/data/vllm/` has the shape and name vLLM's torch profiler writes for a
//! CPU worker: `rank0.<ns>.pt.trace.json` with `distributedInfo`, `user_annotation` steps,
//! `cpu_op` and `python_function` events and no GPU kernels.

mod common;

use std::path::{Path, PathBuf};

use inferperf_trace::collect::parse_step;
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
