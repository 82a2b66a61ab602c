#!/usr/bin/env bash
# check-vllm.sh -- inferperf against a real vLLM server (CPU build, SmolLM2), end to end.
# Not part of CI: the vLLM venv is ~6 GB and start-up takes ~3 min on 2 cores.
#
# Needs ../shared/peers (vllm/vllm_cpu.sh install + convert done once; this script runs them if
# the venv or the model is missing). Brings vLLM up on 127.0.0.1, then checks:
#   - bench serving on every OpenAI-style backend completes all requests;
#   - `profile` with defaults, `bench serving --profile` and `send-one --backend vllm --profile`
#     exit 0, never leave a window open (a second start must succeed; vLLM refuses a start while
#     a session is active) and print where vLLM really writes (its torch_profiler_dir);
#   - the vLLM worker's RSS stays bounded (printed before and after);
#   - trace summary / merge / trim --steps work on the traces vLLM wrote.
# Usage: scripts/check-vllm.sh [PORT]   (env: PEERS_ROOT, INFERPERF=path to the binary)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PEERS=${PEERS:-$ROOT/../shared/peers}
PORT=${1:-31888}
URL=http://127.0.0.1:$PORT
export PEERS_ROOT=${PEERS_ROOT:-$HOME/.cache/inferperf-peers}
WORK=$(mktemp -d)
export VLLM_PROFILE_DIR=$WORK/vllm-prof
trap 'bash "$PEERS/vllm/vllm_cpu.sh" stop >/dev/null 2>&1 || true; echo "work dir: $WORK"' EXIT

if [ -z "${INFERPERF:-}" ]; then
  cargo build --release --locked -p inferperf >/dev/null
  INFERPERF=${CARGO_TARGET_DIR:-$ROOT/target}/release/inferperf
fi
[ -x "$PEERS_ROOT/venv/vllm/bin/vllm" ] || bash "$PEERS/vllm/vllm_cpu.sh" install
[ -f "$PEERS_ROOT/models/smollm2-hf/config.json" ] || bash "$PEERS/vllm/vllm_cpu.sh" convert
TOK=$PEERS_ROOT/models/smollm2-hf

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GB; $(date -u +%FT%TZ)"
t0=$(date +%s)
bash "$PEERS/vllm/vllm_cpu.sh" serve "$PORT"
echo "== vLLM healthy after $(( $(date +%s) - t0 )) s; traces go to $VLLM_PROFILE_DIR"

worker_rss() {  # total RSS (MB) of the vLLM processes
  ps -eo rss,args | awk '/vllm|VLLM/ && !/awk|check-vllm/ {s+=$1} END {printf "%d", s/1024}'
}
fail=0
check() {  # check NAME CMD...: run, report exit status
  local name=$1; shift
  if "$@" >"$WORK/$name.log" 2>&1; then echo "ok   $name"; else echo "FAIL $name (exit $?; see $WORK/$name.log)"; tail -20 "$WORK/$name.log"; fail=1; fi
}
rss0=$(worker_rss); echo "== vLLM RSS at start: ${rss0} MB"

for b in vllm vllm-chat openai openai-chat sglang-oai; do
  check "serving-$b" "$INFERPERF" bench serving --backend "$b" --base-url "$URL" --model smollm2 \
    --tokenizer "$TOK" --dataset-name random-ids --num-prompts 12 --random-input-len 64 \
    --random-output-len 16 --max-concurrency 4 --disable-tqdm --output-file "$WORK/serving.jsonl"
done
python3 - "$WORK/serving.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line.replace("Infinity", "1e308"))
    print(f"     {r['backend']:<12} completed {r['completed']}/12  mean TTFT {r['mean_ttft_ms']:.1f} ms  "
          f"mean TPOT {r['mean_tpot_ms']:.1f} ms  verdict {r['validity']['verdict']}")
    assert r["completed"] == 12, r["backend"]
PY

# A window opened with the defaults (5 steps): inferperf translates it, waits for the steps
# while load runs, and closes it.
"$INFERPERF" bench serving --backend vllm --base-url "$URL" --model smollm2 --tokenizer "$TOK" \
  --dataset-name random-ids --num-prompts 16 --random-input-len 64 --random-output-len 32 \
  --max-concurrency 2 --disable-tqdm --output-file "$WORK/load.jsonl" >"$WORK/load.log" 2>&1 &
load=$!
check profile-defaults "$INFERPERF" profile --url "$URL"
wait "$load" || { echo "FAIL background load"; fail=1; }
grep -E "Note|ignores|stops it|Stopping" "$WORK/profile-defaults.log" | sed 's/^/     /'

check serving-profile "$INFERPERF" bench serving --backend vllm --base-url "$URL" --model smollm2 \
  --tokenizer "$TOK" --dataset-name random-ids --num-prompts 8 --random-input-len 64 \
  --random-output-len 16 --max-concurrency 2 --disable-tqdm --profile --profile-num-steps 5 \
  --flush-cache --output-file "$WORK/profiled.jsonl"
grep -E "Note|Profiler|traces|flush" "$WORK/serving-profile.log" | sed 's/^/     /'

check send-one "$INFERPERF" send-one --host 127.0.0.1 --port "$PORT" --backend vllm \
  --max-new-tokens 16 --profile
# No window left open: vLLM refuses a start while a session is active.
check window-closed curl -fsS -X POST "$URL/start_profile" -H 'content-type: application/json' -d '{"max_iterations": 1}'
curl -fsS -X POST "$URL/stop_profile" >/dev/null || true

rss1=$(worker_rss); echo "== vLLM RSS at the end: ${rss1} MB (start ${rss0} MB)"
if [ "$rss1" -gt $(( rss0 * 2 + 1024 )) ]; then echo "FAIL RSS grew past 2x + 1 GB"; fail=1; fi

echo "== traces vLLM wrote:"
ls -la "$VLLM_PROFILE_DIR" | sed 's/^/     /'
# The largest worker trace: the window that ran under load (a window opened on an idle server
# holds no engine steps).
worker=$(ls -S "$VLLM_PROFILE_DIR"/*.pt.trace.json.gz 2>/dev/null | grep -v async_llm | head -1 || true)
front=$(ls -S "$VLLM_PROFILE_DIR"/*async_llm*.pt.trace.json.gz 2>/dev/null | head -1 || true)
if [ -n "$worker" ]; then
  check trace-summary "$INFERPERF" trace summary "$worker"
  sed -n 1,40p "$WORK/trace-summary.log" | sed 's/^/     /'
  check trace-trim "$INFERPERF" trace trim "$worker" --steps 1..2 -o "$WORK/trimmed.trace.json.gz"
  if [ -n "$front" ]; then
    check trace-merge "$INFERPERF" trace merge "$worker" "$front" -o "$WORK/merged.trace.json.gz"
    check trace-summary-frontend "$INFERPERF" trace summary "$front"
    sed -n 1,12p "$WORK/trace-summary-frontend.log" | sed 's/^/     /'
  fi
else
  echo "FAIL no worker trace in $VLLM_PROFILE_DIR"; fail=1
fi
[ "$fail" = 0 ] && echo "== all checks passed" || echo "== some checks FAILED"
exit "$fail"
