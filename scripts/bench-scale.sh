#!/usr/bin/env bash
# bench-scale.sh - what one open, idle stream costs the `inferperf bench serving` client:
# resident memory (VmRSS) and file descriptors per stream at 1k, 5k and 10k concurrent
# streams, to size the shards of a Kubernetes run (deploy/kubernetes, docs/performance.md
# "Sharded runs: client scale").
#
# The server is the peers' mock (shared/peers/mockserver, hyper) with a first-token delay far
# longer than the measurement (TTFT_MS, default 10 min), so every stream it accepts stays open
# and idle: the response headers are sent, no token follows. For each N the client runs
# twice with the same N prompts at --request-rate inf: at --max-concurrency 1 (the baseline:
# the same process, dataset and plan, one stream) and at --max-concurrency N. Once the mock
# has received the expected number of requests and the client holds that many sockets
# (polled, not slept), the client's VmRSS and open fds are read from /proc; then the client
# is stopped (SIGTERM). Per stream = (value at N - baseline) / (N - 1).
#
# One client address to one server address can hold at most as many connections as the
# ephemeral port range has ports (/proc/sys/net/ipv4/ip_local_port_range); the script says
# so and stops before an N beyond it. It raises the open-file limit (soft and, as root, hard)
# for the client and the mock it starts.
#
# Env: STREAMS="1000 5000 10000" PORT=8300 TTFT_MS=600000 IN_LEN=16 WAIT_SEC=300 (per N, for
#      the streams to open) INFERPERF=<binary> (default: a release build of this checkout)
#      PEERS=<shared/peers> PEERS_ROOT (default ~/.cache/inferperf-peers).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/peers}
export PEERS_ROOT=${PEERS_ROOT:-$HOME/.cache/inferperf-peers}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/inferperf/target}
STREAMS=${STREAMS:-"1000 5000 10000"}
PORT=${PORT:-8300}
TTFT_MS=${TTFT_MS:-600000}
IN_LEN=${IN_LEN:-16}
WAIT_SEC=${WAIT_SEC:-300}
URL=http://127.0.0.1:$PORT
TOK=$PEERS_ROOT/smollm2-tokenizer

max_n=0
for n in $STREAMS; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] && [ "$n" -ge 2 ] || { echo "STREAMS: '$n' is not a number >= 2" >&2; exit 1; }
  [ "$n" -gt "$max_n" ] && max_n=$n
done

# Open files: the client and the mock each hold one socket per stream.
want=$(( max_n + 4096 ))
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$want" ]; then
  ulimit -Hn "$want" 2>/dev/null || true
fi
ulimit -Sn "$(ulimit -Hn)"
nofile=$(ulimit -Sn)
if [ "$nofile" != unlimited ] && [ "$nofile" -lt "$want" ]; then
  echo "open-file limit $nofile < $want needed for $max_n streams (and the hard limit cannot be raised)" >&2
  exit 1
fi
read -r port_lo port_hi < /proc/sys/net/ipv4/ip_local_port_range
ports=$(( port_hi - port_lo + 1 ))
echo "open-file limit $nofile; ephemeral ports $port_lo-$port_hi: $ports connections at most from one client address to $URL"

if [ -z "${INFERPERF:-}" ]; then
  (cd "$ROOT" && cargo build --release --locked -p inferperf --bin inferperf)
  INFERPERF=$CARGO_TARGET_DIR/release/inferperf
fi
[ -x "$INFERPERF" ] || { echo "no inferperf binary at $INFERPERF" >&2; exit 1; }
if [ ! -x "$PEERS_ROOT/target/release/mockserver" ]; then "$PEERS/install.sh" mock; fi
[ -s "$TOK/tokenizer.json" ] || "$PEERS/install.sh" tokenizer
[ -s "$TOK/tokenizer.json" ] || { echo "missing $TOK/tokenizer.json ($PEERS/install.sh tokenizer)" >&2; exit 1; }

work=$(mktemp -d)
client=""
cleanup() {
  if [ -n "$client" ]; then kill "$client" 2>/dev/null || true; wait "$client" 2>/dev/null || true; fi
  "$PEERS/mockserver.sh" stop "$PORT" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
# One mock thread is plenty for idle streams; more leave less CPU to the client.
MOCK_THREADS=${MOCK_THREADS:-1} "$PEERS/mockserver.sh" start "$PORT" 0 --ttft-ms "$TTFT_MS" \
  --default-tokens 1 --tokenizer "$TOK" >/dev/null

mock_requests() {
  curl -sf "$URL/stats" | python3 -c 'import json, sys; print(json.load(sys.stdin)["requests"])'
}
sockets() { find "/proc/$1/fd" -lname 'socket:*' 2>/dev/null | wc -l; }

# measure N CONC: start the client with N prompts at concurrency CONC, wait for CONC open
# streams; sets M_RSS (KiB), M_FDS, M_SOCKS and M_SECS (time for the streams to open).
measure() {
  local n=$1 conc=$2 t0 reqs socks
  curl -sf "$URL/stats?reset=1" >/dev/null
  "$INFERPERF" bench serving --backend sglang-oai --base-url "$URL" --model mock-model \
    --tokenizer "$TOK" --dataset-name random-ids --random-input-len "$IN_LEN" \
    --random-output-len 1 --random-range-ratio 1 --num-prompts "$n" --request-rate inf \
    --max-concurrency "$conc" --warmup-requests 0 --disable-tqdm \
    --output-file "$work/out.jsonl" > "$work/client.log" 2>&1 &
  client=$!
  t0=$(date +%s.%N)
  while :; do
    if ! kill -0 "$client" 2>/dev/null; then
      echo "client exited before $conc streams were open:" >&2; tail -20 "$work/client.log" >&2; exit 1
    fi
    reqs=$(mock_requests)
    socks=$(sockets "$client")
    [ "$reqs" -ge "$conc" ] && [ "$socks" -ge "$conc" ] && break
    if (( $(date +%s) - ${t0%.*} > WAIT_SEC )); then
      echo "after ${WAIT_SEC}s: the mock has $reqs requests, the client $socks sockets, want $conc" >&2
      exit 1
    fi
    sleep 0.2
  done
  M_RSS=$(awk '/^VmRSS:/ {print $2}' "/proc/$client/status")
  M_FDS=$(find "/proc/$client/fd" -mindepth 1 2>/dev/null | wc -l)
  M_SOCKS=$(sockets "$client")
  M_SECS=$(python3 -c "import time; print(f'{time.time() - $t0:.1f}')")
  kill -TERM "$client"
  wait "$client" 2>/dev/null || true
  client=""
}

printf '%8s %12s %12s %10s %10s %12s %10s %12s\n' streams "base KiB" "RSS KiB" "base fds" fds "KiB/stream" fds/stream "open in s"
for n in $STREAMS; do
  if [ "$n" -gt "$ports" ]; then
    echo "stop at $n streams: beyond the $ports ephemeral ports of one client address to one server address" >&2
    break
  fi
  measure "$n" 1
  b_rss=$M_RSS b_fds=$M_FDS
  measure "$n" "$n"
  python3 - "$n" "$b_rss" "$M_RSS" "$b_fds" "$M_FDS" "$M_SECS" <<'PY'
import sys
n = int(sys.argv[1])
b_rss, rss, b_fds, fds, secs = map(float, sys.argv[2:])
print(f"{n:>8} {b_rss:>12.0f} {rss:>12.0f} {b_fds:>10.0f} {fds:>10.0f} "
      f"{(rss - b_rss) / (n - 1):>12.2f} {(fds - b_fds) / (n - 1):>10.3f} {secs:>12.1f}")
PY
done
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
