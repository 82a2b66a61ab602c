#!/usr/bin/env bash
# bench-tp.sh - decode throughput with tensor parallelism, side by side in one run:
# `bench one-batch` (in-process engine, median decode step) at --tp-size 1 and N, single
# stream and 16 streams; the built-in model at TP=2 and the SmolLM2 GGUF at TP=3 (9 heads).
# Prints tok/s and the TP/TP1 ratio. On a 2-core machine the ranks share two cores.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/inferperf/target}
ASSETS=${INFERPERF_ASSETS:-$HOME/.cache/inferperf/assets}
(cd "$ROOT" && cargo build --release --locked -p inferperf)
BIN=$CARGO_TARGET_DIR/release/inferperf
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
run() { # model tp tag
  "$BIN" bench one-batch --model-path "$1" --tp-size "$2" --batch-size 1 16 --input-len 64 \
    --output-len 64 --result-filename "$OUT/$3.jsonl" > "$OUT/$3.log" 2>&1
}
run default 1 default_tp1
run default 2 default_tp2
run "$ASSETS/SmolLM2-135M-Instruct.Q4_1.gguf" 1 smollm2_tp1
run "$ASSETS/SmolLM2-135M-Instruct.Q4_1.gguf" 3 smollm2_tp3
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
def load(tag):
    return {r["batch_size"]: r for r in map(json.loads, open(f"{out}/{tag}.jsonl"))}
print(f"{'model':<10} {'tp':>3} {'bs':>3} {'TP=1 tok/s':>11} {'TP=N tok/s':>11} {'ratio':>6}")
for model, n in (("default", 2), ("smollm2", 3)):
    one, many = load(f"{model}_tp1"), load(f"{model}_tp{n}")
    for bs in sorted(one):
        a, b = one[bs]["median_decode_throughput"], many[bs]["median_decode_throughput"]
        print(f"{model:<10} {n:>3} {bs:>3} {a:>11.1f} {b:>11.1f} {b / a:>6.2f}")
PY
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
