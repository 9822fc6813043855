"""One Python client against a cluster, for the Rust cluster tests (which own ZooKeeper and the
brokers): the client's admin creates a topic, keyed records are produced and read back from
every partition through the one bootstrap broker given, and every record is checked.

Usage: python cluster_roundtrip.py <confluent|kafka-python|aiokafka> <bootstrap> <topic> <partitions>
Exits non-zero (with the reason) on any mismatch.
"""

import asyncio
import sys

import test_clients as tc

N = 600


def main():
    client, bootstrap, topic, partitions = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    if client == "confluent":
        tc.ck_create_topic(bootstrap, topic, partitions)
        acks, window = tc.ck_produce(bootstrap, topic, N)
        records = tc.ck_consume(bootstrap, topic, partitions, N)
    elif client == "kafka-python":
        tc.kp_create_topic(bootstrap, topic, partitions)
        acks, window = tc.kp_produce(bootstrap, topic, N)
        records = tc.kp_consume(bootstrap, topic, partitions, N)
    elif client == "aiokafka":
        acks, window, records = asyncio.run(
            asyncio.wait_for(tc.aio_roundtrip(bootstrap, topic, partitions, N, "none"), 180)
        )
    else:
        sys.exit(f"unknown client {client}")
    tc.check_records(records, acks, N, window)
    used = {r.partition for r in records}
    if used != set(range(partitions)):
        sys.exit(f"{client}: records reached partitions {sorted(used)}, not all {partitions}")
    print(f"{client}: {len(records)} records through {bootstrap} over {len(used)} partitions")


if __name__ == "__main__":
    main()
