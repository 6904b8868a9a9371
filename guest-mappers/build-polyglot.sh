#!/usr/bin/env bash
# Builds the Python and JavaScript v2 mappers: ./build-polyglot.sh OUT_DIR
#
# Runs both unit-test suites first (pytest, node --test), then writes
# OUT_DIR/v2_python.wasm and OUT_DIR/v2_js.wasm. Tools, pinned:
#   componentize-py 0.25.1 and pytest     from $PAKAURA_TOOLS_VENV (its bin/), else PATH
#   @bytecodealliance/componentize-js 0.23.0  from $PAKAURA_TOOLS_NODE_MODULES, else Node's lookup
#   node 20 or later                      from PATH
# A missing tool stops the script before anything is built, naming the tool.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ $# -ne 1 ]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
mkdir -p "$1"
out="$(cd "$1" && pwd)"

if [ -n "${PAKAURA_TOOLS_VENV:-}" ]; then
  export PATH="$PAKAURA_TOOLS_VENV/bin:$PATH"
fi

missing() {
  echo "build-polyglot: missing tool: $1" >&2
  exit 127
}
command -v componentize-py >/dev/null || missing "componentize-py (PyPI componentize-py==0.25.1; set PAKAURA_TOOLS_VENV or put it on PATH)"
v="$(componentize-py --version | awk '{print $2}')"
[ "$v" = 0.25.1 ] || missing "componentize-py 0.25.1 (found $v at $(command -v componentize-py))"
command -v python3 >/dev/null || missing "python3"
python3 -c 'import pytest' 2>/dev/null || missing "pytest (PyPI, in the python3 that has componentize-py; set PAKAURA_TOOLS_VENV)"
command -v node >/dev/null || missing "node (Node.js 20 or later)"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  missing "node 20 or later (found $(node --version))"
node "$here/v2-js/build.mjs" --check-tools >/dev/null ||
  missing "@bytecodealliance/componentize-js 0.23.0 (npm; set PAKAURA_TOOLS_NODE_MODULES to the node_modules folder that has it)"

step() { printf '== %s\n' "$*"; }
timed() {
  local start=$SECONDS
  "$@"
  printf '   (%ss)\n' "$((SECONDS - start))"
}

step "v2-python unit tests (pytest)"
(cd "$here/v2-python" && timed python3 -m pytest -q)
step "v2-js unit tests (node --test)"
(cd "$here/v2-js" && timed node --test)
step "v2-python component -> $out/v2_python.wasm"
timed "$here/v2-python/build.sh" "$out/v2_python.wasm"
step "v2-js component -> $out/v2_js.wasm"
timed node "$here/v2-js/build.mjs" "$out/v2_js.wasm"
ls -l "$out/v2_python.wasm" "$out/v2_js.wasm"
