"""Consumer groups with a real client (confluent-kafka / librdkafka) against a real odradek
process: subscription, rebalances on join and on LeaveGroup, committed offsets, and those offsets
surviving a broker restart.

config/server.properties sets group.initial.rebalance.delay.ms=0, so the first member gets a
generation at once and each later member triggers a rebalance. Every wait has a deadline.
"""

import time
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition

from test_clients import ck_create_topic, ck_produce

PARTITIONS = 6
N = 600
DEADLINE_S = 60.0


def group_consumer(bootstrap, group):
    return Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        # The broker's minimum; short heartbeats make rebalances quick to notice.
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "partition.assignment.strategy": "range",
    })


def poll_all(consumers, seen, errors, rounds=1):
    """Polls each consumer briefly (keeping all of them alive in the group); records values."""
    for _ in range(rounds):
        for c in consumers:
            for msg in c.consume(num_messages=500, timeout=0.1):
                if msg.error() is not None:
                    if msg.error().fatal():
                        pytest.fail(f"fatal consumer error: {msg.error()}")
                    errors.append(str(msg.error()))
                    continue
                seen.setdefault(msg.value(), []).append((msg.partition(), msg.offset()))


def assignments(consumers):
    return [sorted(tp.partition for tp in c.assignment()) for c in consumers]


def wait_for_assignment(consumers, per_consumer, seen, errors):
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        poll_all(consumers, seen, errors)
        got = assignments(consumers)
        flat = sorted(p for a in got for p in a)
        if all(len(a) == per_consumer for a in got) and flat == list(range(PARTITIONS)):
            return got
    pytest.fail(f"assignment did not settle within {DEADLINE_S} s: {assignments(consumers)}; "
                f"errors: {errors[:5]}")


def test_three_consumers_share_then_take_over_and_commits_survive_restart(broker):
    topic = f"groups-{uuid.uuid4().hex[:12]}"
    group = f"g-{uuid.uuid4().hex[:12]}"
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    acks, _ = ck_produce(broker.bootstrap, topic, N)
    ends = {}
    for ack in acks.values():
        ends[ack.partition] = max(ends.get(ack.partition, 0), ack.offset + 1)
    assert sorted(ends) == list(range(PARTITIONS)), f"records did not reach every partition: {ends}"

    consumers = [group_consumer(broker.bootstrap, group) for _ in range(3)]
    seen, errors = {}, []
    try:
        for c in consumers:
            c.subscribe([topic])
        got = wait_for_assignment(consumers, 2, seen, errors)
        assert [len(a) for a in got] == [2, 2, 2], got

        # One leaves (close sends LeaveGroup): the other two take its partitions.
        leaving = consumers.pop()
        leaving.close()
        got = wait_for_assignment(consumers, 3, seen, errors)
        assert [len(a) for a in got] == [3, 3], got

        deadline = time.monotonic() + DEADLINE_S
        while len(seen) < N and time.monotonic() < deadline:
            poll_all(consumers, seen, errors)
        assert len(seen) == N, f"consumed {len(seen)} distinct records of {N}; errors {errors[:5]}"
        assert set(seen) == {f"v-{i}".encode() for i in range(N)}

        # Partitions that changed hands are read again from the start (nothing was committed
        # yet): poll until every owner has reached the end, so that what it commits is the end.
        def at_end():
            return all(tp.offset == ends[tp.partition]
                       for c in consumers for tp in c.position(c.assignment()))
        deadline = time.monotonic() + DEADLINE_S
        while not at_end() and time.monotonic() < deadline:
            poll_all(consumers, seen, errors)
        assert at_end(), [c.position(c.assignment()) for c in consumers]
        for c in consumers:
            c.commit(offsets=c.position(c.assignment()), asynchronous=False)
        check = consumers[0].committed(
            [TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
        assert {tp.partition: tp.offset for tp in check} == ends
    finally:
        for c in consumers:
            c.close()

    broker.restart()

    # A new member of the same group starts where the group left off.
    c = group_consumer(broker.bootstrap, group)
    try:
        deadline = time.monotonic() + DEADLINE_S
        committed = None
        while time.monotonic() < deadline:
            try:
                committed = c.committed(
                    [TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=5)
                break
            except Exception as e:  # the coordinator may still be coming back: retry
                errors.append(str(e))
                time.sleep(0.2)
        assert committed is not None, f"no committed offsets after restart: {errors[-3:]}"
        assert {tp.partition: tp.offset for tp in committed} == ends
        c.subscribe([topic])
        after = {}
        wait_for_assignment([c], PARTITIONS, after, errors)
        poll_all([c], after, errors, rounds=10)
        assert after == {}, f"records consumed again after restart: {list(after)[:5]}"
    finally:
        c.close()
