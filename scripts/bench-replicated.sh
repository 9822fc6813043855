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
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
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
for id in 1 2 3; do
  port=$(free_port)
  ports+=("$port")
  "$bin" broker config/server.properties --override "broker.id=$id" \
    --override "listeners=PLAINTEXT://127.0.0.1:$port" --override "log.dirs=$work/broker-$id" \
    --override metrics.port=0 --override "zookeeper.connect=127.0.0.1:$zk_port/odradek" \
    >"$work/broker-$id.log" 2>&1 &
  pids+=($!)
  wait_port "$port" "broker $id"
done
# The bundled tools take one bootstrap broker; the Java tools get all three.
bootstrap="127.0.0.1:${ports[0]}"
bootstrap_all="127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"

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
"$bin" perf producer --bootstrap-server "$bootstrap" --topic repl-odradek \
  --num-records "$records" --record-size 100 --throughput -1 --acks all --linger-ms 5 --batch-size 65536 2>/dev/null
create repl-odradek-fixed
echo "-- odradek perf producer at a fixed 50,000 records/s, 500,000 x 100 B, acks=all"
"$bin" perf producer --bootstrap-server "$bootstrap" --topic repl-odradek-fixed \
  --num-records 500000 --record-size 100 --throughput 50000 --acks all --linger-ms 5 --batch-size 65536 2>/dev/null

if [ -x "$kafka_home/bin/kafka-producer-perf-test.sh" ]; then
  create repl-java
  echo "-- kafka-producer-perf-test.sh (2.4.1 client), $records x 100 B, acks=all, linger.ms=5, batch.size=65536, unthrottled"
  "$kafka_home/bin/kafka-producer-perf-test.sh" --topic repl-java --num-records "$records" --record-size 100 \
    --throughput -1 --producer-props "bootstrap.servers=$bootstrap_all" acks=all linger.ms=5 batch.size=65536 2>/dev/null | tail -1
  create repl-java-fixed
  echo "-- kafka-producer-perf-test.sh at a fixed 50,000 records/s, 500,000 x 100 B, acks=all"
  "$kafka_home/bin/kafka-producer-perf-test.sh" --topic repl-java-fixed --num-records 500000 --record-size 100 \
    --throughput 50000 --producer-props "bootstrap.servers=$bootstrap_all" acks=all linger.ms=5 batch.size=65536 2>/dev/null | tail -1
else
  echo "-- kafka-producer-perf-test.sh not found in $kafka_home (see DEVELOPERS.md); Java client figures skipped"
fi

echo
echo "== Apache Kafka 2.4.1 (../shared/kafka-2.4.1-baseline.md; one broker, RF=1: no three-broker figures exist)"
echo "producer acks=all, unthrottled 2,000,000 x 100 B: 266k-342k records/s, 25-33 MB/s"
echo "producer at 50,000 records/s: p50 5-6 ms, p99 45-67 ms, p99.9 76-138 ms"
