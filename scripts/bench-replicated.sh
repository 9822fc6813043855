#!/usr/bin/env bash
# Replicated benchmark (issue 20): three brokers on one ZooKeeper (Debian's package), one topic
# of one partition with replication factor 3 and min.insync.replicas=2, producers with acks=all,
# loaded by `odradek perf producer|consumer`: odradek (release build), and Apache Kafka when
# KAFKA_HOME holds a runnable broker, alternating, ROUNDS rounds each; prints medians beside
# Kafka's figures and the ratios odradek / Kafka. Per load it also prints the CPU the three
# brokers and the perf tool spent.
#   1. producer 1,000,000 x 100 B, acks=all, linger 5 ms, batch 64 KiB, unthrottled
#   2. consumer of those records (from the leader, while it also serves two followers), with the
#      followers idle (caught up), then busy: a producer appends 1 KiB records at 20,000/s
#      (acks=all) to the same partition while the consumer reads
#   3. producer 300,000 x 1 KiB, acks=all
#   4. producer at a fixed 50,000 records/s, 500,000 x 100 B, acks=all: p50 / p99 latency
#   then the CPU seconds of all three brokers per GB produced + consumed.
# ROUNDS, KAFKA_HOME, LIMIT: see scripts/bench-lib.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh

# Apache Kafka 2.4.1's figures under these loads with the same perf tool, from
# ../shared/kafka-2.4.1-baseline.md ("Side by side, 2026-12-07, with odradek's own Rust perf
# tool as the client", three brokers, one round; the machine was shared: +-20 %). Used when Kafka
# cannot run here.
recorded_producer_rps=92000
recorded_consumer_rps=3260000
recorded_producer_1k_mbs=16.5
recorded_fixed_p50=5.6
recorded_fixed_p99=32.7
recorded_cpu_per_gb=89.7

records=1000000
prefix=repl
replicas=3
acks=all
topic_config=(--config min.insync.replicas=2)

bench_setup "; 3 brokers, RF=3, min.insync.replicas=2, acks=all"

one_round() { # <kind> <round>
  local kind=$1 round=$2 id brokers=() servers=() bs all c0 c1 b0 b1 busy
  for id in 1 2 3; do
    start_broker "$kind" "$id" "$work/$kind-$round/broker-$id" "/$kind-$round" \
      offsets.topic.replication.factor=3 transaction.state.log.replication.factor=3
    brokers+=("$started_pid")
    servers+=("127.0.0.1:$started_port")
  done
  bs=$(IFS=,; echo "${servers[*]}")
  all="${brokers[*]}"
  c0=$(cpu_ticks "${brokers[@]}")

  load_100 "$kind" "$all" "$bs"
  # The same read while the followers fetch a steady stream of appends from the leader; its
  # CPU is left out of the CPU per GB below, which counts the other loads' bytes.
  b0=$(cpu_ticks "${brokers[@]}")
  timeout $((limit * 10)) "$bin" perf producer --bootstrap-server "$bs" --topic "$prefix-100" \
    --num-records 1000000000 --record-size 1024 --throughput 20000 --acks all --linger-ms 5 \
    --reporting-interval 100 >/dev/null 2>"$work/busy.err" &
  busy=$!
  pids+=("$busy")
  for _ in $(seq 1 $((limit * 10))); do
    if [ -s "$work/busy.err" ] || ! kill -0 "$busy" 2>/dev/null; then break; fi
    sleep 0.1
  done
  measured "consumer, followers busy" "$all" consumer --bootstrap-server "$bs" \
    --topic "$prefix-100" --messages $((records + 1))
  note "$kind" consumer_busy_rps "$(records_per_s "$load_out")"
  stop_pid "$busy"
  unset 'pids[-1]'
  b1=$(cpu_ticks "${brokers[@]}")

  load_1k_and_fixed "$kind" "$all" "$bs"
  c1=$(cpu_ticks "${brokers[@]}")
  broker_figures "$kind" $((c1 - c0 - (b1 - b0))) "${brokers[@]}"
  echo "   brokers: $cpu_per_gb CPU s per GB produced + consumed (all three), largest peak RSS $rss MiB"
  stop_brokers 3
}
each_round one_round

table_header
row "producer 1M x 100 B, acks=all, records/s" rate producer_rps "$recorded_producer_rps"
row "consumer of those (leader), records/s" rate consumer_rps "$recorded_consumer_rps"
row "  the same, followers busy (1 KiB at 20k/s), rec/s" rate consumer_busy_rps -
rows_1k_and_fixed
row "CPU s per GB, all brokers (lower wins)" plain cpu_per_gb "$recorded_cpu_per_gb"
row "largest broker peak RSS MiB (lower wins)" plain rss_mib -
kafka_note
