"""A consume-transform-produce processor with exactly-once semantics (confluent-kafka): reads
`input` as a read_committed member of `group`, writes each value as "out-<value>" to `output`,
and commits the consumed offsets inside the same transaction (send_offsets_to_transaction).

    txn_processor.py BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID IDLE_EXIT_S

Prints "committed <n>" after each transaction. Exits 0 after IDLE_EXIT_S seconds without input.
Each transaction holds at most 10 records and sleeps a little before committing, so a test can
kill the process in the middle of one.
"""

import sys
import time

from confluent_kafka import Consumer, Producer

bootstrap, source, sink, group, txn_id, idle_exit = sys.argv[1:7]
idle_exit = float(idle_exit)

consumer = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": group,
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
    "isolation.level": "read_committed",
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 500,
})
producer = Producer({
    "bootstrap.servers": bootstrap,
    "transactional.id": txn_id,
    "transaction.timeout.ms": 10000,
})
producer.init_transactions(60)
consumer.subscribe([source])
last_input = time.monotonic()
total = 0
while time.monotonic() - last_input < idle_exit:
    msgs = consumer.consume(num_messages=10, timeout=0.5)
    msgs = [m for m in msgs if m.error() is None]
    if not msgs:
        continue
    last_input = time.monotonic()
    producer.begin_transaction()
    for m in msgs:
        producer.produce(sink, key=m.key(), value=b"out-" + m.value(), partition=m.partition())
    producer.flush(30)
    time.sleep(0.05)
    positions = [tp for tp in consumer.position(consumer.assignment()) if tp.offset >= 0]
    producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 30)
    producer.commit_transaction(30)
    total += len(msgs)
    print(f"committed {total}", flush=True)
consumer.close()
