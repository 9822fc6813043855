#!/usr/bin/env bash
# Broker benchmark, one broker, one partition (issue 20): the loads of `odradek perf
# producer|consumer` (a client lighter than Kafka's Java tools, so that the broker is the bound)
# against odradek (release build) on a ZooKeeper (Debian's package), and against Apache Kafka
# when KAFKA_HOME holds a runnable broker, alternating, ROUNDS rounds each; prints medians beside
# Kafka's figures and the ratios odradek / Kafka. Per load it also prints the CPU the broker and
# the perf tool spent: which of the two set the pace.
#   1. producer 2,000,000 x 100 B, acks=1, linger 5 ms, batch 64 KiB, unthrottled
#   2. consumer of those 2,000,000 records (page cache)
#   3. producer 300,000 x 1 KiB, acks=1
#   4. producer at a fixed 50,000 records/s, 500,000 x 100 B, acks=1: p50 / p99 latency
#   then broker CPU seconds per GB produced + consumed, and peak RSS.
# ROUNDS, KAFKA_HOME, LIMIT: see scripts/bench-lib.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh

# Apache Kafka 2.4.1's figures under these loads with the same perf tool, from
# ../shared/kafka-2.4.1-baseline.md ("Side by side, 2026-12-07, with odradek's own Rust perf
# tool as the client", one broker, medians of two rounds; the machine was shared: +-20 %). Used
# when Kafka cannot run here.
recorded_producer_rps=457000
recorded_consumer_rps=2310000
recorded_producer_1k_mbs=90
recorded_fixed_p50=3.9
recorded_fixed_p99=14.4
recorded_cpu_per_gb=14.2
recorded_rss_mib=566
# Start-up to the port accepting connections, ZooKeeper already running: the same file's
# "Broker" section (~2.7-3.0 s).
recorded_startup_ms=2850

records=2000000
prefix=perf
replicas=1
acks=1

bench_setup ", one broker, one partition, ZooKeeper mode"

one_round() { # <kind> <round>
  local kind=$1 round=$2 t0 startup_ms broker bs c0 c1
  t0=$(date +%s%N)
  start_broker "$kind" 0 "$work/$kind-$round" "/$kind-$round" offsets.topic.replication.factor=1 \
    transaction.state.log.replication.factor=1
  startup_ms=$((($(date +%s%N) - t0) / 1000000))
  broker=$started_pid
  bs="127.0.0.1:$started_port"
  c0=$(cpu_ticks "$broker")
  load_100 "$kind" "$broker" "$bs"
  load_1k_and_fixed "$kind" "$broker" "$bs"
  c1=$(cpu_ticks "$broker")
  broker_figures "$kind" $((c1 - c0)) "$broker"
  note "$kind" startup_ms "$startup_ms"
  echo "   broker: $cpu_per_gb CPU s per GB produced + consumed, peak RSS $rss MiB, listening after $startup_ms ms"
  stop_brokers 1
}
each_round one_round

table_header
row "producer 2M x 100 B, acks=1, records/s" rate producer_rps "$recorded_producer_rps"
row "consumer of those, records/s" rate consumer_rps "$recorded_consumer_rps"
rows_1k_and_fixed
row "broker CPU s per GB produced + consumed (lower)" plain cpu_per_gb "$recorded_cpu_per_gb"
row "broker peak RSS MiB (lower wins)" plain rss_mib "$recorded_rss_mib"
row "start-up to listening, ms (lower wins)" plain startup_ms "$recorded_startup_ms"
kafka_note
echo "TLS and SASL: scripts/bench-security.sh."
