"""Admin behaviours real clients depend on, against a real odradek process: commits to topics
the cluster does not have (UNKNOWN_TOPIC_OR_PARTITION per partition, as Kafka 2.4+ answer).

Every wait has a deadline.
"""

import time
import uuid

from confluent_kafka import Consumer, KafkaError, TopicPartition

from test_clients import ck_create_topic

DEADLINE_S = 60.0


def test_confluent_commit_to_unknown_topic_gets_unknown_topic_or_partition(broker, unique_topic):
    known = unique_topic("admin-known")
    ck_create_topic(broker.bootstrap, known, 1)
    missing = f"admin-missing-{uuid.uuid4().hex[:8]}"
    answers = []
    consumer = Consumer({
        "bootstrap.servers": broker.bootstrap,
        "group.id": f"admin-commit-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        # The per-partition results of a commit reach the application here.
        "on_commit": lambda err, partitions: answers.append((err, partitions)),
    })
    try:
        # In one request with refused partitions, librdkafka reported the refusal on the known
        # partition too (the broker's own per-partition answers are checked in
        # tests/it/broker/groups.rs), so the partition that exists is committed on its own.
        consumer.commit(offsets=[TopicPartition(missing, 0, 5), TopicPartition(known, 3, 5)],
                        asynchronous=True)
        deadline = time.monotonic() + DEADLINE_S
        while not answers:
            assert time.monotonic() < deadline, "the commit was never answered"
            consumer.poll(0.2)
        _, partitions = answers[0]
        by_tp = {(tp.topic, tp.partition): tp.error for tp in partitions}
        assert by_tp[(missing, 0)] is not None, by_tp
        assert by_tp[(missing, 0)].code() == KafkaError.UNKNOWN_TOPIC_OR_PART, by_tp
        assert by_tp[(known, 3)] is not None, by_tp
        assert by_tp[(known, 3)].code() == KafkaError.UNKNOWN_TOPIC_OR_PART, by_tp
        # A partition that exists is committed.
        done = consumer.commit(offsets=[TopicPartition(known, 0, 5)], asynchronous=False)
        assert [tp.error for tp in done] == [None], done
        committed = consumer.committed([TopicPartition(known, 0)], timeout=30)
        assert committed[0].offset == 5, committed
    finally:
        consumer.close()


def test_kafka_python_create_partitions_with_explicit_assignments(broker, unique_topic):
    """kafka-python's create_partitions with explicit assignments on the single broker (id 0):
    an unknown broker and a duplicate broker are refused with INVALID_REPLICA_ASSIGNMENT,
    validate_only changes nothing, and a good assignment adds the partitions."""
    from kafka.admin import KafkaAdminClient, NewPartitions
    from kafka.errors import InvalidReplicationAssignmentError

    topic = unique_topic("admin-assigned")
    ck_create_topic(broker.bootstrap, topic, 1)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=30000)
    try:
        for bad in ([[5], [0]], [[0, 0], [0]], [[0]]):
            try:
                admin.create_partitions({topic: NewPartitions(3, bad)})
            except InvalidReplicationAssignmentError:
                pass
            else:
                raise AssertionError(f"{bad} was accepted")
        admin.create_partitions({topic: NewPartitions(3, [[0], [0]])}, validate_only=True)
        assert partition_count(admin, topic) == 1
        admin.create_partitions({topic: NewPartitions(3, [[0], [0]])})
        deadline = time.monotonic() + DEADLINE_S
        while partition_count(admin, topic) != 3:
            assert time.monotonic() < deadline, "the partitions never appeared"
            time.sleep(0.2)
    finally:
        admin.close()


def partition_count(admin, topic):
    (described,) = admin.describe_topics([topic])
    return len(described["partitions"])


def test_kafka_python_create_topic_with_replica_assignments(broker, unique_topic):
    """kafka-python's NewTopic with replica_assignments on the single broker (id 0): a partition
    count given as well is refused with INVALID_REQUEST, a gap in the partition ids, an unknown
    broker or a duplicate broker with INVALID_REPLICA_ASSIGNMENT, validate_only creates nothing,
    and a good assignment creates the topic with exactly those replicas, led by broker 0."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import InvalidReplicationAssignmentError, InvalidRequestError

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=30000)
    try:
        refusals = [
            (NewTopic(unique_topic("assigned-count"), 2, -1, {0: [0], 1: [0]}),
             InvalidRequestError),
            (NewTopic(unique_topic("assigned-gap"), replica_assignments={0: [0], 2: [0]}),
             InvalidReplicationAssignmentError),
            (NewTopic(unique_topic("assigned-unknown"), replica_assignments={0: [5]}),
             InvalidReplicationAssignmentError),
            (NewTopic(unique_topic("assigned-dup"), replica_assignments={0: [0, 0]}),
             InvalidReplicationAssignmentError),
        ]
        for new_topic, error in refusals:
            try:
                admin.create_topics([new_topic])
            except error:
                pass
            else:
                raise AssertionError(f"{new_topic.replica_assignments} was accepted")
        topic = unique_topic("assigned")
        given = {0: [0], 1: [0], 2: [0]}
        admin.create_topics([NewTopic(topic, replica_assignments=given)], validate_only=True)
        assert topic not in admin.list_topics()
        admin.create_topics([NewTopic(topic, replica_assignments=given)])
        deadline = time.monotonic() + DEADLINE_S
        while True:
            partitions = {}
            if topic in admin.list_topics():
                (described,) = admin.describe_topics([topic])
                partitions = {p["partition_index"]: p for p in described["partitions"]}
            if len(partitions) == 3 and all(p["leader_id"] == 0 for p in partitions.values()):
                break
            assert time.monotonic() < deadline, f"the topic never came up: {partitions}"
            time.sleep(0.2)
        assert {i: p["replica_nodes"] for i, p in partitions.items()} == given, partitions
    finally:
        admin.close()
