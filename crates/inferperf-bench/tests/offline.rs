//! `bench offline` against the real in-process engine: SGLang's record keys in order, the
//! arithmetic of the throughputs, every prompt answered in full, and `--profile` writing a
//! trace of the measured call.

mod common;

use common::args;
use inferperf_bench::serving::build_dataset;
use inferperf_engine::EngineConfig;
use inferperf_inproc::inproc::InProcEngine;
use inferperf_inproc::offline::{self, OfflineOptions};
use inferperf_loadgen::jsonl::top_level_keys;
use inferperf_profiler::ProfilerConfig;

const KEYS: [&str; 10] = [
    "backend",
    "successful_requests",
    "total_latency",
    "total_input_tokens",
    "total_output_tokens",
    "request_throughput",
    "input_throughput",
    "output_throughput",
    "total_throughput",
    "last_gen_throughput",
];

#[test]
fn offline_record_keys_and_arithmetic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("offline.jsonl");
    let engine = InProcEngine::launch(EngineConfig::default(), Some(ProfilerConfig::default()))
        .expect("engine");
    let tok = engine.tokenizer();
    let a = args(&[
        "--dataset-name",
        "random-ids",
        "--num-prompts",
        "12",
        "--random-input-len",
        "24",
        "--random-output-len",
        "6",
        "--random-range-ratio",
        "0.5",
    ]);
    let rows = build_dataset(&a, Some(&tok)).expect("rows");
    let r = offline::run(
        &engine,
        &rows,
        &rows[..2],
        &OfflineOptions {
            result_filename: Some(out.clone()),
            profile_dir: Some(dir.path().to_path_buf()),
            ..OfflineOptions::default()
        },
    )
    .expect("run");
    assert_eq!(r.successful_requests, 12);
    assert_eq!(
        r.total_input_tokens,
        rows.iter().map(|x| x.prompt_len).sum::<usize>()
    );
    // ignore_eos: every request generates exactly its output length.
    assert_eq!(
        r.total_output_tokens,
        rows.iter().map(|x| x.output_len).sum::<usize>()
    );
    let per_s = |x: usize| x as f64 / r.total_latency;
    assert_eq!(r.request_throughput, per_s(12));
    assert_eq!(r.output_throughput, per_s(r.total_output_tokens));
    assert_eq!(
        r.total_throughput,
        per_s(r.total_input_tokens + r.total_output_tokens)
    );
    let text = std::fs::read_to_string(&out).expect("record");
    assert_eq!(top_level_keys(text.trim()).expect("keys"), KEYS);
    assert_eq!(r.traces.len(), 1);
    assert!(r.traces[0].starts_with(dir.path()));
}

#[test]
fn offline_on_smollm2_answers_every_prompt() {
    let gguf = std::env::var("INFERPERF_ASSETS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/inferperf/assets")
        })
        .join("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        gguf.is_file(),
        "{} is missing: run scripts/fetch-test-assets.sh",
        gguf.display()
    );
    let engine = InProcEngine::launch(
        EngineConfig {
            model_path: gguf.to_string_lossy().into_owned(),
            ..EngineConfig::default()
        },
        None,
    )
    .expect("engine");
    let tok = engine.tokenizer();
    let a = args(&[
        "--dataset-name",
        "random-ids",
        "--num-prompts",
        "4",
        "--random-input-len",
        "16",
        "--random-output-len",
        "4",
        "--random-range-ratio",
        "1",
    ]);
    let rows = build_dataset(&a, Some(&tok)).expect("rows");
    let r = offline::run(&engine, &rows, &[], &OfflineOptions::default()).expect("run");
    assert_eq!((r.successful_requests, r.total_output_tokens), (4, 16));
    // Token-exact prompts: the engine's tokenizer counts what the dataset recorded.
    assert_eq!(r.total_input_tokens, 4 * 16);
}
