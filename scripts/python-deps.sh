#!/usr/bin/env bash
# Installs what the Python compatibility suite (compat-tests/python) needs, idempotently:
#   - a venv at ${ODRADEK_CACHE:-$HOME/.cache/odradek}/venv with the pinned packages of
#     compat-tests/python/requirements.txt (skipped when its stamp matches the requirement list);
#   - Debian's kcat, when no kcat is on PATH.
# Prints the venv path as the last (and only) line of stdout; all else goes to stderr.
# Needs no standard input.
set -euo pipefail
cd "$(dirname "$0")/.."
exec 3>&1 1>&2 # keep stdout for the final path only

export DEBIAN_FRONTEND=noninteractive
venv="${ODRADEK_CACHE:-$HOME/.cache/odradek}/venv"
req=compat-tests/python/requirements.txt

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi
}
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root apt-get install -y -qq "$@" >/dev/null
}

# --- venv ---------------------------------------------------------------------------------------
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
  mkdir -p "$(dirname "$venv")"
  rm -rf "$venv"
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    echo "python-deps: python3's venv/ensurepip missing, installing python3-venv" >&2
    apt_install python3-venv
  fi
  echo "python-deps: creating venv $venv" >&2
  python3 -m venv "$venv"
fi

# The stamp records the requirement list and the interpreter it was installed for.
want_stamp=$( { "$venv/bin/python" -c 'import sys; print(sys.version)'; cat "$req"; } | sha256sum | cut -d' ' -f1)
stamp="$venv/.odradek-requirements.sha256"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ]; then
  echo "python-deps: venv up to date ($venv)" >&2
else
  echo "python-deps: installing $req into $venv" >&2
  rm -f "$stamp"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --only-binary=confluent-kafka -r "$req"
  # Check the packages import (confluent-kafka must carry its own librdkafka).
  "$venv/bin/python" - <<'PY'
import confluent_kafka, kafka, aiokafka, pytest, snappy, lz4.frame, zstandard, prometheus_client
print("python-deps: confluent-kafka", confluent_kafka.version(), "librdkafka", confluent_kafka.libversion()[0],
      "| kafka-python", kafka.__version__, "| aiokafka", aiokafka.__version__, "| pytest", pytest.__version__)
PY
  echo "$want_stamp" > "$stamp"
fi

# --- kcat ---------------------------------------------------------------------------------------
if ! command -v kcat >/dev/null 2>&1; then
  echo "python-deps: installing kcat" >&2
  apt_install kcat
fi

echo "$venv" >&3
