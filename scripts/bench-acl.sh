#!/usr/bin/env bash
# What ACL checks cost a producer: two odradek brokers (release build), each with a SASL_PLAINTEXT
# (PLAIN) listener, one without an authorizer and one with the ACL authorizer and 10,000 ACLs of
# other users loaded (9,000 literal topic ACLs and 1,000 prefixed ones, seeded into the embedded
# store as Kafka's znodes), the producing user allowed by a prefixed ACL on its topics. The bundled
# perf producer (no JVM) runs three times against each, alternating; prints the medians and their
# ratio. Run alone.
#   RECORDS (default 1000000).
set -euo pipefail
cd "$(dirname "$0")/.."
records=${RECORDS:-1000000}
work=$(mktemp -d "${TMPDIR:-/tmp}/odradek-bench-acl.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/odradek"

# The ACL znodes, as kafka-acls.sh (AclAuthorizer) writes them.
python3 - "$work/tree.json" <<'PY'
import json, sys
def acl(principal, operation):
    return {"principal": principal, "permissionType": "Allow", "operation": operation, "host": "*"}
def node(*acls):
    return json.dumps({"version": 1, "acls": list(acls)})
tree = {}
for i in range(9000):
    tree[f"/kafka-acl/Topic/other-{i}"] = node(acl(f"User:other-{i}", "Read"))
for i in range(1000):
    tree[f"/kafka-acl-extended/prefixed/Topic/other-prefix-{i}-"] = node(acl(f"User:other-{i}", "Write"))
tree["/kafka-acl-extended/prefixed/Topic/bench-"] = node(
    acl("User:bench", "Write"), acl("User:bench", "Describe"), acl("User:bench", "Create"))
json.dump(tree, open(sys.argv[1], "w"))
PY

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
jaas='org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="bench-secret" user_admin="bench-secret" user_bench="bench-secret";'

# start <name> [overrides...]: a broker on its own data directory; sets `port` to its SASL port
# (not run in a subshell, so that its PID is kept for the clean-up).
start() {
  local name=$1; shift
  local plain sasl
  plain=$(free_port); sasl=$(free_port)
  mkdir -p "$work/$name"
  "$bin" broker config/server.properties \
    --override "listeners=PLAINTEXT://127.0.0.1:$plain,SASL_PLAINTEXT://127.0.0.1:$sasl" \
    --override "advertised.listeners=PLAINTEXT://localhost:$plain,SASL_PLAINTEXT://localhost:$sasl" \
    --override sasl.enabled.mechanisms=PLAIN \
    --override "listener.name.sasl_plaintext.plain.sasl.jaas.config=$jaas" \
    --override "log.dirs=$work/$name" --override metrics.port=0 "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 2000); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$sasl") 2>/dev/null; then break; fi
    sleep 0.005
  done
  port=$sasl
}

start open
port_open=$port
mkdir -p "$work/acl"
"$bin" import-zk-tree "$work/tree.json" "$work/acl" >/dev/null
start acl --override authorizer.class.name=kafka.security.authorizer.AclAuthorizer \
  --override super.users=User:ANONYMOUS
port_acl=$port

printf 'security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="bench" password="bench-secret";\n' \
  >"$work/client.properties"

# run <port> <topic>: records/s of one producer run.
run() {
  local out
  out=$("$bin" perf producer --bootstrap-server "localhost:$1" --command-config "$work/client.properties" \
    --topic "$2" --num-records "$records" --record-size 100 --throughput -1 \
    --acks 1 --linger-ms 5 --batch-size 65536 2>&1)
  echo "   $2: $out" >&2
  sed -nE 's/.* ([0-9.]+) records\/sec.*/\1/p' <<<"$out"
}
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }

echo "== odradek $(git rev-parse --short HEAD), $(nproc) cores: $records x 100 B, acks=1, 3 runs each"
open=(); acl=()
for i in 1 2 3; do
  open+=("$(run "$port_open" "bench-open-$i")")
  acl+=("$(run "$port_acl" "bench-acl-$i")")
done
# (The log may be coloured.)
sed 's/\x1b\[[0-9;]*m//g' "$work/acl.log" | grep -q "loaded ACLs patterns=10001" || {
  echo "the ACL broker did not load the 10,001 ACL patterns:" >&2
  grep "ACLs" "$work/acl.log" >&2 || true
  exit 1
}
m_open=$(median "${open[@]}"); m_acl=$(median "${acl[@]}")
echo
printf '%-44s %-12s %s\n' "figure" "value" "target"
printf '%-44s %-12s %s\n' "producer records/s, no authorizer (median)" "$m_open" ""
printf '%-44s %-12s %s\n' "producer records/s, 10,000 ACLs (median)" "$m_acl" ""
printf '%-44s %-12s %s\n' "with ACLs / without" \
  "$(awk -v a="$m_acl" -v b="$m_open" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')" ">= 0.95"
