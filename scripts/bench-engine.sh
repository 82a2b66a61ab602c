#!/usr/bin/env bash
# Engine performance vs llama.cpp on the same GGUF (SmolLM2-135M-Instruct Q4_1), in one run:
#   1. in-process: the engine through EngineHandle (examples/engine_bench), no HTTP;
#   2. HTTP: `inferperf serve` and the llama.cpp server (llama-cpp-python, /work/shared/peers),
#      each driven by the same stdlib-only streaming client: one stream, then CONC at once.
# Prints single-stream decode tok/s, aggregate output tok/s at CONC streams, and the ratios
# against llama.cpp (targets: single >= 0.8x, aggregate >= 3x). Requests are greedy with exact
# output lengths (ignore_eos for us, min_tokens for llama.cpp, which ignores ignore_eos).
#
# Env: GGUF (default $INFERPERF_ASSETS/SmolLM2-135M-Instruct.Q4_1.gguf), IN_TEXT_REPEAT (prompt
# size, default 6 ~ 66 tokens), OUT_LEN (128), CONC (16), OURS_PORT (8101), LLAMA_PORT (8100),
# PEERS_DIR (/work/shared/peers), SKIP_LLAMACPP=1, SKIP_HTTP=1.
# Everything binds 127.0.0.1. llama.cpp must be installed: $PEERS_DIR/install.sh llamacpp.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/inferperf/target}"
ASSETS="${INFERPERF_ASSETS:-$HOME/.cache/inferperf/assets}"
GGUF="${GGUF:-$ASSETS/SmolLM2-135M-Instruct.Q4_1.gguf}"
OUT_LEN="${OUT_LEN:-128}"
CONC="${CONC:-16}"
IN_TEXT_REPEAT="${IN_TEXT_REPEAT:-6}"
OURS_PORT="${OURS_PORT:-8101}"
LLAMA_PORT="${LLAMA_PORT:-8100}"
PEERS_DIR="${PEERS_DIR:-/work/shared/peers}"
[ -f "$GGUF" ] || { echo "missing $GGUF: run scripts/fetch-test-assets.sh" >&2; exit 1; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
  "load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "model: $GGUF; output $OUT_LEN tokens; concurrency 1 and $CONC"

# Copies of this checkout's executables: the shared target dir's release/ binaries may be
# overwritten by a build from another checkout at any time.
BIN_DIR=$(mktemp -d)
trap 'rm -rf "$BIN_DIR"' EXIT
build() {  # build CARGO_ARGS... -> prints "name path" per executable
  cargo build --release --quiet --message-format=json "$@" | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["target"]["name"], m["executable"])'
}
copy() { local p; p=$(awk -v n="$1" '$1 == n {print $2}' <<<"$2"); [ -n "$p" ] && cp "$p" "$BIN_DIR/$1" && echo "$BIN_DIR/$1"; }
ENGINE_BENCH=$(copy engine_bench "$(build -p inferperf-engine --example engine_bench)") \
  || { echo "cannot build the engine_bench example" >&2; exit 1; }
# The server is optional: without it the ratios use the in-process numbers.
INFERPERF=$(copy inferperf "$(build -p inferperf --bin inferperf 2>/dev/null)") || {
  echo "note: inferperf (the server) does not build right now; comparing in-process numbers"
  INFERPERF=""
}

echo "== in-process engine (EngineHandle, no HTTP)"
inproc=$("$ENGINE_BENCH" "$GGUF" "1,$CONC" 64 "$OUT_LEN")
grep -v '^json:' <<<"$inproc"
jfield() {  # jfield CONCURRENCY KEY
  grep "^json: {\"concurrency\": $1," <<<"$inproc" | sed -E "s/.*\"$2\": ([0-9.]+).*/\1/"
}

# One streaming client for both servers: prints "c=N decode_tok_s=.. agg_tok_s=.. ttft_ms=..".
client() {  # client BASE_URL MODEL CONCURRENCY
  python3 - "$1" "$2" "$3" "$OUT_LEN" "$IN_TEXT_REPEAT" <<'PY'
import json, sys, threading, time, urllib.request
base, model, conc, out_len, rep = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
text = "The quick brown fox jumps over the lazy dog while the city sleeps. " * rep

def one(i, res, n_out=out_len):
    body = {"model": model, "prompt": f"{i}: {text}", "max_tokens": n_out, "min_tokens": n_out,
            "ignore_eos": True, "temperature": 0, "stream": True}
    req = urllib.request.Request(base + "/v1/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    t0, first, last, n = time.perf_counter(), None, None, 0
    with urllib.request.urlopen(req, timeout=1200) as r:
        for line in r:
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                break
            ch = json.loads(data).get("choices") or []
            if ch and ch[0].get("text"):
                now = time.perf_counter()
                first = first or now
                last = now
                n += 1
    res[i] = (t0, first, last, n)

one(0, {}, 4)  # warm-up
res = {}
start = time.perf_counter()
threads = [threading.Thread(target=one, args=(i, res)) for i in range(conc)]
for t in threads: t.start()
for t in threads: t.join()
wall = time.perf_counter() - start
tokens = sum(r[3] for r in res.values())
decode = [(r[3] - 1) / (r[2] - r[1]) for r in res.values() if r[3] > 1 and r[2] > r[1]]
ttft = [r[1] - r[0] for r in res.values() if r[1]]
print(f"c={conc} decode_tok_s={sum(decode)/max(len(decode),1):.1f} agg_tok_s={tokens/wall:.1f} "
      f"ttft_ms={1e3*sum(ttft)/max(len(ttft),1):.0f} tokens={tokens} wall_s={wall:.1f}")
PY
}

wait_up() {  # wait_up URL PID
  for _ in $(seq 1 120); do
    curl -sf "$1" >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 1
  done
  return 1
}

field() { sed -E "s/.*$2=([0-9.]+).*/\1/" <<<"$1"; }
OURS1=$(jfield 1 decode_tok_s_per_stream); OURSN=$(jfield "$CONC" output_tok_s); OURS_HOW="in-process"
if [ "${SKIP_HTTP:-0}" != 1 ] && [ -n "$INFERPERF" ]; then
  echo "== inferperf serve (HTTP) on 127.0.0.1:$OURS_PORT"
  log=$(mktemp)
  "$INFERPERF" serve --model-path "$GGUF" --served-model-name smollm2 --host 127.0.0.1 \
    --port "$OURS_PORT" >"$log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null || true; rm -rf "$BIN_DIR"' EXIT
  wait_up "http://127.0.0.1:$OURS_PORT/health" "$pid" || { cat "$log" >&2; exit 1; }
  r1=$(client "http://127.0.0.1:$OURS_PORT" smollm2 1); echo "$r1"
  rn=$(client "http://127.0.0.1:$OURS_PORT" smollm2 "$CONC"); echo "$rn"
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -f "$log"
  trap 'rm -rf "$BIN_DIR"' EXIT
  OURS1=$(field "$r1" decode_tok_s); OURSN=$(field "$rn" agg_tok_s); OURS_HOW="HTTP"
fi
if [ "${SKIP_LLAMACPP:-0}" != 1 ]; then
  echo "== llama.cpp server (llama-cpp-python) on 127.0.0.1:$LLAMA_PORT"
  PORT=$LLAMA_PORT "$PEERS_DIR/llamacpp_server.sh" start >/dev/null
  trap 'PORT=$LLAMA_PORT "$PEERS_DIR/llamacpp_server.sh" stop >/dev/null; rm -rf "$BIN_DIR"' EXIT
  l1=$(client "http://127.0.0.1:$LLAMA_PORT" smollm2 1); echo "$l1"
  ln=$(client "http://127.0.0.1:$LLAMA_PORT" smollm2 "$CONC"); echo "$ln"
  PORT=$LLAMA_PORT "$PEERS_DIR/llamacpp_server.sh" stop >/dev/null
  trap 'rm -rf "$BIN_DIR"' EXIT
  python3 - "$OURS1" "$(field "$l1" decode_tok_s)" "$OURSN" "$(field "$ln" agg_tok_s)" "$CONC" \
    "$OURS_HOW" <<'PY'
import sys
o1, l1, on, ln, c = map(float, sys.argv[1:6])
print(f"== ratios vs llama.cpp (ours measured {sys.argv[6]}, llama.cpp over HTTP)")
print(f"single-stream decode: {o1:.1f} vs {l1:.1f} tok/s = {o1/l1:.2f}x (target >= 0.8x)")
print(f"aggregate at {int(c)} streams: {on:.1f} vs {ln:.1f} tok/s = {on/ln:.2f}x (target >= 3x)")
PY
fi
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at end"
