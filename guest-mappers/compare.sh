#!/usr/bin/env bash
# The golden cross-check of the three v2 mappers (Rust, Python, JavaScript):
#
#   guest-mappers/compare.sh PAKAURA_BIN OUT_DIR
#
# OUT_DIR holds v2_python.wasm and v2_js.wasm (./build-polyglot.sh OUT_DIR writes them); the
# Rust v2 component is $RUST_V2_WASM, else built here (cargo build --release --target
# wasm32-wasip2 in guest-mappers/). For every mutation in fixtures/mutations/, with the
# default settings and with a custom `schema-base-url`, it runs
#
#   PAKAURA_BIN mapper run FILE --mutation FIXTURE [--config schema-base-url=...]
#
# on each component and requires byte-identical results: the envelopes on stdout, the exit
# status and, on stderr, the `host.log` lines and the error line (timestamps removed). It also
# checks that fixtures/expected/ is what the Rust catalogue writes today (guest-mappers/golden),
# and records `mapper check` output, sizes and timings in OUT_DIR/compare-report.txt.
#
# CUSTOM=all (default) runs the custom setting on every fixture; CUSTOM=some on four of them.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ $# -ne 2 ]; then
  echo "usage: $0 PAKAURA_BIN OUT_DIR" >&2
  exit 2
fi
pakaura="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
out="$(cd "$2" && pwd)"
[ -x "$pakaura" ] || { echo "compare.sh: $1 is not an executable" >&2; exit 2; }
custom_url="https://schemas.example.com/events//"
report="$out/compare-report.txt"
work="$(mktemp -d "${TMPDIR:-/tmp}/pakaura-compare.XXXXXX")"
trap 'rm -rf "$work"' EXIT
: >"$report"
say() { printf '%s\n' "$*" | tee -a "$report"; }

if [ -z "${RUST_V2_WASM:-}" ]; then
  say "== building the Rust v2 mapper"
  (cd "$here" && cargo build -q --release --target wasm32-wasip2 -p pakaura-mapper-v2)
  RUST_V2_WASM="$here/target/wasm32-wasip2/release/pakaura_mapper_v2.wasm"
fi
names=(rust python js)
declare -A wasm=([rust]="$RUST_V2_WASM" [python]="$out/v2_python.wasm" [js]="$out/v2_js.wasm")
for n in "${names[@]}"; do
  [ -f "${wasm[$n]}" ] || { echo "compare.sh: missing ${wasm[$n]} (run build-polyglot.sh $out)" >&2; exit 2; }
done

say "== golden files (fixtures/expected) against the Rust catalogue"
cargo run -q --release --manifest-path "$here/golden/Cargo.toml" -- "$here/fixtures" --check 2>&1 | tee -a "$report"

# Seconds, with milliseconds, that "$@" takes; its output goes to $work/last.{out,err}.
timed() {
  local start end status=0
  start=$(date +%s.%N)
  "$@" >"$work/last.out" 2>"$work/last.err" || status=$?
  end=$(date +%s.%N)
  elapsed=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
  return $status
}

say "== pakaura mapper check"
for n in "${names[@]}"; do
  f="${wasm[$n]}"
  timed "$pakaura" mapper check "$f" || { cat "$work/last.err" >&2; exit 1; }
  size=$(stat -c %s "$f")
  say "-- $n: $(basename "$f"), $(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1048576 }') MB, check ${elapsed}s"
  sed 's/^/   /' "$work/last.out" | tee -a "$report"
done

# Only the mapper's own `host.log` lines and the error line, without timestamps.
export RUST_LOG=pakaura_host::mapper::imports=debug
normalise_stderr() {
  sed -E 's/\x1b\[[0-9;]*m//g; s/^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z +//' "$1"
}

run_one() { # NAME FIXTURE CONFIG... -> $work/NAME.{out,err,status}
  local n="$1" fixture="$2"
  shift 2
  local status=0
  timed "$pakaura" mapper run "${wasm[$n]}" --mutation "$fixture" "$@" || status=$?
  cp "$work/last.out" "$work/$n.out"
  normalise_stderr "$work/last.err" >"$work/$n.err"
  echo "$status" >"$work/$n.status"
  run_seconds[$n]="${run_seconds[$n]:-} $elapsed"
}

declare -A run_seconds
failures=0
checked=0
say "== pakaura mapper run, fixture by fixture"
for fixture in "$here"/fixtures/mutations/*.json; do
  fname="$(basename "$fixture" .json)"
  configs=("default")
  case "${CUSTOM:-all}:$fname" in
    all:* | some:created | some:updated-every-field | some:deleted | some:invalid-old-value) configs+=("custom") ;;
  esac
  for config in "${configs[@]}"; do
    args=()
    [ "$config" = default ] || args=(--config "schema-base-url=$custom_url")
    for n in "${names[@]}"; do run_one "$n" "$fixture" "${args[@]}"; done
    same=yes
    for n in python js; do
      for part in out err status; do
        cmp -s "$work/rust.$part" "$work/$n.$part" || {
          same=no
          echo "   $n differs from rust in $part:" | tee -a "$report"
          diff "$work/rust.$part" "$work/$n.$part" | sed 's/^/     /' | tee -a "$report" || true
        }
      done
    done
    if [ "$(cat "$work/rust.status")" = 0 ]; then
      result="$(wc -l <"$work/rust.out") envelope(s)"
    else
      result="err: $(tail -n1 "$work/rust.err")"
    fi
    checked=$((checked + 1))
    [ "$same" = yes ] || failures=$((failures + 1))
    say "$(printf '%-30s %-8s %-9s %s' "$fname" "$config" "identical=$same" "$result")"
  done
done

say "== mapper run wall time per mutation (seconds, compile included)"
for n in "${names[@]}"; do
  # shellcheck disable=SC2086
  say "$(printf '%-7s %s' "$n" "$(printf '%s\n' ${run_seconds[$n]} | sort -n | awk '{a[NR]=$1} END {printf "min %s  median %s  max %s  (%d runs)", a[1], a[int((NR+1)/2)], a[NR], NR}')")"
done

say "$((checked - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
