"""The Prometheus endpoint after a known load: /metrics parses with prometheus_client's own
text-format parser, the per-topic messages-in, bytes-in and bytes-out counters equal what was
produced and fetched, the request-latency histograms have Produce and Fetch observations, and
the group-coordinator gauges count a new consumer group.

The produce load comes from confluent-kafka; the fetch load from raw Fetch v4 requests on a
plain socket, so the test knows every byte the broker sent back.
"""

import socket
import struct
import time
import urllib.request

import kafka
from prometheus_client.parser import text_string_to_metric_families

from conftest import unique_topic
from test_clients import (
    _fetch_v4_body,
    _parse_fetch_v4,
    _raw_request,
    _raw_response,
    ck_create_topic,
    ck_produce,
)

DEADLINE_S = 30.0


def scrape(broker):
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.metrics_port}/metrics", timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    return list(text_string_to_metric_families(text))


def sample(families, name, **labels):
    """The value of the one sample called `name` with `labels` (0 when absent)."""
    found = [
        s.value
        for f in families
        for s in f.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) <= 1, f"{len(found)} samples {name}{labels}"
    return found[0] if found else 0


def batches(records):
    """(complete batch bytes, next offset) of a fetched records blob (a partial batch may end it)."""
    pos, stored, next_offset = 0, 0, None
    while pos + 12 <= len(records):
        base, length = struct.unpack_from(">qi", records, pos)
        end = pos + 12 + length
        if end > len(records):
            break
        (last_delta,) = struct.unpack_from(">i", records, pos + 23)
        stored += end - pos
        next_offset = base + last_delta + 1
        pos = end
    return stored, next_offset


def raw_read_all(broker, topic, partition, end_offset):
    """Fetches the partition from offset 0 to `end_offset` with raw Fetch v4 requests.
    Returns (bytes the broker sent, bytes of the stored batches, fetch requests)."""
    host, port = broker.bootstrap.rsplit(":", 1)
    sent = stored = requests = 0
    offset = 0
    deadline = time.monotonic() + DEADLINE_S
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        while offset < end_offset:
            assert time.monotonic() < deadline, f"read {offset} of {end_offset} records"
            requests += 1
            _raw_request(sock, 1, 4, requests, _fetch_v4_body(topic, partition, offset, 100))
            ((_, _, err, _, records),) = _parse_fetch_v4(_raw_response(sock, requests))
            assert err == 0, f"fetch error {err}"
            sent += len(records)
            complete, next_offset = batches(records)
            stored += complete
            if next_offset is not None:
                offset = next_offset
    return sent, stored, requests


def test_metrics_parse_and_count_a_known_load(broker):
    topic = unique_topic("metered")
    ck_create_topic(broker.bootstrap, topic, 2)
    before = scrape(broker)
    assert sample(before, "kafka_server_brokertopicmetrics_messagesin_total", topic=topic) == 0
    fetches_before = sample(before, "kafka_network_requestmetrics_totaltimems_count", request="Fetch")
    produces_before = sample(before, "kafka_network_requestmetrics_totaltimems_count", request="Produce")

    n = 3000
    acks, _ = ck_produce(broker.bootstrap, topic, n, "lz4")
    ends = {}
    for a in acks.values():
        ends[a.partition] = max(ends.get(a.partition, 0), a.offset + 1)
    sent = stored = fetches = 0
    for partition, end in ends.items():
        s, st, r = raw_read_all(broker, topic, partition, end)
        sent, stored, fetches = sent + s, stored + st, fetches + r

    after = scrape(broker)
    assert sample(after, "kafka_server_brokertopicmetrics_messagesin_total", topic=topic) == n
    # The broker appends the producer's batches as they came, so bytes in are the stored bytes.
    assert sample(after, "kafka_server_brokertopicmetrics_bytesin_total", topic=topic) == stored
    assert sample(after, "kafka_server_brokertopicmetrics_bytesout_total", topic=topic) == sent
    assert sample(after, "kafka_server_brokertopicmetrics_totalfetchrequests_total", topic=topic) == fetches
    assert sample(after, "kafka_server_brokertopicmetrics_failedproducerequests_total", topic=topic) == 0
    total_size = sum(
        sample(after, "kafka_log_log_size", topic=topic, partition=str(p)) for p in ends
    )
    assert total_size == stored
    for p, end in ends.items():
        assert sample(after, "kafka_log_log_logendoffset", topic=topic, partition=str(p)) == end

    hist = "kafka_network_requestmetrics_totaltimems"
    assert sample(after, f"{hist}_count", request="Fetch") >= fetches_before + fetches
    assert sample(after, f"{hist}_count", request="Produce") > produces_before
    for api in ("Produce", "Fetch"):
        count = sample(after, f"{hist}_count", request=api)
        assert sample(after, f"{hist}_bucket", request=api, le="+Inf") == count
        assert sample(after, f"{hist}_sum", request=api) > 0
        buckets = [
            s.value
            for f in after
            for s in f.samples
            if s.name == f"{hist}_bucket" and s.labels.get("request") == api
        ]
        assert buckets == sorted(buckets), f"{api} buckets are cumulative"

    families = {f.name: f for f in after}
    assert families[hist].type == "histogram"
    assert families["kafka_server_brokertopicmetrics_messagesin"].type == "counter"
    for f in after:
        assert f.documentation.strip(), f"{f.name} has no HELP text"


def test_group_gauges_count_a_new_group(broker):
    topic = unique_topic("metered-group")
    ck_create_topic(broker.bootstrap, topic, 1)
    states = ["stable", "preparingrebalance", "completingrebalance", "empty", "dead"]
    prefix = "kafka_coordinator_group_groupmetadatamanager_"
    before = scrape(broker)
    groups_before = sample(before, prefix + "numgroups")
    offsets_before = sample(before, prefix + "numoffsets")

    # A consumer that commits an offset for a new group, then leaves it Empty.
    consumer = kafka.KafkaConsumer(
        bootstrap_servers=broker.bootstrap, group_id=unique_topic("gauged"),
        enable_auto_commit=False,
    )
    try:
        tp = kafka.TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.commit({tp: kafka.OffsetAndMetadata(0, "", -1)})
    finally:
        consumer.close()

    after = scrape(broker)
    assert sample(after, prefix + "numgroups") == groups_before + 1
    # Other tests' groups may change state meanwhile; the new group is Empty and counted there.
    assert sample(after, prefix + "numgroupsempty") >= 1
    assert sample(after, prefix + "numoffsets") == offsets_before + 1
    assert sample(after, prefix + "numgroups") == sum(
        sample(after, prefix + "numgroups" + s) for s in states
    )


def test_fetch_session_gauges_count_a_consumers_session(broker):
    """kafka-python opens a KIP-227 fetch session with the broker it fetches from, reads every
    record through it, and the FetchSessionCache gauges count that session and its partitions."""
    topic = unique_topic("metered-session")
    ck_create_topic(broker.bootstrap, topic, 2)
    n = 10
    acks, _ = ck_produce(broker.bootstrap, topic, n)
    assert len(acks) == n
    prefix = "kafka_server_fetchsessioncache_"
    before = scrape(broker)
    sessions_before = sample(before, prefix + "numincrementalfetchsessions")
    partitions_before = sample(before, prefix + "numincrementalfetchpartitionscached")

    consumer = kafka.KafkaConsumer(
        bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
    )
    try:
        consumer.assign([kafka.TopicPartition(topic, p) for p in (0, 1)])
        consumer.seek_to_beginning()
        got = []
        deadline = time.monotonic() + DEADLINE_S
        while len(got) < n and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got.extend(r.value for r in records)
        assert sorted(got) == sorted(f"v-{i}".encode() for i in range(n))
        during = scrape(broker)
        assert sample(during, prefix + "numincrementalfetchsessions") == sessions_before + 1
        assert sample(during, prefix + "numincrementalfetchpartitionscached") > partitions_before
    finally:
        consumer.close()
