#!/usr/bin/env bash
# The whole test suite: installs what the tests need (idempotently), then runs every test.
# Used as is by CI (.ci/run). Works on a fresh Debian machine with Rust; needs no standard input.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== installing test dependencies"
export DEBIAN_FRONTEND=noninteractive
need_apt=()
command -v javac >/dev/null 2>&1 || need_apt+=(default-jdk-headless)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-pip)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null; fi
fi
scripts/java-deps.sh >/dev/null

echo "== formatting and lints"
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings

echo "== tests"
cargo test --all-targets 2>&1 | tee target/test-output.txt
# A summary line a reader (and CI) can take in at a glance.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "all: %d passed, %d failed, %d skipped\n", p, f, i }' target/test-output.txt
