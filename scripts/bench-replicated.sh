#!/usr/bin/env bash
# Replicated produce benchmark: three odradek brokers (release build) on one ZooKeeper (Debian's
# package), one topic with replication factor 3 and min.insync.replicas=2, producers with
# acks=all. Prints throughput and latency from `odradek perf producer` and, when a Kafka 2.4.1
# distribution is present, from its kafka-producer-perf-test.sh against the same cluster.
# Apache Kafka's own broker cannot run here (its jar is missing from the cached distribution), so
# its figures are quoted from ../shared/kafka-2.4.1-baseline.md (one broker, RF=1).
#   RECORDS (default 2000000), KAFKA_HOME (a Kafka 2.4.1 distribution; its Java tools are used).
set -euo pipefail
cd "$(dirname "$0")/.."
records=${RECORDS:-2000000}
kafka_home=${KAFKA_HOME:-$HOME/.cache/odradek/kafka_2.13-2.4.1}
work=$(mktemp -d "${TMPDIR:-/tmp}/odradek-bench-repl.XXXXXX")
pids=()
stop_pid() { # <pid>: SIGTERM, and SIGKILL when it has not exited within 30 s
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 300); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  # Brokers first, one at a time, and ZooKeeper last: a broker's controlled shutdown needs
  # ZooKeeper, and without it runs into a minute of timeouts.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[i]}"; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # <port> <what>
  for _ in $(seq 1 1200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "$2 did not listen on port $1" >&2
  return 1
}

cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/odradek"

zk_cp=/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar
if [ ! -f /usr/share/java/zookeeper.jar ]; then
  echo "ZooKeeper (Debian's zookeeper package) is needed: apt-get install zookeeper" >&2
  exit 1
fi
zk_port=$(free_port)
mkdir -p "$work/zk"
cat >"$work/zk/zoo.cfg" <<EOF
tickTime=500
initLimit=10
syncLimit=5
dataDir=$work/zk
clientPort=$zk_port
clientPortAddress=127.0.0.1
admin.enableServer=false
maxClientCnxns=0
EOF
java -Xmx128m -XX:+UseSerialGC -Dzookeeper.log.dir="$work/zk" -cp "$zk_cp" \
  org.apache.zookeeper.server.quorum.QuorumPeerMain "$work/zk/zoo.cfg" >"$work/zk/zk.log" 2>&1 &
pids+=($!)
wait_port "$zk_port" ZooKeeper

ports=()
metrics_ports=()
broker_pids=()
for id in 1 2 3; do
  port=$(free_port)
  ports+=("$port")
  metrics_ports+=("$(free_port)")
  "$bin" broker config/server.properties --override "broker.id=$id" \
    --override "listeners=PLAINTEXT://127.0.0.1:$port" --override "log.dirs=$work/broker-$id" \
    --override "metrics.port=${metrics_ports[-1]}" --override "zookeeper.connect=127.0.0.1:$zk_port/odradek" \
    >"$work/broker-$id.log" 2>&1 &
  pids+=($!)
  broker_pids+=($!)
  wait_port "$port" "broker $id"
done
# The bundled tools take one bootstrap broker; the Java tools get all three.
bootstrap="127.0.0.1:${ports[0]}"
bootstrap_all="127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"

# CPU time the three brokers have used so far, in clock ticks: how much of the two cores a load
# left to its client tells whether the broker or the client set the pace.
hz=$(getconf CLK_TCK)
broker_ticks() { for p in "${broker_pids[@]}"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | awk '{ s += $1 } END { print s }'; }
# Produce requests answered so far by all three brokers, per latency bucket ("<le> <count>"
# lines), from their TotalTimeMs histograms: the broker's share of the latency a client reports.
produce_buckets() {
  for m in "${metrics_ports[@]}"; do
    curl -s "http://127.0.0.1:$m/metrics" | sed -nE 's/^kafka_network_requestmetrics_totaltimems_bucket\{request="Produce",le="([^"]+)"\} ([0-9]+)$/\1 \2/p'
  done | awk '{ n[$1] += $2 } END { for (le in n) print le, n[le] }'
}
measured() { # <command...>: runs it, then prints what the brokers spent on it
  local t0 c0 t1 c1 b0 b1
  t0=$(date +%s%N); c0=$(broker_ticks); b0=$(produce_buckets)
  "$@"
  t1=$(date +%s%N); c1=$(broker_ticks); b1=$(produce_buckets)
  awk -v c=$((c1 - c0)) -v hz="$hz" -v ns=$((t1 - t0)) -v n="$(nproc)" 'BEGIN {
    s = ns / 1e9; printf "   brokers: %.2f CPU s in %.1f s, %.0f%% of the machine'"'"'s %d cores\n", c / hz, s, 100 * c / hz / s / n, n }'
  # The histogram's buckets bound each percentile from above.
  join <(sort <<<"$b0") <(sort <<<"$b1") | awk '{ print ($1 == "+Inf" ? 1e12 : $1), $3 - $2 }' | sort -g | awk '
    { le[NR] = $1; cum[NR] = $2 } END {
      total = cum[NR]; if (total == 0) exit
      split("50 99 99.9", q, " ")
      out = sprintf("   broker-side Produce time (%d requests):", total)
      for (i = 1; i <= 3; i++) for (j = 1; j <= NR; j++) if (cum[j] >= total * q[i] / 100) {
        out = out sprintf(" p%s <= %g ms", q[i], le[j]); break }
      for (j = 1; j <= NR; j++) if (cum[j] == total) { out = out sprintf(", all <= %g ms", le[j]); break }
      print out }'
}

create() { # <topic>
  "$bin" topics --bootstrap-server "$bootstrap" --create --topic "$1" --partitions 1 \
    --replication-factor 3 --config min.insync.replicas=2 >/dev/null
  # Until the leader answers an acks=all produce, its followers may not be fetching yet.
  for _ in $(seq 1 200); do
    if echo warm | "$bin" produce --bootstrap-server "$bootstrap" --topic "$1" --acks all >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  echo "topic $1 never accepted an acks=all produce" >&2
  return 1
}

echo "== odradek $(git rev-parse --short HEAD), $(nproc) cores; 3 brokers, RF=3, min.insync.replicas=2, acks=all"
create repl-odradek
echo "-- odradek perf producer, $records x 100 B, acks=all, linger 5 ms, batch 65536 B, unthrottled"
measured "$bin" perf producer --bootstrap-server "$bootstrap" --topic repl-odradek \
  --num-records "$records" --record-size 100 --throughput -1 --acks all --linger-ms 5 --batch-size 65536 2>/dev/null
create repl-odradek-fixed
echo "-- odradek perf producer at a fixed 50,000 records/s, 500,000 x 100 B, acks=all"
measured "$bin" perf producer --bootstrap-server "$bootstrap" --topic repl-odradek-fixed \
  --num-records 500000 --record-size 100 --throughput 50000 --acks all --linger-ms 5 --batch-size 65536 2>/dev/null

java_perf() { "$kafka_home/bin/kafka-producer-perf-test.sh" "$@" 2>/dev/null | tail -1; }
if [ -x "$kafka_home/bin/kafka-producer-perf-test.sh" ]; then
  create repl-java
  echo "-- kafka-producer-perf-test.sh (2.4.1 client), $records x 100 B, acks=all, linger.ms=5, batch.size=65536, unthrottled"
  measured java_perf --topic repl-java --num-records "$records" --record-size 100 \
    --throughput -1 --producer-props "bootstrap.servers=$bootstrap_all" acks=all linger.ms=5 batch.size=65536
  create repl-java-fixed
  echo "-- kafka-producer-perf-test.sh at a fixed 50,000 records/s, 500,000 x 100 B, acks=all"
  measured java_perf --topic repl-java-fixed --num-records 500000 --record-size 100 \
    --throughput 50000 --producer-props "bootstrap.servers=$bootstrap_all" acks=all linger.ms=5 batch.size=65536
else
  echo "-- kafka-producer-perf-test.sh not found in $kafka_home (see DEVELOPERS.md); Java client figures skipped"
fi

echo
echo "== Apache Kafka 2.4.1 (../shared/kafka-2.4.1-baseline.md; one broker, RF=1: no three-broker figures exist)"
echo "producer acks=all, unthrottled 2,000,000 x 100 B: 266k-342k records/s, 25-33 MB/s"
echo "producer at 50,000 records/s: p50 5-6 ms, p99 45-67 ms, p99.9 76-138 ms"
