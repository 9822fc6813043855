import java.time.Duration;
import java.util.*;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.errors.ClusterAuthorizationException;
import org.apache.kafka.common.errors.GroupAuthorizationException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.errors.TransactionalIdAuthorizationException;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

/**
 * The Java client against a broker with ACLs. The admin work (topics, ACLs through
 * Admin.createAcls) goes over `admin-bootstrap` as a super user; each case logs in over SASL
 * PLAIN at `sasl-bootstrap` as its own user (password `password`), granted only what the case
 * says, so no case's ACLs help another's:
 *
 *   consumer           READ on the group and the topic: consumes the records
 *   consumer-no-group  READ on the topic only: GroupAuthorizationException
 *   consumer-no-topic  READ on the group only: TopicAuthorizationException
 *   txn                WRITE on the transactional id and the topic: a transaction commits
 *   txn-no-id          WRITE on the topic only: initTransactions throws
 *                      TransactionalIdAuthorizationException
 *   idempotent         IDEMPOTENT_WRITE on the cluster and WRITE on the topic: sends
 *   idempotent-topic   WRITE on the topic only: sends (a producer id without IDEMPOTENT_WRITE)
 *   idempotent-none    DESCRIBE on the topic only: the send fails with
 *                      ClusterAuthorizationException
 *   no-topic-write     IDEMPOTENT_WRITE only: the send fails with TopicAuthorizationException
 *
 * Usage: Authorization <admin-bootstrap> <sasl-bootstrap> <password>. Prints "OK <case>" per
 * case; a mismatch exits non-zero at once. Every wait is bounded.
 */
public class Authorization {
    static final Duration DEADLINE = Duration.ofSeconds(30);
    static String adminBootstrap, saslBootstrap, password;
    static Admin admin;
    static final String RUN = Long.toHexString(System.nanoTime());

    static void check(boolean ok, String what) {
        if (!ok) {
            System.err.println("MISMATCH: " + what);
            System.out.flush();
            System.exit(1);
        }
    }

    static Properties login(String user) {
        Properties p = new Properties();
        p.put("bootstrap.servers", saslBootstrap);
        p.put("security.protocol", "SASL_PLAINTEXT");
        p.put("sasl.mechanism", "PLAIN");
        p.put("sasl.jaas.config", "org.apache.kafka.common.security.plain.PlainLoginModule required "
                + "username=\"" + user + "\" password=\"" + password + "\";");
        return p;
    }

    static void grant(String user, ResourceType type, String name, AclOperation... ops)
            throws Exception {
        List<AclBinding> acls = new ArrayList<>();
        for (AclOperation op : ops) {
            acls.add(new AclBinding(new ResourcePattern(type, name, PatternType.LITERAL),
                    new AccessControlEntry("User:" + user, "*", op, AclPermissionType.ALLOW)));
        }
        admin.createAcls(acls).all().get(DEADLINE.toMillis(), TimeUnit.MILLISECONDS);
    }

    static String topic(String what) throws Exception {
        String name = "authz-" + what + "-" + RUN;
        admin.createTopics(List.of(new NewTopic(name, 1, (short) 1)))
                .all().get(DEADLINE.toMillis(), TimeUnit.MILLISECONDS);
        return name;
    }

    static KafkaProducer<String, String> producer(Properties p) {
        p.put("key.serializer", "org.apache.kafka.common.serialization.StringSerializer");
        p.put("value.serializer", "org.apache.kafka.common.serialization.StringSerializer");
        p.put("max.block.ms", String.valueOf(DEADLINE.toMillis()));
        p.put("delivery.timeout.ms", String.valueOf(DEADLINE.toMillis()));
        p.put("request.timeout.ms", "10000");
        p.put("linger.ms", "0");
        return new KafkaProducer<>(p);
    }

    /** Records of `topic` the user consumes in group `group`, or the exception polling threw. */
    static Object consume(String user, String topic, String group, int count) {
        Properties p = login(user);
        p.put("group.id", group);
        p.put("auto.offset.reset", "earliest");
        p.put("enable.auto.commit", "false");
        p.put("key.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");
        p.put("value.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");
        List<String> values = new ArrayList<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p)) {
            c.subscribe(List.of(topic));
            long end = System.currentTimeMillis() + DEADLINE.toMillis();
            while (values.size() < count && System.currentTimeMillis() < end) {
                ConsumerRecords<String, String> records = c.poll(Duration.ofMillis(500));
                for (ConsumerRecord<String, String> r : records) values.add(r.value());
            }
            c.commitSync(DEADLINE);
        } catch (RuntimeException e) {
            return e;
        }
        return values;
    }

    /** The exception of sending one record (null: acknowledged). */
    static Throwable send(Properties p, String topic) {
        try (KafkaProducer<String, String> producer = producer(p)) {
            producer.send(new ProducerRecord<>(topic, "k", "v"))
                    .get(DEADLINE.toMillis() + 5000, TimeUnit.MILLISECONDS);
            return null;
        } catch (ExecutionException e) {
            return e.getCause();
        } catch (Exception e) {
            return e;
        }
    }

    /**
     * The exception, or one it wraps, is of {@code type}. The producer reports a fatal error
     * either through the send's future, or, once its transaction manager is in the error state,
     * by throwing from send() a KafkaException whose cause is that error: which one depends on
     * whether InitProducerId was answered before the send.
     */
    static void expect(Object got, Class<?> type, String what) {
        boolean found = false;
        for (Throwable t = got instanceof Throwable ? (Throwable) got : null; t != null && !found; t = t.getCause()) {
            found = type.isInstance(t);
        }
        check(found, what + ": expected " + type.getSimpleName() + ", got " + got);
        System.out.println("OK " + what + " " + type.getSimpleName());
    }

    public static void main(String[] args) throws Exception {
        adminBootstrap = args[0];
        saslBootstrap = args[1];
        password = args[2];
        Properties ap = new Properties();
        ap.put("bootstrap.servers", adminBootstrap);
        admin = Admin.create(ap);

        String consumed = topic("consumed");
        try (KafkaProducer<String, String> p = producer(ap)) {
            for (int i = 0; i < 3; i++) {
                p.send(new ProducerRecord<>(consumed, "k" + i, "v" + i))
                        .get(DEADLINE.toMillis(), TimeUnit.MILLISECONDS);
            }
        }

        String group = "authz-group-" + RUN;
        grant("j_consumer", ResourceType.TOPIC, consumed, AclOperation.READ);
        grant("j_consumer", ResourceType.GROUP, group, AclOperation.READ);
        Object got = consume("j_consumer", consumed, group, 3);
        check(got.equals(List.of("v0", "v1", "v2")), "consumer: " + got);
        System.out.println("OK consumer");

        grant("j_no_group", ResourceType.TOPIC, consumed, AclOperation.READ);
        expect(consume("j_no_group", consumed, group + "-b", 3),
                GroupAuthorizationException.class, "consumer-no-group");

        grant("j_no_topic", ResourceType.GROUP, group + "-c", AclOperation.READ);
        expect(consume("j_no_topic", consumed, group + "-c", 3),
                TopicAuthorizationException.class, "consumer-no-topic");

        String txnTopic = topic("txn");
        String txnId = "authz-txn-" + RUN;
        grant("j_txn", ResourceType.TRANSACTIONAL_ID, txnId, AclOperation.WRITE);
        grant("j_txn", ResourceType.TOPIC, txnTopic, AclOperation.WRITE);
        Properties tp = login("j_txn");
        tp.put("transactional.id", txnId);
        try (KafkaProducer<String, String> p = producer(tp)) {
            p.initTransactions();
            p.beginTransaction();
            p.send(new ProducerRecord<>(txnTopic, "k", "committed"));
            p.commitTransaction();
        }
        System.out.println("OK txn");

        grant("j_txn_no_id", ResourceType.TOPIC, txnTopic, AclOperation.WRITE);
        Properties np = login("j_txn_no_id");
        np.put("transactional.id", txnId + "-b");
        Object thrown = null;
        try (KafkaProducer<String, String> p = producer(np)) {
            p.initTransactions();
        } catch (RuntimeException e) {
            thrown = e;
        }
        expect(thrown, TransactionalIdAuthorizationException.class, "txn-no-id");

        String idempotentTopic = topic("idempotent");
        grant("j_idempotent", ResourceType.CLUSTER, "kafka-cluster", AclOperation.IDEMPOTENT_WRITE);
        grant("j_idempotent", ResourceType.TOPIC, idempotentTopic, AclOperation.WRITE);
        Properties ip = login("j_idempotent");
        ip.put("enable.idempotence", "true");
        Throwable failed = send(ip, idempotentTopic);
        check(failed == null, "idempotent: " + failed);
        System.out.println("OK idempotent");

        grant("j_idempotent_topic", ResourceType.TOPIC, idempotentTopic, AclOperation.WRITE);
        ip = login("j_idempotent_topic");
        ip.put("enable.idempotence", "true");
        failed = send(ip, idempotentTopic);
        check(failed == null, "idempotent-topic: " + failed);
        System.out.println("OK idempotent-topic");

        // DESCRIBE only, so that the topic's metadata is not what fails.
        grant("j_idempotent_none", ResourceType.TOPIC, idempotentTopic, AclOperation.DESCRIBE);
        ip = login("j_idempotent_none");
        ip.put("enable.idempotence", "true");
        expect(send(ip, idempotentTopic), ClusterAuthorizationException.class, "idempotent-none");

        grant("j_no_topic_write", ResourceType.CLUSTER, "kafka-cluster",
                AclOperation.IDEMPOTENT_WRITE);
        ip = login("j_no_topic_write");
        ip.put("enable.idempotence", "true");
        expect(send(ip, idempotentTopic), TopicAuthorizationException.class, "no-topic-write");

        admin.close(DEADLINE);
    }
}
