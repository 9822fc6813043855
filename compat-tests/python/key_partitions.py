"""Sends keys key-0..key-(count-1) with confluent-kafka's murmur2_random partitioner to an
existing topic and prints "key partition" for each. Usage: key_partitions.py <bootstrap> <topic> <count>"""
import sys

from confluent_kafka import Producer


def main() -> int:
    bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    placed = {}
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})

    def report(err, msg):
        if err is None:
            placed[msg.key().decode()] = msg.partition()

    for i in range(count):
        producer.produce(topic, key=f"key-{i}".encode(), value=b"v", on_delivery=report)
    if producer.flush(60) != 0:
        return 1
    for i in range(count):
        print(f"key-{i} {placed.get(f'key-{i}', -1)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
