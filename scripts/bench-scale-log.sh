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

# The same at the broker (embedded store): BENCH_BROKER=1 creates BENCH_TOPICS topics of 100
# partitions through the admin API, then restarts the broker cleanly and times until every
# partition has a leader again.
if [ "${BENCH_BROKER:-0}" = 1 ]; then
  topics=${BENCH_TOPICS:-100}
  cargo build --release --quiet --bin odradek
  odradek=target/release/odradek
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  start_broker() {
    "$odradek" broker config/server.properties --override "listeners=PLAINTEXT://127.0.0.1:$port" \
      --override "log.dirs=$work/broker/logs" --override metrics.port=0 \
      --override "num.recovery.threads.per.data.dir=$threads" >>"$work/broker.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 600); do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
      sleep 0.1
    done
    echo "broker did not listen" >&2; tail -20 "$work/broker.log" >&2; kill "$pid"; exit 1
  }
  # Partitions of the bench topics with a leader, from `topics --describe`.
  led() {
    "$odradek" topics --bootstrap-server "127.0.0.1:$port" --describe 2>/dev/null |
      grep -E $'^\tTopic: scale-' | grep -cv $'Leader: -1' || true
  }
  wait_led() {
    local want=$1
    for _ in $(seq 1 3000); do
      [ "$(led)" -ge "$want" ] && return 0
      sleep 0.2
    done
    echo "not every partition got a leader" >&2; return 1
  }
  trap 'kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
  start_broker
  echo "== broker, $topics topics x 100 partitions, embedded store"
  t0=$(date +%s.%N)
  for t in $(seq 1 "$topics"); do
    "$odradek" topics --bootstrap-server "127.0.0.1:$port" --create --topic "scale-$t" \
      --partitions 100 --replication-factor 1 >/dev/null
  done
  wait_led $((topics * 100))
  t1=$(date +%s.%N)
  fds=$(ls "/proc/$pid/fd" | wc -l)
  rss=$(awk '/VmRSS/ {print int($2/1024)}' "/proc/$pid/status")
  awk -v a="$t0" -v b="$t1" -v n=$((topics * 100)) -v f="$fds" -v r="$rss" 'BEGIN {
    printf "created and led %d partitions in %.1f s; %d open files (%.2f per partition), RSS %d MiB\n", n, b - a, f, f / n, r }'
  kill -TERM "$pid"; wait "$pid" || true
  t0=$(date +%s.%N)
  start_broker
  wait_led $((topics * 100))
  t1=$(date +%s.%N)
  fds=$(ls "/proc/$pid/fd" | wc -l)
  awk -v a="$t0" -v b="$t1" -v n=$((topics * 100)) -v f="$fds" 'BEGIN {
    printf "clean restart until all %d partitions led: %.1f s; %d open files (%.2f per partition)\n", n, b - a, f, f / n }'
  grep -m1 "open-file limit allows" "$work/broker.log" | sed 's/\x1b\[[0-9;]*m//g' || true
  kill -TERM "$pid"; wait "$pid" || true
fi
