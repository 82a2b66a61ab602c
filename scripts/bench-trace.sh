#!/usr/bin/env bash
# Benchmarks `inferperf trace` against the Python peers on one machine, side by side:
#   merge:   8 ranks x 53.7 MB (built from hta_single_rank_large) -- ours vs SGLang's ProfileMerger
#   summary: one 53.7 MB rank -- ours vs HTA 0.5.0 parse_trace_file (venv of fetch-test-assets.sh)
# Time and peak RSS from /usr/bin/time -v. Prints a table; copy the ratios into
# docs/performance.md ("Trace toolkit"). Release build.
# BASELINE_BIN=<an older inferperf binary>: also times that binary on the same merge and
# summary, printed as before/after ratios (for changes that must not move these numbers).
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

cargo build --release -p inferperf >&2
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
if [ ! -f "$WORK/sglang/profile_merger.py" ]; then
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
