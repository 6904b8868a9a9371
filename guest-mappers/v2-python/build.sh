#!/usr/bin/env bash
# Builds the Python v2 mapper into a component: ./build.sh OUT.wasm
#
# Uses componentize-py 0.25.1 from $PAKAURA_TOOLS_VENV/bin when that is set (the test
# command's tool bootstrap), else `componentize-py` on PATH. The bindings (`wit_world`) are
# generated from the repository's wit/ folder at build time; nothing is copied here.
set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
wit="$(cd "$here/../../wit" && pwd)"

if [ $# -ne 1 ]; then
  echo "usage: $0 OUT.wasm" >&2
  exit 2
fi
out="$1"

if [ -n "${PAKAURA_TOOLS_VENV:-}" ]; then
  tool="$PAKAURA_TOOLS_VENV/bin/componentize-py"
else
  tool="$(command -v componentize-py || true)"
fi
if [ -z "$tool" ] || [ ! -x "$tool" ]; then
  echo "error: componentize-py not found (need componentize-py==$COMPONENTIZE_PY_VERSION from PyPI:" \
       "set PAKAURA_TOOLS_VENV to a venv that has it, or put it on PATH)" >&2
  exit 127
fi
version="$("$tool" --version | awk '{print $2}')"
if [ "$version" != "$COMPONENTIZE_PY_VERSION" ]; then
  echo "error: $tool is componentize-py $version; this mapper pins $COMPONENTIZE_PY_VERSION" >&2
  exit 1
fi

mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
# -p: only this folder is searched for the `app` module and the `mapper` package.
cd "$here"
"$tool" -d "$wit" -w typed-mapper componentize app -p "$here" -o "$out"
