"""JBOD through real clients' admin APIs: a broker with three log.dirs, described with
kafka-python's describe_log_dirs, and a replica moved to another directory with its
alter_replica_log_dirs while a producer (acks=all) writes to it: every acknowledged record is
read back once, and the partition ends in the new directory (on disk and as described).
confluent-kafka is asked too when its installed version has the API.

Every wait is bounded by a deadline.
"""

import threading
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.structs import TopicPartitionReplica

from conftest import running_broker, unique_topic

DEADLINE_S = 60.0
BROKER_ID = 0


@pytest.fixture(scope="module")
def jbod_broker(tmp_path_factory):
    def overrides(b):
        dirs = [b.workdir / f"d{i}" for i in range(3)]
        return ["log.dirs=" + ",".join(str(d) for d in dirs), f"broker.id={BROKER_ID}"]

    yield from running_broker(tmp_path_factory, overrides)


def dirs_of(broker):
    return [str(broker.workdir / f"d{i}") for i in range(3)]


def described(admin, topic):
    """{(dir, partition, is_future): (size, offset_lag)} for `topic`, and the dirs' entries."""
    answer = admin.describe_log_dirs()
    assert len(answer) == 1, answer
    found = {}
    for d in answer[0]["log_dirs"]:
        assert d["error_code"] == 0, d
        for t in d["topics"]:
            if t["name"] != topic:
                continue
            for p in t["partitions"]:
                found[(d["log_dir"], p["partition_index"], p["is_future_key"])] = (
                    p["partition_size"], p["offset_lag"])
    return found, answer[0]["log_dirs"]


def test_describe_and_move_a_replica_under_load(jbod_broker):
    broker = jbod_broker
    topic = unique_topic("jbod")
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
        found, dirs = described(admin, topic)
        # Three partitions over three directories: one each (Kafka's fewest-logs placement).
        assert sorted(d["log_dir"] for d in dirs) == sorted(dirs_of(broker))
        assert sorted(dir for dir, _, _ in found) == sorted(dirs_of(broker)), found
        for d in dirs:
            assert 0 < d["usable_bytes"] <= d["total_bytes"], d

        source = next(dir for dir, p, _ in found if p == 0)
        target = next(d for d in dirs_of(broker) if d != source)

        acked = []
        failed = []
        stop = threading.Event()

        def produce():
            producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all",
                                     linger_ms=5)
            i = 0
            try:
                while not stop.is_set() or len(acked) < 2000:
                    futures = []
                    for _ in range(100):
                        value = f"{i:08d}".encode()
                        futures.append((value, producer.send(topic, value=value, partition=0)))
                        i += 1
                    for value, f in futures:
                        try:
                            f.get(timeout=30)
                            acked.append(value)
                        except Exception as e:  # noqa: BLE001 - counted, the test checks
                            failed.append(repr(e))
            finally:
                producer.close(timeout=10)

        writer = threading.Thread(target=produce, daemon=True)
        writer.start()
        deadline = time.monotonic() + DEADLINE_S
        while len(acked) < 500:
            assert time.monotonic() < deadline, "the producer wrote nothing"
            assert writer.is_alive(), failed
            time.sleep(0.05)

        result = admin.alter_replica_log_dirs({TopicPartitionReplica(topic, 0, BROKER_ID): target})
        assert [e.__name__ for e in result.values()] == ["NoError"], result

        deadline = time.monotonic() + DEADLINE_S
        while True:
            found, _ = described(admin, topic)
            p0 = [k for k in found if k[1] == 0]
            if p0 == [(target, 0, False)]:
                break
            assert time.monotonic() < deadline, f"the move did not finish: {found}"
            time.sleep(0.1)
        stop.set()
        writer.join(timeout=DEADLINE_S)
        assert not writer.is_alive(), "the producer did not stop"
        assert not failed, failed[:5]

        # On disk: in the new directory, nothing left in the old one.
        assert (Path(target) / f"{topic}-0").is_dir()
        assert not (Path(source) / f"{topic}-0").exists()

        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                                 enable_auto_commit=False, consumer_timeout_ms=5000)
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        values = []
        deadline = time.monotonic() + DEADLINE_S
        while consumer.position(tp) < end:
            assert time.monotonic() < deadline, "reading the partition back took too long"
            for records in consumer.poll(timeout_ms=1000).values():
                values.extend(r.value for r in records)
        consumer.close()
        assert len(values) == len(set(values)), "a record was written twice"
        missing = set(acked) - set(values)
        assert not missing, f"{len(missing)} acknowledged records lost"
    finally:
        admin.close()


def test_confluent_kafka_describe_log_dirs(jbod_broker):
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": jbod_broker.bootstrap})
    if not hasattr(admin, "describe_log_dirs"):
        import confluent_kafka

        pytest.skip(f"confluent-kafka {confluent_kafka.version()} has no describe_log_dirs")
    result = admin.describe_log_dirs().result(timeout=30)
    assert result
