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
records_1k=300000
records_fixed=500000
bytes_moved=$((records * 100 * 2 + records_1k * 1024 + records_fixed * 100))
topic_config=(--config min.insync.replicas=2)

start_zookeeper
kafka_ran=0
kinds=(odradek)
if kafka_runnable; then kinds+=(kafka); kafka_ran=1; fi
echo "== odradek $commit, $(nproc) cores; 3 brokers, RF=3, min.insync.replicas=2, acks=all; load average $(cut -d' ' -f1-3 /proc/loadavg)"

for round in $(seq 1 "$rounds"); do
  for kind in "${kinds[@]}"; do
    echo "-- $kind, round $round"
    brokers=()
    servers=()
    for id in 1 2 3; do
      start_broker "$kind" "$id" "$work/$kind-$round/broker-$id" "/$kind-$round" \
        offsets.topic.replication.factor=3 transaction.state.log.replication.factor=3
      brokers+=("$started_pid")
      servers+=("127.0.0.1:$started_port")
    done
    bs=$(IFS=,; echo "${servers[*]}")
    all="${brokers[*]}"
    c0=$(cpu_ticks "${brokers[@]}")

    create_topic "$bs" repl-100 3 all "${topic_config[@]}"
    measured "producer $records x 100 B" "$all" producer --bootstrap-server "$bs" \
      --topic repl-100 --num-records "$records" --record-size 100 --throughput -1 --acks all \
      --linger-ms 5 --batch-size 65536
    note "$kind" producer_rps "$(records_per_s "$load_out")"
    measured "consumer of those records" "$all" consumer --bootstrap-server "$bs" \
      --topic repl-100 --messages $((records + 1))
    note "$kind" consumer_rps "$(records_per_s "$load_out")"
    # The same read while the followers fetch a steady stream of appends from the leader; its
    # CPU is left out of the CPU per GB below, which counts the other loads' bytes.
    b0=$(cpu_ticks "${brokers[@]}")
    timeout $((limit * 10)) "$bin" perf producer --bootstrap-server "$bs" --topic repl-100 \
      --num-records 1000000000 --record-size 1024 --throughput 20000 --acks all --linger-ms 5 \
      --reporting-interval 100 >/dev/null 2>"$work/busy.err" &
    busy=$!
    pids+=("$busy")
    for _ in $(seq 1 $((limit * 10))); do
      if [ -s "$work/busy.err" ] || ! kill -0 "$busy" 2>/dev/null; then break; fi
      sleep 0.1
    done
    measured "consumer, followers busy" "$all" consumer --bootstrap-server "$bs" \
      --topic repl-100 --messages $((records + 1))
    note "$kind" consumer_busy_rps "$(records_per_s "$load_out")"
    stop_pid "$busy"
    unset 'pids[-1]'
    b1=$(cpu_ticks "${brokers[@]}")

    create_topic "$bs" repl-1k 3 all "${topic_config[@]}"
    measured "producer $records_1k x 1 KiB" "$all" producer --bootstrap-server "$bs" \
      --topic repl-1k --num-records "$records_1k" --record-size 1024 --throughput -1 --acks all \
      --linger-ms 5 --batch-size 65536
    note "$kind" producer_1k_mbs "$(mb_per_s "$load_out")"

    create_topic "$bs" repl-fixed 3 all "${topic_config[@]}"
    measured "producer at 50k records/s" "$all" producer --bootstrap-server "$bs" \
      --topic repl-fixed --num-records "$records_fixed" --record-size 100 --throughput 50000 \
      --acks all --linger-ms 5 --batch-size 65536
    note "$kind" fixed_p50 "$(p50_ms "$load_out")"
    note "$kind" fixed_p99 "$(p99_ms "$load_out")"

    c1=$(cpu_ticks "${brokers[@]}")
    cpu_per_gb=$(awk -v t=$((c1 - c0 - (b1 - b0))) -v hz="$hz" -v b="$bytes_moved" 'BEGIN { printf "%.2f", t / hz / (b / 1e9) }')
    rss=$(peak_rss_mib "${brokers[@]}")
    note "$kind" cpu_per_gb "$cpu_per_gb"
    note "$kind" rss_mib "$rss"
    echo "   brokers: $cpu_per_gb CPU s per GB produced + consumed (all three), largest peak RSS $rss MiB"
    stop_brokers 3
  done
done

table_header
row "producer 1M x 100 B, acks=all, records/s" rate producer_rps "$recorded_producer_rps"
row "consumer of those (leader), records/s" rate consumer_rps "$recorded_consumer_rps"
row "  the same, followers busy (1 KiB at 20k/s), rec/s" rate consumer_busy_rps -
row "producer 300k x 1 KiB, acks=all, MB/s" plain producer_1k_mbs "$recorded_producer_1k_mbs"
row "producer at 50k records/s: p50 ms (lower wins)" plain fixed_p50 "$recorded_fixed_p50"
row "producer at 50k records/s: p99 ms (lower wins)" plain fixed_p99 "$recorded_fixed_p99"
row "CPU s per GB, all brokers (lower wins)" plain cpu_per_gb "$recorded_cpu_per_gb"
row "largest broker peak RSS MiB (lower wins)" plain rss_mib -
kafka_note
