#!/usr/bin/env bash
# What TLS and SASL cost: one odradek broker (release build) with a PLAINTEXT, an SSL and a
# SASL_SSL (SCRAM-SHA-256) listener, loaded by the bundled perf tool (no JVM) on each in turn.
# Prints producer and consumer throughput on SSL and SASL_SSL as a ratio of PLAINTEXT on the
# same run, and new authenticated connections per second (TLS handshake + SCRAM login, 4096
# iterations). Run by scripts/bench.sh, or alone.
#   RECORDS (default 2000000), CONNECTIONS (default 2000).
set -euo pipefail
cd "$(dirname "$0")/.."
records=${RECORDS:-2000000}
connections=${CONNECTIONS:-2000}
work=$(mktemp -d "${TMPDIR:-/tmp}/odradek-bench-security.XXXXXX")
broker_pid=""
cleanup() { [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/odradek"

# A CA and a broker certificate for localhost, made here.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-ca \
  -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout "$work/broker.key" -out "$work/broker.csr" 2>/dev/null
openssl x509 -req -in "$work/broker.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
  -days 2 -extfile <(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1') -out "$work/broker.crt" 2>/dev/null
cat "$work/broker.key" "$work/broker.crt" >"$work/broker.pem"

# The SCRAM user, stored as Kafka's kafka-configs.sh stores it (4096 iterations), seeded into
# the embedded metadata store before the broker starts.
python3 - "$work/tree.json" <<'PY'
import base64, hashlib, hmac, json, os, sys
salt = os.urandom(24)
salted = hashlib.pbkdf2_hmac("sha256", b"bench-secret", salt, 4096)
client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
b64 = lambda b: base64.b64encode(b).decode()
cred = f"salt={b64(salt)},stored_key={b64(hashlib.sha256(client_key).digest())},server_key={b64(server_key)},iterations=4096"
json.dump({"/config/users/bench": json.dumps({"version": 1, "config": {"SCRAM-SHA-256": cred}})}, open(sys.argv[1], "w"))
PY
mkdir -p "$work/data"
"$bin" import-zk-tree "$work/tree.json" "$work/data" >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
p_plain=$(free_port); p_ssl=$(free_port); p_sasl=$(free_port)
"$bin" broker config/server.properties \
  --override "listeners=PLAINTEXT://127.0.0.1:$p_plain,SSL://127.0.0.1:$p_ssl,SASL_SSL://127.0.0.1:$p_sasl" \
  --override "advertised.listeners=PLAINTEXT://localhost:$p_plain,SSL://localhost:$p_ssl,SASL_SSL://localhost:$p_sasl" \
  --override ssl.keystore.type=PEM --override "ssl.keystore.location=$work/broker.pem" \
  --override ssl.truststore.type=PEM --override "ssl.truststore.location=$work/ca.crt" \
  --override sasl.enabled.mechanisms=SCRAM-SHA-256 \
  --override "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;" \
  --override "log.dirs=$work/data" --override metrics.port=0 >"$work/broker.log" 2>&1 &
broker_pid=$!
for _ in $(seq 1 2000); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p_sasl") 2>/dev/null; then break; fi
  sleep 0.005
done

printf 'security.protocol=PLAINTEXT\n' >"$work/plaintext.properties"
printf 'security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location=%s\n' "$work/ca.crt" >"$work/ssl.properties"
printf 'security.protocol=SASL_SSL\nssl.truststore.type=PEM\nssl.truststore.location=%s\nsasl.mechanism=SCRAM-SHA-256\nsasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="bench" password="bench-secret";\n' \
  "$work/ca.crt" >"$work/sasl_ssl.properties"

declare -A port=([plaintext]=$p_plain [ssl]=$p_ssl [sasl_ssl]=$p_sasl)
declare -A produced consumed
echo "== odradek $(git rev-parse --short HEAD), $(nproc) cores: $records x 100 B per listener, acks=1"
for l in plaintext ssl sasl_ssl; do
  args=(--bootstrap-server "localhost:${port[$l]}" --command-config "$work/$l.properties" --topic "bench-$l")
  p=$("$bin" perf producer "${args[@]}" --num-records "$records" --record-size 100 --throughput -1 \
    --acks 1 --linger-ms 5 --batch-size 65536 2>/dev/null)
  c=$("$bin" perf consumer "${args[@]}" --messages "$records" 2>/dev/null)
  echo "-- $l producer: $p"
  echo "-- $l consumer: $c"
  produced[$l]=$(sed -nE 's/.* ([0-9.]+) records\/sec.*/\1/p' <<<"$p")
  consumed[$l]=$(sed -nE 's/.* ([0-9.]+) records\/sec.*/\1/p' <<<"$c")
done
echo "-- new connections, $connections each, 4 at a time (TCP + TLS handshake + SCRAM-SHA-256 login, 4096 iterations)"
conn_ssl=$("$bin" perf connections --bootstrap-server "localhost:$p_ssl" --command-config "$work/ssl.properties" \
  --connections "$connections" --concurrency 4)
conn_sasl=$("$bin" perf connections --bootstrap-server "localhost:$p_sasl" --command-config "$work/sasl_ssl.properties" \
  --connections "$connections" --concurrency 4)
echo "   SSL:      $conn_ssl"
echo "   SASL_SSL: $conn_sasl"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo
printf '%-40s %-12s %s\n' "figure" "value" "target"
printf '%-40s %-12s %s\n' "SSL producer / PLAINTEXT" "$(ratio "${produced[ssl]}" "${produced[plaintext]}")" ">= 0.6"
printf '%-40s %-12s %s\n' "SSL consumer / PLAINTEXT" "$(ratio "${consumed[ssl]}" "${consumed[plaintext]}")" ">= 0.6"
printf '%-40s %-12s %s\n' "SASL_SSL producer / PLAINTEXT" "$(ratio "${produced[sasl_ssl]}" "${produced[plaintext]}")" ">= 0.6"
printf '%-40s %-12s %s\n' "SASL_SSL consumer / PLAINTEXT" "$(ratio "${consumed[sasl_ssl]}" "${consumed[plaintext]}")" ">= 0.6"
printf '%-40s %-12s %s\n' "SCRAM-SHA-256 logins/s (over TLS)" "$(sed -nE 's/.*: ([0-9.]+) connections\/s.*/\1/p' <<<"$conn_sasl")" ">= 500"
