#!/usr/bin/env bash
# bench-one-batch.sh - the same static batch through `bench one-batch` (in-process engine, no
# HTTP) and `bench one-batch-server` (embedded server, one batched streaming /generate), side by
# side in one run: decode throughput of each and their ratio (the server should add only HTTP
# overhead; target: within 10 %). Cases: bs 1 and 8, input 128, output 64; the built-in model
# and the SmolLM2 GGUF.
#
# Env: MODELS (default: "default $INFERPERF_ASSETS/SmolLM2-135M-Instruct.Q4_1.gguf"),
#      BATCH_SIZES ("1 8"), INPUT_LEN (128), OUTPUT_LEN (64).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/inferperf/target}
ASSETS=${INFERPERF_ASSETS:-$HOME/.cache/inferperf/assets}
MODELS=${MODELS:-"default $ASSETS/SmolLM2-135M-Instruct.Q4_1.gguf"}
BATCH_SIZES=${BATCH_SIZES:-"1 8"}
INPUT_LEN=${INPUT_LEN:-128}
OUTPUT_LEN=${OUTPUT_LEN:-64}
(cd "$ROOT" && cargo build --release --locked -p inferperf)
BIN=$CARGO_TARGET_DIR/release/inferperf
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
for m in $MODELS; do
  tag=$(basename "$m")
  # shellcheck disable=SC2086
  "$BIN" bench one-batch --model-path "$m" --batch-size $BATCH_SIZES --input-len "$INPUT_LEN" \
    --output-len "$OUTPUT_LEN" --result-filename "$OUT/$tag.one_batch.jsonl" > "$OUT/$tag.one_batch.log" 2>&1
  # shellcheck disable=SC2086
  "$BIN" bench one-batch-server --model-path "$m" --batch-size $BATCH_SIZES --input-len "$INPUT_LEN" \
    --output-len "$OUTPUT_LEN" --result-filename "$OUT/$tag.server.jsonl" > "$OUT/$tag.server.log" 2>&1
done
python3 - "$OUT" $MODELS <<'PY'
import json, os, sys
out, models = sys.argv[1], sys.argv[2:]
print(f"{'model':<36} {'bs':>3} {'one-batch tok/s':>16} {'server tok/s':>13} {'server/one-batch':>17}")
for m in models:
    tag = os.path.basename(m)
    ob = [json.loads(l) for l in open(f"{out}/{tag}.one_batch.jsonl")]
    sv = [json.loads(l) for l in open(f"{out}/{tag}.server.jsonl")]
    for a in ob:
        b = next(x for x in sv if x["batch_size"] == a["batch_size"])
        # one-batch: median decode step; server: bs*ol/(latency - last_ttft) (SGLang's formula).
        r = b["output_throughput"] / a["median_decode_throughput"]
        print(f"{tag:<36} {a['batch_size']:>3} {a['median_decode_throughput']:>16.1f} {b['output_throughput']:>13.1f} {r:>17.3f}")
PY
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%d GB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
