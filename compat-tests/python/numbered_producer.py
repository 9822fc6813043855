"""Sends 0..count-1 as values with confluent-kafka's idempotent producer; exits 1 on any
failed delivery. Usage: numbered_producer.py <bootstrap> <topic> <count>"""
import sys

from confluent_kafka import Producer


def main() -> int:
    bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    failed = []
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "reconnect.backoff.max.ms": 200,
    })

    def report(err, _msg):
        if err is not None:
            failed.append(err)

    for i in range(count):
        while True:
            try:
                producer.produce(topic, value=str(i).encode(), partition=0, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(120)
    print(f"failed={len(failed)} undelivered={remaining}")
    for err in failed[:5]:
        print(err, file=sys.stderr)
    return 0 if not failed and remaining == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
