# shellcheck shell=bash
# PostgreSQL for the tests (sourced by scripts/test after common.sh).
#
# pg_setup exports PAKAURA_TEST_POSTGRES, the administrative URL the tests create
# their databases through:
#   - PAKAURA_TEST_POSTGRES set: used as given; if nothing usable answers there the
#     run stops with a message naming the variable (no private cluster then);
#   - unset: the server at postgres://postgres@127.0.0.1:5432/test if one answers
#     and lets us in; otherwise a private cluster: initdb into a temporary folder,
#     a free port on 127.0.0.1 only, trust auth, its unix socket in that folder,
#     database `test`. pg_stop_private stops it and removes the folder (scripts/test
#     calls it from its EXIT trap, so also on failure and interruption).
# The server package is installed with apt-get when missing and allowed (root or
# passwordless sudo, PAKAURA_NO_INSTALL unset), without creating a system cluster.
# PAKAURA_PG_BINDIR names the folder with initdb, pg_ctl and postgres when they are
# not under /usr/lib/postgresql/*/bin or on PATH.

PAKAURA_PG_DEFAULT_URL="postgres://postgres@127.0.0.1:5432/test"

pg_tmp=""      # the private cluster's folder while it exists
pg_bindir=""   # its server binaries
pg_run=()      # prefix running a command as the cluster's (unprivileged) owner
PG_PROBE_ERROR=""

# pg_tool NAME: path of a PostgreSQL program, or nothing.
pg_tool() {
  local d found=""
  local -a versioned=()
  for d in "${PAKAURA_PG_BINDIR:-}" "$pg_bindir"; do
    [[ -n "$d" && -x "$d/$1" ]] && { printf '%s\n' "$d/$1"; return 0; }
  done
  found="$(command -v "$1" || true)"
  if [[ -z "$found" ]]; then
    mapfile -t versioned < <(printf '%s\n' /usr/lib/postgresql/*/bin/"$1" | sort -Vr)
    [[ -x "${versioned[0]}" ]] && found="${versioned[0]}"
  fi
  [[ -n "$found" ]] && printf '%s\n' "$found"
  return 0
}

# pg_tcp_open URL: true when something accepts TCP connections at URL's host and port
# (used when pg_isready is not installed).
pg_tcp_open() {
  local re='^postgres(ql)?://([^@/]*@)?(\[[^]/]*\]|[^:/?]*)(:([0-9]+))?'
  [[ "$1" =~ $re ]] || return 0 # not a URL we can read: let the tests try it
  local host="${BASH_REMATCH[3]:-localhost}" port="${BASH_REMATCH[5]:-5432}"
  host="${host#[}"
  host="${host%]}"
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null
}

# pg_probe URL: 0 when a server answers at URL and lets us in, 1 when it answers but
# refuses (the reason in PG_PROBE_ERROR), 2 when nothing answers.
pg_probe() {
  local url="$1" isready psql
  PG_PROBE_ERROR=""
  isready="$(pg_tool pg_isready)"
  if [[ -n "$isready" ]]; then
    "$isready" -q -t 5 -d "$url" >/dev/null 2>&1 || return 2
  else
    pg_tcp_open "$url" || return 2
  fi
  psql="$(pg_tool psql)"
  if [[ -n "$psql" ]]; then
    if ! PG_PROBE_ERROR="$(PGCONNECT_TIMEOUT=5 "$psql" -X -w -At -d "$url" -c 'select 1' 2>&1)"; then
      return 1
    fi
    PG_PROBE_ERROR=""
  fi
  return 0
}

pg_setup() {
  local rc=0
  if [[ -n "${PAKAURA_TEST_POSTGRES:-}" ]]; then
    say "PostgreSQL: PAKAURA_TEST_POSTGRES=$PAKAURA_TEST_POSTGRES (set by you, used as given)"
    pg_probe "$PAKAURA_TEST_POSTGRES" || rc=$?
    case $rc in
      0) ;;
      1) die "PostgreSQL at PAKAURA_TEST_POSTGRES=$PAKAURA_TEST_POSTGRES answers but refuses us:" \
        "$PG_PROBE_ERROR" \
        "fix the URL (its user must be allowed to create databases), or unset" \
        "PAKAURA_TEST_POSTGRES to let the tests start a private PostgreSQL" ;;
      *) die "no PostgreSQL answers at PAKAURA_TEST_POSTGRES=$PAKAURA_TEST_POSTGRES" \
        "start that server or fix the variable; or unset PAKAURA_TEST_POSTGRES to let the" \
        "tests use the one at $PAKAURA_PG_DEFAULT_URL or start a private one" ;;
    esac
    export PAKAURA_TEST_POSTGRES
    return 0
  fi
  pg_probe "$PAKAURA_PG_DEFAULT_URL" || rc=$?
  case $rc in
    0)
      say "PostgreSQL: using the server at $PAKAURA_PG_DEFAULT_URL"
      export PAKAURA_TEST_POSTGRES="$PAKAURA_PG_DEFAULT_URL"
      return 0
      ;;
    1) say "PostgreSQL at $PAKAURA_PG_DEFAULT_URL answers but refuses us (${PG_PROBE_ERROR//$'\n'/ });" \
      "starting a private one" ;;
    *) say "PostgreSQL: none answers at $PAKAURA_PG_DEFAULT_URL; starting a private one" ;;
  esac
  pg_start_private
}

# pg_find_bindir: prints the folder holding initdb, pg_ctl and postgres.
pg_find_bindir() {
  local d
  local -a dirs=()
  if [[ -n "${PAKAURA_PG_BINDIR:-}" ]]; then
    dirs=("$PAKAURA_PG_BINDIR")
  else
    mapfile -t dirs < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -Vr)
    d="$(command -v initdb || true)"
    [[ -n "$d" ]] && dirs+=("$(dirname "$(readlink -f "$d")")")
  fi
  for d in "${dirs[@]}"; do
    if [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]]; then
      printf '%s\n' "$d"
      return 0
    fi
  done
  return 1
}

# pg_online_clusters: "VERSION NAME" of each running Debian cluster (pg_lsclusters).
pg_online_clusters() {
  command -v pg_lsclusters >/dev/null || return 0
  pg_lsclusters -h 2>/dev/null | awk '$4 ~ /^online/ { print $1, $2 }'
}

# pg_install_server: apt-get install postgresql without a system cluster: a
# postgresql-common drop-in sets create_main_cluster = false for the install (and
# is removed after it); any cluster that is running afterwards but was not before
# is stopped.
pg_install_server() {
  local dropin=/etc/postgresql-common/createcluster.d/50-pakaura-no-main-cluster.conf
  local created=0 rc=0 before cluster
  before="$(pg_online_clusters)"
  if [[ ! -e "$dropin" ]]; then
    as_root mkdir -p "${dropin%/*}" || return 1
    printf '%s\n' "# Written by the Pakaura test script (scripts/lib/postgres.sh) while it installs" \
      "# the PostgreSQL server for its private test clusters; removed when that ends." \
      "create_main_cluster = false" | as_root tee "$dropin" >/dev/null || return 1
    created=1
  fi
  apt_install --no-install-recommends postgresql || rc=$?
  if [[ $created == 1 ]]; then as_root rm -f "$dropin" || rc=1; fi
  while read -r cluster; do
    [[ -n "$cluster" ]] || continue
    grep -qxF "$cluster" <<<"$before" && continue
    warn "the install started the PostgreSQL cluster $cluster; stopping it"
    # shellcheck disable=SC2086 # "VERSION NAME" is two arguments
    as_root pg_ctlcluster $cluster stop || rc=1
  done <<<"$(pg_online_clusters)"
  return "$rc"
}

# pg_free_port: a TCP port on 127.0.0.1 nothing listens on now.
pg_free_port() {
  local port _
  for _ in {1..100}; do
    # Below Linux's ephemeral range (32768 and up by default), where the port of an
    # outgoing connection (wrk's, a database client's) would make a later bind fail.
    port=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      printf '%s\n' "$port"
      return 0
    fi
  done
  return 1
}

pg_start_private() {
  local hint_install hint_elsewhere why
  hint_install="install the server:  sudo apt-get install postgresql   (Debian/Ubuntu; the tests then run their own private cluster and need no system one)"
  hint_elsewhere="or use a server you have:  PAKAURA_TEST_POSTGRES=postgres://USER@HOST:PORT/DB ./scripts/test   (USER must be allowed to create databases)"
  if ! pg_bindir="$(pg_find_bindir)"; then
    why="the PostgreSQL server (initdb, pg_ctl, postgres) is not installed"
    [[ -z "${PAKAURA_PG_BINDIR:-}" ]] || why="PAKAURA_PG_BINDIR=$PAKAURA_PG_BINDIR has no initdb, pg_ctl and postgres"
    if can_install_packages; then
      say "PostgreSQL: $why; installing it (apt-get install postgresql, no system cluster)"
      pg_install_server || die "could not install the PostgreSQL server with apt-get (output above)" \
        "$hint_install" "$hint_elsewhere"
      pg_bindir="$(pg_find_bindir)" || die "$why, even after apt-get install postgresql" \
        "point PAKAURA_PG_BINDIR at the folder with initdb, pg_ctl and postgres, or unset it" \
        "$hint_elsewhere"
    else
      local cannot="not root and no passwordless sudo"
      [[ "${PAKAURA_NO_INSTALL:-0}" != 1 ]] || cannot="PAKAURA_NO_INSTALL=1"
      command -v apt-get >/dev/null || cannot="no apt-get"
      die "no PostgreSQL answers at $PAKAURA_PG_DEFAULT_URL and $why, so the tests cannot start a private one (not installing it: $cannot)" \
        "$hint_install" \
        "   (elsewhere: your system's PostgreSQL server package; set PAKAURA_PG_BINDIR=<its bin folder> if initdb is not on PATH)" \
        "$hint_elsewhere"
    fi
  fi

  pg_tmp="$(mktemp -d "${TMPDIR:-/tmp}/pakaura-pg.XXXXXX")"
  pg_run=()
  local owner
  owner="$(id -un)"
  if [[ $EUID -eq 0 ]]; then
    # initdb and postgres refuse to run as root: the cluster belongs to `postgres`
    # (made by the server package), or to `nobody` when there is no such user.
    owner=postgres
    id -u postgres >/dev/null 2>&1 || owner=nobody
    chown "$owner" "$pg_tmp"
    pg_run=(runuser -u "$owner" --)
  fi
  chmod 700 "$pg_tmp"
  local data="$pg_tmp/data" locale=C locales
  locales="$(locale -a 2>/dev/null || true)"
  if grep -qix 'c\.utf-\?8' <<<"$locales"; then locale=C.UTF-8; fi
  say "PostgreSQL: private cluster in $pg_tmp (initdb as $owner, $pg_bindir)"
  if ! (cd "$pg_tmp" && "${pg_run[@]}" "$pg_bindir/initdb" -D "$data" -U postgres -A trust \
    -E UTF8 --locale="$locale" -N) >"$pg_tmp/initdb.log" 2>&1; then
    cat "$pg_tmp/initdb.log" >&2
    die "initdb failed (output above)" "$hint_elsewhere"
  fi
  # Loopback only, the socket in the private folder; durability is not wanted here.
  printf '%s\n' "" "# scripts/lib/postgres.sh: a private test cluster" \
    "listen_addresses = '127.0.0.1'" "unix_socket_directories = '$pg_tmp'" \
    "max_connections = 200" "fsync = off" "synchronous_commit = off" \
    "full_page_writes = off" >>"$data/postgresql.conf"
  if ! echo "CREATE DATABASE test" | (cd "$pg_tmp" && "${pg_run[@]}" "$pg_bindir/postgres" \
    --single -D "$data" postgres) >"$pg_tmp/createdb.log" 2>&1; then
    cat "$pg_tmp/createdb.log" >&2
    die "could not create the database test in the private cluster (output above)"
  fi

  local port="" attempt
  for attempt in 1 2 3 4 5; do
    port="$(pg_free_port)" || die "found no free TCP port on 127.0.0.1 for PostgreSQL"
    if (cd "$pg_tmp" && "${pg_run[@]}" "$pg_bindir/pg_ctl" -D "$data" -l "$pg_tmp/server.log" \
      -o "-p $port" -w -t 60 start) >"$pg_tmp/pg_ctl.log" 2>&1; then
      break
    fi
    if [[ $attempt -lt 5 ]] && grep -qs 'could not bind\|already in use' "$pg_tmp/server.log"; then
      note "port $port was taken meanwhile; another one"
      continue
    fi
    cat "$pg_tmp/pg_ctl.log" "$pg_tmp/server.log" >&2 || true
    die "the private PostgreSQL did not start (output above)"
  done
  export PAKAURA_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/test"
  local rc=0
  pg_probe "$PAKAURA_TEST_POSTGRES" || rc=$?
  [[ $rc == 0 ]] || die "the private PostgreSQL started but does not answer at $PAKAURA_TEST_POSTGRES" \
    "$PG_PROBE_ERROR"
  note "PAKAURA_TEST_POSTGRES=$PAKAURA_TEST_POSTGRES (removed when the run ends)"
}

# pg_stop_private: stops the private cluster, if any, and removes its folder.
pg_stop_private() {
  [[ -n "$pg_tmp" && -d "$pg_tmp" ]] || return 0
  local data="$pg_tmp/data" pid="" p _
  say "PostgreSQL: stopping the private cluster and removing $pg_tmp"
  if [[ -f "$data/postmaster.pid" ]]; then
    pid="$(head -n1 "$data/postmaster.pid" 2>/dev/null || true)"
    (cd "$pg_tmp" && "${pg_run[@]}" "$pg_bindir/pg_ctl" -D "$data" -m fast -w -t 20 stop) \
      >/dev/null 2>&1 || true
    # pg_ctl puts the server in a session of its own: its id is the process group.
    if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  # Any server process still working in the folder (say, one started by a pg_ctl
  # that was interrupted before it wrote postmaster.pid).
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    pid=""
    for p in /proc/[0-9]*; do
      [[ "$(readlink "$p/cwd" 2>/dev/null)" == "$data" ]] && pid+=" ${p#/proc/}"
    done
    [[ -n "$pid" ]] || break
    # shellcheck disable=SC2086 # a list of process ids
    kill -KILL $pid 2>/dev/null || true
    sleep 0.2
  done
  rm -rf "$pg_tmp"
  pg_tmp=""
}
