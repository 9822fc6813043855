"""Old consumers (issue 19, acceptance 7): kafka-python told to speak to a 0.9 / 0.10 / 0.10.1
broker sends Fetch v1 / v2 / v3 and reads records a current producer wrote as magic-2 batches,
uncompressed and gzip-compressed, which the broker down-converts to magic 0 / magic 1. Every
record comes back once, in order, with its key and value, and from magic 1 on its timestamp.
The broker's per-version request counter shows the old Fetch was the one used, and its
FetchMessageConversions counter counts the converted records.
"""

import time

import kafka
import pytest

from conftest import unique_topic
from test_metrics import sample, scrape

DEADLINE_S = 30.0
PER_CODEC = 40
BASE_TS = 1_700_000_000_000


def produce(broker, topic):
    """PER_CODEC records uncompressed, then PER_CODEC gzip; magic 2 (a current producer)."""
    expected = []
    for codec in (None, "gzip"):
        p = kafka.KafkaProducer(bootstrap_servers=broker.bootstrap, compression_type=codec, linger_ms=5)
        try:
            for _ in range(PER_CODEC):
                i = len(expected)
                key = None if i % 7 == 0 else f"key-{i}".encode()
                value = f"value-{i}".encode()
                p.send(topic, key=key, value=value, partition=0, timestamp_ms=BASE_TS + i)
                expected.append((i, key, value, BASE_TS + i))
            p.flush(timeout=DEADLINE_S)
        finally:
            p.close()
    return expected


@pytest.mark.parametrize(
    "api_version,fetch_version,magic",
    [((0, 9), 1, 0), ((0, 10), 2, 1), ((0, 10, 1), 3, 1)],
)
def test_old_consumer_reads_magic_2_records(broker, api_version, fetch_version, magic):
    topic = unique_topic("downconv")
    admin = kafka.KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        admin.create_topics([kafka.admin.NewTopic(topic, 1, 1)])
    finally:
        admin.close()
    expected = produce(broker, topic)
    before = scrape(broker)

    consumer = kafka.KafkaConsumer(
        bootstrap_servers=broker.bootstrap,
        api_version=api_version,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # Small enough that a fetch ends mid-set and the next one starts inside a wrapper.
        max_partition_fetch_bytes=1024,
    )
    got = []
    try:
        tp = kafka.TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + DEADLINE_S
        while len(got) < len(expected) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got.extend(records)
    finally:
        consumer.close()

    assert [(r.offset, r.key, r.value) for r in got] == [(o, k, v) for o, k, v, _ in expected]
    if magic == 1:
        assert [r.timestamp for r in got] == [ts for *_, ts in expected]
    else:
        assert all(r.timestamp in (None, -1) for r in got), "magic 0 has no timestamps"

    after = scrape(broker)
    name = "kafka_network_requestmetrics_requests_total"
    used = sample(after, name, request="Fetch", version=str(fetch_version)) - sample(
        before, name, request="Fetch", version=str(fetch_version)
    )
    assert used > 0, f"the consumer sent Fetch v{fetch_version}"
    conversions = sample(
        after, "kafka_server_brokertopicmetrics_fetchmessageconversions_total", topic=topic
    )
    assert conversions >= len(expected)
