//! `bench one-batch` against the real in-process engine (built-in dummy model, and the SmolLM2
//! GGUF): SGLang's record keys in order, the arithmetic from the recorded step times, the
//! KV-capacity skip rule, and the profile traces (names, the captured steps).

use std::io::Read;
use std::path::PathBuf;

use inferperf_engine::EngineConfig;
use inferperf_inproc::inproc::InProcEngine;
use inferperf_inproc::one_batch::{self, OneBatchOptions, ProfileOptions, ProfileStage};
use inferperf_loadgen::jsonl::top_level_keys;
use inferperf_profiler::ProfilerConfig;

/// SGLang's `bench_one_batch` record keys, in order.
const KEYS: [&str; 10] = [
    "run_name",
    "batch_size",
    "input_len",
    "output_len",
    "prefill_latency",
    "prefill_throughput",
    "median_decode_latency",
    "median_decode_throughput",
    "total_latency",
    "overall_throughput",
];

fn config() -> EngineConfig {
    EngineConfig {
        chunked_prefill_size: -1,
        max_running_requests: Some(8),
        disable_radix_cache: true,
        ..EngineConfig::default()
    }
}

fn options(result: PathBuf) -> OneBatchOptions {
    OneBatchOptions {
        run_name: "t".into(),
        batch_sizes: vec![1, 3],
        input_lens: vec![16],
        output_lens: vec![5],
        result_filename: Some(result),
        log_decode_step: 0,
        correctness_test: false,
        profile: None,
        seed: 7,
    }
}

#[test]
fn records_have_sglang_keys_and_their_arithmetic_holds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("result.jsonl");
    let engine = InProcEngine::launch(config(), None).expect("engine");
    let results = one_batch::run(&engine, &options(out.clone())).expect("run");
    assert_eq!(results.len(), 2);
    for r in &results {
        let (bs, il, ol) = (
            r.case.batch_size as f64,
            r.case.input_len as f64,
            r.case.output_len as f64,
        );
        assert_eq!(r.decode_latencies.len(), r.case.output_len - 1);
        assert!((r.prefill_throughput - il * bs / r.prefill_latency).abs() < 1e-6);
        let mut d = r.decode_latencies.clone();
        d.sort_by(f64::total_cmp);
        // Four decode steps. The median interpolates (d1 + (d2 - d1) / 2), which may differ
        // from the mean of the middle two in the last bit.
        let median = (d[1] + d[2]) / 2.0;
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() <= 1e-12 * b.abs());
        assert!(close(r.median_decode_latency, median), "{r:?}");
        assert!(close(r.median_decode_throughput, bs / median), "{r:?}");
        let total = r.prefill_latency + r.decode_latencies.iter().sum::<f64>();
        assert!((r.total_latency - total).abs() < 1e-12);
        assert!((r.overall_throughput - (il + ol) * bs / total).abs() < 1e-6);
    }
    let text = std::fs::read_to_string(&out).expect("result file");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    for line in lines {
        assert_eq!(top_level_keys(line).expect("keys"), KEYS);
    }
}

#[test]
fn cases_that_do_not_fit_the_kv_pool_are_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = InProcEngine::launch(
        EngineConfig {
            max_total_tokens: Some(64),
            ..config()
        },
        None,
    )
    .expect("engine");
    // 64 / (16 + 5) = 3 requests fit; 4 do not.
    let mut o = options(dir.path().join("r.jsonl"));
    o.batch_sizes = vec![3, 4];
    let results = one_batch::run(&engine, &o).expect("run");
    let sizes: Vec<usize> = results.iter().map(|r| r.case.batch_size).collect();
    assert_eq!(sizes, [3]);
}

fn steps_in(path: &std::path::Path) -> Vec<String> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("open"))
        .read_to_string(&mut text)
        .expect("gunzip");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
    doc["traceEvents"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .filter(|n| n.starts_with("step["))
        .map(String::from)
        .collect()
}

#[test]
fn profile_writes_sglang_names_with_the_chosen_steps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = InProcEngine::launch(config(), Some(ProfilerConfig::default())).expect("engine");
    let mut o = options(dir.path().join("r.jsonl"));
    o.batch_sizes = vec![3];
    o.output_lens = vec![8];
    o.profile = Some(ProfileOptions {
        stage: ProfileStage::All,
        start_step: Some(2),
        steps: Some(3),
        prefix: "pre".into(),
        record_shapes: true,
        dir: dir.path().to_path_buf(),
    });
    let results = one_batch::run(&engine, &o).expect("run");
    let traces = &results[0].traces;
    let names: Vec<String> = traces
        .iter()
        .map(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(
        names,
        [
            "pre_batch3_input16_output8_prefill.trace.json.gz",
            "pre_batch3_input16_output8_decode.trace.json.gz"
        ]
    );
    let prefill = steps_in(&traces[0]);
    assert_eq!(prefill.len(), 1, "{prefill:?}");
    assert!(
        prefill[0].starts_with("step[EXTEND bs=3 toks=48"),
        "{prefill:?}"
    );
    let decode = steps_in(&traces[1]);
    assert_eq!(decode.len(), 3, "{decode:?}");
    assert!(decode.iter().all(|n| n.starts_with("step[DECODE bs=3")));
    // Decode step 2 (0-based) sees 16 prompt + 3 generated tokens per request: g_sk = 3 * 19.
    assert!(decode[0].contains("g_sk=57"), "{decode:?}");
}

#[test]
fn smollm2_correctness_test_generates_text() {
    let gguf = std::env::var("INFERPERF_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/inferperf/assets")
        })
        .join("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        gguf.is_file(),
        "{} is missing: run scripts/fetch-test-assets.sh",
        gguf.display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = InProcEngine::launch(
        EngineConfig {
            model_path: gguf.to_string_lossy().into_owned(),
            ..config()
        },
        None,
    )
    .expect("engine");
    let mut o = options(dir.path().join("r.jsonl"));
    o.batch_sizes = vec![2];
    o.input_lens = vec![8];
    o.output_lens = vec![6];
    o.correctness_test = true;
    let r = one_batch::run(&engine, &o).expect("run");
    assert_eq!(r[0].texts.len(), 2);
    assert!(r[0].texts.iter().all(|t| !t.is_empty()));
    assert!(r[0].median_decode_throughput.is_some_and(|t| t > 0.0));
}
