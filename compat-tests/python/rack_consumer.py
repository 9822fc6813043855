"""confluent-kafka (librdkafka) as a consumer in a rack, for the Rust follower-fetching test
(which owns the cluster): reads partition 0 of a topic from the beginning with `client.rack`
set, and checks that it gets exactly the expected values in order. Where it read from is for
the broker metrics to tell.

Usage: python rack_consumer.py <bootstrap> <topic> <rack> <count>
Exits non-zero (with the reason) on any mismatch or after 60 s without every record.
"""

import sys
import time

from confluent_kafka import Consumer, TopicPartition

DEADLINE_S = 60.0


def main():
    bootstrap, topic, rack, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"rack-{rack}-{topic}",
            "client.rack": rack,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    got = []
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + DEADLINE_S
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                sys.exit(f"consumer error: {msg.error()}")
            got.append((msg.offset(), msg.value().decode()))
    finally:
        consumer.close()
    expected = [(i, f"{i % 10:010}") for i in range(count)]
    if got != expected:
        sys.exit(f"read {len(got)} records, expected {count}: first differences "
                 f"{[(g, e) for g, e in zip(got, expected) if g != e][:3]}")
    print(f"read {count} records")


if __name__ == "__main__":
    main()
