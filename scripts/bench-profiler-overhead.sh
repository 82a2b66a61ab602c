#!/usr/bin/env bash
# Profiler overhead on the engine's step time (release build, built-in model, one server):
#   off       no profiling window open
#   cpu       /start_profile {activities: [CPU], record_shapes: false} (spans, counters, stack)
#   layerwise /start_profile {activities: [CPU], record_shapes: true} (plus one span per module
#             per layer, like --enable-layerwise-nvtx-marker)
#   log_requests  a second server, identical but started with --log-requests FILE (one JSON
#             line per finished request), no profiling window
#   off_b     a third server, identical to the first: the noise floor of comparing two servers
#             (log_requests - off is a real cost only where it exceeds off_b - off)
# Each round runs the same workload (CONC concurrent greedy /generate requests of TOKENS new
# tokens) once per mode, modes interleaved (in reverse order every other round) so machine load
# drifts hit all of them alike.
# Step time = workload wall time / forward steps it took (`forward_ct` from /server_info).
# Prints the median step time per mode and the ratios to `off`; copy them into
# docs/performance.md ("Profiler"). MODES=off,log_requests (comma-separated) runs a subset;
# `off` is always run (it is the baseline).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/inferperf/target}"
ROUNDS="${ROUNDS:-7}"
CONC="${CONC:-4}"
TOKENS="${TOKENS:-64}"
MODEL="${MODEL:-default}"
MODES="${MODES:-off,off_b,cpu,layerwise,log_requests}"
OUT="$(mktemp -d)"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$OUT"' EXIT

cargo build --release -p inferperf >&2
BIN="$CARGO_TARGET_DIR/release/inferperf"

# start_server NAME [flags...]: start a server, print its URL.
start_server() {
  local name=$1
  shift
  "$BIN" serve --port 0 --model-path "$MODEL" "$@" >"$OUT/$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  local url=""
  for _ in $(seq 1 600); do
    url=$(grep -o 'listening on http://[0-9.:]*' "$OUT/$name.log" | head -1 | sed 's/listening on //') || true
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$OUT/$name.log" >&2; exit 1; }
    sleep 0.1 # waiting for a child process's log line, not synchronizing threads
  done
  [ -n "$url" ] || { echo "server $name did not start" >&2; exit 1; }
  echo "$url"
}

URL=$(start_server plain)
LOG_URL=""
case ",$MODES," in
  *,log_requests,*) LOG_URL=$(start_server logged --log-requests "$OUT/requests.jsonl") ;;
esac
B_URL=""
case ",$MODES," in
  *,off_b,*) B_URL=$(start_server plain_b) ;;
esac

python3 - "$URL" "$ROUNDS" "$CONC" "$TOKENS" "$OUT" "$MODES" "$LOG_URL" "$B_URL" <<'PY'
import json, statistics, sys, threading, time, urllib.request

url, rounds, conc, tokens, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
wanted, log_url, b_url = set(sys.argv[6].split(",")) | {"off"}, sys.argv[7], sys.argv[8]

def post(base, path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return r.read().decode()

def forward_ct(base):
    with urllib.request.urlopen(base + "/server_info", timeout=60) as r:
        return json.load(r)["internal_states"][0]["forward_ct"]

def workload(base):
    def one(i):
        post(base, "/generate", {"text": f"request {i}: " + "lorem ipsum " * 16,
                                 "sampling_params": {"max_new_tokens": tokens, "temperature": 0,
                                                     "ignore_eos": True}})
    ts = [threading.Thread(target=one, args=(i,)) for i in range(conc)]
    f0 = forward_ct(base)
    t0 = time.perf_counter()
    for t in ts: t.start()
    for t in ts: t.join()
    dt = time.perf_counter() - t0
    return dt / max(1, forward_ct(base) - f0)

# mode -> (server, /start_profile body or None)
all_modes = {
    "off": (url, None),
    "cpu": (url, {"activities": ["CPU"], "record_shapes": False, "output_dir": out}),
    "layerwise": (url, {"activities": ["CPU"], "record_shapes": True, "output_dir": out}),
    "log_requests": (log_url, None),
    "off_b": (b_url, None),
}
modes = {m: v for m, v in all_modes.items() if m in wanted and v[0]}
for base in {v[0] for v in modes.values()}:
    workload(base)  # warm up
times = {m: [] for m in modes}
for r in range(rounds):
    # Alternate the order, so that no mode always runs right after another one.
    order = list(modes.items())
    if r % 2:
        order.reverse()
    for m, (base, body) in order:
        if body is not None:
            post(base, "/start_profile", body)
        times[m].append(workload(base))
        if body is not None:
            post(base, "/stop_profile", {})
base = statistics.median(times["off"])
print(f"{'mode':<10} {'median step (ms)':>17} {'ratio':>7}   (rounds={rounds}, conc={conc}, tokens={tokens})")
for m in modes:
    med = statistics.median(times[m])
    print(f"{m:<10} {med*1e3:>17.3f} {med/base:>7.3f}")
PY

# The request log's own cost per step, on the hooks alone (no model, no server): end-to-end
# runs on a shared 2-core machine cannot resolve it (two identical servers differ by several %).
if [[ ",$MODES," == *",log_requests,"* ]]; then
  cargo run --release --quiet -p inferperf-server --example request_log_step_cost -- \
    2000 "$CONC" "$TOKENS"
fi
