#!/usr/bin/env bash
# The whole test suite: installs what the tests need (idempotently), then runs every test.
# Used as is by CI (.ci/run). Works on a fresh Debian machine with Rust; needs no standard input.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

echo "== installing test dependencies"
need_apt=()
command -v javac >/dev/null 2>&1 || need_apt+=(default-jdk-headless)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-pip python3-venv)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
# The ZooKeeper server that tests/it/common/zookeeper.rs runs (Debian's package starts no service).
dpkg-query -W -f='${Status}' zookeeper 2>/dev/null | grep -q 'install ok installed' || need_apt+=(zookeeper)
if [ ${#need_apt[@]} -gt 0 ]; then
  as_root apt-get update -qq && as_root apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
scripts/java-deps.sh >/dev/null
venv=$(scripts/python-deps.sh | tail -1)   # also installs Debian's kcat
scripts/node-deps.sh

echo "== formatting and lints"
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings

echo "== Rust tests (unit, integration, and compat tests driving Java and Node clients)"
mkdir -p target
cargo test --all-targets --no-fail-fast 2>&1 | tee target/test-output.txt
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "cargo: %d passed, %d failed, %d skipped\n", p, f, i }' target/test-output.txt

echo "== Python clients (confluent-kafka, kafka-python, aiokafka) and kcat"
cargo build --quiet
ODRADEK_BIN="$PWD/target/debug/odradek" "$venv/bin/python" -m pytest compat-tests/python -q -p no:cacheprovider
