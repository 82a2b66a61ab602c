#!/usr/bin/env bash
# Vendors the chart library `report html` embeds (uPlot, MIT) into
# crates/inferperf-report/vendor/: downloads the exact version's tarball from registry.npmjs.org,
# checks it against the registry's dist.integrity (sha512), and extracts the minified JS, the CSS
# and the LICENSE. The files are committed so the build works offline; run this only to change
# the version (then commit the files and vendor/README.md it rewrites).
#
#   scripts/vendor-charts.sh            # the pinned version below
#   scripts/vendor-charts.sh 1.6.32     # another exact version
set -euo pipefail
NAME=uplot
VERSION="${1:-1.6.32}"
DEST="$(cd "$(dirname "$0")/.." && pwd)/crates/inferperf-report/vendor"
REGISTRY=https://registry.npmjs.org

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The registry's record of this exact version: where the tarball is and its integrity.
curl -fsSL "$REGISTRY/$NAME/$VERSION" -o "$tmp/meta.json"
read -r TARBALL INTEGRITY < <(python3 - "$tmp/meta.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))["dist"]
if not d.get("integrity", "").startswith("sha512-"):
    sys.exit("registry gives no sha512 integrity for this version")
print(d["tarball"], d["integrity"])
PY
)
case "$TARBALL" in
  "$REGISTRY"/*) ;;
  *) echo "unexpected tarball location: $TARBALL" >&2; exit 1 ;;
esac

curl -fsSL "$TARBALL" -o "$tmp/pkg.tgz"
GOT="sha512-$(openssl dgst -sha512 -binary "$tmp/pkg.tgz" | base64 -w0)"
if [ "$GOT" != "$INTEGRITY" ]; then
  echo "integrity mismatch for $TARBALL: registry $INTEGRITY, downloaded $GOT" >&2
  exit 1
fi

tar -xzf "$tmp/pkg.tgz" -C "$tmp"
mkdir -p "$DEST"
cp "$tmp/package/dist/uPlot.iife.min.js" "$DEST/uPlot.iife.min.js"
cp "$tmp/package/dist/uPlot.min.css" "$DEST/uPlot.min.css"
cp "$tmp/package/LICENSE" "$DEST/LICENSE"
LICENSE_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["license"])' "$tmp/package/package.json")

cat >"$DEST/README.md" <<EOF
# Vendored chart library

\`report html\` embeds these files into its page at build time (\`include_str!\` in
\`src/interactive.rs\`), so the page is one self-contained file that works offline.

| | |
|---|---|
| package | [\`$NAME\`](https://www.npmjs.com/package/$NAME) (uPlot) |
| version | $VERSION |
| licence | $LICENSE_ID (\`LICENSE\`, shipped inside every page) |
| tarball | $TARBALL |
| integrity | \`$INTEGRITY\` (checked by the script) |
| files | \`uPlot.iife.min.js\`, \`uPlot.min.css\`, \`LICENSE\` (unchanged from the tarball) |

Written by \`scripts/vendor-charts.sh\`; rerun it with another exact version to update.
EOF
echo "vendored $NAME $VERSION ($INTEGRITY) into $DEST"
