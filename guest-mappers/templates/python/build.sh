#!/usr/bin/env bash
# Builds the component: ./build.sh [OUT.wasm]   (default: {{crate_name}}.wasm)
#
# Needs componentize-py 0.25.1 (`pip install componentize-py==0.25.1`), taken from
# $PAKAURA_TOOLS_VENV/bin when that is set, else from PATH. The bindings come from wit/.
set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/{{crate_name}}.wasm}"

if [ -n "${PAKAURA_TOOLS_VENV:-}" ]; then
  tool="$PAKAURA_TOOLS_VENV/bin/componentize-py"
else
  tool="$(command -v componentize-py || true)"
fi
if [ -z "$tool" ] || [ ! -x "$tool" ]; then
  echo "error: componentize-py not found: pip install componentize-py==$COMPONENTIZE_PY_VERSION" >&2
  exit 127
fi
version="$("$tool" --version | awk '{print $2}')"
if [ "$version" != "$COMPONENTIZE_PY_VERSION" ]; then
  echo "error: $tool is componentize-py $version; this project pins $COMPONENTIZE_PY_VERSION" >&2
  exit 1
fi

mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
cd "$here"
"$tool" -d wit -w typed-mapper componentize app -p "$here" -o "$out"
