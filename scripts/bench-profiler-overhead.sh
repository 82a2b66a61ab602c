#!/usr/bin/env bash
# Profiler overhead on the engine's step time (release build, built-in model, one server):
#   off       no profiling window open
#   cpu       /start_profile {activities: [CPU], record_shapes: false} (spans, counters, stack)
#   layerwise /start_profile {activities: [CPU], record_shapes: true} (plus one span per module
#             per layer, like --enable-layerwise-nvtx-marker)
# Each round runs the same workload (CONC concurrent greedy /generate requests of TOKENS new
# tokens) once per mode, modes interleaved so machine load drifts hit all of them alike.
# Step time = workload wall time / forward steps it took (`forward_ct` from /server_info).
# Prints the median step time per mode and the ratios to `off`; copy them into
# docs/performance.md ("Profiler").
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/inferperf/target}"
ROUNDS="${ROUNDS:-7}"
CONC="${CONC:-4}"
TOKENS="${TOKENS:-64}"
MODEL="${MODEL:-default}"
OUT="$(mktemp -d)"
SERVER_PID=""
trap 'if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi; rm -rf "$OUT"' EXIT

cargo build --release -p inferperf >&2
BIN="$CARGO_TARGET_DIR/release/inferperf"
"$BIN" serve --port 0 --model-path "$MODEL" >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
URL=""
for _ in $(seq 1 600); do
  URL=$(grep -o 'listening on http://[0-9.:]*' "$OUT/server.log" | head -1 | sed 's/listening on //') || true
  [ -n "$URL" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$OUT/server.log" >&2; exit 1; }
  sleep 0.1 # waiting for a child process's log line, not synchronizing threads
done
[ -n "$URL" ] || { echo "server did not start" >&2; exit 1; }

python3 - "$URL" "$ROUNDS" "$CONC" "$TOKENS" "$OUT" <<'PY'
import json, statistics, sys, threading, time, urllib.request

url, rounds, conc, tokens, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]

def post(path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return r.read().decode()

def forward_ct():
    with urllib.request.urlopen(url + "/server_info", timeout=60) as r:
        return json.load(r)["internal_states"][0]["forward_ct"]

def workload():
    def one(i):
        post("/generate", {"text": f"request {i}: " + "lorem ipsum " * 16,
                           "sampling_params": {"max_new_tokens": tokens, "temperature": 0,
                                               "ignore_eos": True}})
    ts = [threading.Thread(target=one, args=(i,)) for i in range(conc)]
    f0 = forward_ct()
    t0 = time.perf_counter()
    for t in ts: t.start()
    for t in ts: t.join()
    dt = time.perf_counter() - t0
    return dt / max(1, forward_ct() - f0)

modes = {
    "off": None,
    "cpu": {"activities": ["CPU"], "record_shapes": False, "output_dir": out},
    "layerwise": {"activities": ["CPU"], "record_shapes": True, "output_dir": out},
}
workload()  # warm up
times = {m: [] for m in modes}
for _ in range(rounds):
    for m, body in modes.items():
        if body is not None:
            post("/start_profile", body)
        times[m].append(workload())
        if body is not None:
            post("/stop_profile", {})
base = statistics.median(times["off"])
print(f"{'mode':<10} {'median step (ms)':>17} {'ratio':>7}   (rounds={rounds}, conc={conc}, tokens={tokens})")
for m in modes:
    med = statistics.median(times[m])
    print(f"{m:<10} {med*1e3:>17.3f} {med/base:>7.3f}")
PY
