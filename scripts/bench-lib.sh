# Shared by the benchmarks (sourced, not run): a ZooKeeper, odradek or Apache Kafka brokers on
# it, the loads of `odradek perf producer|consumer` with the CPU the brokers and the client spent
# on each, and medians. Sourcing it only defines; `bench_setup` makes the work directory, builds
# and starts ZooKeeper (scripts/bench.sh and scripts/bench-replicated.sh), while a script with
# its own set-up uses single functions (scripts/bench-scale.sh: `start_zookeeper`). Every process
# started here is stopped by its PID on exit; every wait is bounded.
#   ROUNDS (default 2): rounds per broker, alternating odradek and Kafka; figures are medians.
#   KAFKA_HOME: an Apache Kafka distribution whose broker runs here (bin/kafka-server-start.sh
#   and libs/kafka_*.jar); without one, Kafka 2.4.1's recorded figures are the comparison.
#   LIMIT (seconds, default 120): bound of every wait for a port or a topic; each load is
#   bounded by 10 x LIMIT.

rounds=${ROUNDS:-2}
limit=${LIMIT:-120}
hz=$(getconf CLK_TCK)
work=""
pids=() # every long-lived process started here, stopped by PID in reverse order

stop_pid() { # <pid>: SIGTERM, and SIGKILL when it has not exited within 30 s
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 300); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  # Brokers first, newest first, and ZooKeeper last: a broker's controlled shutdown needs it.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[i]}"; done
  rm -rf "$work"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # <port> <what> <pid>: until it accepts a connection, or the process has exited
  for _ in $(seq 1 $((limit * 20))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    if ! kill -0 "$3" 2>/dev/null; then
      echo "$2 exited before listening on port $1" >&2
      return 1
    fi
    sleep 0.05
  done
  echo "$2 did not listen on port $1 within ${limit} s" >&2
  return 1
}

bin="${CARGO_TARGET_DIR:-target}/release/odradek"

# Debian's ZooKeeper package, as tests/it/common/zookeeper.rs starts it, on $zk_port; its data
# and log in $work/zk. The java options given come after the defaults (a later -Xmx wins).
zk_port=""
start_zookeeper() { # [java option...]
  local cp=/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar
  if [ ! -f /usr/share/java/zookeeper.jar ] || ! command -v java >/dev/null; then
    echo "ZooKeeper (Debian's zookeeper package and a JVM) is needed: apt-get install zookeeper" >&2
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
  java -Xmx128m -XX:+UseSerialGC "$@" -Dzookeeper.log.dir="$work/zk" -cp "$cp" \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$work/zk/zoo.cfg" >"$work/zk/zk.log" 2>&1 &
  pids+=($!)
  wait_port "$zk_port" ZooKeeper "$!"
}

# Whether KAFKA_HOME holds a broker that can run here, else why not (in $kafka_why).
kafka_home=${KAFKA_HOME:-}
kafka_why=""
kafka_runnable() {
  if [ -z "$kafka_home" ]; then
    kafka_why="KAFKA_HOME is not set"
  elif [ ! -x "$kafka_home/bin/kafka-server-start.sh" ]; then
    kafka_why="$kafka_home/bin/kafka-server-start.sh is missing"
  elif ! compgen -G "$kafka_home/libs/kafka_*.jar" >/dev/null; then
    kafka_why="$kafka_home/libs has no kafka_*.jar (the broker itself)"
  elif ! command -v java >/dev/null; then
    kafka_why="no java on PATH"
  else
    return 0
  fi
  return 1
}
kafka_version() { # e.g. "2.13-2.4.1", from the broker jar's name
  local jar
  jar=$(compgen -G "$kafka_home/libs/kafka_*.jar" | grep -v -e -sources -e -javadoc -e -test | head -1)
  basename "$jar" .jar | sed 's/^kafka_//'
}

# bench_setup <what>: the work directory (removed on exit, after every process started here is
# stopped), the release build, ZooKeeper, and the brokers to run in $kinds: odradek, and Kafka
# when KAFKA_HOME holds one that runs here ($kafka_ran 1). Prints the run's first line, with
# <what> the benchmark's set-up.
commit=""
kafka_ran=0
kinds=(odradek)
bench_setup() {
  work=$(mktemp -d "${TMPDIR:-/tmp}/odradek-bench.XXXXXX")
  trap cleanup EXIT
  cargo build --release --quiet
  commit=$(git rev-parse --short HEAD)
  start_zookeeper
  if kafka_runnable; then kinds+=(kafka); kafka_ran=1; fi
  echo "== odradek $commit, $(nproc) cores$1; load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

# each_round <function>: calls <function> <kind> <round> for each of $rounds rounds and each kind
# in it, the kinds alternating.
each_round() {
  local round kind
  for round in $(seq 1 "$rounds"); do
    for kind in "${kinds[@]}"; do
      echo "-- $kind, round $round"
      "$1" "$kind" "$round"
    done
  done
}

# start_broker <kind: odradek|kafka> <id> <dir> <chroot> [key=value...]: one broker on the
# ZooKeeper under <chroot>, with the same server.properties whichever the kind; sets
# $started_pid and $started_port.
started_pid=""
started_port=""
start_broker() {
  local kind=$1 id=$2 dir=$3 chroot=$4
  shift 4
  mkdir -p "$dir"
  started_port=$(free_port)
  {
    echo "broker.id=$id"
    echo "listeners=PLAINTEXT://127.0.0.1:$started_port"
    echo "log.dirs=$dir/data"
    echo "zookeeper.connect=127.0.0.1:$zk_port$chroot"
    echo "num.partitions=1"
    echo "group.initial.rebalance.delay.ms=0"
    echo "transaction.state.log.min.isr=1"
    for kv in "$@"; do echo "$kv"; done
  } >"$dir/server.properties"
  case $kind in
    odradek)
      "$bin" broker "$dir/server.properties" --override metrics.port=0 >"$dir/broker.log" 2>&1 &
      ;;
    kafka)
      # kafka-server-start.sh execs the JVM: $! is the broker's own PID.
      LOG_DIR="$dir/logs" "$kafka_home/bin/kafka-server-start.sh" "$dir/server.properties" \
        >"$dir/broker.log" 2>&1 &
      ;;
  esac
  started_pid=$!
  pids+=("$started_pid")
  wait_port "$started_port" "$kind broker $id" "$started_pid"
}

# Stops the brokers of a round (the last <n> processes started), newest first.
stop_brokers() { # <n>
  local i
  for ((i = 0; i < $1; i++)); do
    stop_pid "${pids[-1]}"
    unset 'pids[-1]'
  done
}

# Creates a one-partition topic and waits until its leader takes a produce with the acks the
# loads use (with acks=all, until the followers fetch).
create_topic() { # <bootstrap> <topic> <replicas> <acks> [--config k=v...]
  local bs=$1 topic=$2 replicas=$3 acks=$4
  shift 4
  "$bin" topics --bootstrap-server "$bs" --create --topic "$topic" --partitions 1 \
    --replication-factor "$replicas" "$@" >/dev/null
  for _ in $(seq 1 $((limit * 10))); do
    if echo warm | "$bin" produce --bootstrap-server "$bs" --topic "$topic" --acks "$acks" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  echo "topic $topic never accepted an acks=$acks produce" >&2
  return 1
}

# Clock ticks of CPU the given processes have used so far, together.
cpu_ticks() { # <pid...>
  local p
  for p in "$@"; do awk '{ print $14 + $15 }' "/proc/$p/stat"; done | awk '{ s += $1 } END { print s + 0 }'
}
peak_rss_mib() { # <pid...>: the largest VmHWM of them
  local p
  for p in "$@"; do awk '/VmHWM/ { print $2 }' "/proc/$p/status"; done | sort -n | tail -1 | awk '{ printf "%d", $1 / 1024 }'
}

# measured <label> <broker pids (space-separated)> <odradek perf args...>: runs one load of the
# bundled perf tool, prints its summary with the CPU the brokers and the tool itself spent and
# the wall time, and leaves the summary in $load_out and the brokers' CPU seconds in $load_cpu.
load_out=""
load_cpu=""
measured() {
  local label=$1 broker_pids=$2
  shift 2
  local c0 c1 t0 t1 times
  # shellcheck disable=SC2086
  c0=$(cpu_ticks $broker_pids)
  t0=$(date +%s%N)
  # bash's `time` reports the tool's own user and system CPU.
  times=$({ TIMEFORMAT='%U %S'; time timeout --kill-after=10 $((limit * 10)) "$bin" perf "$@" \
    >"$work/load.out" 2>/dev/null; } 2>&1) || {
    echo "   $label failed: $(cat "$work/load.out")" >&2
    return 1
  }
  t1=$(date +%s%N)
  # shellcheck disable=SC2086
  c1=$(cpu_ticks $broker_pids)
  load_out=$(tail -1 "$work/load.out")
  load_cpu=$(awk -v t=$((c1 - c0)) -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')
  local client_cpu wall
  client_cpu=$(awk '{ printf "%.2f", $1 + $2 }' <<<"$times")
  wall=$(awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.2f", ns / 1e9 }')
  printf '   %-34s %s\n   %-34s brokers %s CPU s, perf tool %s CPU s, %s s wall\n' \
    "$label" "$load_out" "" "$load_cpu" "$client_cpu" "$wall"
}

# Figures from a summary line of `odradek perf`.
records_per_s() { sed -nE 's/.* ([0-9.]+) records\/sec .*/\1/p' <<<"$1"; }
mb_per_s() { sed -nE 's/.*records\/sec \(([0-9.]+) MB\/sec\).*/\1/p' <<<"$1"; }
p50_ms() { sed -nE 's/.* ([0-9.]+) ms 50th.*/\1/p' <<<"$1"; }
p99_ms() { sed -nE 's/.* ([0-9.]+) ms 99th.*/\1/p' <<<"$1"; }

# The loads every broker set-up runs, on topics $prefix-100, $prefix-1k and $prefix-fixed, each
# created with $replicas replicas and $topic_config, produced to with $acks; their figures are
# noted for <kind>. The scripts set those and $records (the first load's size).
records_1k=300000
records_fixed=500000
prefix=""
replicas=""
acks=""
topic_config=()
# producer_load <label> <broker pids> <bootstrap> <topic> <records> <record size> <records/s,
# -1 unthrottled>: creates <topic> and measures a producer of <records> to it, with $acks,
# lingering 5 ms, in batches of up to 64 KiB.
producer_load() {
  local label=$1 broker_pids=$2 bs=$3 topic=$4 n=$5 size=$6 throughput=$7
  create_topic "$bs" "$topic" "$replicas" "$acks" "${topic_config[@]}"
  measured "$label" "$broker_pids" producer --bootstrap-server "$bs" --topic "$topic" \
    --num-records "$n" --record-size "$size" --throughput "$throughput" --acks "$acks" \
    --linger-ms 5 --batch-size 65536
}
# load_100 <kind> <broker pids (space-separated)> <bootstrap>: $records x 100 B unthrottled,
# then a consumer of them.
load_100() {
  local kind=$1 broker_pids=$2 bs=$3
  producer_load "producer $records x 100 B" "$broker_pids" "$bs" "$prefix-100" "$records" 100 -1
  note "$kind" producer_rps "$(records_per_s "$load_out")"
  # The warm-up record is there too: the consumer reads the load's records after it.
  measured "consumer of those records" "$broker_pids" consumer --bootstrap-server "$bs" \
    --topic "$prefix-100" --messages $((records + 1))
  note "$kind" consumer_rps "$(records_per_s "$load_out")"
}
# load_1k_and_fixed <kind> <broker pids> <bootstrap>: $records_1k x 1 KiB unthrottled, then
# $records_fixed x 100 B at 50,000 records/s for the latencies.
load_1k_and_fixed() {
  local kind=$1 broker_pids=$2 bs=$3
  producer_load "producer $records_1k x 1 KiB" "$broker_pids" "$bs" "$prefix-1k" "$records_1k" 1024 -1
  note "$kind" producer_1k_mbs "$(mb_per_s "$load_out")"
  producer_load "producer at 50k records/s" "$broker_pids" "$bs" "$prefix-fixed" "$records_fixed" 100 50000
  note "$kind" fixed_p50 "$(p50_ms "$load_out")"
  note "$kind" fixed_p99 "$(p99_ms "$load_out")"
}
# broker_figures <kind> <CPU ticks to count> <broker pid...>: the brokers' CPU seconds per GB
# the loads above moved (produced + consumed), and the largest peak RSS of them; noted for
# <kind> and left in $cpu_per_gb and $rss.
cpu_per_gb=""
rss=""
broker_figures() {
  local kind=$1 ticks=$2 bytes_moved
  shift 2
  bytes_moved=$((records * 100 * 2 + records_1k * 1024 + records_fixed * 100))
  cpu_per_gb=$(awk -v t="$ticks" -v hz="$hz" -v b="$bytes_moved" 'BEGIN { printf "%.2f", t / hz / (b / 1e9) }')
  rss=$(peak_rss_mib "$@")
  note "$kind" cpu_per_gb "$cpu_per_gb"
  note "$kind" rss_mib "$rss"
}

# Figures of every round, by "<kind> <figure>", space-separated; medians at the end.
declare -A figures
note() { figures["$1 $2"]+="$3 "; } # <kind> <figure> <value>
median() { # <kind> <figure>: the median of its rounds (the mean of the middle two when even)
  tr ' ' '\n' <<<"${figures["$1 $2"]:-}" | grep -v '^$' | sort -g | awk '
    { v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2];
      else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { # <a> <b>: a / b to two places, or "-"
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2fx", a / b }'
}
# human <n>: 1960000 -> 1.96M, 457000 -> 457k
human() {
  awk -v n="$1" 'BEGIN { if (n == "-") print "-"; else if (n >= 1e6) printf "%.2fM", n / 1e6;
    else if (n >= 1e3) printf "%.0fk", n / 1e3; else printf "%.1f", n }'
}
short() { awk -v n="$1" 'BEGIN { if (n == "-") print "-"; else printf "%.4g\n", n }'; } # 202.785 -> 202.8
# row <label> <unit form: rate|plain> <figure> <recorded Kafka figure>: one line of the table,
# odradek's median beside Kafka's (measured in this run when it ran, else recorded) and the ratio.
row() {
  local label=$1 form=$2 fig=$3 recorded=$4 ours theirs source
  ours=$(median odradek "$fig")
  if [ "$kafka_ran" = 1 ]; then theirs=$(median kafka "$fig"); source=measured; else theirs=$recorded; source=recorded; fi
  if [ "$form" = rate ]; then
    printf '%-50s %10s %10s %-9s %8s\n' "$label" "$(human "$ours")" "$(human "$theirs")" "$source" "$(ratio "$ours" "$theirs")"
  else
    printf '%-50s %10s %10s %-9s %8s\n' "$label" "$(short "$ours")" "$(short "$theirs")" "$source" "$(ratio "$ours" "$theirs")"
  fi
}
# The table's rows of load_1k_and_fixed, beside Kafka's recorded figures in
# $recorded_producer_1k_mbs, $recorded_fixed_p50 and $recorded_fixed_p99.
rows_1k_and_fixed() {
  row "producer $((records_1k / 1000))k x 1 KiB, acks=$acks, MB/s" plain producer_1k_mbs "$recorded_producer_1k_mbs"
  row "producer at 50k records/s: p50 ms (lower wins)" plain fixed_p50 "$recorded_fixed_p50"
  row "producer at 50k records/s: p99 ms (lower wins)" plain fixed_p99 "$recorded_fixed_p99"
}
table_header() {
  echo
  echo "== medians of $rounds round(s); load average $(cut -d' ' -f1-3 /proc/loadavg); ratio = odradek / Kafka"
  printf '%-50s %10s %10s %-9s %8s\n' "figure" "odradek" "Kafka" "(Kafka)" "ratio"
}
kafka_note() {
  if [ "$kafka_ran" = 1 ]; then
    echo "Kafka: $(kafka_version) from $kafka_home, run in this run against the same loads."
  else
    echo "Kafka: not run ($kafka_why); its figures are Kafka 2.4.1's recorded ones (see the top of this script)."
  fi
}
