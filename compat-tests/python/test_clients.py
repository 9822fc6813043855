"""Real Kafka clients (librdkafka via confluent-kafka and kcat, kafka-python, aiokafka) against a real
odradek process. Needs: ApiVersions, Metadata (with auto-creation), CreateTopics, Produce, Fetch,
ListOffsets. No consumer groups: every consumer assigns partitions itself and commits nothing.

Every wait is bounded by a deadline. A missing client library is an error, not a skip: run
scripts/python-deps.sh, which installs them all.
"""

import asyncio
import json
import socket
import struct
import subprocess
import time
import uuid
from collections import namedtuple

import pytest

# Hard imports on purpose: a missing client must fail the suite, not skip it.
import aiokafka
import aiokafka.admin
import confluent_kafka
import kafka
import kafka.codec
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.partitioner.default import murmur2

from conftest import unique_topic

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
N = 10_000
CONSUME_DEADLINE_S = 60.0
PRODUCE_DEADLINE_S = 60.0
TOPIC_READY_DEADLINE_S = 20.0

# One consumed record, client-independent. headers: tuple of (str, bytes).
Rec = namedtuple("Rec", "partition offset key value headers timestamp")
# What the producer's acknowledgement said about record i. timestamp None: not reported.
Ack = namedtuple("Ack", "partition offset timestamp")


def key_of(i):
    return f"k-{i}".encode()


def value_of(i):
    return f"v-{i}".encode()


def headers_of(i):
    return (("idx", str(i).encode()),)


def now_ms():
    return int(time.time() * 1000)


# --------------------------------------------------------------------------------------------
# Checks shared by all clients
# --------------------------------------------------------------------------------------------


def check_records(records, acks, n, window_ms):
    """records: consumed Recs (consumption order); acks: {i: Ack} from the producer;
    window_ms: (first, last) wall-clock ms around the produce calls."""
    assert len(records) == n, f"consumed {len(records)} records, expected {n}"
    assert len(acks) == n, f"producer acknowledged {len(acks)} records, expected {n}"
    seen = set()
    last_in_partition = {}  # partition -> (offset, i)
    lo, hi = window_ms
    for r in records:
        assert r.value.startswith(b"v-"), f"unexpected value {r.value!r} at {r.partition}/{r.offset}"
        i = int(r.value[2:])
        assert i not in seen, f"record {i} consumed twice (again at {r.partition}/{r.offset})"
        seen.add(i)
        assert r.key == key_of(i), f"record {i}: key {r.key!r}"
        assert r.headers == headers_of(i), f"record {i}: headers {r.headers!r}"
        ack = acks[i]
        assert (r.partition, r.offset) == (ack.partition, ack.offset), (
            f"record {i} consumed at {r.partition}/{r.offset}, acknowledged at "
            f"{ack.partition}/{ack.offset}"
        )
        if ack.timestamp is not None and ack.timestamp >= 0:
            assert r.timestamp == ack.timestamp, (
                f"record {i}: timestamp {r.timestamp}, producer reported {ack.timestamp}"
            )
        # CreateTime is set by the producer while it runs; allow for clock granularity.
        assert lo - 1000 <= r.timestamp <= hi + 1000, (
            f"record {i}: timestamp {r.timestamp} outside the produce window [{lo}, {hi}]"
        )
        prev = last_in_partition.get(r.partition)
        if prev is not None:
            assert r.offset > prev[0], f"partition {r.partition}: offset {r.offset} after {prev[0]}"
            assert i > prev[1], f"partition {r.partition}: record {i} after record {prev[1]}"
        last_in_partition[r.partition] = (r.offset, i)
    assert seen == set(range(n))
    # Offsets of each partition are dense from 0 (fresh topics, no transactions).
    for p in last_in_partition:
        offs = sorted(r.offset for r in records if r.partition == p)
        assert offs == list(range(len(offs))), f"partition {p}: offsets not dense from 0"


def by_partition_offset(records):
    return sorted(records, key=lambda r: (r.partition, r.offset))


# --------------------------------------------------------------------------------------------
# confluent-kafka (librdkafka)
# --------------------------------------------------------------------------------------------


def ck_create_topic(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)],
        operation_timeout=15,
        request_timeout=20,
    )
    futures[topic].result(timeout=30)
    ck_wait_topic(admin, topic, partitions)


def ck_wait_topic(admin_or_client, topic, partitions):
    """Until metadata shows the topic with `partitions` partitions, each with a leader."""
    deadline = time.monotonic() + TOPIC_READY_DEADLINE_S
    last = None
    while time.monotonic() < deadline:
        md = admin_or_client.list_topics(topic, timeout=5)
        t = md.topics.get(topic)
        last = t
        if (
            t is not None
            and t.error is None
            and len(t.partitions) == partitions
            and all(p.leader >= 0 and p.error is None for p in t.partitions.values())
        ):
            return md
        time.sleep(0.1)
    pytest.fail(f"topic {topic} not ready with {partitions} partitions in metadata: {last}")


def ck_close_producer(p):
    """Drops whatever is still queued (nothing, after a successful flush) and closes, so that a
    failed test leaves no producer reconnecting in the background."""
    p.purge()
    p.flush(0)
    p.close()


def ck_produce(bootstrap, topic, n, codec="none", extra=None, partition=None):
    """Produces records 0..n-1 (key k-i, value v-i, header idx=i). Returns ({i: Ack}, window)."""
    conf = {
        "bootstrap.servers": bootstrap,
        "compression.type": codec,
        "linger.ms": 10,
        "acks": "all",
        "message.timeout.ms": int(PRODUCE_DEADLINE_S * 1000) - 5000,
    }
    conf.update(extra or {})
    p = Producer(conf)
    acks, errors = {}, []

    def on_delivery(err, msg):
        i = int(msg.value()[2:])
        if err is not None:
            errors.append((i, err))
            return
        ts_type, ts = msg.timestamp()
        acks[i] = Ack(
            msg.partition(),
            msg.offset(),
            ts if ts_type != confluent_kafka.TIMESTAMP_NOT_AVAILABLE else None,
        )

    deadline = time.monotonic() + PRODUCE_DEADLINE_S
    try:
        first = now_ms()
        for i in range(n):
            kwargs = dict(key=key_of(i), value=value_of(i), headers=list(headers_of(i)),
                          on_delivery=on_delivery)
            if partition is not None:
                kwargs["partition"] = partition
            while True:
                try:
                    p.produce(topic, **kwargs)
                    break
                except BufferError:
                    assert time.monotonic() < deadline, "local producer queue stayed full"
                    p.poll(0.05)
            if i % 1000 == 0:
                p.poll(0)
        last = now_ms()
        remaining = p.flush(max(1.0, deadline - time.monotonic()))
    finally:
        ck_close_producer(p)
    assert remaining == 0, f"{remaining} records not delivered within {PRODUCE_DEADLINE_S} s"
    assert not errors, f"{len(errors)} delivery errors, first: {errors[:3]}"
    return acks, (first, last)


def ck_record(msg):
    ts_type, ts = msg.timestamp()
    return Rec(msg.partition(), msg.offset(), msg.key(), msg.value(),
               tuple(msg.headers() or ()), ts)


def ck_consumer(bootstrap, extra=None):
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": f"compat-{uuid.uuid4().hex[:8]}",  # required by librdkafka; nothing is committed
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
    }
    conf.update(extra or {})
    return Consumer(conf)


def ck_consume(bootstrap, topic, partitions, n, deadline_s=CONSUME_DEADLINE_S, start=None):
    """Assigns all partitions at OFFSET_BEGINNING (or `start` offsets) and reads until n records."""
    c = ck_consumer(bootstrap)
    try:
        c.assign([
            TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING if start is None else start)
            for p in range(partitions)
        ])
        out, errors = [], []
        deadline = time.monotonic() + deadline_s
        while len(out) < n and time.monotonic() < deadline:
            for msg in c.consume(num_messages=1000, timeout=0.5):
                err = msg.error()
                if err is not None:
                    if err.fatal():
                        pytest.fail(f"fatal consumer error: {err}")
                    errors.append(err)  # transient (e.g. no group coordinator): keep going
                    continue
                out.append(ck_record(msg))
        assert len(out) >= n, (
            f"consumed {len(out)} of {n} records within {deadline_s} s; "
            f"consumer errors: {[str(e) for e in errors[:5]]}"
        )
        return out
    finally:
        c.close()


@pytest.mark.parametrize("codec", CODECS)
def test_confluent_kafka_roundtrip(broker, codec):
    topic = unique_topic(f"ck-{codec}")
    ck_create_topic(broker.bootstrap, topic, 3)
    acks, window = ck_produce(broker.bootstrap, topic, N, codec)
    records = ck_consume(broker.bootstrap, topic, 3, N)
    check_records(records, acks, N, window)
    assert {r.partition for r in records} == {0, 1, 2}, "keyed records should use all partitions"


# --------------------------------------------------------------------------------------------
# kafka-python
# --------------------------------------------------------------------------------------------


def kp_create_topic(bootstrap, topic, partitions):
    admin = kafka.KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    try:
        result = admin.create_topics(
            {topic: {"num_partitions": partitions, "replication_factor": 1}}, timeout_ms=15000
        )
        for t in result["topics"]:
            assert t["error_code"] == 0, f"CreateTopics: {t}"
    finally:
        admin.close()
    kp_wait_topic(bootstrap, topic, partitions)


def kp_wait_topic(bootstrap, topic, partitions):
    c = kafka.KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + TOPIC_READY_DEADLINE_S
        parts = None
        while time.monotonic() < deadline:
            parts = c.partitions_for_topic(topic)
            if parts is not None and len(parts) == partitions:
                return
            time.sleep(0.1)
        pytest.fail(f"kafka-python: topic {topic} not ready with {partitions} partitions: {parts}")
    finally:
        c.close()


KP_CODEC_CHECK = {
    "none": lambda: True,
    "gzip": kafka.codec.has_gzip,
    "snappy": kafka.codec.has_snappy,
    "lz4": kafka.codec.has_lz4,
    "zstd": kafka.codec.has_zstd,
}


def kp_produce(bootstrap, topic, n, codec="none", extra=None, partition=None):
    # python-snappy, lz4 and zstandard are in requirements.txt, so every codec must be usable.
    assert KP_CODEC_CHECK[codec](), (
        f"kafka-python lacks the {codec} codec library: run scripts/python-deps.sh"
    )
    conf = dict(
        bootstrap_servers=bootstrap,
        compression_type=None if codec == "none" else codec,
        acks="all",
        linger_ms=10,
        # Idempotence (kafka-python 3's default) needs InitProducerId; these tests need only Produce.
        enable_idempotence=False,
    )
    conf.update(extra or {})
    p = kafka.KafkaProducer(**conf)
    try:
        first = now_ms()
        futures = [
            p.send(topic, key=key_of(i), value=value_of(i), headers=list(headers_of(i)),
                   partition=partition)
            for i in range(n)
        ]
        last = now_ms()
        p.flush(timeout=PRODUCE_DEADLINE_S)
        acks = {}
        for i, f in enumerate(futures):
            md = f.get(timeout=5)
            acks[i] = Ack(md.partition, md.offset, md.timestamp)
        return acks, (first, last)
    finally:
        p.close(timeout=10)


def kp_record(r):
    return Rec(r.partition, r.offset, r.key, r.value, tuple(tuple(h) for h in (r.headers or ())),
               r.timestamp)


def kp_consume(bootstrap, topic, partitions, n, deadline_s=CONSUME_DEADLINE_S):
    c = kafka.KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        c.assign([kafka.TopicPartition(topic, p) for p in range(partitions)])
        c.seek_to_beginning()
        out = []
        deadline = time.monotonic() + deadline_s
        while len(out) < n and time.monotonic() < deadline:
            for _tp, recs in c.poll(timeout_ms=500, max_records=2000).items():
                out.extend(kp_record(r) for r in recs)
        assert len(out) >= n, f"kafka-python consumed {len(out)} of {n} records within {deadline_s} s"
        return out
    finally:
        c.close()


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_roundtrip(broker, codec):
    topic = unique_topic(f"kp-{codec}")
    kp_create_topic(broker.bootstrap, topic, 3)
    acks, window = kp_produce(broker.bootstrap, topic, N, codec)
    records = kp_consume(broker.bootstrap, topic, 3, N)
    check_records(records, acks, N, window)
    assert {r.partition for r in records} == {0, 1, 2}, "keyed records should use all partitions"


# --------------------------------------------------------------------------------------------
# aiokafka
# --------------------------------------------------------------------------------------------


async def aio_roundtrip(bootstrap, topic, partitions, n, codec):
    admin = aiokafka.admin.AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resp = await admin.create_topics(
            [aiokafka.admin.NewTopic(topic, num_partitions=partitions, replication_factor=1)],
            timeout_ms=15000,
        )
        for entry in resp.topic_errors:
            assert entry[1] == 0, f"CreateTopics: {entry}"
    finally:
        await admin.close()

    producer = aiokafka.AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        compression_type=None if codec == "none" else codec,
        acks="all",
        linger_ms=10,
        enable_idempotence=False,
    )
    await producer.start()
    try:
        # Until the new topic's metadata is visible to this client.
        deadline = time.monotonic() + TOPIC_READY_DEADLINE_S
        while len(await producer.partitions_for(topic)) != partitions:
            assert time.monotonic() < deadline, f"aiokafka: topic {topic} not ready"
            await asyncio.sleep(0.1)
        first = now_ms()
        futures = []
        for i in range(n):
            futures.append(await producer.send(
                topic, key=key_of(i), value=value_of(i), headers=list(headers_of(i))))
        last = now_ms()
        await producer.flush()
        metas = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    # aiokafka 0.14 reports the first record's CreateTime for every record of a batch
    # (BatchBuilder.done overwrites `timestamp` in its loop), so only the produce window is
    # checked for its records; a LogAppendTime from the broker would be per batch anyway.
    acks = {i: Ack(m.partition, m.offset, None) for i, m in enumerate(metas)}

    consumer = aiokafka.AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        consumer.assign([aiokafka.TopicPartition(topic, p) for p in range(partitions)])
        await consumer.seek_to_beginning()
        out = []
        deadline = time.monotonic() + CONSUME_DEADLINE_S
        while len(out) < n and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            for recs in batches.values():
                out.extend(
                    Rec(r.partition, r.offset, r.key, r.value,
                        tuple(tuple(h) for h in (r.headers or ())), r.timestamp)
                    for r in recs
                )
    finally:
        await consumer.stop()
    return acks, (first, last), out


@pytest.mark.parametrize("codec", CODECS)
def test_aiokafka_roundtrip(broker, codec):
    topic = unique_topic(f"aio-{codec}")
    acks, window, records = asyncio.run(
        asyncio.wait_for(
            aio_roundtrip(broker.bootstrap, topic, 3, N, codec),
            timeout=PRODUCE_DEADLINE_S + CONSUME_DEADLINE_S + TOPIC_READY_DEADLINE_S + 30,
        )
    )
    check_records(records, acks, N, window)


# --------------------------------------------------------------------------------------------
# kcat (librdkafka's command-line client, Debian's package)
# --------------------------------------------------------------------------------------------


def kcat(*args, input_text=None, timeout=60):
    proc = subprocess.run(
        ["kcat", *args], input=input_text, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"kcat {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
    return proc.stdout


def test_kcat_produce_consume(broker):
    topic = unique_topic("kcat")
    ck_create_topic(broker.bootstrap, topic, 1)
    lines = [f"key-{i}:value-{i} with spaces" for i in range(500)]
    kcat("-P", "-b", broker.bootstrap, "-t", topic, "-K:", input_text="\n".join(lines) + "\n")
    out = kcat("-C", "-b", broker.bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
               "-f", "%k:%s\n")
    assert out.splitlines() == lines

    meta = json.loads(kcat("-L", "-J", "-b", broker.bootstrap, "-t", topic))
    (t,) = [t for t in meta["topics"] if t["topic"] == topic]
    assert len(t["partitions"]) == 1


# --------------------------------------------------------------------------------------------
# Cross-client
# --------------------------------------------------------------------------------------------


def test_confluent_produced_kafka_python_consumed(broker):
    n = 3000
    topic = unique_topic("x-ck2kp")
    ck_create_topic(broker.bootstrap, topic, 3)
    acks, window = ck_produce(broker.bootstrap, topic, n, "lz4")
    kp_records = kp_consume(broker.bootstrap, topic, 3, n)
    check_records(kp_records, acks, n, window)
    ck_records = ck_consume(broker.bootstrap, topic, 3, n)
    assert by_partition_offset(kp_records) == by_partition_offset(ck_records)


def test_kafka_python_produced_confluent_consumed(broker):
    n = 3000
    topic = unique_topic("x-kp2ck")
    kp_create_topic(broker.bootstrap, topic, 3)
    acks, window = kp_produce(broker.bootstrap, topic, n, "gzip")
    ck_records = ck_consume(broker.bootstrap, topic, 3, n)
    check_records(ck_records, acks, n, window)
    kp_records = kp_consume(broker.bootstrap, topic, 3, n)
    assert by_partition_offset(kp_records) == by_partition_offset(ck_records)


def test_murmur2_partitioning_matches(broker):
    """librdkafka's murmur2_random and kafka-python's default partitioner (both Java's murmur2)
    put every key in the same partition, and the broker stores it there."""
    partitions, n = 7, 500
    topic = unique_topic("x-murmur2")
    ck_create_topic(broker.bootstrap, topic, partitions)
    ck_acks, _ = ck_produce(broker.bootstrap, topic, n, extra={"partitioner": "murmur2_random"})
    kp_acks, _ = kp_produce(broker.bootstrap, topic, n)
    for i in range(n):
        java = (murmur2(key_of(i)) & 0x7FFFFFFF) % partitions
        assert ck_acks[i].partition == java, f"confluent-kafka put {key_of(i)!r} in {ck_acks[i].partition}, murmur2 says {java}"
        assert kp_acks[i].partition == java, f"kafka-python put {key_of(i)!r} in {kp_acks[i].partition}, murmur2 says {java}"
    records = kp_consume(broker.bootstrap, topic, partitions, 2 * n)
    assert len(records) == 2 * n
    for r in records:
        i = int(r.value[2:])
        assert r.partition == ck_acks[i].partition, f"{r.key!r} stored in partition {r.partition}"
    assert len({r.partition for r in records}) == partitions


# --------------------------------------------------------------------------------------------
# Topic auto-creation
# --------------------------------------------------------------------------------------------


def test_auto_create_on_produce(broker):
    topic = unique_topic("auto")
    expected_partitions = int(broker.properties.get("num.partitions", "1"))
    acks, window = ck_produce(broker.bootstrap, topic, 10)
    assert all(a.partition < expected_partitions for a in acks.values())
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    md = ck_wait_topic(admin, topic, expected_partitions)
    assert len(md.topics[topic].partitions) == expected_partitions
    records = ck_consume(broker.bootstrap, topic, expected_partitions, 10)
    check_records(records, acks, 10, window)


# --------------------------------------------------------------------------------------------
# Long poll (delayed fetch)
# --------------------------------------------------------------------------------------------


def test_long_poll_wakes_confluent_consumer(broker):
    """A consumer parked in a fetch with fetch.wait.max.ms=5000 gets a new record well before
    max wait: the broker's delayed fetch is woken by the append."""
    topic = unique_topic("longpoll-ck")
    ck_create_topic(broker.bootstrap, topic, 1)

    fetch_state = {}

    def on_stats(js):
        stats = json.loads(js)
        parts = stats.get("topics", {}).get(topic, {}).get("partitions", {})
        if "0" in parts:
            fetch_state["state"] = parts["0"].get("fetch_state")

    c = ck_consumer(broker.bootstrap, {
        "fetch.wait.max.ms": 5000,
        "statistics.interval.ms": 100,
        "stats_cb": on_stats,
    })
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0, "acks": 1})
    try:
        c.assign([TopicPartition(topic, 0, confluent_kafka.OFFSET_BEGINNING)])
        p.list_topics(topic, timeout=10)  # producer connected and has metadata
        deadline = time.monotonic() + 20
        while fetch_state.get("state") != "active":
            assert time.monotonic() < deadline, f"consumer never started fetching: {fetch_state}"
            msg = c.poll(0.1)
            assert msg is None or msg.error() is not None, "empty partition delivered a record"
        # Give the first Fetch time to reach the broker and park there (bounded).
        settle = time.monotonic() + 0.5
        while time.monotonic() < settle:
            msg = c.poll(0.05)
            assert msg is None or msg.error() is not None, "empty partition delivered a record"

        p.produce(topic, key=b"k", value=b"wake-up", partition=0)
        assert p.flush(10) == 0, "produce not acknowledged"
        produced = time.monotonic()
        got = None
        while got is None and time.monotonic() < produced + 10:
            msg = c.poll(0.05)
            if msg is not None and msg.error() is None:
                got = msg
        received = time.monotonic()
        assert got is not None and got.value() == b"wake-up", "record not consumed within 10 s"
        assert received - produced < 1.0, (
            f"record arrived {received - produced:.2f} s after its produce was acknowledged "
            f"(fetch.wait.max.ms=5000): the parked fetch was not woken by the append"
        )
    finally:
        c.close()
        ck_close_producer(p)


def test_kafka_python_poll_on_empty_partition(broker):
    topic = unique_topic("longpoll-kp")
    kp_create_topic(broker.bootstrap, topic, 1)
    c = kafka.KafkaConsumer(
        bootstrap_servers=broker.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=1000,
    )
    try:
        tp = kafka.TopicPartition(topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        assert c.position(tp, timeout_ms=10000) == 0
        for _ in range(3):
            start = time.monotonic()
            got = c.poll(timeout_ms=300)
            elapsed = time.monotonic() - start
            assert not any(got.values()), f"empty partition returned records: {got}"
            assert elapsed < 3.0, f"poll(timeout_ms=300) took {elapsed:.2f} s"
    finally:
        c.close()


# A raw Fetch v4 on a plain socket: times the broker's delayed fetch without any client logic.


def _raw_request(sock, api_key, api_version, correlation_id, body):
    client_id = b"odradek-compat"
    header = struct.pack(">hhih", api_key, api_version, correlation_id, len(client_id)) + client_id
    msg = header + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return buf


def _raw_response(sock, correlation_id):
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    data = _recv_exact(sock, size)
    (cid,) = struct.unpack(">i", data[:4])
    assert cid == correlation_id, f"correlation id {cid}, expected {correlation_id}"
    return data[4:]


def _fetch_v4_body(topic, partition, offset, max_wait_ms, min_bytes=1):
    t = topic.encode()
    return (
        struct.pack(">iiiib", -1, max_wait_ms, min_bytes, 1 << 20, 0)  # replica, wait, min, max, isolation
        + struct.pack(">i", 1) + struct.pack(">h", len(t)) + t
        + struct.pack(">i", 1) + struct.pack(">iqi", partition, offset, 1 << 20)
    )


def _parse_fetch_v4(data):
    """-> [(topic, partition, error_code, high_watermark, records_bytes)]"""
    pos = 4  # throttle_time_ms
    out = []
    (ntopics,) = struct.unpack_from(">i", data, pos)
    pos += 4
    for _ in range(ntopics):
        (tlen,) = struct.unpack_from(">h", data, pos)
        pos += 2
        name = data[pos:pos + tlen].decode()
        pos += tlen
        (nparts,) = struct.unpack_from(">i", data, pos)
        pos += 4
        for _ in range(nparts):
            part, err, hw, _lso = struct.unpack_from(">ihqq", data, pos)
            pos += 22
            (naborted,) = struct.unpack_from(">i", data, pos)
            pos += 4 + max(naborted, 0) * 16
            (rlen,) = struct.unpack_from(">i", data, pos)
            pos += 4
            records = data[pos:pos + max(rlen, 0)]
            pos += max(rlen, 0)
            out.append((name, part, err, hw, records))
    return out


def test_raw_fetch_waits_for_max_wait_then_wakes_on_append(broker):
    topic = unique_topic("longpoll-raw")
    ck_create_topic(broker.bootstrap, topic, 1)
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0, "acks": 1})
    try:
        p.list_topics(topic, timeout=10)
        _raw_fetch_checks(broker, topic, p)
    finally:
        ck_close_producer(p)


def _raw_fetch_checks(broker, topic, p):
    host, port = broker.bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        # 1. Nothing to read: the response comes after roughly max_wait_ms.
        start = time.monotonic()
        _raw_request(sock, 1, 4, 1, _fetch_v4_body(topic, 0, 0, max_wait_ms=1000))
        resp = _parse_fetch_v4(_raw_response(sock, 1))
        elapsed = time.monotonic() - start
        assert [(t, part, err) for t, part, err, _, _ in resp] == [(topic, 0, 0)], resp
        assert resp[0][4] == b"", "empty partition returned record bytes"
        assert 0.8 <= elapsed <= 4.0, f"empty Fetch (max_wait_ms=1000) answered after {elapsed:.2f} s"

        # 2. A parked fetch (max_wait_ms=5000) is answered soon after an append.
        _raw_request(sock, 1, 4, 2, _fetch_v4_body(topic, 0, 0, max_wait_ms=5000))
        sent = time.monotonic()
        sock.settimeout(0.5)  # the fetch must still be parked half a second later
        try:
            early = sock.recv(1, socket.MSG_PEEK)
        except socket.timeout:
            early = b""
        assert early == b"", "empty Fetch with max_wait_ms=5000 was answered within 0.5 s"
        sock.settimeout(15)
        produced = time.monotonic()
        p.produce(topic, value=b"wake", partition=0)
        assert p.flush(10) == 0, "produce not acknowledged"
        resp = _parse_fetch_v4(_raw_response(sock, 2))
        answered = time.monotonic()
        assert resp[0][2] == 0 and resp[0][3] == 1, f"unexpected fetch response: {resp}"
        assert resp[0][4], "woken fetch carried no records"
        assert answered - produced < 1.0, (
            f"parked fetch answered {answered - produced:.2f} s after the produce "
            f"({answered - sent:.2f} s after it was sent): not woken by the append"
        )


# --------------------------------------------------------------------------------------------
# Restart (kept last: a broker that fails to come back fails only these)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
def test_restart_keeps_records_and_offsets(broker, kill):
    n = 1000
    topic = unique_topic("restart-kill" if kill else "restart-term")
    ck_create_topic(broker.bootstrap, topic, 1)
    acks, window = ck_produce(broker.bootstrap, topic, n, "none", extra={"acks": "all"}, partition=0)
    assert sorted(a.offset for a in acks.values()) == list(range(n))

    broker.restart(kill=kill)

    records = ck_consume(broker.bootstrap, topic, 1, n)
    check_records(records, acks, n, window)

    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    delivered = []
    try:
        p.produce(topic, key=b"after", value=b"after-restart", partition=0,
                  on_delivery=lambda err, msg: delivered.append((err, msg.offset())))
        assert p.flush(30) == 0, "produce after restart not acknowledged within 30 s"
    finally:
        ck_close_producer(p)
    assert delivered and delivered[0][0] is None, f"produce after restart failed: {delivered}"
    assert delivered[0][1] == n, f"first offset after restart is {delivered[0][1]}, expected {n}"

    c = ck_consumer(broker.bootstrap)
    try:
        c.assign([TopicPartition(topic, 0, n)])
        deadline = time.monotonic() + 30
        got = None
        while got is None and time.monotonic() < deadline:
            msg = c.poll(0.2)
            if msg is not None and msg.error() is None:
                got = msg
        assert got is not None, f"record at offset {n} not consumed within 30 s"
        assert (got.offset(), got.value()) == (n, b"after-restart")
    finally:
        c.close()
