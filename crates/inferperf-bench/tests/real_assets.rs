//! Datasets on real assets, when present: the real ShareGPT file (`INFERPERF_SHAREGPT`, from
//! `scripts/fetch-bench-assets.sh`) and a real BPE `tokenizer.json` (`INFERPERF_BENCH_TOKENIZER`).
//! Each test says so on stderr and returns when its asset is not configured.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::args;
use inferperf_bench::serving::build_dataset;
use inferperf_engine::simulated::SimTokenizer;
use inferperf_loadgen::backend::Prompt;
use inferperf_loadgen::tokenizer::{HfTokenizer, SharedTokenizer};

fn env_path(var: &str) -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var_os(var)?);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("{var}={} does not exist; skipping", p.display());
        None
    }
}

#[test]
fn real_sharegpt_builds_sharegpt_and_random_rows() {
    let Some(path) = env_path("INFERPERF_SHAREGPT") else {
        eprintln!("INFERPERF_SHAREGPT not set (scripts/fetch-bench-assets.sh prints it); skipping");
        return;
    };
    let p = path.to_string_lossy().into_owned();
    let tok: SharedTokenizer = Arc::new(SimTokenizer::new(32000));
    let rows = build_dataset(
        &args(&[
            "--dataset-name",
            "sharegpt",
            "--dataset-path",
            &p,
            "--num-prompts",
            "300",
        ]),
        Some(&tok),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows.len(), 300);
    assert!(rows.iter().all(|r| r.prompt_len >= 2 && r.output_len >= 2));
    let rows = build_dataset(
        &args(&[
            "--dataset-name",
            "random",
            "--dataset-path",
            &p,
            "--num-prompts",
            "300",
            "--random-input-len",
            "200",
            "--random-output-len",
            "10",
        ]),
        Some(&tok),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for r in &rows {
        let Prompt::Text(t) = &r.prompt else {
            panic!("text prompt expected")
        };
        assert_eq!(
            tok.encode(t, false).map(|v| v.len()).unwrap_or(0),
            r.prompt_len
        );
    }
}

#[test]
fn random_prompts_are_token_exact_with_a_real_bpe_tokenizer() {
    let Some(path) = env_path("INFERPERF_BENCH_TOKENIZER") else {
        eprintln!("INFERPERF_BENCH_TOKENIZER not set (a tokenizer.json); skipping");
        return;
    };
    let tok: SharedTokenizer = Arc::new(HfTokenizer::load(&path).unwrap_or_else(|e| panic!("{e}")));
    let rows = build_dataset(
        &args(&[
            "--dataset-name",
            "random-ids",
            "--num-prompts",
            "2000",
            "--random-input-len",
            "300",
            "--random-output-len",
            "10",
        ]),
        Some(&tok),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let special = inferperf_loadgen::tokenizer::num_special_tokens_to_add(tok.as_ref());
    for r in &rows {
        let Prompt::Text(t) = &r.prompt else {
            panic!("text prompt expected")
        };
        let n = tok.encode(t, true).map(|v| v.len()).unwrap_or(0);
        assert_eq!(
            n,
            r.prompt_len + special,
            "server-side count must equal the target"
        );
    }
}
