#!/usr/bin/env bash
# The log half of the scale benchmark: many partitions in one log directory, without the
# controller or the metadata store (scripts/bench-scale.sh measures the broker as a whole).
# Prints open files per partition at rest and the time a clean restart takes to load every log
# and read one record from each: 10,000 partitions of one segment, then 1,000 partitions of 20
# segments (where cold segments' files are opened on demand and closed again).
# BENCH_PARTITIONS, BENCH_THREADS (num.recovery.threads.per.data.dir) override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
partitions=${BENCH_PARTITIONS:-10000}
threads=${BENCH_THREADS:-1}
work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/odradek-bench-scale-log.XXXXXX")
trap 'rm -rf "$work"' EXIT
cargo build --release --quiet --example bench_scale_log
bin=target/release/examples/bench_scale_log

echo "== $partitions partitions, 1 segment each, $threads loading thread(s)"
"$bin" "$work/one" "$partitions" 1 "$threads"
rm -rf "$work/one"
echo "== $((partitions / 10)) partitions, 20 segments each, $threads loading thread(s)"
"$bin" "$work/many" "$((partitions / 10))" 20 "$threads"
echo "targets: <= 1.2 open files per partition; restart <= 10 s"
