#!/usr/bin/env bash
# Installs the Node.js clients of the compat suite (KafkaJS) into compat-tests/node/node_modules.
# Idempotent: `npm ci`-like install only when package.json changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/../compat-tests/node"
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq nodejs npm >/dev/null; fi
fi
stamp=node_modules/.odradek-stamp
if [ ! -f "$stamp" ] || ! cmp -s package.json "$stamp"; then
  npm install --no-audit --no-fund --silent >&2
  cp package.json "$stamp"
fi
