#!/usr/bin/env bash
# Benchmarks `inferperf bench merge` on a synthetic sharded run (issue 14's target: 1M request
# records merged in <= 10 s and <= 300 MB): N records over S shards with L output tokens each
# (one chunk per token), written by the `synth_records` example, then merged RUNS times.
# Prints wall time and peak RSS per run (from /usr/bin/time) and their ratios to the targets;
# copy them into docs/performance.md ("Sharded runs: merging records"). Release build.
# Env: N (1000000), SHARDS (4), OUTPUT_LEN (16), RUNS (3), INFERPERF_BENCH_DIR (where the
# files go; default ~/.cache/inferperf/bench-merge, ~480 MB for the defaults).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/inferperf/target}"
N="${N:-1000000}"
SHARDS="${SHARDS:-4}"
OUTPUT_LEN="${OUTPUT_LEN:-16}"
RUNS="${RUNS:-3}"
WORK="${INFERPERF_BENCH_DIR:-$HOME/.cache/inferperf/bench-merge}"
[ -x /usr/bin/time ] || { echo "need /usr/bin/time (apt-get install time)" >&2; exit 1; }

cargo build --release --locked -p inferperf -p inferperf-loadgen --example synth_records >&2
BIN="$CARGO_TARGET_DIR/release/inferperf"
DIR="$WORK/n$N-s$SHARDS-l$OUTPUT_LEN"
if [ ! -s "$DIR/shard-$((SHARDS - 1)).records.jsonl" ]; then
  rm -rf "$DIR"
  mkdir -p "$DIR"
  "$CARGO_TARGET_DIR/release/examples/synth_records" "$DIR" "$N" "$SHARDS" "$OUTPUT_LEN"
fi
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "input: $N records, $SHARDS shards, $OUTPUT_LEN output tokens each, $(du -sh "$DIR" | cut -f1)"
printf '%-5s %10s %12s %14s %14s\n' run seconds peak_MB "time/10s" "RSS/300MB"
for r in $(seq 1 "$RUNS"); do
  out="$(mktemp)"
  /usr/bin/time -f '%e %M' -o "$out.time" "$BIN" bench merge "$DIR" --output-file "$out" >/dev/null
  read -r secs kb < "$out.time"
  mb=$(awk -v k="$kb" 'BEGIN { printf "%.0f", k / 1024 }')
  awk -v r="$r" -v s="$secs" -v m="$mb" 'BEGIN { printf "%-5s %10.2f %12d %14.2f %14.2f\n", r, s, m, s / 10, m / 300 }'
  grep -q '"completed":' "$out" || { echo "merge wrote no record" >&2; exit 1; }
  rm -f "$out" "$out.time"
done
