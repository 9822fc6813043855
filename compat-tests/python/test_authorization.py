"""ACLs as confluent-kafka (librdkafka) meets them: one odradek process with the ACL authorizer,
serving

    PLAINTEXT       the test's own admin work (principal User:ANONYMOUS, a super user here):
                    topics, ACLs (CreateAcls through the AdminClient)
    SASL_PLAINTEXT  SASL PLAIN users, each granted only what its case needs

A consumer group needs READ on the group and on its topics; a transactional producer WRITE on
its transactional id and on its topics; an idempotent producer IDEMPOTENT_WRITE on the cluster
or WRITE on a topic. Each case runs once with the ACLs (it works) and once without one of them
(the client reports the error Kafka gives: TOPIC_, GROUP_, TRANSACTIONAL_ID_ or
CLUSTER_AUTHORIZATION_FAILED).

Every wait has a deadline.
"""

import time

import pytest

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from conftest import free_port, running_broker, unique_topic
from test_clients import ck_close_producer, ck_create_topic

DEADLINE_S = 30.0
PASSWORD = "user-secret"
# One user per case, so that no case's ACLs help another's.
USERS = [
    "consumer", "no_group", "no_topic_read",
    "txn", "no_txn_id", "no_txn_topic",
    "idempotent_cluster", "idempotent_topic", "no_idempotent",
]
JAAS = (
    'org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
    f'password="{PASSWORD}" user_admin="{PASSWORD}" '
    + " ".join(f'user_{u}="{PASSWORD}"' for u in USERS)
    + ";"
)


class Env:
    def __init__(self, broker, sasl_port):
        self.broker = broker
        self.sasl_port = sasl_port
        self.admin = AdminClient({"bootstrap.servers": broker.bootstrap})

    def conf(self, user, **extra):
        return {
            "bootstrap.servers": f"127.0.0.1:{self.sasl_port}",
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN",
            "sasl.username": user,
            "sasl.password": PASSWORD,
            **extra,
        }

    def grant(self, user, *acls):
        """Allows `User:user` each (resource type, name, operation), from any host."""
        bindings = [
            AclBinding(rtype, name, ResourcePatternType.LITERAL, f"User:{user}", "*", op,
                       AclPermissionType.ALLOW)
            for rtype, name, op in acls
        ]
        for f in self.admin.create_acls(bindings, request_timeout=20).values():
            f.result(timeout=DEADLINE_S)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    ports = {}

    def overrides(b):
        ports["sasl"] = p = free_port()
        return [
            f"listeners=PLAINTEXT://127.0.0.1:{b.port},SASL_PLAINTEXT://127.0.0.1:{p}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{b.port},SASL_PLAINTEXT://127.0.0.1:{p}",
            "listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN",
            f"listener.name.sasl_plaintext.plain.sasl.jaas.config={JAAS}",
            "authorizer.class.name=kafka.security.authorizer.AclAuthorizer",
            "super.users=User:ANONYMOUS;User:admin",
        ]

    for broker in running_broker(tmp_path_factory, overrides):
        yield Env(broker, ports["sasl"])


def produced(env, topic, n=5):
    """Produces n records as the (super user) admin, for consumers to read."""
    p = Producer({"bootstrap.servers": env.broker.bootstrap})
    try:
        for i in range(n):
            p.produce(topic, key=f"k-{i}", value=f"v-{i}")
        assert p.flush(DEADLINE_S) == 0
    finally:
        ck_close_producer(p)


def consume(env, user, topic, group, n):
    """Subscribes as `user` and polls until n records or an error. Returns (values, error)."""
    errors = []
    c = Consumer(env.conf(user, **{
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "error_cb": errors.append,
    }))
    values = []
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + DEADLINE_S
        while len(values) < n and time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                return values, msg.error()
            values.append(msg.value().decode())
        if len(values) == n:
            c.commit(asynchronous=False)
            return values, None
        return values, errors[-1] if errors else None
    finally:
        c.close()


def test_a_consumer_group_needs_read_on_the_group_and_its_topics(env):
    topic = unique_topic("acl-consume")
    ck_create_topic(env.broker.bootstrap, topic, 1)
    produced(env, topic)

    group = unique_topic("acl-group")
    env.grant("consumer", (ResourceType.TOPIC, topic, AclOperation.READ),
              (ResourceType.GROUP, group, AclOperation.READ))
    values, error = consume(env, "consumer", topic, group, 5)
    assert error is None and values == [f"v-{i}" for i in range(5)], (values, error)

    # READ on the topic but not on the group.
    group = unique_topic("acl-group")
    env.grant("no_group", (ResourceType.TOPIC, topic, AclOperation.READ))
    values, error = consume(env, "no_group", topic, group, 5)
    assert values == [] and error is not None, (values, error)
    assert error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED, error

    # READ on the group but not on the topic.
    group = unique_topic("acl-group")
    env.grant("no_topic_read", (ResourceType.GROUP, group, AclOperation.READ))
    values, error = consume(env, "no_topic_read", topic, group, 5)
    assert values == [] and error is not None, (values, error)
    assert error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error


def close_failed(p):
    """Closes a transactional producer left in a fatal state: its flush raises that error."""
    try:
        ck_close_producer(p)
    except KafkaException:
        pass


def transactional_producer(env, user, txn_id):
    return Producer(env.conf(user, **{
        "transactional.id": txn_id,
        "transaction.timeout.ms": 60_000,
        "message.timeout.ms": int(DEADLINE_S * 1000),
    }))


def test_a_transactional_producer_needs_write_on_its_id_and_its_topics(env):
    topic = unique_topic("acl-txn")
    ck_create_topic(env.broker.bootstrap, topic, 1)

    txn_id = unique_topic("acl-txn-id")
    env.grant("txn", (ResourceType.TRANSACTIONAL_ID, txn_id, AclOperation.WRITE),
              (ResourceType.TOPIC, topic, AclOperation.WRITE))
    p = transactional_producer(env, "txn", txn_id)
    try:
        p.init_transactions(DEADLINE_S)
        p.begin_transaction()
        p.produce(topic, key="k", value="committed")
        p.commit_transaction(DEADLINE_S)
    finally:
        ck_close_producer(p)
    group = unique_topic("acl-check")
    values, error = consume(env, "admin", topic, group, 1)
    assert error is None and values == ["committed"], (values, error)

    # WRITE on the topic but not on the transactional id: InitProducerId is refused.
    txn_id = unique_topic("acl-txn-id")
    env.grant("no_txn_id", (ResourceType.TOPIC, topic, AclOperation.WRITE))
    p = transactional_producer(env, "no_txn_id", txn_id)
    try:
        with pytest.raises(KafkaException) as e:
            p.init_transactions(DEADLINE_S)
        assert e.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, e.value
    finally:
        close_failed(p)

    # WRITE on the id but not on the topic: adding the partition is refused, and the
    # transaction cannot commit.
    txn_id = unique_topic("acl-txn-id")
    env.grant("no_txn_topic", (ResourceType.TRANSACTIONAL_ID, txn_id, AclOperation.WRITE))
    p = transactional_producer(env, "no_txn_topic", txn_id)
    try:
        p.init_transactions(DEADLINE_S)
        p.begin_transaction()
        reports = []
        p.produce(topic, key="k", value="refused",
                  on_delivery=lambda err, msg: reports.append(err))
        with pytest.raises(KafkaException):
            p.commit_transaction(DEADLINE_S)
        p.poll(0)
        # The record fails with the error of its partition's AddPartitionsToTxn.
        assert len(reports) == 1 and reports[0] is not None, reports
        assert reports[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, reports
    finally:
        close_failed(p)


def idempotent_produce(env, user, topic):
    """Produces one record with an idempotent producer. Returns (delivery error, fatal error,
    every error the producer reported)."""
    errors = []
    reports = []
    p = Producer(env.conf(user, **{
        "enable.idempotence": True,
        "message.timeout.ms": 15_000,
        "error_cb": errors.append,
    }))
    try:
        p.produce(topic, key="k", value="v", on_delivery=lambda err, msg: reports.append(err))
        deadline = time.monotonic() + DEADLINE_S
        while not reports and time.monotonic() < deadline:
            try:
                p.poll(0.2)
            except KafkaException as e:
                # confluent-kafka raises the producer's fatal error from poll().
                errors.append(e.args[0])
                break
        fatal = next((e for e in errors if e.fatal()), None)
        if fatal is not None:
            return reports[0] if reports else fatal, fatal, errors
        assert reports, f"no delivery report within {DEADLINE_S} s; errors {errors}"
        return reports[0], fatal, errors
    finally:
        close_failed(p)


def test_an_idempotent_producer_needs_idempotent_write_or_write_on_a_topic(env):
    topic = unique_topic("acl-idempotent")
    ck_create_topic(env.broker.bootstrap, topic, 1)

    # librdkafka names Kafka's CLUSTER resource type (code 4) BROKER.
    env.grant("idempotent_cluster", (ResourceType.BROKER, "kafka-cluster",
                                     AclOperation.IDEMPOTENT_WRITE),
              (ResourceType.TOPIC, topic, AclOperation.WRITE))
    err, fatal, errors = idempotent_produce(env, "idempotent_cluster", topic)
    assert err is None and fatal is None, (err, errors)

    # WRITE on a topic is enough for a producer id without IDEMPOTENT_WRITE.
    env.grant("idempotent_topic", (ResourceType.TOPIC, topic, AclOperation.WRITE))
    err, fatal, errors = idempotent_produce(env, "idempotent_topic", topic)
    assert err is None and fatal is None, (err, errors)

    # Neither (DESCRIBE only, so that the topic's metadata is not what fails): the producer id
    # is refused on the cluster.
    env.grant("no_idempotent", (ResourceType.TOPIC, topic, AclOperation.DESCRIBE))
    err, fatal, errors = idempotent_produce(env, "no_idempotent", topic)
    # librdkafka makes it the producer's fatal error, and fails the record.
    assert err is not None, errors
    assert fatal is not None and fatal.code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED, (
        err, errors)
