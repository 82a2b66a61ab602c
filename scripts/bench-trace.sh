#!/usr/bin/env bash
# Benchmarks `inferperf trace` against the Python peers on one machine, side by side:
#   merge:   8 ranks x 53.7 MB (built from hta_single_rank_large) -- ours vs SGLang's ProfileMerger
#   summary: one 53.7 MB rank -- ours vs HTA 0.5.0 parse_trace_file (venv of fetch-test-assets.sh)
# Time and peak RSS from /usr/bin/time -v. Prints a table; copy the ratios into
# docs/performance.md ("Trace toolkit"). Release build.
# BASELINE_BIN=<an older inferperf binary>: also times that binary on the same merge and
# summary, printed as before/after ratios (for changes that must not move these numbers).
# CASES=client: only the `merge --client` case: the 8 ranks with reference-server step spans
# (rids of 100k requests, TP=8) merged alone vs with a generated 100k-request client trace;
# prints both times, the ratio and the extra peak RSS (targets: <= 1.5x, <= 200 MB extra).
# TRACE_BENCH=<release trace_bench example>: use it instead of building the CLI (quicker
# build: `cargo build --release -p inferperf-trace --example trace_bench`).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/inferperf/target}"
ASSETS="${INFERPERF_ASSETS:-$HOME/.cache/inferperf/assets}"
VENV_PY="$ASSETS/venv/bin/python"
WORK="${INFERPERF_BENCH_DIR:-$HOME/.cache/inferperf/bench-trace}"
SRC="$ROOT/../shared/data/traces/hta_single_rank_large/df_index_resolver.json.gz"
ID="1700000000.0"
RUNS="${RUNS:-3}"

[ -x /usr/bin/time ] || { echo "need /usr/bin/time (apt-get install time)" >&2; exit 1; }
[ -f "$SRC" ] || { echo "missing $SRC" >&2; exit 1; }
[ -x "$VENV_PY" ] || { echo "missing HTA venv $VENV_PY: run scripts/fetch-test-assets.sh" >&2; exit 1; }

CASES="${CASES:-all}"
if [ -z "${TRACE_BENCH:-}" ]; then
  cargo build --release -p inferperf >&2
fi
BIN="$CARGO_TARGET_DIR/release/inferperf"

# 1. Eight ranks in SGLang naming, each a copy of the large rank with its own distributedInfo.rank.
mkdir -p "$WORK/ranks"
if [ ! -f "$WORK/ranks/$ID-TP-7.trace.json.gz" ]; then
  python3 - "$SRC" "$WORK/ranks" "$ID" <<'PY'
import gzip, re, sys
src, out, pid = sys.argv[1:]
text = gzip.open(src, "rt").read()
for r in range(8):
    t = re.sub(r'("distributedInfo"\s*:\s*\{[^}]*?"rank"\s*:\s*)\d+', lambda m: m.group(1) + str(r), text, count=1)
    with gzip.open(f"{out}/{pid}-TP-{r}.trace.json.gz", "wt", compresslevel=6) as f:
        f.write(t)
PY
fi

# 2. SGLang's merger, loaded on its own (standard library only) with stub parent packages.
mkdir -p "$WORK/sglang"
if [ "$CASES" != "client" ] && [ ! -f "$WORK/sglang/profile_merger.py" ]; then
  ls "$WORK"/sglang/sglang-*.whl >/dev/null 2>&1 || pip download --no-deps --quiet -d "$WORK/sglang" sglang
  python3 - "$WORK/sglang" <<'PY'
import glob, sys, zipfile
d = sys.argv[1]
z = zipfile.ZipFile(sorted(glob.glob(f"{d}/sglang-*.whl"))[-1])
open(f"{d}/profile_merger.py", "wb").write(z.read("sglang/srt/utils/profile_merger.py"))
PY
fi
cat > "$WORK/sglang/run_merger.py" <<'PY'
import importlib.util, sys, types
for name in ["sglang", "sglang.srt", "sglang.srt.utils"]:
    sys.modules[name] = types.ModuleType(name)
spec = importlib.util.spec_from_file_location("sglang.srt.utils.profile_merger", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
print(mod.ProfileMerger(sys.argv[2], sys.argv[3]).merge_chrome_traces())
PY
cat > "$WORK/hta_parse.py" <<'PY'
import sys
from hta.common.trace import parse_trace_file
meta, df, sym = parse_trace_file(sys.argv[1])
print(len(df))
PY

# measure NAME CMD... -> "seconds maxrss_mb" (best wall time of $RUNS runs, RSS of that run)
measure() {
  local best="" rss=""
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -v "$@" >/dev/null 2>"$WORK/time.txt" || { cat "$WORK/time.txt" >&2; exit 1; }
    local wall kb s
    wall=$(grep 'Elapsed (wall clock)' "$WORK/time.txt" | awk '{print $NF}')
    kb=$(grep 'Maximum resident set size' "$WORK/time.txt" | awk '{print $NF}')
    s=$(python3 -c "p='$wall'.split(':'); print(sum(float(x)*60**i for i,x in enumerate(reversed(p))))")
    if [ -z "$best" ] || python3 -c "import sys; sys.exit(0 if $s < $best else 1)"; then best=$s; rss=$((kb/1024)); fi
  done
  echo "$best $rss"
}

# 3. `merge --client`: the 8 ranks plus reference-server step spans (docs/trace-conventions.md,
# "Requests": args.rids, extend_lens) for 100k requests -- each in 9 steps (1 prefill, 8
# decode), 64 rows a step, on every rank as in TP=8 -- and a client request trace of those
# 100k requests (request_trace.rs's format, 4 chunks each, server_clock offset 1 ms).
client_case() {
  mkdir -p "$WORK/ranks-steps"
  if [ ! -f "$WORK/client-100k.json" ]; then
    python3 - "$WORK/ranks" "$WORK/ranks-steps" "$ID" "$WORK/client-100k.json" <<'PY'
import gzip, json, sys
src, out, pid, client = sys.argv[1:]
N, SPAN, ROWS, STEP_US = 100_000, 9, 64, 120
nsteps = (N - 1) * SPAN // ROWS + SPAN
steps = [[] for _ in range(nsteps)]
start = [k * SPAN // ROWS for k in range(N)]
for k in range(N):
    for j in range(SPAN):
        steps[start[k] + j].append(k)
text0 = gzip.open(f"{src}/{pid}-TP-0.trace.json.gz", "rt").read()
t0 = 1669783687464181  # the ranks' first ts (µs, Unix: legacy Kineto, no baseTimeNanoseconds)
def step_events(tpid):
    for i, ks in enumerate(steps):
        lens = [128 if start[k] == i else 1 for k in ks]
        mode = "DECODE" if max(lens) == 1 else ("EXTEND" if min(lens) > 1 else "MIXED")
        yield json.dumps({"ph": "X", "cat": "user_annotation", "name": f"step[{i}]", "pid": tpid, "tid": 1,
                          "ts": t0 + i * STEP_US, "dur": STEP_US - 10,
                          "args": {"forward_mode": mode, "batch_size": len(ks),
                                   "rids": [f"bench-{k}" for k in ks], "extend_lens": lens}})
block = ",\n".join(step_events(783658)) + ",\n"
for r in range(8):
    text = gzip.open(f"{src}/{pid}-TP-{r}.trace.json.gz", "rt").read()
    i = text.index("[", text.index('"traceEvents"')) + 1
    with gzip.open(f"{out}/{pid}-TP-{r}.trace.json.gz", "wt", compresslevel=1) as f:
        f.write(text[:i]); f.write("\n"); f.write(block); f.write(text[i:])
# The client: its clock 1 ms behind the server's (server_clock.offset_ns = +1e6).
OFF = 1_000_000
base_ns = (t0 * 1000 - OFF) // 1_000_000_000 * 1_000_000_000
def us(server_us):  # client µs after base_ns of a server time in µs
    return round((server_us * 1000 - OFF - base_ns) / 1000, 3)
with open(client, "w") as f:
    info = {"version": 1, "kind": "client_requests",
            "clock": {"monotonic": "nanoseconds since the run's start instant", "monotonic_ns_at_anchor": 0,
                      "unix_ns_at_anchor": base_ns},
            "run_tag": "bench", "backend": "sglang", "base_url": "http://127.0.0.1:30000",
            "server_clock": {"offset_ns": OFF, "uncertainty_ns": 40_000, "drift_ns": 2_000, "samples": 16},
            "requests": N, "lanes": 512}
    f.write('{\n  "schemaVersion": 1,\n  "displayTimeUnit": "ms",\n')
    f.write(f'  "baseTimeNanoseconds": {base_ns},\n  "inferperfRequestTrace": {json.dumps(info)},\n  "traceEvents": [\n')
    ev = ['{"name": "process_name", "ph": "M", "ts": 0, "pid": 77, "tid": 0, "args": {"name": "inferperf client"}}']
    ev += ['{"name": "thread_name", "ph": "M", "ts": 0, "pid": 77, "tid": %d, "args": {"name": "requests lane %d"}}' % (l + 1, l) for l in range(512)]
    f.write(",\n".join(ev))
    for k in range(N):
        a = t0 + start[k] * STEP_US
        sched, sent, hdr, first, end = a - 300, a - 250, a - 100, a + STEP_US, a + SPAN * STEP_US
        tid = k % 512 + 1
        rid = f"bench-{k}"
        f.write(",\n" + '{"ph": "X", "cat": "client_request", "name": "request", "pid": 77, "tid": %d, "ts": %s, "dur": %s, "args": {"rid": "%s", "index": %d, "status": "ok", "prompt_len": 128, "output_len": 8}}' % (tid, us(sched), round(end - sched, 3), rid, k))
        for name, x, y in (("queued", sched, sent), ("awaiting headers", sent, hdr), ("awaiting first token", hdr, first), ("streaming", first, end)):
            f.write(",\n" + '{"ph": "X", "cat": "client_phase", "name": "%s", "pid": 77, "tid": %d, "ts": %s, "dur": %s, "args": {"rid": "%s"}}' % (name, tid, us(x), round(y - x, 3), rid))
        for c in range(4):
            f.write(",\n" + '{"ph": "i", "s": "t", "cat": "client_chunk", "name": "chunk", "pid": 77, "tid": %d, "ts": %s, "args": {"tokens": 2}}' % (tid, us(first + c * 2 * STEP_US)))
    f.write('\n  ],\n  "traceName": "client-100k.json"\n}\n')
PY
  fi
  rm -f "$WORK/steps-merged.trace.json.gz" "$WORK/client-merged.trace.json.gz"
  local ranks=("$WORK"/ranks-steps/*.trace.json.gz) alone with
  if [ -n "${TRACE_BENCH:-}" ]; then
    alone=("$TRACE_BENCH" merge "$WORK/steps-merged.trace.json.gz" "${ranks[@]}")
    with=("$TRACE_BENCH" merge "$WORK/client-merged.trace.json.gz" --client "$WORK/client-100k.json" "${ranks[@]}")
  else
    alone=("$BIN" trace merge -o "$WORK/steps-merged.trace.json.gz" "${ranks[@]}")
    with=("$BIN" trace merge -o "$WORK/client-merged.trace.json.gz" --client "$WORK/client-100k.json" "${ranks[@]}")
  fi
  read -r ALONE_S ALONE_MB < <(measure "${alone[@]}")
  read -r WITH_S WITH_MB < <(measure "${with[@]}")
  python3 - "$ALONE_S" "$ALONE_MB" "$WITH_S" "$WITH_MB" "$(nproc)" "$(du -m "$WORK/client-100k.json" | cut -f1)" <<'PY'
import sys
a, amb, w, wmb, cores, cmb = sys.argv[1:]
a, w = float(a), float(w)
print(f"machine: {cores} cores; client trace {cmb} MB")
print("| task | time | peak RSS |")
print("|---|---|---|")
print(f"| merge 8 ranks with step spans | {a:.2f} s | {amb} MB |")
print(f"| same + 100k-request client trace | {w:.2f} s | {wmb} MB |")
print(f"| ratio / extra | {w/a:.2f}x (target <= 1.5x) | +{int(wmb)-int(amb)} MB (target <= 200 MB) |")
PY
}
if [ "$CASES" = "client" ]; then client_case; exit 0; fi

RANK0="$WORK/ranks/$ID-TP-0.trace.json.gz"
rm -f "$WORK/ranks/merged-$ID.trace.json.gz" "$WORK/ours-merged.trace.json.gz"
read -r OURS_MERGE_S OURS_MERGE_MB < <(measure "$BIN" trace merge --profile-id "$ID" --dir "$WORK/ranks" -o "$WORK/ours-merged.trace.json.gz")
SG_RUNS=$RUNS; RUNS=1
read -r SG_MERGE_S SG_MERGE_MB < <(measure python3 "$WORK/sglang/run_merger.py" "$WORK/sglang/profile_merger.py" "$WORK/ranks" "$ID")
RUNS=$SG_RUNS
rm -f "$WORK/ranks/merged-$ID.trace.json.gz"
read -r OURS_SUM_S OURS_SUM_MB < <(measure "$BIN" trace summary "$RANK0" --json)
RUNS=1
read -r HTA_S HTA_MB < <(measure "$VENV_PY" "$WORK/hta_parse.py" "$RANK0")

if [ -n "${BASELINE_BIN:-}" ]; then
  RUNS=${SG_RUNS}
  rm -f "$WORK/base-merged.trace.json.gz"
  read -r BASE_MERGE_S BASE_MERGE_MB < <(measure "$BASELINE_BIN" trace merge --profile-id "$ID" --dir "$WORK/ranks" -o "$WORK/base-merged.trace.json.gz")
  read -r BASE_SUM_S BASE_SUM_MB < <(measure "$BASELINE_BIN" trace summary "$RANK0" --json)
  python3 - "$BASE_MERGE_S" "$OURS_MERGE_S" "$BASE_SUM_S" "$OURS_SUM_S" "$BASE_MERGE_MB" "$OURS_MERGE_MB" "$BASE_SUM_MB" "$OURS_SUM_MB" <<'PY'
import sys
bm, om, bs, os_ = map(float, sys.argv[1:5]); bmm, omm, bsm, osm = sys.argv[5:]
print("| task | baseline binary | this binary | this / baseline | RSS baseline | RSS this |")
print("|---|---|---|---|---|---|")
print(f"| merge 8 x 53.7 MB ranks | {bm:.2f} s | {om:.2f} s | {om/bm:.2f} | {bmm} MB | {omm} MB |")
print(f"| summary of one rank | {bs:.2f} s | {os_:.2f} s | {os_/bs:.2f} | {bsm} MB | {osm} MB |")
PY
fi
python3 - "$OURS_MERGE_S" "$OURS_MERGE_MB" "$SG_MERGE_S" "$SG_MERGE_MB" "$OURS_SUM_S" "$OURS_SUM_MB" "$HTA_S" "$HTA_MB" "$(nproc)" <<'PY'
import sys
om, omb, sm, smb, os_, osb, hs, hsb, cores = sys.argv[1:]
om, sm, os_, hs = map(float, (om, sm, os_, hs))
print(f"machine: {cores} cores")
print("| task | inferperf | peer | speed-up | inferperf peak RSS | peer peak RSS |")
print("|---|---|---|---|---|---|")
print(f"| merge 8 x 53.7 MB ranks | {om:.2f} s | SGLang ProfileMerger {sm:.2f} s | {sm/om:.1f}x | {omb} MB | {smb} MB |")
print(f"| summary of one 53.7 MB rank | {os_:.2f} s | HTA parse_trace_file {hs:.2f} s | {hs/os_:.1f}x | {osb} MB | {hsb} MB |")
PY
client_case
