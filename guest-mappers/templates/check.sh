#!/usr/bin/env bash
# Checks the `pakaura mapper new` templates: instantiates each one in a temporary folder the
# way the CLI does (placeholders substituted, wit/events.wit copied in), then runs its unit
# tests and its one-command build there, outside this repository.
#
#   guest-mappers/templates/check.sh [rust|python|js ...]     (default: all three)
#
# PAKAURA_BIN=path/to/pakaura   instantiate with `pakaura mapper new` itself (the templates
#                               embedded in that binary), then `pakaura mapper check` each
#                               component, `mapper run` it on a fixture with a valid and an
#                               invalid `tenant` setting, and `mapper test --bless` then
#                               `mapper test` a folder of fixtures.
# KEEP=1                        keep the temporary folder and print where it is.
# Tools: cargo with wasm32-wasip2; PAKAURA_TOOLS_VENV (or componentize-py 0.25.1 and pytest on
# PATH); PAKAURA_TOOLS_NODE_MODULES (else `npm install` runs in the instantiated project).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
name=acme-audit
crate_name=acme_audit
langs=("$@")
[ ${#langs[@]} -gt 0 ] || langs=(rust python js)
[ -z "${PAKAURA_TOOLS_VENV:-}" ] || export PATH="$PAKAURA_TOOLS_VENV/bin:$PATH"

work="$(mktemp -d "${TMPDIR:-/tmp}/pakaura-templates.XXXXXX")"
if [ -n "${KEEP:-}" ]; then
  echo "keeping $work"
else
  trap 'rm -rf "$work"' EXIT
fi

fail() {
  echo "templates/check.sh: $*" >&2
  exit 1
}

# What `pakaura mapper new NAME --lang LANG` does (it, with PAKAURA_BIN).
instantiate() {
  local lang="$1" dest="$2"
  if [ -n "${PAKAURA_BIN:-}" ]; then
    "$PAKAURA_BIN" mapper new "$name" --lang "$lang" --dir "$dest"
    return
  fi
  mkdir -p "$dest/wit"
  cp -R "$here/$lang/." "$dest/"
  find "$dest" -type f -exec sed -i -e "s/{{name}}/$name/g" -e "s/{{crate_name}}/$crate_name/g" {} +
  cp "$repo/wit/events.wit" "$dest/wit/events.wit"
  if grep -rn '{{' "$dest" --exclude-dir=wit; then
    fail "$lang: placeholders left after substitution"
  fi
}

# Runs the component with pakaura, when PAKAURA_BIN is set.
run_component() {
  local lang="$1" wasm="$2"
  [ -n "${PAKAURA_BIN:-}" ] || return 0
  local mutation="$repo/guest-mappers/fixtures/mutations/updated-title.json"
  echo "-- $lang: pakaura mapper check"
  "$PAKAURA_BIN" mapper check "$wasm"
  echo "-- $lang: pakaura mapper run --config tenant=acme"
  local out
  out="$("$PAKAURA_BIN" mapper run "$wasm" --mutation "$mutation" --config tenant=acme)"
  echo "$out"
  [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || fail "$lang: expected one envelope"
  printf '%s' "$out" | grep -q '"tenant":"acme"' || fail "$lang: no tenant extension"
  printf '%s' "$out" | grep -q '"type":"com.example.task.updated"' || fail "$lang: wrong type"
  printf '%s' "$out" | grep -q "\"mappername\":\"$name\"" || fail "$lang: wrong mapper name"
  echo "-- $lang: pakaura mapper run --config 'tenant=Acme Corp' (the documented err)"
  if out="$("$PAKAURA_BIN" mapper run "$wasm" --mutation "$mutation" --config 'tenant=Acme Corp' 2>&1)"; then
    fail "$lang: an invalid tenant was not refused: $out"
  fi
  echo "$out"
  printf '%s' "$out" | grep -q 'setting `tenant`' || fail "$lang: the refusal does not name the setting"
  echo "-- $lang: pakaura mapper test --bless, then pakaura mapper test"
  local fixtures
  fixtures="$(dirname "$wasm")/fixtures-check"
  mkdir -p "$fixtures"
  cp "$mutation" "$fixtures/updated-title.json"
  cp "$mutation" "$fixtures/bad-tenant.json"
  echo 'tenant=Acme Corp' >"$fixtures/bad-tenant.settings"
  "$PAKAURA_BIN" mapper test "$wasm" "$fixtures" --bless >/dev/null
  [ -f "$fixtures/bad-tenant.error" ] || fail "$lang: the invalid tenant was not blessed as an error"
  "$PAKAURA_BIN" mapper test "$wasm" "$fixtures" || fail "$lang: blessed fixtures do not pass"
}

for lang in "${langs[@]}"; do
  dest="$work/$lang/$name"
  echo "== $lang: instantiate in $dest"
  instantiate "$lang" "$dest"
  start=$SECONDS
  case "$lang" in
    rust)
      (cd "$dest" && cargo test -q && cargo build -q --release --target wasm32-wasip2)
      wasm="$dest/target/wasm32-wasip2/release/$crate_name.wasm"
      ;;
    python)
      (cd "$dest" && python3 -m pytest -q && ./build.sh)
      wasm="$dest/$crate_name.wasm"
      ;;
    js)
      if [ -z "${PAKAURA_TOOLS_NODE_MODULES:-}" ]; then
        (cd "$dest" && npm install --no-audit --no-fund --loglevel=error)
      fi
      (cd "$dest" && node --test && node build.mjs)
      wasm="$dest/$crate_name.wasm"
      ;;
    *) fail "unknown template $lang (rust, python or js)" ;;
  esac
  [ -f "$wasm" ] || fail "$lang: no component at $wasm"
  echo "-- $lang: built $(du -h "$wasm" | cut -f1) in $((SECONDS - start))s: $wasm"
  run_component "$lang" "$wasm"
done
echo "templates ok: ${langs[*]}"
