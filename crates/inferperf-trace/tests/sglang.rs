//! Real SGLang serving traces (TraceLens MI300X, Qwen3-8B): gzip, float ts, no `M` events, GPU
//! pid 9. Expected values come from an independent whole-file computation,
//! `tests/expectations/sglang_expect.py` (standard-library python, run once; its output is
//! pasted below), and from HTA 0.5.0's temporal breakdown in the data README.

mod common;

use inferperf_trace::summary::{summarize, SummaryOptions};
use inferperf_trace::taxonomy::Taxonomy;

fn summary(file: &str) -> inferperf_trace::summary::TraceSummary {
    let d = common::load(&common::traces_dir().join("sglang_mi300x").join(file));
    let mut r = summarize(&[d], &Taxonomy::builtin(), &SummaryOptions { top: 30 });
    assert!(r.overall.is_none());
    r.traces.remove(0)
}

fn cat_share(t: &inferperf_trace::summary::TraceSummary, cat: &str) -> f64 {
    t.kernel_categories
        .iter()
        .filter(|c| c.category == cat)
        .map(|c| c.share_pct)
        .sum()
}

#[test]
fn prefilldecode_trace_splits_prefill_and_classifies_kernels() {
    let t = summary("sglang_Qwen3-8B_prefilldecode.json.gz");
    assert_eq!(t.events, 60_315);
    assert_eq!(t.categories.get("python_function"), Some(&53_321));
    // Top kernels, sums in ns, shares of all GPU event time (492,811,563 ns).
    let top: Vec<(String, i64, f64)> = t
        .kernels
        .iter()
        .take(3)
        .map(|k| {
            (
                k.name.clone(),
                (k.stats.sum_us * 1000.0).round() as i64,
                k.share_pct,
            )
        })
        .collect();
    let expect = [
        (
            "Cijk_Alik_Bljk_BBS_BH_Bias_HA_S_SAV_UserArgs_MT128x256x32_MI",
            243_643_021,
            49.44,
        ),
        (
            "Cijk_Alik_Bljk_BBS_BH_Bias_HA_S_SAV_UserArgs_MT320x224x64_MI",
            124_930_912,
            25.35,
        ),
        (
            "Cijk_Alik_Bljk_BBS_BH_Bias_HA_S_SAV_UserArgs_MT256x192x64_MI",
            51_295_484,
            10.41,
        ),
    ];
    for ((name, sum, share), (ename, esum, eshare)) in top.iter().zip(expect) {
        assert!(name.starts_with(ename), "{name}");
        assert_eq!(*sum, esum, "{name}");
        assert!((share - eshare).abs() < 0.01, "{name}: {share}");
    }
    for k in &t.kernels {
        if k.name.starts_with("Cijk_") {
            assert_eq!(k.category, "gemm", "{}", k.name);
        }
        if k.name.contains("FmhaBatchPrefill") {
            assert_eq!(k.category, "attention", "{}", k.name);
        }
        if k.name.contains("add_rmsnorm_quant_kernel") {
            assert_eq!(k.category, "norm");
        }
        if k.name.contains("act_and_mul_kernel") {
            assert_eq!(k.category, "activation");
        }
        if k.name.contains("rotary_embedding") {
            assert_eq!(k.category, "rope");
        }
        assert_ne!(k.class, "comm", "TP=1: no communication ({})", k.name);
    }
    let gemm = cat_share(&t, "gemm");
    assert!((gemm - 85.29).abs() < 0.05, "gemm share {gemm}");
    assert!(cat_share(&t, "attention") > 4.0);

    // Stages: the one step[EXTEND bs=15 toks=15360] span = prefill; 524 GPU events launched
    // inside it (492,687,946 ns), 10 outside.
    let stages: Vec<(String, u64, u64, i64)> = t
        .stages
        .iter()
        .map(|s| {
            (
                s.stage.clone(),
                s.steps,
                s.gpu_events,
                (s.gpu_sum_us * 1000.0).round() as i64,
            )
        })
        .collect();
    assert_eq!(
        stages,
        vec![
            ("prefill".to_string(), 1, 524, 492_687_946),
            ("unattributed".to_string(), 0, 10, 123_617)
        ]
    );
    assert_eq!(t.stages[0].tokens, 15_360);
    assert!(t.stages[0].top_kernels[0].name.starts_with("Cijk_"));

    // HTA 0.5.0: kernel_time 987,288 µs, compute 492,240 µs, idle 495,017 µs. HTA rounds ts up
    // and ends down to whole µs before its union; we keep ns, so allow ~1 µs per kernel.
    let tl = t.timeline.as_ref().unwrap();
    assert!(
        (tl.span_ns as f64 / 1000.0 - 987_288.0).abs() < 2.0,
        "span {}",
        tl.span_ns
    );
    assert!(
        (tl.computation_ns as f64 / 1000.0 - 492_240.0).abs() < 600.0,
        "{}",
        tl.computation_ns
    );
    assert!(
        (tl.idle_ns as f64 / 1000.0 - 495_017.0).abs() < 600.0,
        "{}",
        tl.idle_ns
    );
    assert_eq!(tl.exposed_comm_ns, 0);
    assert_eq!(
        tl.computation_ns + tl.exposed_memory_ns + tl.idle_ns,
        tl.span_ns
    );
}

#[test]
fn decode_trace_is_decode_with_paged_attention() {
    let t = summary("sglang_Qwen3-8B_decode.json.gz");
    let second = &t.kernels[1];
    assert!(second
        .name
        .contains("paged_attention_ll4mi_QKV_mfma16_kernel"));
    assert_eq!(second.category, "attention");
    assert_eq!((second.stats.sum_us * 1000.0).round() as i64, 1_949_556);
    assert!((second.share_pct - 19.94).abs() < 0.01);
    assert_eq!(
        (t.kernels[0].stats.sum_us * 1000.0).round() as i64,
        2_417_659
    );
    let stages: Vec<(String, u64, i64)> = t
        .stages
        .iter()
        .map(|s| {
            (
                s.stage.clone(),
                s.gpu_events,
                (s.gpu_sum_us * 1000.0).round() as i64,
            )
        })
        .collect();
    assert_eq!(
        stages,
        vec![
            ("decode".to_string(), 551, 9_694_013),
            ("unattributed".to_string(), 7, 84_601)
        ]
    );
}
