"""Real clients over secured listeners: confluent-kafka (librdkafka 2.x), kafka-python, aiokafka and
kcat (Debian's, with its own older librdkafka) against one odradek process that serves

    PLAINTEXT       the test's own admin work (topics, SCRAM users, committed offsets)
    SSL             TLS, server certificate only (principal User:ANONYMOUS)
    MTLS            TLS with ssl.client.auth=required (principal from the client certificate);
                    its keystore is PKCS12, the others' PEM
    SASL_PLAINTEXT  SASL PLAIN, users from the listener's JAAS config
    SASL_SSL        SASL SCRAM-SHA-256 and SCRAM-SHA-512 over TLS, users in /config/users
                    (made with AlterUserScramCredentials)
    REAUTH          SASL_SSL with SCRAM-SHA-256 and connections.max.reauth.ms: sessions end
                    unless the client re-authenticates (KIP-368)

Each client produces and then consumes through a consumer group (subscribe, commit) on each
listener; the broker's log must name the principal it authenticated. A wrong password must come
back as an authentication error, the failure must be counted in the broker's metrics, and a
good client must still get in. MTLS refuses clients without a trusted certificate, and every
client refuses a broker its CA did not sign. On REAUTH, clients that implement KIP-368 log in
again on the same connection; the others have their connections closed when the session ends,
and carry on over new ones. A SCRAM user named with ',' and '=' logs in as itself.

Certificates are made here with the openssl command-line tool (none are committed): a CA, a
broker certificate for localhost and 127.0.0.1, a client certificate for
/C=US/O=acme/OU=eng/CN=writer, and a second CA nobody trusts with a client certificate of its
own. Clients bootstrap from 127.0.0.1 and are sent on to the advertised `localhost`, so both
subject alternative names are checked by every client that verifies host names.

Every wait has a deadline.
"""

import asyncio
import re
import secrets
import shutil
import subprocess
import time
import uuid
from collections import namedtuple

import pytest

# Hard imports: a missing client fails the suite (scripts/python-deps.sh installs them all).
import aiokafka
import aiokafka.errors
import aiokafka.helpers
import confluent_kafka
import kafka
import kafka.errors
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from conftest import free_port, running_broker, unique_topic
from test_clients import ck_close_producer, ck_create_topic
from test_metrics import sample, scrape

N = 20  # records per case
# Each value is larger than a TLS record (16 KiB), so that requests and responses span several.
VALUE_PAD = 40_000
PARTITIONS = 2
DEADLINE_S = 30.0  # each produce, consume, commit, refusal
PROCESS_TIMEOUT_S = 45  # kcat and openssl runs

USER, PASSWORD = "alice", "alice-secret"
# A SCRAM user whose name the client must escape (RFC 5802: ',' as =2C, '=' as =3D), and Kafka
# stores URL-encoded (/config/users/ed%3Dge%2Ccase).
ODD_USER, ODD_PASSWORD = "ed=ge,case", "odd-secret"
PLAIN_JAAS = (
    'org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
    f'password="admin-secret" user_admin="admin-secret" user_{USER}="{PASSWORD}";'
)
SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
WRITER_DN = "CN=writer,OU=eng,O=acme,C=US"
P12_PASSWORD = "p12-secret"

# One way of connecting. `principal` is what the broker must log for a good client.
Mode = namedtuple("Mode", "listener protocol mechanism client_cert principal")
MODES = {
    "ssl": Mode("SSL", "SSL", None, False, "User:ANONYMOUS"),
    "mtls": Mode("MTLS", "SSL", None, True, f"User:{WRITER_DN}"),
    "sasl-plain": Mode("SASL_PLAINTEXT", "SASL_PLAINTEXT", "PLAIN", False, f"User:{USER}"),
    "scram-sha-256": Mode("SASL_SSL", "SASL_SSL", "SCRAM-SHA-256", False, f"User:{USER}"),
    "scram-sha-512": Mode("SASL_SSL", "SASL_SSL", "SCRAM-SHA-512", False, f"User:{USER}"),
    # Sessions end after REAUTH_MS unless the client logs in again (KIP-368).
    "reauth": Mode("REAUTH", "SASL_SSL", "SCRAM-SHA-256", False, f"User:{USER}"),
}
ROUNDTRIP_MODES = ["ssl", "mtls", "sasl-plain", "scram-sha-256", "scram-sha-512"]
SASL_MODES = [m for m in ROUNDTRIP_MODES if MODES[m].mechanism]
LISTENERS = ["SSL", "MTLS", "SASL_PLAINTEXT", "SASL_SSL", "REAUTH"]
REAUTH_MS = 2000
CLIENTS = ["confluent-kafka", "kafka-python", "aiokafka", "kcat"]

# A consumed record, client-independent.
Rec = namedtuple("Rec", "partition offset key value")


# --------------------------------------------------------------------------------------------
# Certificates (openssl CLI)
# --------------------------------------------------------------------------------------------

OPENSSL_CNF = """
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

Pki = namedtuple(
    "Pki",
    "ca broker_pem broker_p12 client_cert client_key rogue_ca rogue_cert rogue_key",
)


def openssl(*args, cwd):
    proc = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S
    )
    assert proc.returncode == 0, f"openssl {' '.join(args)} failed: {proc.stderr}"


def make_ca(d, name):
    openssl("req", "-x509", "-config", "openssl.cnf", "-extensions", "ca",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
            "-subj", f"/CN={name}", cwd=d)


def make_leaf(d, name, ca, subject, extensions):
    openssl("req", "-new", "-config", "openssl.cnf",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-set_serial", str(secrets.randbits(63)), "-days", "2",
            "-extfile", "openssl.cnf", "-extensions", extensions, "-out", f"{name}.crt", cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    if shutil.which("openssl") is None:
        reason = "the openssl command-line tool is not installed: cannot make test certificates"
        print(reason)
        pytest.skip(reason)
    d = tmp_path_factory.mktemp("pki")
    (d / "openssl.cnf").write_text(OPENSSL_CNF)
    make_ca(d, "ca")
    make_ca(d, "rogue-ca")
    make_leaf(d, "broker", "ca", "/CN=broker", "server")
    make_leaf(d, "client", "ca", "/C=US/O=acme/OU=eng/CN=writer", "client")
    make_leaf(d, "rogue-client", "rogue-ca", "/C=US/O=acme/OU=eng/CN=writer", "client")
    # A PEM keystore is the key and the certificate in one file.
    (d / "broker.pem").write_text((d / "broker.key").read_text() + (d / "broker.crt").read_text())
    openssl("pkcs12", "-export", "-in", "broker.crt", "-inkey", "broker.key",
            "-out", "broker.p12", "-passout", f"pass:{P12_PASSWORD}", cwd=d)
    return Pki(
        ca=d / "ca.crt",
        broker_pem=d / "broker.pem",
        broker_p12=d / "broker.p12",
        client_cert=d / "client.crt",
        client_key=d / "client.key",
        rogue_ca=d / "rogue-ca.crt",
        rogue_cert=d / "rogue-client.crt",
        rogue_key=d / "rogue-client.key",
    )


# --------------------------------------------------------------------------------------------
# SCRAM users
# --------------------------------------------------------------------------------------------

# Iterations per mechanism: different, so that describing the credentials shows which is which.
SCRAM_ITERATIONS = {"SCRAM-SHA-256": 8192, "SCRAM-SHA-512": 4096}


def create_scram_user(broker, user, password):
    """Creates the user's credentials for both mechanisms with AlterUserScramCredentials (over
    PLAINTEXT, as kafka-configs.sh --bootstrap-server does), then checks them with
    DescribeUserScramCredentials."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    mechanisms = {"SCRAM-SHA-256": ScramMechanism.SCRAM_SHA_256,
                  "SCRAM-SHA-512": ScramMechanism.SCRAM_SHA_512}
    futures = admin.alter_user_scram_credentials([
        UserScramCredentialUpsertion(
            user, ScramCredentialInfo(mechanisms[m], iterations), password.encode())
        for m, iterations in SCRAM_ITERATIONS.items()
    ], request_timeout=DEADLINE_S)
    futures[user].result(timeout=DEADLINE_S)
    described = admin.describe_user_scram_credentials([user], request_timeout=DEADLINE_S)
    infos = described[user].result(timeout=DEADLINE_S).scram_credential_infos
    assert sorted((i.mechanism, i.iterations) for i in infos) == sorted(
        (mechanisms[m], n) for m, n in SCRAM_ITERATIONS.items()), f"described: {infos}"


# --------------------------------------------------------------------------------------------
# The broker
# --------------------------------------------------------------------------------------------


class Env:
    def __init__(self, broker, ports, pki):
        self.broker = broker
        self.ports = ports
        self.pki = pki

    def bootstrap(self, mode):
        return f"127.0.0.1:{self.ports[MODES[mode].listener]}"

    def log(self):
        return ANSI.sub("", self.broker.output_path.read_text(errors="replace"))

    def auth_events(self, listener):
        """What the broker logged on `listener`: the principal of each successful
        authentication, and how many failed."""
        ok, failed = [], 0
        for line in self.log().splitlines():
            if f"listener={listener}" not in line:
                continue
            m = AUTHENTICATED.search(line)
            if m:
                ok.append(m.group(1))
            elif any(f in line for f in AUTHENTICATION_FAILURES):
                failed += 1
        return ok, failed


ANSI = re.compile(r"\x1b\[[0-9;]*m")
AUTHENTICATED = re.compile(r"(?:TLS|SASL) client authenticated principal=(\S+)")
AUTHENTICATION_FAILURES = (
    "SASL authentication failed",
    "TLS handshake failed",
    "TLS handshake did not complete",
    "no principal for the client certificate",
)


@pytest.fixture(scope="module")
def env(tmp_path_factory, pki):
    ports = {}

    def overrides(b):
        for name in LISTENERS:
            ports[name] = free_port()
        return [
            "listeners=" + ",".join([f"PLAINTEXT://127.0.0.1:{b.port}"]
                                    + [f"{n}://127.0.0.1:{ports[n]}" for n in LISTENERS]),
            "advertised.listeners=" + ",".join(
                [f"PLAINTEXT://127.0.0.1:{b.port}"]
                + [f"{n}://localhost:{ports[n]}" for n in LISTENERS]),
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,"
            + ",".join(f"{n}:{m.protocol}" for n, m in
                       {m.listener: m for m in MODES.values()}.items()),
            # Every TLS listener: a PEM keystore and truststore...
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={pki.broker_pem}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={pki.ca}",
            # ...but MTLS has a PKCS12 keystore of its own, and wants client certificates.
            "listener.name.mtls.ssl.keystore.type=PKCS12",
            f"listener.name.mtls.ssl.keystore.location={pki.broker_p12}",
            f"listener.name.mtls.ssl.keystore.password={P12_PASSWORD}",
            "listener.name.mtls.ssl.client.auth=required",
            "listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN",
            f"listener.name.sasl_plaintext.plain.sasl.jaas.config={PLAIN_JAAS}",
            "listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512",
            f"listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config={SCRAM_JAAS}",
            f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={SCRAM_JAAS}",
            "listener.name.reauth.sasl.enabled.mechanisms=SCRAM-SHA-256",
            f"listener.name.reauth.scram-sha-256.sasl.jaas.config={SCRAM_JAAS}",
            f"listener.name.reauth.connections.max.reauth.ms={REAUTH_MS}",
        ]

    for broker in running_broker(tmp_path_factory, overrides):
        create_scram_user(broker, USER, PASSWORD)
        create_scram_user(broker, ODD_USER, ODD_PASSWORD)
        secured = Env(broker, ports, pki)
        # The broker applies the new credentials when it sees the change notification.
        for mode in ("scram-sha-256", "scram-sha-512", "reauth"):
            wait_for_login(secured, mode)
        yield secured


def wait_for_login(env, mode):
    deadline = time.monotonic() + DEADLINE_S
    errors = []
    admin = AdminClient({"bootstrap.servers": env.bootstrap(mode), "error_cb": errors.append,
                         **ck_security(env, mode)})
    while True:
        try:
            admin.list_topics(timeout=1)
            return
        except confluent_kafka.KafkaException as e:
            assert time.monotonic() < deadline, (
                f"{mode} login failed for {DEADLINE_S} s: {e}; {errors[-3:]}")


# --------------------------------------------------------------------------------------------
# What each client needs to know for each mode
# --------------------------------------------------------------------------------------------


def supported(client, mode):
    """None, or why `client` cannot connect in `mode` (then the combination is skipped)."""
    m = MODES[mode]
    if client == "kcat":
        features = kcat_features()
        if m.protocol.endswith("SSL") and "ssl" not in features:
            return f"this kcat's librdkafka is built without ssl ({sorted(features)})"
        if m.mechanism == "PLAIN" and "sasl_plain" not in features:
            return f"this kcat's librdkafka is built without sasl_plain ({sorted(features)})"
        if m.mechanism and m.mechanism.startswith("SCRAM") and "sasl_scram" not in features:
            return f"this kcat's librdkafka is built without sasl_scram ({sorted(features)})"
    if client == "kafka-python" and m.mechanism and m.mechanism.startswith("SCRAM"):
        # SCRAM came with kafka-python 2.0.
        if int(kafka.__version__.split(".")[0]) < 2:
            return f"kafka-python {kafka.__version__} has no SCRAM"
    if client == "kcat" and mode == "reauth" and not reauthenticates("kcat"):
        return (f"kcat's librdkafka {kcat_librdkafka()} predates KIP-368 (2.2.0), and a kcat "
                "group member exits when all of its connections drop at once ('All broker "
                "connections are down: terminating'), as they do when their sessions end")
    return None


def skip_unsupported(client, mode):
    reason = supported(client, mode)
    if reason:
        print(f"skipped {client} over {mode}: {reason}")
        pytest.skip(reason)


_kcat_version = None


def kcat_version():
    global _kcat_version
    if _kcat_version is None:
        _kcat_version = subprocess.run(["kcat", "-V"], capture_output=True, text=True,
                                       timeout=PROCESS_TIMEOUT_S).stdout
    return _kcat_version


def kcat_features():
    m = re.search(r"builtin\.features=(\S+)", kcat_version())
    return set(m.group(1).rstrip(")").split(",")) if m else set()


def kcat_librdkafka():
    m = re.search(r"librdkafka (\d+\.\d+\.\d+)", kcat_version())
    assert m, f"no librdkafka version in kcat -V: {kcat_version()}"
    return m.group(1)


def ck_security(env, mode, password=PASSWORD, cert=None, ca=None, user=USER):
    m = MODES[mode]
    conf = {"security.protocol": m.protocol, "broker.address.family": "v4"}
    if m.protocol.endswith("SSL"):
        conf["ssl.ca.location"] = str(ca or env.pki.ca)
    if m.client_cert:
        cert_file, key_file = cert or (env.pki.client_cert, env.pki.client_key)
        conf["ssl.certificate.location"] = str(cert_file)
        conf["ssl.key.location"] = str(key_file)
    if m.mechanism:
        conf.update({"sasl.mechanism": m.mechanism, "sasl.username": user,
                     "sasl.password": password})
    return conf


def kp_security(env, mode, password=PASSWORD, cert=None, ca=None, user=USER):
    m = MODES[mode]
    conf = {"security_protocol": m.protocol}
    if m.protocol.endswith("SSL"):
        conf["ssl_cafile"] = str(ca or env.pki.ca)
    if m.client_cert:
        cert_file, key_file = cert or (env.pki.client_cert, env.pki.client_key)
        conf["ssl_certfile"] = str(cert_file)
        conf["ssl_keyfile"] = str(key_file)
    if m.mechanism:
        conf.update({"sasl_mechanism": m.mechanism, "sasl_plain_username": user,
                     "sasl_plain_password": password})
    return conf


def aio_security(env, mode, password=PASSWORD, cert=None, ca=None, user=USER):
    m = MODES[mode]
    conf = {"security_protocol": m.protocol}
    if m.protocol.endswith("SSL"):
        files = {"cafile": str(ca or env.pki.ca)}
        if m.client_cert:
            cert_file, key_file = cert or (env.pki.client_cert, env.pki.client_key)
            files.update(certfile=str(cert_file), keyfile=str(key_file))
        conf["ssl_context"] = aiokafka.helpers.create_ssl_context(**files)
    if m.mechanism:
        conf.update({"sasl_mechanism": m.mechanism, "sasl_plain_username": user,
                     "sasl_plain_password": password})
    return conf


def kcat_security(env, mode, password=PASSWORD, cert=None, ca=None, user=USER):
    return kcat_args(ck_security(env, mode, password, cert, ca, user))


def kcat_args(conf):
    return [arg for k, v in conf.items() for arg in ("-X", f"{k}={v}")]


# --------------------------------------------------------------------------------------------
# Produce, then consume in a group and commit: one function per client
# --------------------------------------------------------------------------------------------


def key_of(i):
    return f"k-{i}".encode()


def value_of(i):
    return f"v-{i}".encode() + b"x" * VALUE_PAD


def index_of(value):
    return int(value[2:].rstrip(b"x"))


def ck_roundtrip(env, mode, topic, group):
    bootstrap = env.bootstrap(mode)
    security = ck_security(env, mode)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                  "message.timeout.ms": int(DEADLINE_S * 1000), **security})
    acks, errors = {}, []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acks[index_of(msg.value())] = (msg.partition(), msg.offset())

    try:
        for i in range(N):
            p.produce(topic, key=key_of(i), value=value_of(i), on_delivery=on_delivery)
        remaining = p.flush(DEADLINE_S)
    finally:
        ck_close_producer(p)
    assert remaining == 0 and not errors, f"{remaining} undelivered; errors: {errors[:3]}"

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "session.timeout.ms": 6000, "heartbeat.interval.ms": 500, **security})
    out, errors = [], []
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + DEADLINE_S
        while len(out) < N and time.monotonic() < deadline:
            for msg in c.consume(num_messages=N, timeout=0.5):
                if msg.error() is not None:
                    assert not msg.error().fatal(), f"fatal consumer error: {msg.error()}"
                    errors.append(str(msg.error()))
                    continue
                out.append(Rec(msg.partition(), msg.offset(), msg.key(), msg.value()))
        assert len(out) >= N, f"consumed {len(out)} of {N} within {DEADLINE_S} s; {errors[:5]}"
        committed = c.commit(asynchronous=False)
        assert all(tp.error is None for tp in committed), f"commit: {committed}"
    finally:
        c.close()
    return acks, out


def kp_roundtrip(env, mode, topic, group):
    bootstrap = env.bootstrap(mode)
    security = kp_security(env, mode)
    p = kafka.KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                            enable_idempotence=False, **security)
    try:
        futures = [p.send(topic, key=key_of(i), value=value_of(i)) for i in range(N)]
        p.flush(timeout=DEADLINE_S)
        acks = {}
        for i, f in enumerate(futures):
            md = f.get(timeout=1)
            acks[i] = (md.partition, md.offset)
    finally:
        p.close(timeout=10)

    c = kafka.KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                            auto_offset_reset="earliest", enable_auto_commit=False,
                            session_timeout_ms=6000, heartbeat_interval_ms=500, **security)
    out = []
    try:
        deadline = time.monotonic() + DEADLINE_S
        while len(out) < N and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=500).values():
                out.extend(Rec(r.partition, r.offset, r.key, r.value) for r in recs)
        assert len(out) >= N, f"kafka-python consumed {len(out)} of {N} within {DEADLINE_S} s"
        c.commit()
    finally:
        c.close(autocommit=False)
    return acks, out


async def aio_roundtrip_async(env, mode, topic, group):
    bootstrap = env.bootstrap(mode)
    p = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                  enable_idempotence=False, **aio_security(env, mode))
    await p.start()
    try:
        futures = [await p.send(topic, key=key_of(i), value=value_of(i)) for i in range(N)]
        metas = await asyncio.gather(*futures)
    finally:
        await p.stop()
    acks = {i: (m.partition, m.offset) for i, m in enumerate(metas)}

    c = aiokafka.AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                  auto_offset_reset="earliest", enable_auto_commit=False,
                                  session_timeout_ms=6000, heartbeat_interval_ms=500,
                                  **aio_security(env, mode))
    await c.start()
    out = []
    try:
        deadline = time.monotonic() + DEADLINE_S
        while len(out) < N and time.monotonic() < deadline:
            for recs in (await c.getmany(timeout_ms=500)).values():
                out.extend(Rec(r.partition, r.offset, r.key, r.value) for r in recs)
        assert len(out) >= N, f"aiokafka consumed {len(out)} of {N} within {DEADLINE_S} s"
        await c.commit()
    finally:
        await c.stop()
    return acks, out


def aio_roundtrip(env, mode, topic, group):
    return asyncio.run(asyncio.wait_for(aio_roundtrip_async(env, mode, topic, group),
                                        timeout=3 * DEADLINE_S))


def kcat(*args, input_text=None, timeout=PROCESS_TIMEOUT_S, check=True):
    proc = subprocess.run(["kcat", *args], input=input_text, capture_output=True, text=True,
                          timeout=timeout)
    if check:
        assert proc.returncode == 0, (
            f"kcat {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


def kcat_roundtrip(env, mode, topic, group):
    """kcat reports no offsets on produce, so only the consumed side is returned; its consumer
    runs in balanced (-G) mode, a member of `group`, until it has read N records (-c), and
    commits them as it closes (librdkafka's auto-commit)."""
    bootstrap = env.bootstrap(mode)
    security = kcat_security(env, mode)
    lines = "".join(f"{key_of(i).decode()}:{value_of(i).decode()}\n" for i in range(N))
    kcat("-P", "-b", bootstrap, "-t", topic, "-K:", "-X", "acks=all", *security,
         input_text=lines)
    out = kcat("-b", bootstrap, "-G", group, "-c", str(N), "-q", "-f", "%p %o %k %s\n",
               "-X", "auto.offset.reset=earliest", *security, topic).stdout
    recs = []
    for line in out.splitlines():
        p, o, k, v = line.split(" ")
        recs.append(Rec(int(p), int(o), k.encode(), v.encode()))
    return None, recs


ROUNDTRIPS = {
    "confluent-kafka": ck_roundtrip,
    "kafka-python": kp_roundtrip,
    "aiokafka": aio_roundtrip,
    "kcat": kcat_roundtrip,
}


def committed_offsets(env, group, topic):
    """The group's committed offsets, read over PLAINTEXT (OffsetFetch without joining)."""
    c = Consumer({"bootstrap.servers": env.broker.bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
    finally:
        c.close()
    return {tp.partition: tp.offset for tp in got}


def check_roundtrip(env, client, mode):
    """The client produces N records over `mode`, then consumes them as the only member of a
    new group and commits; the broker must have authenticated it as the mode's principal."""
    listener = MODES[mode].listener
    topic = unique_topic(f"sec-{client}-{mode}")
    group = f"g-{uuid.uuid4().hex[:12]}"
    ck_create_topic(env.broker.bootstrap, topic, PARTITIONS)
    principals_before, _ = env.auth_events(listener)

    acks, records = ROUNDTRIPS[client](env, mode, topic, group)

    assert sorted(r.value for r in records) == sorted(value_of(i) for i in range(N)), (
        f"consumed {[r.value for r in records]}")
    ends = {}
    for r in records:
        i = index_of(r.value)
        assert r.key == key_of(i), f"record {i}: key {r.key!r}"
        if acks is not None:
            assert (r.partition, r.offset) == acks[i], (
                f"record {i} consumed at {r.partition}/{r.offset}, acknowledged at {acks[i]}")
        ends[r.partition] = max(ends.get(r.partition, 0), r.offset + 1)
    for p in ends:
        offs = sorted(r.offset for r in records if r.partition == p)
        assert offs == list(range(len(offs))), f"partition {p}: offsets {offs}"
    # The group's commits went through the coordinator on the secured listener.
    committed = committed_offsets(env, group, topic)
    assert {p: o for p, o in committed.items() if o >= 0} == ends, (
        f"committed {committed}, consumed up to {ends}")

    principals, _ = env.auth_events(listener)
    new = principals[len(principals_before):]
    assert new, f"the broker logged no authentication on {listener}"
    assert set(new) == {MODES[mode].principal}, f"principals on {listener}: {new}"


@pytest.mark.parametrize("mode", ROUNDTRIP_MODES)
@pytest.mark.parametrize("client", CLIENTS)
def test_produce_and_consume_in_a_group(env, client, mode):
    skip_unsupported(client, mode)
    listener = MODES[mode].listener
    metrics_before, log_before = baseline(env, listener)
    check_roundtrip(env, client, mode)
    # Every connection was counted, as authenticated, on its own listener.
    ok, failed = settled_counts(env, listener, metrics_before, log_before)
    assert ok >= 1 and failed == 0, f"{ok} successful, {failed} failed authentications"


# --------------------------------------------------------------------------------------------
# A wrong password: refused, counted, and nobody else affected
# --------------------------------------------------------------------------------------------

REFUSAL_DEADLINE_S = 20.0
WRONG = "not-" + PASSWORD


def refusal_message(mode):
    """What Kafka tells a client that got the password wrong (SaslAuthenticate error_message)."""
    mechanism = MODES[mode].mechanism
    if mechanism == "PLAIN":
        return "Authentication failed: Invalid username or password"
    return ("Authentication failed during authentication due to invalid credentials with SASL "
            f"mechanism {mechanism}")


def ck_refused(env, mode, caplog):
    errors = []
    p = Producer({"bootstrap.servers": env.bootstrap(mode), "error_cb": errors.append,
                  **ck_security(env, mode, password=WRONG)})
    try:
        deadline = time.monotonic() + REFUSAL_DEADLINE_S
        while time.monotonic() < deadline:
            p.poll(0.1)
            auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
            if auth:
                return auth[0].str()
        pytest.fail(f"no authentication error within {REFUSAL_DEADLINE_S} s; errors: {errors}")
    finally:
        ck_close_producer(p)


def kp_refused(env, mode, caplog):
    """kafka-python retries a failed bootstrap (authentication failures included) until
    bootstrap_timeout_ms, then gives up with KafkaTimeoutError; each attempt's cause is logged.

    kafka-python 3.0.12 (and its master branch) drops bytes that arrive in the same read as the
    end of the stream (kafka/net transport `_sock_recv`: data, then EOF, returns only the
    error). The broker, like Kafka, closes right after writing the SaslAuthenticate failure, so
    the client often sees only "socket disconnected" (on SASL_PLAINTEXT, where the two arrive
    together, every time so far). So the SaslAuthenticationFailedError is checked when the
    client saw it; that the broker refused the attempts is checked from its log and metrics."""
    started = time.monotonic()
    with pytest.raises(kafka.errors.KafkaTimeoutError):
        p = kafka.KafkaProducer(bootstrap_servers=env.bootstrap(mode), bootstrap_timeout_ms=3000,
                                **kp_security(env, mode, password=WRONG))
        p.close(timeout=5)
    assert time.monotonic() - started < REFUSAL_DEADLINE_S
    causes = [r.args[1] for r in caplog.records
              if r.name.startswith("kafka") and r.msg.startswith("Bootstrap connection to")]
    assert causes, "kafka-python logged no failed bootstrap connection"
    auth = [c for c in causes if isinstance(c, kafka.errors.SaslAuthenticationFailedError)]
    others = [c for c in causes if not isinstance(c, kafka.errors.SaslAuthenticationFailedError)]
    assert all(isinstance(c, kafka.errors.KafkaConnectionError) for c in others), (
        f"kafka-python's bootstrap failed for other reasons: {others}")
    if not auth:
        print(f"kafka-python saw no SaslAuthenticationFailedError, only: {others}")
    return str(auth[0]) if auth else None


def aio_refused(env, mode, caplog):
    """aiokafka gives up bootstrapping at once with KafkaConnectionError, and logs the cause."""

    async def start():
        p = aiokafka.AIOKafkaProducer(bootstrap_servers=env.bootstrap(mode),
                                      **aio_security(env, mode, password=WRONG))
        try:
            await p.start()
        finally:
            await p.stop()

    with pytest.raises(aiokafka.errors.KafkaConnectionError):
        asyncio.run(asyncio.wait_for(start(), timeout=REFUSAL_DEADLINE_S))
    causes = [r.args[2] for r in caplog.records
              if r.name.startswith("aiokafka") and r.msg.startswith("Unable connect to")]
    auth = [c for c in causes if isinstance(c, aiokafka.errors.SaslAuthenticationFailed)]
    assert auth, f"aiokafka's bootstrap failed for other reasons: {causes}"
    return str(auth[0])


def kcat_refused(env, mode, caplog):
    proc = kcat("-L", "-b", env.bootstrap(mode), "-m", "3",
                *kcat_security(env, mode, password=WRONG), check=False)
    assert proc.returncode != 0, f"kcat -L with a wrong password succeeded: {proc.stdout}"
    auth = [line for line in proc.stderr.splitlines() if "SASL authentication error" in line]
    assert auth, f"kcat reported no authentication error: {proc.stderr}"
    return auth[0]


REFUSALS = {
    "confluent-kafka": ck_refused,
    "kafka-python": kp_refused,
    "aiokafka": aio_refused,
    "kcat": kcat_refused,
}

AUTH_METRIC = "kafka_server_socketservermetrics_{}_authentication_total"


def auth_counts(env, listener):
    families = scrape(env.broker)
    return (sample(families, AUTH_METRIC.format("successful"), listener=listener),
            sample(families, AUTH_METRIC.format("failed"), listener=listener))


def open_connections(env, listener):
    return sample(scrape(env.broker), "kafka_server_socketservermetrics_connection_count",
                  listener=listener)


def no_connections(env, listener, deadline):
    """Until the broker has no connection open on `listener`: the clients that made them are
    stopped, but the last of their connections may still be authenticating."""
    while (n := open_connections(env, listener)) > 0:
        assert time.monotonic() < deadline, f"{n} connections on {listener} stay open"
        time.sleep(0.1)


def baseline(env, listener):
    no_connections(env, listener, time.monotonic() + DEADLINE_S)
    return auth_counts(env, listener), env.auth_events(listener)


def settled_counts(env, listener, before_metrics, before_log):
    """(successful, failed) since `before_*` by the metrics, once the stopped clients'
    connections are gone and the metrics agree with the broker's log."""
    deadline = time.monotonic() + DEADLINE_S
    no_connections(env, listener, deadline)
    while True:
        ok, failed = auth_counts(env, listener)
        logged_ok, logged_failed = env.auth_events(listener)
        counted = (ok - before_metrics[0], failed - before_metrics[1])
        logged = (len(logged_ok) - len(before_log[0]), logged_failed - before_log[1])
        if counted == logged:
            return counted
        assert time.monotonic() < deadline, (
            f"metrics count {counted} (successful, failed) authentications on {listener}, "
            f"the broker's log {logged}")
        time.sleep(0.1)


@pytest.mark.parametrize("mode", SASL_MODES)
@pytest.mark.parametrize("client", CLIENTS)
def test_wrong_password_is_refused_and_counted(env, client, mode, caplog):
    skip_unsupported(client, mode)
    listener = MODES[mode].listener
    metrics_before, log_before = baseline(env, listener)

    started = time.monotonic()
    message = REFUSALS[client](env, mode, caplog)
    elapsed = time.monotonic() - started
    assert elapsed < REFUSAL_DEADLINE_S, f"the refusal took {elapsed:.1f} s"
    if message is not None:
        assert refusal_message(mode) in message, f"{client} reported: {message}"

    ok, failed = settled_counts(env, listener, metrics_before, log_before)
    assert ok == 0, f"{ok} successful authentications on {listener} with a wrong password"
    assert failed >= 1, f"no failed authentication counted on {listener}"

    # The broker still serves a client that knows the password, and counts it.
    metrics_before, log_before = baseline(env, listener)
    check_roundtrip(env, client, mode)
    ok, failed = settled_counts(env, listener, metrics_before, log_before)
    assert ok >= 1 and failed == 0, f"a good client: {ok} successful, {failed} failed"


# --------------------------------------------------------------------------------------------
# MTLS: no client certificate, or one from a CA the broker does not trust
# --------------------------------------------------------------------------------------------

# What the broker's TLS alert says, as OpenSSL (librdkafka, Python's ssl) names it. A client
# whose certificate was not issued by a CA the broker names in its CertificateRequest may send
# none at all (librdkafka 2.x does), and gets the same alert as a client without one.
TLS_REFUSAL = {"none": ("certificate required",),
               "rogue": ("unknown ca", "certificate required")}


def without_client_cert(conf, keys):
    return {k: v for k, v in conf.items() if k not in keys}


def ck_tls_refused(env, cert):
    conf = ck_security(env, "mtls", cert=(env.pki.rogue_cert, env.pki.rogue_key))
    if cert == "none":
        conf = without_client_cert(conf, {"ssl.certificate.location", "ssl.key.location"})
    errors = []
    p = Producer({"bootstrap.servers": env.bootstrap("mtls"), "error_cb": errors.append, **conf})
    try:
        deadline = time.monotonic() + REFUSAL_DEADLINE_S
        while time.monotonic() < deadline:
            p.poll(0.1)
            tls = [e.str() for e in errors if "alert" in e.str()]
            if tls:
                return tls[0]
        pytest.fail(f"no TLS error within {REFUSAL_DEADLINE_S} s; errors: {errors}")
    finally:
        ck_close_producer(p)


def kp_tls_refused(env, cert, caplog):
    conf = kp_security(env, "mtls", cert=(env.pki.rogue_cert, env.pki.rogue_key))
    if cert == "none":
        conf = without_client_cert(conf, {"ssl_certfile", "ssl_keyfile"})
    with pytest.raises(kafka.errors.KafkaTimeoutError):
        p = kafka.KafkaProducer(bootstrap_servers=env.bootstrap("mtls"),
                                bootstrap_timeout_ms=2000, **conf)
        p.close(timeout=5)
    causes = [str(r.args[1]) for r in caplog.records
              if r.name.startswith("kafka") and r.msg.startswith("Bootstrap connection to")]
    assert causes, "kafka-python logged no failed bootstrap connection"
    return causes[0]


def aio_tls_refused(env, cert, caplog):
    """aiokafka (asyncio's TLS) reports only that the broker closed the connection."""
    files = {"cafile": str(env.pki.ca)}
    if cert == "rogue":
        files.update(certfile=str(env.pki.rogue_cert), keyfile=str(env.pki.rogue_key))
    context = aiokafka.helpers.create_ssl_context(**files)

    async def start():
        p = aiokafka.AIOKafkaProducer(bootstrap_servers=env.bootstrap("mtls"),
                                      security_protocol="SSL", ssl_context=context)
        try:
            await p.start()
        finally:
            await p.stop()

    with pytest.raises(aiokafka.errors.KafkaConnectionError):
        asyncio.run(asyncio.wait_for(start(), timeout=REFUSAL_DEADLINE_S))
    return None


def kcat_tls_refused(env, cert):
    conf = ck_security(env, "mtls", cert=(env.pki.rogue_cert, env.pki.rogue_key))
    if cert == "none":
        conf = without_client_cert(conf, {"ssl.certificate.location", "ssl.key.location"})
    proc = kcat("-L", "-b", env.bootstrap("mtls"), "-m", "3", *kcat_args(conf), check=False)
    assert proc.returncode != 0, f"kcat -L without a trusted certificate succeeded: {proc.stdout}"
    alerts = [line for line in proc.stderr.splitlines() if "alert" in line]
    assert alerts, f"kcat reported no TLS alert: {proc.stderr}"
    return alerts[0]


@pytest.mark.parametrize("cert", ["none", "rogue"])
@pytest.mark.parametrize("client", CLIENTS)
def test_mtls_refuses_clients_without_a_trusted_certificate(env, client, cert, caplog):
    skip_unsupported(client, "mtls")
    metrics_before, log_before = baseline(env, "MTLS")
    started = time.monotonic()
    if client == "confluent-kafka":
        message = ck_tls_refused(env, cert)
    elif client == "kafka-python":
        message = kp_tls_refused(env, cert, caplog)
    elif client == "aiokafka":
        message = aio_tls_refused(env, cert, caplog)
    else:
        message = kcat_tls_refused(env, cert)
    assert time.monotonic() - started < REFUSAL_DEADLINE_S
    if message is not None:
        shown = message.lower().replace("_", " ")
        assert any(alert in shown for alert in TLS_REFUSAL[cert]), message
    ok, failed = settled_counts(env, "MTLS", metrics_before, log_before)
    assert ok == 0, f"{ok} clients without a trusted certificate authenticated on MTLS"
    assert failed >= 1, "no failed authentication counted on MTLS"


# --------------------------------------------------------------------------------------------
# Every client checks the broker: trusting only another CA, none connects
# --------------------------------------------------------------------------------------------


def ck_untrusted(env):
    errors = []
    p = Producer({"bootstrap.servers": env.bootstrap("ssl"), "error_cb": errors.append,
                  **ck_security(env, "ssl", ca=env.pki.rogue_ca)})
    try:
        deadline = time.monotonic() + REFUSAL_DEADLINE_S
        while time.monotonic() < deadline:
            p.poll(0.1)
            failed = [e.str() for e in errors if "certificate verify failed" in e.str()]
            if failed:
                return failed[0]
        pytest.fail(f"no certificate error within {REFUSAL_DEADLINE_S} s; errors: {errors}")
    finally:
        ck_close_producer(p)


def kp_untrusted(env, caplog):
    with pytest.raises(kafka.errors.KafkaTimeoutError):
        p = kafka.KafkaProducer(bootstrap_servers=env.bootstrap("ssl"), bootstrap_timeout_ms=2000,
                                **kp_security(env, "ssl", ca=env.pki.rogue_ca))
        p.close(timeout=5)
    causes = [str(r.args[1]) for r in caplog.records
              if r.name.startswith("kafka") and r.msg.startswith("Bootstrap connection to")]
    assert causes, "kafka-python logged no failed bootstrap connection"
    return causes[0]


def aio_untrusted(env, caplog):
    async def start():
        p = aiokafka.AIOKafkaProducer(bootstrap_servers=env.bootstrap("ssl"),
                                      **aio_security(env, "ssl", ca=env.pki.rogue_ca))
        try:
            await p.start()
        finally:
            await p.stop()

    with pytest.raises(aiokafka.errors.KafkaConnectionError):
        asyncio.run(asyncio.wait_for(start(), timeout=REFUSAL_DEADLINE_S))
    causes = [str(r.args[2]) for r in caplog.records
              if r.name.startswith("aiokafka") and r.msg.startswith("Unable connect to")]
    assert causes, "aiokafka logged no failed bootstrap connection"
    return causes[0]


def kcat_untrusted(env):
    proc = kcat("-L", "-b", env.bootstrap("ssl"), "-m", "3",
                *kcat_security(env, "ssl", ca=env.pki.rogue_ca), check=False)
    assert proc.returncode != 0, f"kcat -L trusting another CA succeeded: {proc.stdout}"
    failed = [line for line in proc.stderr.splitlines() if "certificate verify failed" in line]
    assert failed, f"kcat reported no certificate error: {proc.stderr}"
    return failed[0]


@pytest.mark.parametrize("client", CLIENTS)
def test_clients_refuse_a_broker_their_ca_did_not_sign(env, client, caplog):
    """The TLS settings used above make each client verify the broker's certificate (so the
    SSL cases cannot pass with verification off): trusting only the rogue CA, none gets in,
    and the broker counts the aborted handshakes as failed authentications on SSL."""
    skip_unsupported(client, "ssl")
    metrics_before, log_before = baseline(env, "SSL")
    started = time.monotonic()
    if client == "confluent-kafka":
        message = ck_untrusted(env)
    elif client == "kafka-python":
        message = kp_untrusted(env, caplog)
    elif client == "aiokafka":
        message = aio_untrusted(env, caplog)
    else:
        message = kcat_untrusted(env)
    assert time.monotonic() - started < REFUSAL_DEADLINE_S
    assert "certificate verify failed" in message.lower().replace("_", " "), message
    ok, failed = settled_counts(env, "SSL", metrics_before, log_before)
    assert ok == 0, f"{ok} clients authenticated on SSL while trusting another CA"
    assert failed >= 1, "no failed authentication counted on SSL"


# --------------------------------------------------------------------------------------------
# KIP-368: sessions that end, and clients that log in again
# --------------------------------------------------------------------------------------------

REAUTH_RUN_S = 2.5 * REAUTH_MS / 1000  # long enough for two re-authentications
REAUTH_EVERY_S = 0.1  # one record per this


def reauthenticates(client):
    """Whether the client logs in again before its session ends (KIP-368): librdkafka since
    2.2.0, kafka-python 3 (SaslReauthenticator); aiokafka 0.14 ignores session_lifetime_ms."""
    if client == "confluent-kafka":
        return confluent_kafka.libversion()[1] >= 0x020200FF
    if client == "kcat":
        return tuple(int(g) for g in kcat_librdkafka().split(".")[:3]) >= (2, 2, 0)
    if client == "kafka-python":
        import kafka.net.connection
        return hasattr(kafka.net.connection, "SaslReauthenticator")
    return False


def until_assigned(poll, assignment):
    """Polls until the group has given the consumer the topic's partition."""
    deadline = time.monotonic() + DEADLINE_S
    while not assignment():
        assert time.monotonic() < deadline, f"no partition assigned within {DEADLINE_S} s"
        poll()


def ck_stream(env, topic, group):
    """Once a group member has the topic's partition, produces one record per REAUTH_EVERY_S
    for REAUTH_RUN_S while the member consumes; returns (produced, consumed values)."""
    security = ck_security(env, "reauth")
    p = Producer({"bootstrap.servers": env.bootstrap("reauth"), "linger.ms": 0, **security})
    c = Consumer({"bootstrap.servers": env.bootstrap("reauth"), "group.id": group,
                  "auto.offset.reset": "earliest", **security})
    produced, consumed, errors = [], [], []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)

    try:
        c.subscribe([topic])
        until_assigned(
            lambda: consumed.extend(m.value() for m in c.consume(10, 0.1) if not m.error()),
            c.assignment)
        end = time.monotonic() + REAUTH_RUN_S
        while time.monotonic() < end:
            produced.append(f"r-{len(produced)}".encode())
            p.produce(topic, value=produced[-1], on_delivery=on_delivery)
            p.poll(0)
            consumed.extend(m.value() for m in c.consume(100, REAUTH_EVERY_S) if not m.error())
        assert p.flush(DEADLINE_S) == 0 and not errors, f"delivery errors: {errors[:3]}"
        deadline = time.monotonic() + DEADLINE_S
        while len(consumed) < len(produced) and time.monotonic() < deadline:
            consumed.extend(m.value() for m in c.consume(100, 0.2) if not m.error())
    finally:
        c.close()
        ck_close_producer(p)
    return produced, consumed


def kp_stream(env, topic, group):
    security = kp_security(env, "reauth")
    p = kafka.KafkaProducer(bootstrap_servers=env.bootstrap("reauth"), enable_idempotence=False,
                            **security)
    c = kafka.KafkaConsumer(topic, bootstrap_servers=env.bootstrap("reauth"), group_id=group,
                            auto_offset_reset="earliest", **security)
    produced, consumed = [], []
    try:
        until_assigned(lambda: c.poll(timeout_ms=100), c.assignment)
        end = time.monotonic() + REAUTH_RUN_S
        while time.monotonic() < end:
            produced.append(f"r-{len(produced)}".encode())
            p.send(topic, value=produced[-1]).get(timeout=DEADLINE_S)
            for recs in c.poll(timeout_ms=int(REAUTH_EVERY_S * 1000)).values():
                consumed.extend(r.value for r in recs)
        deadline = time.monotonic() + DEADLINE_S
        while len(consumed) < len(produced) and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=200).values():
                consumed.extend(r.value for r in recs)
    finally:
        c.close()
        p.close(timeout=10)
    return produced, consumed


async def aio_stream_async(env, topic, group):
    p = aiokafka.AIOKafkaProducer(bootstrap_servers=env.bootstrap("reauth"),
                                  enable_idempotence=False, **aio_security(env, "reauth"))
    c = aiokafka.AIOKafkaConsumer(topic, bootstrap_servers=env.bootstrap("reauth"),
                                  group_id=group, auto_offset_reset="earliest",
                                  **aio_security(env, "reauth"))
    await p.start()
    await c.start()
    produced, consumed = [], []
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not c.assignment():
            assert time.monotonic() < deadline, f"no partition assigned within {DEADLINE_S} s"
            await c.getmany(timeout_ms=100)
        end = time.monotonic() + REAUTH_RUN_S
        while time.monotonic() < end:
            produced.append(f"r-{len(produced)}".encode())
            await p.send_and_wait(topic, value=produced[-1])
            batches = await c.getmany(timeout_ms=int(REAUTH_EVERY_S * 1000))
            consumed.extend(r.value for recs in batches.values() for r in recs)
        deadline = time.monotonic() + DEADLINE_S
        while len(consumed) < len(produced) and time.monotonic() < deadline:
            batches = await c.getmany(timeout_ms=200)
            consumed.extend(r.value for recs in batches.values() for r in recs)
    finally:
        await c.stop()
        await p.stop()
    return produced, consumed


def aio_stream(env, topic, group):
    return asyncio.run(asyncio.wait_for(aio_stream_async(env, topic, group),
                                        timeout=REAUTH_RUN_S + 3 * DEADLINE_S))


def kcat_stream(env, topic, group):
    """A kcat producer fed one line per REAUTH_EVERY_S, beside a kcat group member that
    exits once it has read as many (-c)."""
    security = kcat_security(env, "reauth")
    n = int(REAUTH_RUN_S / REAUTH_EVERY_S)
    produced = [f"r-{i}".encode() for i in range(n)]
    consumer = subprocess.Popen(
        ["kcat", "-b", env.bootstrap("reauth"), "-G", group, "-c", str(n), "-q", "-f", "%s\n",
         "-X", "auto.offset.reset=earliest", *security, topic],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    producer = subprocess.Popen(
        ["kcat", "-P", "-b", env.bootstrap("reauth"), "-t", topic, "-X", "linger.ms=0",
         *security],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for value in produced:
            producer.stdin.write(value.decode() + "\n")
            producer.stdin.flush()
            time.sleep(REAUTH_EVERY_S)  # the pace of the stream, not a wait for anything
        producer.stdin.close()
        assert producer.wait(timeout=DEADLINE_S) == 0, producer.stderr.read()
        out, err = consumer.communicate(timeout=DEADLINE_S)
        assert consumer.returncode == 0, err
    finally:
        for proc in (producer, consumer):
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    return produced, [line.encode() for line in out.splitlines()]


STREAMS = {
    "confluent-kafka": ck_stream,
    "kafka-python": kp_stream,
    "aiokafka": aio_stream,
    "kcat": kcat_stream,
}
SESSION_EVENT = re.compile(
    r"conn\{peer=(\S+) listener=REAUTH\}: \S+: "
    r"(SASL client authenticated|SASL session expired without re-authentication)")


@pytest.mark.parametrize("client", CLIENTS)
def test_sessions_end_unless_the_client_reauthenticates(env, client):
    skip_unsupported(client, "reauth")
    topic = unique_topic(f"reauth-{client}")
    ck_create_topic(env.broker.bootstrap, topic, 1)
    no_connections(env, "REAUTH", time.monotonic() + DEADLINE_S)
    lines_before = len(env.log().splitlines())

    produced, consumed = STREAMS[client](env, topic, f"g-{uuid.uuid4().hex[:12]}")
    assert sorted(consumed) == sorted(produced), (
        f"produced {len(produced)}, consumed {len(consumed)}")

    no_connections(env, "REAUTH", time.monotonic() + DEADLINE_S)
    logins, expired = {}, {}
    for line in env.log().splitlines()[lines_before:]:
        m = SESSION_EVENT.search(line)
        if m:
            events = logins if m.group(2).startswith("SASL client") else expired
            events[m.group(1)] = events.get(m.group(1), 0) + 1
    assert logins, "the broker logged no login on REAUTH"
    again = {peer: n for peer, n in logins.items() if n > 1}
    if reauthenticates(client):
        # Fetches keep the consumer's connections busy: they outlive several sessions.
        assert again, f"{client} never logged in again on a connection: {logins}"
        assert not expired, f"sessions of {client} ended: {expired}"
    else:
        assert not again, f"{client} logged in again on a connection: {logins}"
        assert expired, f"no session of {client} ended after {REAUTH_RUN_S} s: {logins}"


# --------------------------------------------------------------------------------------------
# SCRAM user names with ',' and '='
# --------------------------------------------------------------------------------------------


def ck_login(env, mode, **who):
    errors = []
    admin = AdminClient({"bootstrap.servers": env.bootstrap(mode), "error_cb": errors.append,
                         **ck_security(env, mode, **who)})
    try:
        admin.list_topics(timeout=DEADLINE_S)
    except confluent_kafka.KafkaException as e:
        pytest.fail(f"no metadata: {e}; errors: {[str(x) for x in errors[:3]]}")


def kp_login(env, mode, **who):
    p = kafka.KafkaProducer(bootstrap_servers=env.bootstrap(mode),
                            bootstrap_timeout_ms=int(DEADLINE_S * 1000),
                            **kp_security(env, mode, **who))
    p.close(timeout=10)


def aio_login(env, mode, **who):
    async def start():
        p = aiokafka.AIOKafkaProducer(bootstrap_servers=env.bootstrap(mode),
                                      **aio_security(env, mode, **who))
        try:
            await p.start()
        finally:
            await p.stop()

    asyncio.run(asyncio.wait_for(start(), timeout=DEADLINE_S))


def kcat_login(env, mode, **who):
    kcat("-L", "-b", env.bootstrap(mode), "-m", str(int(DEADLINE_S)),
         *kcat_security(env, mode, **who))


LOGINS = {
    "confluent-kafka": ck_login,
    "kafka-python": kp_login,
    "aiokafka": aio_login,
    "kcat": kcat_login,
}


@pytest.mark.parametrize("mode", ["scram-sha-256", "scram-sha-512"])
@pytest.mark.parametrize("client", CLIENTS)
def test_scram_user_names_are_unescaped(env, client, mode):
    """The client escapes the user name in its client-first message; the broker must undo that
    to find the credentials (stored under the URL-encoded name) and name the principal."""
    skip_unsupported(client, mode)
    if client == "kafka-python":
        reason = (f"kafka-python {kafka.__version__} sends the SCRAM user name unescaped "
                  "(kafka/net/sasl/scram.py: b'n=' + user), which RFC 5802 and Kafka refuse")
        print(reason)
        pytest.skip(reason)
    metrics_before, log_before = baseline(env, "SASL_SSL")
    LOGINS[client](env, mode, user=ODD_USER, password=ODD_PASSWORD)
    ok, failed = settled_counts(env, "SASL_SSL", metrics_before, log_before)
    assert ok >= 1 and failed == 0, f"{ok} successful, {failed} failed authentications"
    principals, _ = env.auth_events("SASL_SSL")
    assert set(principals[len(log_before[0]):]) == {f"User:{ODD_USER}"}
