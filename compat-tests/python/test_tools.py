"""The bundled tools (`odradek produce|consume|topics|groups`) against real clients: keyed records
land where confluent-kafka's murmur2_random and kafka-python's partitioner put the same keys,
`consume` prints them back, and `topics` and `groups` say what kcat and kafka-python's admin
client say about the same cluster.
"""

import json
import re
import subprocess
import time

import kafka
from kafka.admin import KafkaAdminClient
from kafka.partitioner.default import murmur2

from conftest import unique_topic
from test_clients import ck_create_topic, ck_produce, kcat, key_of, value_of

DEADLINE_S = 30.0


def odradek(broker, *args, input_text=None, timeout=60, check=True):
    proc = subprocess.run(
        [str(broker.binary), *args], input=input_text, capture_output=True, text=True,
        timeout=timeout,
    )
    if check:
        assert proc.returncode == 0, f"odradek {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
    return proc


def table(text):
    """Rows of a kafka-consumer-groups.sh style table as dicts; columns are cut where the header
    starts a name after two or more spaces, so an empty cell stays a cell."""
    lines = [l for l in text.splitlines() if l.strip()]
    if not lines:
        return []
    header = lines[0]
    starts = [0] + [m.start(1) for m in re.finditer(r"  +(\S)", header)]
    bounds = list(zip(starts, starts[1:] + [None]))
    names = [header[a:b].strip() for a, b in bounds]
    return [{n: line[a:b].strip() for n, (a, b) in zip(names, bounds)} for line in lines[1:]]


def test_keyed_records_land_where_the_java_partitioner_puts_them(broker):
    partitions, n = 7, 500
    ours = unique_topic("tool-keyed")
    theirs = unique_topic("ck-keyed")
    odradek(broker, "topics", "--bootstrap-server", broker.bootstrap, "--create", "--topic", ours,
            "--partitions", str(partitions))
    ck_create_topic(broker.bootstrap, theirs, partitions)
    lines = "".join(f"{key_of(i).decode()}\t{value_of(i).decode()}\n" for i in range(n))
    sent = odradek(broker, "produce", "--bootstrap-server", broker.bootstrap, "--topic", ours,
                   "--key-separator", "\t", "--compression-codec", "snappy", input_text=lines)
    assert f"{n} records sent" in sent.stderr
    ck_acks, _ = ck_produce(broker.bootstrap, theirs, n, extra={"partitioner": "murmur2_random"})

    out = odradek(broker, "consume", "--bootstrap-server", broker.bootstrap, "--topic", ours,
                  "--from-beginning", "--timeout-ms", "1500", "--format", "%p\t%k\t%s").stdout
    placed = {}
    for line in out.splitlines():
        p, k, v = line.split("\t")
        assert k.encode() not in placed, f"{k} printed twice"
        placed[k.encode()] = (int(p), v.encode())
    assert len(placed) == n
    for i in range(n):
        partition, value = placed[key_of(i)]
        assert value == value_of(i)
        assert partition == ck_acks[i].partition, (
            f"{key_of(i)!r}: odradek produce chose {partition}, confluent-kafka murmur2_random "
            f"{ck_acks[i].partition}"
        )
        assert partition == (murmur2(key_of(i)) & 0x7FFFFFFF) % partitions
    assert len({p for p, _ in placed.values()}) == partitions


def test_topics_agree_with_kcat(broker):
    topic = unique_topic("tool-topics")
    odradek(broker, "topics", "--bootstrap-server", broker.bootstrap, "--create", "--topic", topic,
            "--partitions", "3")
    grown = odradek(broker, "topics", "--bootstrap-server", broker.bootstrap, "--alter",
                    "--topic", topic, "--partitions", "5")
    assert f"Topic {topic} now has 5 partitions." in grown.stdout
    shrink = odradek(broker, "topics", "--bootstrap-server", broker.bootstrap, "--alter",
                     "--topic", topic, "--partitions", "2", check=False)
    assert shrink.returncode != 0 and "InvalidPartitions" in shrink.stderr, shrink.stderr

    meta = json.loads(kcat("-L", "-J", "-b", broker.bootstrap))
    listed = odradek(broker, "topics", "--bootstrap-server", broker.bootstrap, "--list").stdout
    assert sorted(listed.split()) == sorted(t["topic"] for t in meta["topics"])

    described = odradek(broker, "topics", "--bootstrap-server", broker.bootstrap, "--describe",
                        "--topic", topic).stdout
    ours = {}
    for line in described.splitlines()[1:]:
        f = dict(field.split(": ", 1) for field in line.strip().split("\t"))
        ours[int(f["Partition"])] = (
            int(f["Leader"]),
            [int(r) for r in f["Replicas"].split(",")],
            [int(r) for r in f["Isr"].split(",")],
        )
    (kt,) = [t for t in meta["topics"] if t["topic"] == topic]
    theirs = {
        p["partition"]: (p["leader"], [r["id"] for r in p["replicas"]], [r["id"] for r in p["isrs"]])
        for p in kt["partitions"]
    }
    assert ours == theirs
    assert sorted(ours) == list(range(5))
    assert f"PartitionCount: 5\tReplicationFactor: 1" in described.splitlines()[0]


def describe(broker, group, *extra):
    proc = odradek(broker, "groups", "--bootstrap-server", broker.bootstrap, "--describe",
                   "--group", group, *extra)
    return table(proc.stdout)


def test_groups_agree_with_kafka_python_admin(broker):
    topic = unique_topic("tool-groups")
    ck_create_topic(broker.bootstrap, topic, 4)
    ck_produce(broker.bootstrap, topic, 400)

    # One group committed by odradek consume, one by kafka-python's consumer.
    ours = unique_topic("g-tool")
    odradek(broker, "consume", "--bootstrap-server", broker.bootstrap, "--topic", topic,
            "--group", ours, "--from-beginning", "--max-messages", "150", "--timeout-ms", "2000")
    theirs = unique_topic("g-kp")
    c = kafka.KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=theirs,
                            enable_auto_commit=False)
    try:
        c.assign([kafka.TopicPartition(topic, p) for p in range(4)])
        c.commit({kafka.TopicPartition(topic, p): kafka.OffsetAndMetadata(10 * p + 1, "", -1)
                  for p in range(3)})
    finally:
        c.close()

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        listed = odradek(broker, "groups", "--bootstrap-server", broker.bootstrap, "--list").stdout
        assert {ours, theirs} <= set(listed.split())
        assert sorted(listed.split()) == sorted(g["group_id"] for g in admin.list_groups())

        for group in (ours, theirs):
            committed = admin.list_group_offsets(group)[group]
            rows = describe(broker, group)
            assert {(r["TOPIC"], int(r["PARTITION"])): int(r["CURRENT-OFFSET"]) for r in rows} == {
                (tp.topic, tp.partition): om.offset for tp, om in committed.items()
            }
            for r in rows:
                assert int(r["LAG"]) == int(r["LOG-END-OFFSET"]) - int(r["CURRENT-OFFSET"])
            d = admin.describe_groups([group])[group]
            state = describe(broker, group, "--state")
            assert [(s["STATE"], int(s["#MEMBERS"])) for s in state] == [(d["group_state"], 0)]
        assert sum(int(r["CURRENT-OFFSET"]) for r in describe(broker, ours)) == 150

        # A live member: its id, client id and partitions as kafka-python's admin decodes them.
        live = subprocess.Popen(
            [str(broker.binary), "consume", "--bootstrap-server", broker.bootstrap, "--topic",
             topic, "--group", ours, "--timeout-ms", "4000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        try:
            deadline = time.monotonic() + DEADLINE_S
            while True:
                members = describe(broker, ours, "--members", "--verbose")
                if members and members[0]["#PARTITIONS"] == "4":
                    break
                assert time.monotonic() < deadline, f"no member with 4 partitions: {members}"
                time.sleep(0.1)
            d = admin.describe_groups([ours])[ours]
            assert d["group_state"] == "Stable"
            (m,) = d["members"]
            (row,) = members
            assert row["CONSUMER-ID"] == m["member_id"]
            assert row["CLIENT-ID"] == m["client_id"]
            assigned = {
                (t["topic"], p)
                for t in m["member_assignment"]["assigned_partitions"]
                for p in t["partitions"]
            }
            assert row["ASSIGNMENT"] == f"{topic}({','.join(str(p) for _, p in sorted(assigned))})"
            rows = describe(broker, ours)
            assert {r["CONSUMER-ID"] for r in rows} == {m["member_id"]}
        finally:
            try:
                live.wait(timeout=DEADLINE_S)
            finally:
                if live.poll() is None:
                    live.kill()
                    live.wait()
        assert live.returncode == 0, live.stderr.read()
    finally:
        admin.close()
