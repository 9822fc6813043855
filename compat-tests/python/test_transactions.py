"""Transactions with a real client (confluent-kafka / librdkafka) against a real odradek process:
commit and abort across partitions as read_committed and read_uncommitted consumers see them,
fencing of a zombie producer, exactly-once consume-transform-produce across a killed processor,
and a broker killed in the middle of a transaction. Every wait has a deadline.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from conftest import running_broker
from test_clients import ck_create_topic

HERE = Path(__file__).resolve().parent
DEADLINE_S = 60.0
# The broker looks for transactions past their timeout this often (Kafka's default is 10 s).
ABORT_CHECK_MS = 500
# How long the successor of a killed processor runs without input before it ends: its first
# assignment waits for the killed member's session (6 s) to expire, so this must be longer.
SUCCESSOR_IDLE_EXIT_S = 15


@pytest.fixture(scope="module")
def txn_broker(tmp_path_factory):
    yield from running_broker(
        tmp_path_factory,
        [f"transaction.abort.timed.out.transaction.cleanup.interval.ms={ABORT_CHECK_MS}"],
    )


def txn_producer(bootstrap, txn_id, timeout_ms=60000):
    p = Producer({
        "bootstrap.servers": bootstrap,
        "transactional.id": txn_id,
        "transaction.timeout.ms": timeout_ms,
    })
    p.init_transactions(30)
    return p


def read_all(bootstrap, topic, partitions, isolation, expect=None, quiet_s=2.0):
    """Every value in the topic as a consumer with `isolation` sees it: until `expect` values
    arrived (then a short quiet period to catch extras), or `quiet_s` without any."""
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "reader-" + uuid.uuid4().hex,
        "enable.auto.commit": False,
        "isolation.level": isolation,
    })
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    values = []
    deadline = time.monotonic() + DEADLINE_S
    last = time.monotonic()
    try:
        while time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None:
                done = expect is not None and len(values) >= expect
                if time.monotonic() - last > (0.5 if done else quiet_s):
                    if expect is None or done:
                        break
                continue
            if m.error():
                raise KafkaException(m.error())
            values.append(m.value().decode())
            last = time.monotonic()
    finally:
        c.close()
    return values


def test_commit_and_abort_across_partitions(txn_broker, unique_topic):
    bs = txn_broker.bootstrap
    topic = unique_topic("txn")
    ck_create_topic(bs, topic, 3)
    p = txn_producer(bs, "ck-" + topic)
    p.begin_transaction()
    for i in range(30):
        p.produce(topic, value=f"committed-{i}", partition=i % 3)
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(30):
        p.produce(topic, value=f"aborted-{i}", partition=i % 3)
    p.flush(30)
    p.abort_transaction(30)

    committed = read_all(bs, topic, 3, "read_committed", expect=30)
    assert sorted(committed) == sorted(f"committed-{i}" for i in range(30))
    everything = read_all(bs, topic, 3, "read_uncommitted", expect=60)
    assert sorted(everything) == sorted(
        [f"committed-{i}" for i in range(30)] + [f"aborted-{i}" for i in range(30)]
    )


def test_open_transaction_is_invisible_to_read_committed(txn_broker, unique_topic):
    bs = txn_broker.bootstrap
    topic = unique_topic("txn-open")
    ck_create_topic(bs, topic, 1)
    p = txn_producer(bs, "ck-" + topic)
    p.begin_transaction()
    for i in range(5):
        p.produce(topic, value=f"open-{i}", partition=0)
    p.flush(30)
    assert read_all(bs, topic, 1, "read_committed", quiet_s=2.0) == []
    assert len(read_all(bs, topic, 1, "read_uncommitted", expect=5)) == 5
    p.commit_transaction(30)
    assert sorted(read_all(bs, topic, 1, "read_committed", expect=5)) == [
        f"open-{i}" for i in range(5)
    ]


def test_second_producer_fences_the_first(txn_broker, unique_topic):
    bs = txn_broker.bootstrap
    topic = unique_topic("txn-fence")
    ck_create_topic(bs, topic, 1)
    txn_id = "ck-" + topic
    zombie = txn_producer(bs, txn_id)
    zombie.begin_transaction()
    zombie.produce(topic, value="zombie", partition=0)
    zombie.flush(30)
    # The newcomer aborts the zombie's open transaction and bumps the epoch.
    successor = txn_producer(bs, txn_id)
    with pytest.raises(KafkaException) as raised:
        zombie.produce(topic, value="zombie-2", partition=0)
        zombie.commit_transaction(30)
    err = raised.value.args[0]
    assert err.fatal() or err.code() in (
        KafkaError._FENCED,
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
    ), err
    successor.begin_transaction()
    successor.produce(topic, value="successor", partition=0)
    successor.commit_transaction(30)
    assert read_all(bs, topic, 1, "read_committed", expect=1) == ["successor"]


def start_processor(bs, source, sink, group, txn_id, idle_exit_s):
    return subprocess.Popen(
        [sys.executable, str(HERE / "txn_processor.py"), bs, source, sink, group, txn_id,
         str(idle_exit_s)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_consume_transform_produce_is_exactly_once_across_a_killed_processor(
    txn_broker, unique_topic
):
    bs = txn_broker.bootstrap
    source = unique_topic("ctp-in")
    sink = unique_topic("ctp-out")
    ck_create_topic(bs, source, 3)
    ck_create_topic(bs, sink, 3)
    n = 300
    p = Producer({"bootstrap.servers": bs, "enable.idempotence": True})
    for i in range(n):
        p.produce(source, value=f"v-{i}", partition=i % 3)
    assert p.flush(30) == 0
    group = "ctp-" + uuid.uuid4().hex[:8]
    txn_id = "ctp-" + uuid.uuid4().hex[:8]

    first = start_processor(bs, source, sink, group, txn_id, 30)
    try:
        # Kill it (SIGKILL: no abort, no close) once some transactions are committed.
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            line = first.stdout.readline()
            if not line:
                break
            if line.startswith("committed") and int(line.split()[1]) >= 60:
                break
        assert first.poll() is None, "processor ended early"
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=10)

    second = start_processor(bs, source, sink, group, txn_id, SUCCESSOR_IDLE_EXIT_S)
    try:
        out, _ = second.communicate(timeout=DEADLINE_S * 2)
    finally:
        if second.poll() is None:
            os.kill(second.pid, signal.SIGKILL)
            second.wait(timeout=10)
    assert second.returncode == 0, out

    outputs = read_all(bs, sink, 3, "read_committed", expect=n)
    assert len(outputs) == n, f"{len(outputs)} outputs; processor said:\n{out}"
    assert sorted(outputs) == sorted(f"out-v-{i}" for i in range(n))


def test_broker_killed_mid_transaction(tmp_path_factory, unique_topic):
    gen = running_broker(
        tmp_path_factory,
        [f"transaction.abort.timed.out.transaction.cleanup.interval.ms={ABORT_CHECK_MS}"],
    )
    broker = next(gen)
    try:
        bs = broker.bootstrap
        topic = unique_topic("txn-crash")
        ck_create_topic(bs, topic, 2)
        p = txn_producer(bs, "ck-" + topic, timeout_ms=5000)
        p.begin_transaction()
        for i in range(10):
            p.produce(topic, value=f"before-{i}", partition=i % 2)
        p.commit_transaction(30)
        p.begin_transaction()
        for i in range(10):
            p.produce(topic, value=f"half-{i}", partition=i % 2)
        p.flush(30)
        broker.restart(kill=True)
        # The open transaction's producer is gone: the coordinator (reloaded from
        # __transaction_state) aborts it when its timeout passes. Until then read_committed
        # readers stop before it; after, they skip it.
        seen = read_all(bs, topic, 2, "read_committed", expect=10, quiet_s=2.0)
        assert sorted(seen) == sorted(f"before-{i}" for i in range(10))
        deadline = time.monotonic() + DEADLINE_S
        fresh = None
        while time.monotonic() < deadline:
            try:
                fresh = txn_producer(bs, "ck-" + topic)
                break
            except KafkaException:
                time.sleep(0.2)
        assert fresh is not None, "InitProducerId never succeeded after the restart"
        fresh.begin_transaction()
        fresh.produce(topic, value="after", partition=0)
        fresh.commit_transaction(30)
        seen = read_all(bs, topic, 2, "read_committed", expect=11)
        assert sorted(seen) == sorted([f"before-{i}" for i in range(10)] + ["after"])
        everything = read_all(bs, topic, 2, "read_uncommitted", expect=21)
        assert len(everything) == 21
    finally:
        gen.close()
