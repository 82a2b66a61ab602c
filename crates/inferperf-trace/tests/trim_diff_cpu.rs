//! Trim, diff and CPU-only summaries (the reference server writes CPU spans only).

mod common;

use inferperf_trace::diff::{diff, normalize, DiffOptions};
use inferperf_trace::progress::Progress;
use inferperf_trace::summary::{summarize, SummaryOptions};
use inferperf_trace::taxonomy::Taxonomy;
use inferperf_trace::trim::{trim, TrimOptions};

fn cpu_trace() -> String {
    let mut evs = Vec::new();
    let mut t = 1_000i64;
    for step in 0..6 {
        let (mode, dur) = if step < 2 {
            ("EXTEND bs=2 toks=64", 900)
        } else {
            ("DECODE bs=2", 300)
        };
        evs.push(format!(r#"{{"ph":"X","cat":"user_annotation","name":"ProfilerStep#{step}","ts":{t},"dur":{},"pid":1,"tid":1}}"#, dur + 50));
        evs.push(format!(r#"{{"ph":"X","cat":"user_annotation","name":"step[{mode}]","ts":{},"dur":{dur},"pid":1,"tid":1}}"#, t + 10));
        evs.push(format!(
            r#"{{"ph":"X","cat":"cpu_op","name":"matmul","ts":{},"dur":100,"pid":1,"tid":1}}"#,
            t + 20
        ));
        evs.push(format!(r#"{{"ph":"X","cat":"python_function","name":"forward","ts":{},"dur":100,"pid":1,"tid":1}}"#, t + 20));
        t += 1_000;
    }
    format!(r#"{{"schemaVersion":1,"traceEvents":[{}]}}"#, evs.join(","))
}

#[test]
fn cpu_only_trace_is_summarized_by_span_and_stage() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("cpu.trace.json");
    std::fs::write(&p, cpu_trace()).unwrap();
    let data = common::load(&p);
    let r = summarize(&[data], &Taxonomy::builtin(), &SummaryOptions::default());
    let t = &r.traces[0];
    assert!(t.timeline.is_none());
    assert_eq!(t.profiler_steps, 6);
    let stages: Vec<(String, u64, u64)> = t
        .stages
        .iter()
        .map(|s| (s.stage.clone(), s.steps, s.tokens))
        .collect();
    assert_eq!(
        stages,
        vec![("prefill".into(), 2, 128), ("decode".into(), 4, 0)]
    );
    assert_eq!(t.stages[0].step_stats.as_ref().unwrap().sum_us, 1800.0);
    let m = t.cpu_spans.iter().find(|s| s.name == "matmul").unwrap();
    assert_eq!(m.stats.count, 6);
    assert!(t.cpu_spans.iter().all(|s| s.category != "python_function"));
    assert!(!r.tables().is_empty());
}

#[test]
fn trim_by_steps_and_categories() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("cpu.trace.json");
    std::fs::write(&p, cpu_trace()).unwrap();
    let out = d.path().join("trimmed.trace.json.gz");
    let opts = TrimOptions {
        profiler_steps: Some((2, 3)),
        drop_categories: vec!["python_function".into()],
        ..Default::default()
    };
    let r = trim(&p, &out, &opts, &Progress::hidden()).unwrap();
    assert_eq!(r.events_in, 24);
    assert_eq!(r.dropped_by_category.get("python_function"), Some(&6));
    // Steps 2 and 3: 3 events each remain.
    assert_eq!(r.events_out, 6);
    let data = common::load(&out);
    assert_eq!(data.profiler_steps.len(), 2);
    assert_eq!(data.profiler_steps[0].profiler_step, Some(2));

    // step[...] range and a size budget that forces python_function out.
    let out2 = d.path().join("t2.trace.json");
    let r = trim(
        &p,
        &out2,
        &TrimOptions {
            steps: Some((0, 1)),
            max_size: Some(500),
            ..Default::default()
        },
        &Progress::hidden(),
    )
    .unwrap();
    assert_eq!(
        r.size_dropped_categories,
        vec!["python_function".to_string()]
    );
    assert!(r.window_shortened);
    assert!(r.bytes < 700, "{}", r.bytes);
    let t = common::load(&out2);
    assert!(!t.by_category.contains_key("python_function"));
    // A missing step range is a clear error.
    let e = trim(
        &p,
        &out2,
        &TrimOptions {
            profiler_steps: Some((40, 41)),
            ..Default::default()
        },
        &Progress::hidden(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("ProfilerStep#40"), "{e}");
}

#[test]
fn diff_two_ranks() {
    let files = common::dlrm_files();
    let a = common::load(&files[0]);
    let b = common::load(&files[7]);
    let r = diff(&a, &b, &DiffOptions::default());
    let sr = r
        .rows
        .iter()
        .find(|x| x.name == "ncclKernel_SendRecv_RING_SIMPLE_Sum_int8_t()")
        .unwrap();
    assert_eq!((sr.dur_a_us, sr.dur_b_us), (3999.0, 389.0));
    assert_eq!(sr.status, "decreased");
    assert_eq!(r.rows[0].name, sr.name, "largest change first");
    assert_eq!(
        normalize("void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>, at::detail::Array<char*, 1> >(int, at::native::FillFunctor<float>, at::detail::Array<char*, 1>)"),
        "at::native::vectorized_elementwise_kernel<>()"
    );
    assert_eq!(
        normalize("<built-in method x of y object at 0x7ed6e0170470>"),
        "<>"
    );
    assert_eq!(normalize("f at 0x7ed6e0170470 end"), "f at 0x? end");
}
