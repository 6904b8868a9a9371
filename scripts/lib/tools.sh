# shellcheck shell=bash
# Test tools other than Rust and PostgreSQL (sourced by scripts/test after common.sh).
# Each is installed once into $PAKAURA_CACHE, keyed by the hash of its pinned
# manifest, reused while a marker file written last says the install finished,
# and exported to the tests; one that cannot be had is left unset and reported in
# the SKIP banner (an error instead with PAKAURA_REQUIRE_TOOLS=1):
#   PAKAURA_TOOLS_VENV          $PAKAURA_CACHE/venv-<hash of scripts/tools/requirements.txt>
#                               (bin/ has componentize-py, pytest, st and schemathesis;
#                               confluent-kafka for scripts/kafka/)
#   PAKAURA_TOOLS_NODE_MODULES  $PAKAURA_CACHE/node-<hash of scripts/tools/package-lock.json>/node_modules
#                               (@bytecodealliance/componentize-js, playwright-core)
#   PAKAURA_CHROMIUM            /usr/bin/chromium (Debian's chromium, apt-get installed)
#   PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1  playwright never downloads a browser
# A variable already set by the caller is used as given.

PAKAURA_TOOLS_DIR="$PAKAURA_ROOT/scripts/tools"
PAKAURA_DONE_MARKER=".pakaura-complete"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

# unavailable WHAT HOW...: a tool cannot be had: a SKIP, or an error with
# PAKAURA_REQUIRE_TOOLS=1.
unavailable() {
  if [[ "${PAKAURA_REQUIRE_TOOLS:-0}" == 1 ]]; then
    die "$1 (PAKAURA_REQUIRE_TOOLS=1)" "${@:2}"
  fi
  warn "$1"
  skip "$@"
}

tools_setup() {
  tools_python
  tools_node
  tools_chromium
}

# --- Python: componentize-py, pytest, schemathesis, confluent-kafka ---------------

venv_ready() {
  [[ -f "$1/$PAKAURA_DONE_MARKER" && -x "$1/bin/python" ]] && "$1/bin/python" -c '' 2>/dev/null
}

# venv_install DIR REQUIREMENTS LOG: makes the venv in place (a venv cannot be
# moved: its scripts name their interpreter by path), the marker last.
venv_install() {
  local venv="$1" req="$2" log="$3" tool
  venv_ready "$venv" && return 0 # another run finished it while we waited
  rm -rf "$venv"
  say "Python tools: installing into $venv (once; a few minutes)"
  {
    run_child python3 -m venv "$venv" &&
      run_child "$venv/bin/python" -m pip install --no-input --disable-pip-version-check -r "$req" &&
      run_child "$venv/bin/python" -m pip check
  } >"$log" 2>&1 || return 1
  for tool in componentize-py pytest st schemathesis; do
    [[ -x "$venv/bin/$tool" ]] || { echo "no bin/$tool after the install" >>"$log"; return 1; }
  done
  "$venv/bin/python" -c 'import confluent_kafka' >>"$log" 2>&1 || return 1
  python3 --version >"$venv/$PAKAURA_DONE_MARKER" || return 1
}

tools_python() {
  local what="Python tools (componentize-py, pytest, schemathesis, confluent-kafka): tests that need PAKAURA_TOOLS_VENV"
  if [[ -n "${PAKAURA_TOOLS_VENV:-}" ]]; then
    [[ -x "$PAKAURA_TOOLS_VENV/bin/python" ]] || die "PAKAURA_TOOLS_VENV=$PAKAURA_TOOLS_VENV has no bin/python" \
      "unset it to let the tests make their own in $PAKAURA_CACHE"
    say "Python tools: $PAKAURA_TOOLS_VENV (PAKAURA_TOOLS_VENV, set by you)"
    export PAKAURA_TOOLS_VENV
    return 0
  fi
  local req="$PAKAURA_TOOLS_DIR/requirements.txt" venv log
  venv="$PAKAURA_CACHE/venv-$(short_hash "$req")"
  log="$venv.log"
  if venv_ready "$venv"; then
    say "Python tools: $venv (cached)"
    export PAKAURA_TOOLS_VENV="$venv"
    return 0
  fi
  if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    if can_install_packages; then
      say "Python tools: python3 with venv is missing; installing it (apt-get install python3 python3-venv)"
      apt_install python3 python3-venv || true
    fi
    if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
      unavailable "$what will not run: no python3 with the venv module" \
        "get it: sudo apt-get install python3 python3-venv (Python >= 3.10), then run ./scripts/test again"
      return 0
    fi
  fi
  mkdir -p "$PAKAURA_CACHE"
  if ! with_lock "venv" venv_install "$venv" "$req" "$log"; then
    tail -n 15 "$log" >&2 2>/dev/null || true
    rm -rf "$venv"
    unavailable "$what will not run: installing $req failed (log: $log)" \
      "get it: fix what the log says (network to the Python package index?) and run ./scripts/test again," \
      "or set PAKAURA_TOOLS_VENV to a virtual environment holding those packages"
    return 0
  fi
  rm -f "$log"
  export PAKAURA_TOOLS_VENV="$venv"
}

# --- Node.js: componentize-js, playwright-core ----------------------------------

node_ready() {
  [[ -f "$1/$PAKAURA_DONE_MARKER" && -d "$1/node_modules" ]]
}

# node_install DIR LOG: npm ci into DIR.partial, renamed to DIR when complete.
node_install() {
  local dir="$1" log="$2" partial="$1.partial" pkg
  node_ready "$dir" && return 0 # another run finished it while we waited
  rm -rf "$dir" "$partial"
  say "Node tools: installing into $dir (once; a minute or two)"
  mkdir -p "$partial" &&
    cp "$PAKAURA_TOOLS_DIR/package.json" "$PAKAURA_TOOLS_DIR/package-lock.json" "$partial/" || return 1
  run_child env -C "$partial" npm ci --no-audit --no-fund >"$log" 2>&1 || return 1
  for pkg in @bytecodealliance/componentize-js playwright-core @asyncapi/parser; do
    [[ -f "$partial/node_modules/$pkg/package.json" ]] ||
      { echo "no node_modules/$pkg after npm ci" >>"$log"; return 1; }
  done
  node --version >"$partial/$PAKAURA_DONE_MARKER" && mv "$partial" "$dir"
}

tools_node() {
  local what="Node tools (componentize-js, playwright-core, @asyncapi/parser): tests that need PAKAURA_TOOLS_NODE_MODULES"
  if [[ -n "${PAKAURA_TOOLS_NODE_MODULES:-}" ]]; then
    [[ -d "$PAKAURA_TOOLS_NODE_MODULES" ]] || die "PAKAURA_TOOLS_NODE_MODULES=$PAKAURA_TOOLS_NODE_MODULES is not a folder" \
      "unset it to let the tests install their own in $PAKAURA_CACHE"
    say "Node tools: $PAKAURA_TOOLS_NODE_MODULES (PAKAURA_TOOLS_NODE_MODULES, set by you)"
    export PAKAURA_TOOLS_NODE_MODULES
    return 0
  fi
  local lock="$PAKAURA_TOOLS_DIR/package-lock.json" dir log major
  dir="$PAKAURA_CACHE/node-$(short_hash "$lock")"
  log="$dir.log"
  if node_ready "$dir"; then
    say "Node tools: $dir/node_modules (cached)"
    export PAKAURA_TOOLS_NODE_MODULES="$dir/node_modules"
    return 0
  fi
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    if can_install_packages; then
      say "Node tools: node and npm are missing; installing them (apt-get install nodejs npm)"
      apt_install nodejs npm || true
    fi
  fi
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    unavailable "$what will not run: no node and npm" \
      "get them: Node.js >= 20 with npm (Debian 13: sudo apt-get install nodejs npm), then run ./scripts/test again"
    return 0
  fi
  major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  if [[ ! "$major" =~ ^[0-9]+$ || "$major" -lt 20 ]]; then
    unavailable "$what will not run: Node.js $(node --version 2>/dev/null) is older than 20" \
      "get it: Node.js >= 20 with npm (Debian 13's nodejs, or another source), then run ./scripts/test again"
    return 0
  fi
  mkdir -p "$PAKAURA_CACHE"
  if ! with_lock "node" node_install "$dir" "$log"; then
    tail -n 15 "$log" >&2 2>/dev/null || true
    rm -rf "$dir.partial"
    unavailable "$what will not run: npm ci of $lock failed (log: $log)" \
      "get it: fix what the log says (network to the npm registry?) and run ./scripts/test again," \
      "or set PAKAURA_TOOLS_NODE_MODULES to a node_modules folder holding those packages"
    return 0
  fi
  rm -f "$log"
  export PAKAURA_TOOLS_NODE_MODULES="$dir/node_modules"
}

# --- Chromium ---------------------------------------------------------------------

tools_chromium() {
  local what="browser tests (Debian's Chromium, PAKAURA_CHROMIUM)" path
  if [[ -n "${PAKAURA_CHROMIUM:-}" ]]; then
    [[ -x "$PAKAURA_CHROMIUM" ]] || die "PAKAURA_CHROMIUM=$PAKAURA_CHROMIUM is not an executable" \
      "unset it to use /usr/bin/chromium (installed with apt-get when missing)"
    say "Chromium: $PAKAURA_CHROMIUM (PAKAURA_CHROMIUM, set by you)"
    export PAKAURA_CHROMIUM
    return 0
  fi
  path="$(command -v chromium || true)"
  if [[ -z "$path" ]] && can_install_packages; then
    say "Chromium: installing Debian's chromium (apt-get install chromium; once, a few minutes)"
    apt_install chromium || true
    path="$(command -v chromium || true)"
  fi
  if [[ -z "$path" ]]; then
    unavailable "$what will not run: no chromium" \
      "get it: sudo apt-get install chromium (Debian), then run ./scripts/test again;" \
      "or set PAKAURA_CHROMIUM to a Chromium or Chrome executable"
    return 0
  fi
  say "Chromium: $path"
  export PAKAURA_CHROMIUM="$path"
}

# --- The Python and JavaScript v2 mappers -----------------------------------------

# polyglot_hash: the first 16 hex digits of a hash over the sources the two components
# are built from (v2-python, v2-js, the golden fixtures their tests read, the build
# script, wit/) and the tool installs, without build outputs.
polyglot_hash() {
  (
    cd "$PAKAURA_ROOT" &&
      find guest-mappers/v2-python guest-mappers/v2-js guest-mappers/fixtures \
        guest-mappers/build-polyglot.sh wit \
        \( -name node_modules -o -name __pycache__ -o -name .pytest_cache -o -name wit_world \) -prune \
        -o -type f ! -name '*.wasm' -print |
      LC_ALL=C sort | xargs -d '\n' sha256sum
    printf '%s\n' "$(basename "$PAKAURA_TOOLS_VENV")" "$(basename "$(dirname "$PAKAURA_TOOLS_NODE_MODULES")")"
  ) | sha256sum | cut -c1-16
}

# polyglot_build DIR LOG: build-polyglot.sh into DIR.partial, renamed to DIR when done.
polyglot_build() {
  local dir="$1" log="$2" partial="$1.partial"
  [[ -f "$dir/$PAKAURA_DONE_MARKER" ]] && return 0 # another run built it while we waited
  rm -rf "$dir" "$partial"
  say "v2 in Python and JavaScript: building into $dir (once per change of their sources; a minute or two)"
  run_child "$PAKAURA_ROOT/guest-mappers/build-polyglot.sh" "$partial" >"$log" 2>&1 || return 1
  date -u +%FT%TZ >"$partial/$PAKAURA_DONE_MARKER" && mv "$partial" "$dir"
}

# polyglot_setup: exports PAKAURA_V2_PYTHON_WASM and PAKAURA_V2_JS_WASM, the v2 mapper
# built from guest-mappers/v2-python and v2-js, for the e2e test that compares their
# envelopes with the Rust v2 mapper's. Built once into $PAKAURA_CACHE/polyglot-<hash>;
# needs PAKAURA_TOOLS_VENV and PAKAURA_TOOLS_NODE_MODULES (else a SKIP).
polyglot_setup() {
  local what="the Python and JavaScript v2 mappers compared with Rust v2 (e2e polyglot)"
  if [[ -n "${PAKAURA_V2_PYTHON_WASM:-}" && -n "${PAKAURA_V2_JS_WASM:-}" ]]; then
    say "v2 in Python and JavaScript: $PAKAURA_V2_PYTHON_WASM, $PAKAURA_V2_JS_WASM (set by you)"
    export PAKAURA_V2_PYTHON_WASM PAKAURA_V2_JS_WASM
    return 0
  fi
  if [[ -z "${PAKAURA_TOOLS_VENV:-}" || -z "${PAKAURA_TOOLS_NODE_MODULES:-}" ]]; then
    unavailable "$what will not run: no Python or Node tools" \
      "get them: see the Python and Node tool lines above"
    return 0
  fi
  local dir log
  dir="$PAKAURA_CACHE/polyglot-$(polyglot_hash)"
  log="$dir.log"
  if [[ -f "$dir/$PAKAURA_DONE_MARKER" ]]; then
    say "v2 in Python and JavaScript: $dir (cached)"
  elif ! with_lock "polyglot" polyglot_build "$dir" "$log"; then
    tail -n 15 "$log" >&2 2>/dev/null || true
    rm -rf "$dir.partial"
    unavailable "$what will not run: guest-mappers/build-polyglot.sh failed (log: $log)" \
      "fix what the log says and run ./scripts/test again"
    return 0
  else
    rm -f "$log"
  fi
  export PAKAURA_V2_PYTHON_WASM="$dir/v2_python.wasm" PAKAURA_V2_JS_WASM="$dir/v2_js.wasm"
}
