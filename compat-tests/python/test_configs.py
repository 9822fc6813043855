"""Topic configs and DeleteRecords through kafka-python's admin client (and confluent-kafka's
clients to read the results): every topic config is described with its default and source; a
retention change deletes old segments within the retention check interval and survives a
restart; DeleteRecords moves where consumers from the beginning start; runtime changes of
compression.type and message.timestamp.type reach what clients read.

The broker here checks retention every second (log.retention.check.interval.ms=1000). Every wait
is bounded by a deadline.
"""

import time

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka import TopicPartition as CTopicPartition
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import AlterConfigOp, ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic

from conftest import running_broker, unique_topic

RETENTION_CHECK_MS = 1000
DEADLINE_S = 30.0
# Kafka's ConfigSource, as kafka-python names it.
DYNAMIC_TOPIC_CONFIG = "DYNAMIC_TOPIC_CONFIG"
DEFAULT_CONFIG = "DEFAULT_CONFIG"
# Every topic-level config of Kafka 3.9.
TOPIC_CONFIGS = {
    "cleanup.policy", "compression.gzip.level", "compression.lz4.level", "compression.type",
    "compression.zstd.level", "delete.retention.ms", "file.delete.delay.ms", "flush.messages",
    "flush.ms", "follower.replication.throttled.replicas", "index.interval.bytes",
    "leader.replication.throttled.replicas", "local.retention.bytes", "local.retention.ms",
    "max.compaction.lag.ms", "max.message.bytes", "message.downconversion.enable",
    "message.format.version", "message.timestamp.after.max.ms", "message.timestamp.before.max.ms",
    "message.timestamp.difference.max.ms", "message.timestamp.type", "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms", "min.insync.replicas", "preallocate", "remote.log.copy.disable",
    "remote.log.delete.on.disable", "remote.storage.enable", "retention.bytes", "retention.ms",
    "segment.bytes", "segment.index.bytes", "segment.jitter.ms", "segment.ms",
    "unclean.leader.election.enable",
}


@pytest.fixture(scope="module")
def config_broker(tmp_path_factory):
    yield from running_broker(
        tmp_path_factory, [f"log.retention.check.interval.ms={RETENTION_CHECK_MS}"])


def now_ms():
    return int(time.time() * 1000)


def admin_for(broker):
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)


def topic_configs(admin, topic):
    result = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic)], include_synonyms=True, config_filter="all")
    return result["topic"][topic]


def create(admin, topic, configs=None):
    admin.create_topics([NewTopic(topic, 1, 1, topic_configs=configs or {})])


def set_topic_config(admin, topic, key, value):
    result = admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, configs={key: (AlterConfigOp.SET, value)})])
    outcome = result["topic"][topic]
    assert outcome == "OK", f"IncrementalAlterConfigs {key}={value}: {outcome}"


def earliest(broker, topic):
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    try:
        tp = TopicPartition(topic, 0)
        return consumer.beginning_offsets([tp])[tp]
    finally:
        consumer.close()


def produce_one_per_batch(broker, topic, timestamps):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=0, acks="all")
    try:
        for i, ts in enumerate(timestamps):
            producer.send(topic, key=f"k{i}".encode(), value=f"value-{i:04}".encode(),
                          partition=0, timestamp_ms=ts).get(timeout=15)
    finally:
        producer.close()


def consume_all(broker, topic, expected):
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False)
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        out = []
        deadline = time.monotonic() + DEADLINE_S
        while len(out) < expected and time.monotonic() < deadline:
            for recs in consumer.poll(timeout_ms=500).values():
                out.extend(recs)
        return out
    finally:
        consumer.close()


def test_describe_lists_every_topic_config_with_default_and_source(config_broker):
    topic = unique_topic("described")
    admin = admin_for(config_broker)
    try:
        create(admin, topic, {"retention.bytes": "123456"})
        configs = topic_configs(admin, topic)
    finally:
        admin.close()
    assert set(configs) == TOPIC_CONFIGS
    assert configs["retention.bytes"]["value"] == "123456"
    assert configs["retention.bytes"]["config_source"] == DYNAMIC_TOPIC_CONFIG
    assert configs["cleanup.policy"]["value"] == "delete"
    assert configs["cleanup.policy"]["config_source"] == DEFAULT_CONFIG
    assert [s["name"] for s in configs["cleanup.policy"]["synonyms"]] == ["log.cleanup.policy"]
    assert configs["min.cleanable.dirty.ratio"]["value"] == "0.5"
    assert configs["max.message.bytes"]["value"] == "1048588"
    assert all(c["value"] is not None for c in configs.values())


def test_retention_change_deletes_old_segments_and_persists(config_broker):
    topic = unique_topic("retention")
    admin = admin_for(config_broker)
    try:
        # Tiny segments: every batch gets its own, so retention can drop exactly the old ones.
        create(admin, topic, {"segment.bytes": "100", "file.delete.delay.ms": "0"})
    finally:
        admin.close()
    old = now_ms() - 2 * 3600 * 1000
    produce_one_per_batch(config_broker, topic, [old + i for i in range(20)])
    produce_one_per_batch(config_broker, topic, [now_ms()] * 5)
    assert earliest(config_broker, topic) == 0, "the default retention (7 days) keeps everything"

    admin = admin_for(config_broker)
    try:
        set_topic_config(admin, topic, "retention.ms", "60000")
        configs = topic_configs(admin, topic)
        assert configs["retention.ms"]["value"] == "60000"
        assert configs["retention.ms"]["config_source"] == DYNAMIC_TOPIC_CONFIG
    finally:
        admin.close()
    changed = time.monotonic()
    deadline = changed + DEADLINE_S
    while earliest(config_broker, topic) != 20:
        assert time.monotonic() < deadline, f"old segments of {topic} still there"
        time.sleep(0.1)
    # Within a retention check (plus the time to see it), not at some later cleanup.
    assert time.monotonic() - changed < RETENTION_CHECK_MS / 1000 + 10
    records = consume_all(config_broker, topic, 5)
    assert [r.offset for r in records] == [20, 21, 22, 23, 24]

    config_broker.restart()
    admin = admin_for(config_broker)
    try:
        configs = topic_configs(admin, topic)
    finally:
        admin.close()
    assert (configs["retention.ms"]["value"], configs["retention.ms"]["config_source"]) == \
        ("60000", DYNAMIC_TOPIC_CONFIG)
    assert earliest(config_broker, topic) == 20


def test_delete_records_moves_where_consumers_start(config_broker):
    topic = unique_topic("delete-records")
    admin = admin_for(config_broker)
    try:
        create(admin, topic)
        produce_one_per_batch(config_broker, topic, [now_ms()] * 50)
        tp = TopicPartition(topic, 0)
        result = admin.delete_records({tp: 30})
        assert result[tp]["low_watermark"] == 30, result
        assert result[tp]["error_code"] == 0, result
    finally:
        admin.close()
    assert earliest(config_broker, topic) == 30
    assert [r.offset for r in consume_all(config_broker, topic, 20)] == list(range(30, 50))
    # librdkafka agrees: from the beginning is offset 30.
    consumer = Consumer({"bootstrap.servers": config_broker.bootstrap, "group.id": "unused",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        low, high = consumer.get_watermark_offsets(CTopicPartition(topic, 0), timeout=15)
        assert (low, high) == (30, 50)
        consumer.assign([CTopicPartition(topic, 0, -2)])
        deadline = time.monotonic() + DEADLINE_S
        msg = None
        while msg is None and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
        assert msg is not None and msg.error() is None and msg.offset() == 30
    finally:
        consumer.close()


def test_runtime_compression_and_log_append_time_reach_clients(config_broker):
    topic = unique_topic("runtime")
    admin = admin_for(config_broker)
    try:
        create(admin, topic)
        set_topic_config(admin, topic, "compression.type", "zstd")
        set_topic_config(admin, topic, "message.timestamp.type", "LogAppendTime")
    finally:
        admin.close()
    sent_ts = now_ms() - 3600 * 1000
    start = now_ms()
    producer = Producer({"bootstrap.servers": config_broker.bootstrap, "compression.type": "none",
                         "linger.ms": 0})
    for i in range(100):
        producer.produce(topic, key=f"k{i}", value=f"v{i}" * 50, partition=0, timestamp=sent_ts)
    assert producer.flush(30) == 0
    records = consume_all(config_broker, topic, 100)
    assert [r.value for r in records] == [(f"v{i}" * 50).encode() for i in range(100)]
    # kafka-python: timestamp_type 1 is LogAppendTime; the broker's clock, not the producer's.
    assert all(r.timestamp_type == 1 and r.timestamp >= start for r in records)
    consumer = Consumer({"bootstrap.servers": config_broker.bootstrap, "group.id": "unused",
                         "enable.auto.commit": False})
    try:
        consumer.assign([CTopicPartition(topic, 0, 0)])
        got = []
        deadline = time.monotonic() + DEADLINE_S
        while len(got) < 100 and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(msg)
        assert [m.value() for m in got] == [(f"v{i}" * 50).encode() for i in range(100)]
        assert all(m.timestamp()[0] == 2 for m in got), "librdkafka: TIMESTAMP_LOG_APPEND_TIME"
    finally:
        consumer.close()
    stored = list((config_broker.log_dir / f"{topic}-0").glob("*.log"))
    data = b"".join(p.read_bytes() for p in stored)
    # Batch attributes (offset 21 of each batch): codec 4 (zstd) and the LogAppendTime bit.
    assert len(data) > 61 and data[22] & 0x07 == 4 and data[22] & 0x08, "stored zstd, LogAppendTime"
