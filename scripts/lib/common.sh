# shellcheck shell=bash
# Shared by scripts/run, scripts/test and scripts/lint: logging, the loud SKIP
# banners, package installs (apt-get, as root or with passwordless sudo) and the
# Rust toolchain check. Sourced, never run; the caller sets `set -euo pipefail`.
#
# Settings read here:
#   PAKAURA_CACHE       cache directory (default ${XDG_CACHE_HOME:-$HOME/.cache}/pakaura)
#   PAKAURA_NO_INSTALL  1: never install system packages; say what to install instead

# shellcheck disable=SC2034 # used by the scripts that source this file
PAKAURA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PAKAURA_CACHE="${PAKAURA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pakaura}"

# The messages go to the script's stderr as it was at the start, also from a trap
# that fires while a command's output is redirected into an install log.
exec {PAKAURA_MSG_FD}>&2

# What a run will not test, one line each, for the banners at its start and end.
PAKAURA_SKIPS=()

# Seconds since the script started, for the log lines.
pakaura_elapsed() { printf '%4ds' "$SECONDS"; }

say() { printf '== [%s] %s\n' "$(pakaura_elapsed)" "$*" >&"$PAKAURA_MSG_FD"; }
note() { printf '   %s\n' "$*" >&"$PAKAURA_MSG_FD"; }
warn() { printf 'warning: %s\n' "$*" >&"$PAKAURA_MSG_FD"; }
die() {
  printf 'error: %s\n' "$1" >&"$PAKAURA_MSG_FD"
  shift
  local line
  for line in "$@"; do printf '       %s\n' "$line" >&"$PAKAURA_MSG_FD"; done
  exit 1
}

# skip WHAT HOW...: record that WHAT will not be tested and how to get it.
skip() {
  local what="$1" line
  shift
  PAKAURA_SKIPS+=("$what")
  for line in "$@"; do PAKAURA_SKIPS+=("    $line"); done
}

# Prints the SKIP banner (nothing when nothing is skipped).
print_skips() {
  [[ ${#PAKAURA_SKIPS[@]} -gt 0 ]] || return 0
  local bar line
  bar="$(printf '%.0s#' {1..78})"
  {
    echo
    echo "$bar"
    echo "# SKIP: some tools could not be had; what needs them will NOT be tested:"
    for line in "${PAKAURA_SKIPS[@]}"; do echo "#   $line"; done
    echo "$bar"
    echo
  } >&"$PAKAURA_MSG_FD"
}

# True when this process may install system packages: root, or passwordless sudo.
can_install_packages() {
  [[ "${PAKAURA_NO_INSTALL:-0}" != 1 ]] || return 1
  command -v apt-get >/dev/null || return 1
  [[ $EUID -eq 0 ]] && return 0
  command -v sudo >/dev/null && sudo -n true 2>/dev/null
}

# as_root CMD...: runs CMD as root (directly, or through passwordless sudo).
as_root() {
  if [[ $EUID -eq 0 ]]; then "$@"; else sudo -n "$@"; fi
}

# apt_install PKG...: installs Debian packages non-interactively; runs
# `apt-get update` first when the package lists are empty or the install fails.
apt_install() {
  local log="${TMPDIR:-/tmp}/pakaura-apt.$$.log"
  local -a apt=(env DEBIAN_FRONTEND=noninteractive apt-get -y -q
    -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef
    -o Dpkg::Options::=--force-confold)
  if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
    note "apt-get update"
    as_root "${apt[@]}" update >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; return 1; }
  fi
  note "apt-get install $*"
  if ! as_root "${apt[@]}" install "$@" >"$log" 2>&1; then
    note "apt-get install failed; apt-get update and one more try"
    if ! { as_root "${apt[@]}" update && as_root "${apt[@]}" install "$@"; } >"$log" 2>&1; then
      tail -n 20 "$log" >&2
      rm -f "$log"
      return 1
    fi
  fi
  rm -f "$log"
}

# ensure_rust: rustup and cargo are there and the wasm32-wasip2 target (the build
# compiles the guest mappers for it) is installed. RUSTUP_AUTO_INSTALL=0 may be
# set, so nothing is added implicitly: we add what is missing.
ensure_rust() {
  if ! command -v rustup >/dev/null || ! command -v cargo >/dev/null; then
    die "rustup and cargo are needed and not on PATH" \
      "install Rust with rustup (https://rustup.rs), then run this again"
  fi
  local installed
  installed="$(rustup target list --installed)"
  if ! grep -qx wasm32-wasip2 <<<"$installed"; then
    say "adding the Rust target wasm32-wasip2 (rustup target add)"
    rustup target add wasm32-wasip2
  fi
}

# ensure_rust_components COMPONENT...: the named rustup components are installed.
ensure_rust_components() {
  local installed component
  installed="$(rustup component list --installed)"
  for component in "$@"; do
    if ! grep -q "^${component}-" <<<"$installed"; then
      say "adding the Rust component $component (rustup component add)"
      rustup component add "$component"
    fi
  done
}

# first_build_note MARKER WHAT: says that the build takes minutes when MARKER (a
# file or folder a finished build leaves) is absent.
first_build_note() {
  if [[ ! -e "$1" ]]; then
    say "first build of $2: this compiles wasmtime and the guest mappers and takes" \
      "minutes (about 10 on 2 cores); later builds are incremental"
  fi
}

# The command run_child is running (leader of its own process group), and what it is.
child=""
child_what=""

# run_child CMD...: runs CMD in a process group of its own and waits for it, so a
# signal to the script is handled at once (bash would otherwise wait for a
# foreground command to end) and stop_child can stop all CMD started.
run_child() {
  local rc=0
  child_what="$*"
  if command -v setsid >/dev/null; then setsid "$@" & else "$@" & fi
  child=$!
  wait "$child" || rc=$?
  child=""
  return "$rc"
}

# stop_child: stops what run_child is running, if anything (from an EXIT trap).
stop_child() {
  [[ -n "$child" ]] || return 0
  say "stopping: $child_what"
  kill -TERM -- "-$child" 2>/dev/null || kill -TERM "$child" 2>/dev/null || true
  local _ state
  # Up to 2 s: a test binary running the host may handle SIGTERM itself.
  for _ in {1..20}; do
    # An exited leader stays a zombie, and keeps the group, until it is waited for.
    state="$(cat "/proc/$child/stat" 2>/dev/null || true)"
    state="${state##*) }"
    [[ "${state:0:1}" != Z ]] || wait "$child" 2>/dev/null || true
    kill -0 -- "-$child" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$child" 2>/dev/null || true
  wait "$child" 2>/dev/null || true
  child=""
}

# short_hash FILE: the first 16 hex digits of FILE's SHA-256.
short_hash() {
  local sum
  sum="$(sha256sum "$1")"
  printf '%s\n' "${sum:0:16}"
}

# with_lock NAME CMD...: runs CMD holding an exclusive lock on
# $PAKAURA_CACHE/.lock-NAME, so concurrent runs sharing the cache install once.
with_lock() {
  local name="$1" fd
  shift
  mkdir -p "$PAKAURA_CACHE"
  if ! command -v flock >/dev/null; then
    "$@"
    return
  fi
  exec {fd}>"$PAKAURA_CACHE/.lock-$name"
  if ! flock -n "$fd"; then
    note "waiting for another run installing $name into $PAKAURA_CACHE"
    flock "$fd"
  fi
  local rc=0
  "$@" || rc=$?
  exec {fd}>&-
  return "$rc"
}
