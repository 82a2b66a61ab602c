#!/usr/bin/env bash
# launch.sh - one sharded benchmark run on the current kubectl context:
#   1. sets START_AT to now + START_MARGIN_SEC and a fresh RUN_ID (a temporary kustomize
#      overlay over this directory merges them into the inferperf-params ConfigMap);
#   2. applies the ConfigMap, the results PVC and the Indexed shard Job, checks that every
#      shard pod runs before START_AT, and waits until the Job is Complete or Failed;
#   3. applies the merge Job, waits for it and prints its output (SGLang's table).
# Every other parameter is in params.env. Exits non-zero, naming the failed shard indexes,
# when a shard failed (no merge then: the merged numbers would miss that shard's requests).
#
# Env: NAMESPACE (default: the context's), START_MARGIN_SEC=120 (time for scheduling and
#      image pulls before the common start), TIMEOUT=6h (per Job), RUN_ID=run-<UTC stamp>.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
START_MARGIN_SEC=${START_MARGIN_SEC:-120}
TIMEOUT=${TIMEOUT:-6h}
RUN_ID=${RUN_ID:-run-$(date -u +%Y%m%d-%H%M%S)}
kc() { kubectl ${NAMESPACE:+--namespace "$NAMESPACE"} "$@"; }
command -v kubectl >/dev/null || { echo "launch.sh: kubectl is not on PATH" >&2; exit 1; }
case "$RUN_ID" in
  *[!A-Za-z0-9._-]* | "" | . | ..) echo "launch.sh: RUN_ID must be a plain directory name, got '$RUN_ID'" >&2; exit 1 ;;
esac
shards=$(sed -n 's/^NUM_SHARDS=//p' "$HERE/params.env")
[[ "$shards" =~ ^[1-9][0-9]*$ ]] || { echo "launch.sh: NUM_SHARDS in params.env is '$shards'" >&2; exit 1; }

start_epoch=$(( $(date +%s) + START_MARGIN_SEC ))
START_AT=$(date -u -d "@$start_epoch" +%Y-%m-%dT%H:%M:%SZ)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(realpath --relative-to="$work" "$HERE")
configMapGenerator:
  - name: inferperf-params
    behavior: merge
    literals:
      - START_AT=$START_AT
      - RUN_ID=$RUN_ID
YAML
kubectl kustomize "$work" > "$work/all.yaml"
# RENDER_ONLY=1: print what would be applied and stop (no cluster needed).
if [ -n "${RENDER_ONLY:-}" ]; then cat "$work/all.yaml"; exit 0; fi

# Jobs are immutable, so the previous run's go; its files stay on the volume under its RUN_ID.
kc delete job inferperf-shards inferperf-merge --ignore-not-found --wait=true

echo "run $RUN_ID: $shards shards start at $START_AT"
kc apply -f "$work/all.yaml" --selector inferperf.io/step=run

# wait_job NAME: wait until the Job is Complete (return 0) or Failed (return 1).
wait_job() {
  local job=$1 pids
  kc wait --for=condition=complete "job/$job" --timeout="$TIMEOUT" >/dev/null 2>&1 &
  pids=$!
  kc wait --for=condition=failed "job/$job" --timeout="$TIMEOUT" >/dev/null 2>&1 &
  pids="$pids $!"
  wait -n || true
  # shellcheck disable=SC2086
  kill $pids 2>/dev/null || true
  wait || true
  local conds
  conds=$(kc get job "$job" -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}')
  case " $conds " in
    *" Complete "*) return 0 ;;
    *" Failed "*) return 1 ;;
    *) echo "launch.sh: job/$job neither Complete nor Failed after $TIMEOUT (conditions: $conds)" >&2; return 1 ;;
  esac
}

# Every shard should be running (waiting for START_AT) before START_AT; one that starts later
# sends its share of the schedule late.
while :; do
  running=$(kc get pods --selector job-name=inferperf-shards --field-selector status.phase=Running \
    --no-headers 2>/dev/null | wc -l)
  [ "$running" -ge "$shards" ] && { echo "all $shards shard pods running before the start"; break; }
  if [ "$(date +%s)" -ge "$start_epoch" ]; then
    echo "WARNING: only $running of $shards shard pods were running at $START_AT; raise START_MARGIN_SEC" >&2
    break
  fi
  sleep 2
done

if ! wait_job inferperf-shards; then
  failed=$(kc get job inferperf-shards -o jsonpath='{.status.failedIndexes}')
  echo "launch.sh: shard Job failed; failed shard indexes: ${failed:-none recorded}" >&2
  echo "  logs of shard I: kubectl logs --selector job-name=inferperf-shards,batch.kubernetes.io/job-completion-index=I" >&2
  exit 1
fi

kc apply -f "$work/all.yaml" --selector inferperf.io/step=merge
merge_ok=0
wait_job inferperf-merge || merge_ok=$?
kc logs job/inferperf-merge
if [ "$merge_ok" != 0 ]; then
  echo "launch.sh: merge Job failed (its log is above)" >&2
  exit 1
fi
echo "result: result.jsonl in directory $RUN_ID of the PersistentVolumeClaim inferperf-results"
