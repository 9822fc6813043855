"""ACL administration by real clients: confluent-kafka (librdkafka) and kafka-python create,
describe (with filters) and delete ACLs, literal and prefixed, against an odradek process with
Kafka's AclAuthorizer on and a SASL PLAIN listener. The clients log in as `admin`, a super user;
`alice` has no ACLs and is refused. Every wait has a deadline.
"""

import uuid

import pytest

from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourcePatternFilter,
)
from kafka.admin import ResourceType as KpResourceType
from kafka.errors import ClusterAuthorizationFailedError

from conftest import free_port, running_broker

DEADLINE_S = 30.0
PLAIN_JAAS = (
    'org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
    'password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";'
)


@pytest.fixture(scope="module")
def sasl(tmp_path_factory):
    """The bootstrap address of the broker's SASL_PLAINTEXT listener."""
    ports = {}

    def overrides(b):
        ports["sasl"] = p = free_port()
        return [
            f"listeners=PLAINTEXT://127.0.0.1:{b.port},SASL_PLAINTEXT://127.0.0.1:{p}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{b.port},SASL_PLAINTEXT://127.0.0.1:{p}",
            "sasl.enabled.mechanisms=PLAIN",
            f"listener.name.sasl_plaintext.plain.sasl.jaas.config={PLAIN_JAAS}",
            "authorizer.class.name=kafka.security.authorizer.AclAuthorizer",
            "super.users=User:admin;User:ANONYMOUS",
        ]

    for _broker in running_broker(tmp_path_factory, overrides):
        yield f"127.0.0.1:{ports['sasl']}"


def ck_admin(bootstrap, user="admin", password="admin-secret"):
    return AdminClient({
        "bootstrap.servers": bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": user,
        "sasl.password": password,
    })


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def ck_key(b):
    return (b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation,
            b.permission_type)


def test_confluent_kafka_creates_describes_and_deletes_acls(sasl):
    admin = ck_admin(sasl)
    topic, prefix, principal = unique("ck-topic"), unique("ck-pre"), f"User:{unique('ck')}"
    literal = AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, principal, "*",
                         AclOperation.READ, AclPermissionType.ALLOW)
    prefixed = AclBinding(ResourceType.TOPIC, prefix, ResourcePatternType.PREFIXED, principal,
                          "10.0.0.1", AclOperation.WRITE, AclPermissionType.DENY)
    group = AclBinding(ResourceType.GROUP, "*", ResourcePatternType.LITERAL, principal, "*",
                       AclOperation.DESCRIBE, AclPermissionType.ALLOW)
    for f in admin.create_acls([literal, prefixed, group], request_timeout=DEADLINE_S).values():
        assert f.result(timeout=DEADLINE_S) is None

    def described(**kw):
        args = dict(restype=ResourceType.ANY, name=None,
                    resource_pattern_type=ResourcePatternType.ANY, principal=principal,
                    host=None, operation=AclOperation.ANY,
                    permission_type=AclPermissionType.ANY)
        args.update(kw)
        f = admin.describe_acls(AclBindingFilter(**args), request_timeout=DEADLINE_S)
        return sorted(ck_key(b) for b in f.result(timeout=DEADLINE_S))

    assert described() == sorted(ck_key(b) for b in (literal, prefixed, group))
    # MATCH: the literal name, and every prefixed pattern that is a prefix of it.
    assert described(restype=ResourceType.TOPIC, name=prefix + "-x",
                     resource_pattern_type=ResourcePatternType.MATCH) == [ck_key(prefixed)]
    assert described(restype=ResourceType.TOPIC, name=topic,
                     resource_pattern_type=ResourcePatternType.MATCH) == [ck_key(literal)]
    assert described(resource_pattern_type=ResourcePatternType.PREFIXED) == [ck_key(prefixed)]
    assert described(resource_pattern_type=ResourcePatternType.LITERAL) == sorted(
        [ck_key(literal), ck_key(group)])
    assert described(host="10.0.0.1") == [ck_key(prefixed)]
    assert described(operation=AclOperation.DESCRIBE) == [ck_key(group)]
    assert described(permission_type=AclPermissionType.DENY) == [ck_key(prefixed)]

    nothing = AclBindingFilter(ResourceType.TOPIC, "no-such-topic", ResourcePatternType.LITERAL,
                               None, None, AclOperation.ANY, AclPermissionType.ANY)
    prefixed_only = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.PREFIXED,
                                     principal, None, AclOperation.ANY, AclPermissionType.ANY)
    results = admin.delete_acls([nothing, prefixed_only], request_timeout=DEADLINE_S)
    assert results[nothing].result(timeout=DEADLINE_S) == []
    assert [ck_key(b) for b in results[prefixed_only].result(timeout=DEADLINE_S)] == [
        ck_key(prefixed)]
    assert described() == sorted([ck_key(literal), ck_key(group)])


def test_kafka_python_creates_describes_and_deletes_acls(sasl):
    admin = KafkaAdminClient(bootstrap_servers=sasl, security_protocol="SASL_PLAINTEXT",
                             sasl_mechanism="PLAIN", sasl_plain_username="admin",
                             sasl_plain_password="admin-secret",
                             request_timeout_ms=int(DEADLINE_S * 1000))
    try:
        topic, prefix, principal = unique("kp-topic"), unique("kp-pre"), f"User:{unique('kp')}"
        literal = ACL(principal, "*", ACLOperation.READ, ACLPermissionType.ALLOW,
                      ResourcePattern(KpResourceType.TOPIC, topic, ACLResourcePatternType.LITERAL))
        prefixed = ACL(principal, "*", ACLOperation.WRITE, ACLPermissionType.ALLOW,
                       ResourcePattern(KpResourceType.TOPIC, prefix,
                                       ACLResourcePatternType.PREFIXED))
        result = admin.create_acls([literal, prefixed])
        assert result["failed"] == [] and len(result["succeeded"]) == 2, result

        def described(resource_type=KpResourceType.ANY, name=None,
                      pattern=ACLResourcePatternType.ANY, operation=ACLOperation.ANY):
            acls, error = admin.describe_acls(ACLFilter(
                principal, None, operation, ACLPermissionType.ANY,
                ResourcePatternFilter(resource_type, name, pattern)))
            assert error.errno == 0, error
            return sorted((a.resource_pattern.resource_name, a.resource_pattern.pattern_type,
                           a.operation) for a in acls)

        want_literal = (topic, ACLResourcePatternType.LITERAL, ACLOperation.READ)
        want_prefixed = (prefix, ACLResourcePatternType.PREFIXED, ACLOperation.WRITE)
        assert described() == sorted([want_literal, want_prefixed])
        assert described(KpResourceType.TOPIC, prefix + "-orders",
                         ACLResourcePatternType.MATCH) == [want_prefixed]
        assert described(pattern=ACLResourcePatternType.LITERAL) == [want_literal]
        assert described(operation=ACLOperation.WRITE) == [want_prefixed]

        gone = admin.delete_acls([ACLFilter(
            principal, None, ACLOperation.ANY, ACLPermissionType.ANY,
            ResourcePatternFilter(KpResourceType.TOPIC, topic, ACLResourcePatternType.LITERAL))])
        (_, deleted, error), = gone
        assert error.errno == 0
        assert [(a.resource_pattern.resource_name, a.operation) for a in deleted] == [
            (topic, ACLOperation.READ)]
        assert described() == [want_prefixed]
    finally:
        admin.close()

    # alice has no Cluster DESCRIBE. (librdkafka 2.x drops DescribeAcls' top-level error and
    # reports an empty list, so only kafka-python can show the refusal.)
    alice = KafkaAdminClient(bootstrap_servers=sasl, security_protocol="SASL_PLAINTEXT",
                             sasl_mechanism="PLAIN", sasl_plain_username="alice",
                             sasl_plain_password="alice-secret",
                             request_timeout_ms=int(DEADLINE_S * 1000))
    try:
        with pytest.raises(ClusterAuthorizationFailedError):
            alice.describe_acls(ACLFilter(
                None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                ResourcePatternFilter(KpResourceType.ANY, None, ACLResourcePatternType.ANY)))
    finally:
        alice.close()
