#!/usr/bin/env bash
# bench-client.sh - client overhead, side by side: `inferperf bench serving` and SGLang's own
# clients (Rust client `_bench*.so` via sglang_rust_direct.py, and the Python client) against
# the same independent zero-latency mock server (shared/peers/mockserver, hyper, 1 thread),
# 1000 requests x 256 output tokens (128 input) at concurrency 64 and 256, at 0 ms and then
# 10 ms per token. One client runs at a time.
#
# Prints, per run: output tok/s, client CPU-seconds per 1M output tokens (user+sys of the
# client process tree), both with startup and with startup excluded (minus the same client's
# startup-only baseline run: 4 requests x 16 tokens at c=4, the peers' measure_overhead.sh
# convention), and the ITL error against the mock's own /stats
# (mean and p99 of the client's ITL minus the mock's emitted gap). Appends one JSON line per
# run to $RESULTS_DIR/bench-client_<stamp>.jsonl.
#
# This machine is a small shared VM whose throughput varies run to run by up to 2x at 0 ms, so
# every client runs REPEAT times (in alternation) and the table shows medians; every single
# run is in the summary file.
#
# Env: CLIENTS="inferperf sglang_rust sglang_py" ITLS="0 10" CONCS="64 256" N=1000 IN_LEN=128
#      REPEAT=3 (REPEAT_PY=1 for the slow Python client; 10 ms runs use REPEAT_ITL=1)
#      BASELINE_BIN=<an older inferperf binary>: adds the client `inferperf_base` (the same
#      command through that binary), for before/after comparisons of a change in one run.
#      OUT_LEN=256 PORT=8200 PEERS=<shared/peers> PEERS_ROOT (peer installs, default
#      ~/.cache/inferperf-peers) SKIP_INSTALL=1 (peers already installed) INFERPERF_THREADS.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/peers}
export PEERS_ROOT=${PEERS_ROOT:-$HOME/.cache/inferperf-peers}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/inferperf/target}
CLIENTS=${CLIENTS:-"inferperf sglang_rust sglang_py"}
ITLS=${ITLS:-"0 10"}
CONCS=${CONCS:-"64 256"}
N=${N:-1000}; IN_LEN=${IN_LEN:-128}; OUT_LEN=${OUT_LEN:-256}; PORT=${PORT:-8200}
REPEAT=${REPEAT:-3}; REPEAT_PY=${REPEAT_PY:-1}; REPEAT_ITL=${REPEAT_ITL:-1}
RESULTS_DIR=${RESULTS_DIR:-$PEERS_ROOT/results}
TOK=$PEERS_ROOT/smollm2-tokenizer
URL=http://127.0.0.1:$PORT
STAMP=$(date +%Y%m%d_%H%M%S)
SUMMARY=$RESULTS_DIR/bench-client_$STAMP.jsonl
mkdir -p "$RESULTS_DIR/bench-client"

if [ -z "${SKIP_INSTALL:-}" ]; then
  targets="mock sglang-rust-only tokenizer"
  case " $CLIENTS " in *" sglang_py "*) targets="$targets sglang";; esac
  # shellcheck disable=SC2086
  "$PEERS/install.sh" $targets
fi
[ -s "$TOK/tokenizer.json" ] || { echo "missing $TOK/tokenizer.json ($PEERS/install.sh tokenizer)" >&2; exit 1; }
(cd "$ROOT" && cargo build --release --locked -p inferperf)
INFERPERF=$CARGO_TARGET_DIR/release/inferperf

# cpu_run OUTFILE CMD...: run CMD, store its CPU seconds (children, user+sys) in OUTFILE.
cpu_run() {
  local out=$1; shift
  python3 - "$out" "$@" <<'PY'
import resource, subprocess, sys
out, cmd = sys.argv[1], sys.argv[2:]
rc = subprocess.run(cmd).returncode
r = resource.getrusage(resource.RUSAGE_CHILDREN)
open(out, "w").write(f"{r.ru_utime + r.ru_stime:.3f}\n")
sys.exit(rc)
PY
}

run_client() {  # run_client NAME CONC RESULT_FILE
  local name=$1 c=$2 out=$3
  rm -f "$out"
  case "$name" in
    inferperf|inferperf_base)
      local bin=$INFERPERF
      [ "$name" = inferperf_base ] && bin=$BASELINE_BIN
      "$bin" bench serving --backend sglang-oai --base-url "$URL" --model mock-model \
        --tokenizer "$TOK" --dataset-name random-ids --random-input-len "$IN_LEN" \
        --random-output-len "$OUT_LEN" --random-range-ratio 1 --num-prompts "$N" \
        --max-concurrency "$c" --disable-tqdm --output-file "$out" \
        ${INFERPERF_THREADS:+--client-threads "$INFERPERF_THREADS"} ;;
    sglang_rust)
      RESULTS_DIR=$RESULTS_DIR/bench-client MODE=direct TAG=$(basename "$out" .jsonl) \
        "$PEERS/run_sglang_rust.sh" "$URL" mock-model "$TOK" "$N" "$c" "$IN_LEN" "$OUT_LEN"
      cp "$RESULTS_DIR/bench-client/sglang_rust/$(basename "$out")" "$out" ;;
    sglang_py)
      RESULTS_DIR=$RESULTS_DIR/bench-client TAG=$(basename "$out" .jsonl) \
        "$PEERS/run_sglang.sh" "$URL" mock-model "$TOK" "$N" "$c" "$IN_LEN" "$OUT_LEN"
      cp "$RESULTS_DIR/bench-client/sglang/$(basename "$out")" "$out" ;;
    *) echo "unknown client $name" >&2; return 2 ;;
  esac
}

trap '"$PEERS/mockserver.sh" stop "$PORT" >/dev/null 2>&1 || true' EXIT
# one_client CLIENT CONC N OUT_LEN OUT: run one client under cpu_run; CPU seconds in OUT.cpu.
one_client() {
  local cl=$1 c=$2 n=$3 olen=$4 out=$5 log=${5%.jsonl}.log
  cpu_run "$out.cpu" bash -c "$(declare -f run_client); INFERPERF='$INFERPERF' BASELINE_BIN='${BASELINE_BIN:-}' URL='$URL' TOK='$TOK' N='$n' IN_LEN='$IN_LEN' OUT_LEN='$olen' PEERS='$PEERS' RESULTS_DIR='$RESULTS_DIR' INFERPERF_THREADS='${INFERPERF_THREADS:-}' run_client '$cl' '$c' '$out'" > "$log" 2>&1
}
declare -A BASE_CPU
FIRST_ITL=${ITLS%% *}
printf '%-12s %4s %5s %3s %12s %16s %14s %14s %14s %10s\n' client itl conc rep "out tok/s" "CPU s/1M tok" "excl. startup" "ITL err mean" "ITL err p99" completed
for ITL in $ITLS; do
  "$PEERS/mockserver.sh" start "$PORT" "$ITL" --tokenizer "$TOK" --default-tokens "$OUT_LEN" >/dev/null
  reps=$REPEAT; [ "$ITL" != 0 ] && reps=$REPEAT_ITL
  if [ "$ITL" = "$FIRST_ITL" ]; then
    for CL in $CLIENTS; do
      out=$RESULTS_DIR/bench-client/${CL}_baseline_$STAMP.jsonl
      if one_client "$CL" 4 4 16 "$out"; then
        BASE_CPU[$CL]=$(cat "$out.cpu")
        echo "$CL startup-only baseline (4 x 16 tokens, c=4): ${BASE_CPU[$CL]} CPU s"
      else
        echo "$CL baseline failed; see ${out%.jsonl}.log" >&2
      fi
    done
  fi
  for C in $CONCS; do
    for R in $(seq 1 "$reps"); do
      for CL in $CLIENTS; do
        [ "$CL" = sglang_py ] && [ "$R" -gt "$REPEAT_PY" ] && continue
        tag=${CL}_itl${ITL}_c${C}_r${R}_$STAMP
        out=$RESULTS_DIR/bench-client/$tag.jsonl
        curl -sf "$URL/stats?reset=1" >/dev/null
        if ! one_client "$CL" "$C" "$N" "$OUT_LEN" "$out"; then
          echo "$CL itl=$ITL c=$C failed; see ${out%.jsonl}.log" >&2; continue
        fi
        stats=$(curl -sf "$URL/stats")
        python3 - "$CL" "$ITL" "$C" "$R" "$out" "$out.cpu" "$stats" "$SUMMARY" "${BASE_CPU[$CL]:-}" <<'PY'
import json, sys
name, itl, conc, rep, out, cpu_file, stats, summary, base = sys.argv[1:]
base = float(base) if base else None
lines = [l for l in open(out) if l.strip()]
line = lines[-1].replace("Infinity", "1e999").replace("NaN", "null")
d = json.loads(line)
s = json.loads(stats)
cpu = float(open(cpu_file).read())
tok = d.get("total_output_tokens") or 0
mock_itl = s.get("itl_ms", {})
err_mean = (d.get("mean_itl_ms") or 0) - (mock_itl.get("mean") or 0)
err_p99 = (d.get("p99_itl_ms") or 0) - (mock_itl.get("p99") or 0)
row = {"client": name, "itl_ms": float(itl), "concurrency": int(conc), "repeat": int(rep),
       "completed": d.get("completed"), "output_throughput": d.get("output_throughput"),
       "total_output_tokens": tok, "client_cpu_s": cpu,
       "cpu_s_per_1m_tokens": cpu / tok * 1e6 if tok else None,
       "baseline_cpu_s": base,
       "cpu_s_per_1m_tokens_excl_startup": (cpu - base) / tok * 1e6 if tok and base is not None else None,
       "client_mean_itl_ms": d.get("mean_itl_ms"), "client_p99_itl_ms": d.get("p99_itl_ms"),
       "mock_itl_ms": mock_itl, "mock_ttft_ms": s.get("ttft_ms"),
       "itl_error_mean_ms": err_mean, "itl_error_p99_ms": err_p99,
       "verdict": (d.get("validity") or {}).get("verdict"), "result_file": out}
open(summary, "a").write(json.dumps(row) + "\n")
print(f"{name:<12} {itl:>4} {conc:>5} {rep:>3} {row['output_throughput'] or 0:>12.0f} {row['cpu_s_per_1m_tokens'] or 0:>16.2f} {row['cpu_s_per_1m_tokens_excl_startup'] or 0:>14.2f} "
      f"{err_mean:>14.3f} {err_p99:>14.3f} {row['completed']:>10}")
PY
      done
    done
  done
done
echo
echo "medians over repeats:"
python3 - "$SUMMARY" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
groups = {}
for r in rows:
    groups.setdefault((r["itl_ms"], r["concurrency"], r["client"]), []).append(r)
print(f"{'itl':>4} {'conc':>5} {'client':<12} {'n':>2} {'out tok/s':>12} {'CPU s/1M tok':>13} {'excl. startup':>13} {'ITL err mean':>13} {'ITL err p99':>12}")
med = lambda rs, k: statistics.median([x[k] for x in rs if x.get(k) is not None] or [0])
for (itl, conc, client), rs in sorted(groups.items()):
    print(f"{itl:>4.0f} {conc:>5} {client:<12} {len(rs):>2} {med(rs,'output_throughput'):>12.0f} "
          f"{med(rs,'cpu_s_per_1m_tokens'):>13.2f} {med(rs,'cpu_s_per_1m_tokens_excl_startup'):>13.2f} {med(rs,'itl_error_mean_ms'):>13.3f} {med(rs,'itl_error_p99_ms'):>12.3f}")
PY
echo "summary: $SUMMARY"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
