import java.io.FileInputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.clients.admin.UserScramCredentialsDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;

/**
 * The Java client over a secured listener: everything it needs to reach the broker (security
 * protocol, truststore, keystore, SASL mechanism and JAAS login) comes from a client properties
 * file, as an application would have it. One JVM runs several steps, in order; any failure
 * exits non-zero at once. Steps (all times bounded):
 *
 *   round-trip <bootstrap> <props> <topic> <group> <count>
 *       create the topic; produce count records; consume them through consumer group `group`
 *       (subscribe, commitSync); produce count more; a new member of the group gets exactly
 *       those (so the commit held); the admin client lists the group's offsets at the end.
 *       Prints "OK round-trip <topic> <count>".
 *   refused <bootstrap> <props>
 *       an admin call and a producer send with (wrong) credentials: both must fail with
 *       SaslAuthenticationException, not time out. Prints
 *       "REFUSED <exception class> <elapsed ms> <message>" for each.
 *   renewing <bootstrap> <props> <topic> <group> <seconds>
 *       a producer and a group consumer working side by side for that long (a record at a
 *       time, each sent once the last was acknowledged; commits every second), then the client metrics of authentication and
 *       re-authentication (KIP-368). Prints "OK renewing <sent> <consumed>" and
 *       "METRIC <client> <name> <value>".
 *   scram-user <bootstrap> <props> <user> <password> <iterations>
 *       AlterUserScramCredentials for SCRAM-SHA-256 and -512, then
 *       DescribeUserScramCredentials of the user. Prints "DESCRIBED <user> <mechanism>
 *       <iterations>" per credential.
 */
public class SecureClients {
    static final long DEADLINE_MS = 60_000;

    static void check(boolean ok, String what) {
        if (!ok) {
            System.err.println("MISMATCH: " + what);
            System.out.flush();
            System.exit(1);
        }
    }

    static Properties load(String bootstrap, String file) throws Exception {
        Properties p = new Properties();
        try (InputStream in = new FileInputStream(file)) {
            p.load(in);
        }
        p.put("bootstrap.servers", bootstrap);
        return p;
    }

    static KafkaProducer<String, String> producer(Properties common) {
        Properties pp = new Properties();
        pp.putAll(common);
        pp.put("key.serializer", "org.apache.kafka.common.serialization.StringSerializer");
        pp.put("value.serializer", "org.apache.kafka.common.serialization.StringSerializer");
        pp.put("linger.ms", "0");
        return new KafkaProducer<>(pp);
    }

    static KafkaConsumer<String, String> consumer(Properties common, String group) {
        Properties cp = new Properties();
        cp.putAll(common);
        cp.put("group.id", group);
        cp.put("key.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");
        cp.put("value.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");
        cp.put("enable.auto.commit", "false");
        cp.put("auto.offset.reset", "earliest");
        return new KafkaConsumer<>(cp);
    }

    static void createTopic(Properties common, String topic) throws Exception {
        try (Admin admin = Admin.create(common)) {
            try {
                admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all()
                    .get(DEADLINE_MS, TimeUnit.MILLISECONDS);
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) throw e;
            }
        }
    }

    static void produce(Properties common, String topic, int from, int to) throws Exception {
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<String, String> producer = producer(common)) {
            for (int i = from; i < to; i++) {
                sent.add(producer.send(new ProducerRecord<>(topic, "k-" + i, "v-" + i)));
            }
            producer.flush();
            for (Future<RecordMetadata> f : sent) f.get(DEADLINE_MS, TimeUnit.MILLISECONDS);
        }
    }

    /** A new member of `group` reads until it has keys from..to-1, checking it sees no other. */
    static void consumeGroup(Properties common, String topic, String group, int from, int to) {
        Set<Integer> seen = new HashSet<>();
        try (KafkaConsumer<String, String> consumer = consumer(common, group)) {
            consumer.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + DEADLINE_MS;
            while (seen.size() < to - from && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    int i = Integer.parseInt(r.key().substring(2));
                    check(i >= from && i < to, group + " got k-" + i + ", outside " + from + ".." + to
                        + " (committed offsets not used?)");
                    check(r.value().equals("v-" + i), "value of " + r.key());
                    check(seen.add(i), group + " got k-" + i + " twice");
                }
            }
            check(seen.size() == to - from, group + " consumed " + seen.size() + " of " + (to - from));
            consumer.commitSync(Duration.ofMillis(DEADLINE_MS));
        }
    }

    static void roundTrip(String bootstrap, String file, String topic, String group, int count) throws Exception {
        Properties common = load(bootstrap, file);
        createTopic(common, topic);
        produce(common, topic, 0, count);
        consumeGroup(common, topic, group, 0, count);
        produce(common, topic, count, 2 * count);
        consumeGroup(common, topic, group, count, 2 * count);
        long committed = 0;
        try (Admin admin = Admin.create(common)) {
            Map<TopicPartition, OffsetAndMetadata> offsets = admin.listConsumerGroupOffsets(group)
                .partitionsToOffsetAndMetadata().get(DEADLINE_MS, TimeUnit.MILLISECONDS);
            for (OffsetAndMetadata o : offsets.values()) committed += o.offset();
        }
        check(committed == 2L * count, group + " committed " + committed + " in all, not " + 2 * count);
        System.out.println("OK round-trip " + topic + " " + count);
    }

    /** The exception of `e`'s causes whose class is named `name`, if any. */
    static Throwable causeNamed(Throwable e, String name) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t.getClass().getSimpleName().equals(name)) return t;
        }
        return null;
    }

    static void refusal(String what, long started, Throwable e) {
        Throwable t = causeNamed(e, "SaslAuthenticationException");
        if (t == null) {
            e.printStackTrace();
            check(false, what + " failed with " + e + ", not SaslAuthenticationException");
        }
        System.out.println("REFUSED " + what + " " + t.getClass().getSimpleName() + " "
            + (System.currentTimeMillis() - started) + " " + t.getMessage());
    }

    static void refused(String bootstrap, String file) throws Exception {
        Properties common = load(bootstrap, file);
        long started = System.currentTimeMillis();
        try (Admin admin = Admin.create(common)) {
            admin.describeCluster().clusterId().get(DEADLINE_MS, TimeUnit.MILLISECONDS);
            check(false, "the admin client was let in");
        } catch (ExecutionException e) {
            refusal("admin", started, e);
        }
        started = System.currentTimeMillis();
        try (KafkaProducer<String, String> producer = producer(common)) {
            producer.send(new ProducerRecord<>("refused", "k", "v")).get(DEADLINE_MS, TimeUnit.MILLISECONDS);
            check(false, "the producer was let in");
        } catch (Exception e) {
            refusal("producer", started, e);
        }
    }

    static double metric(Map<MetricName, ? extends Metric> metrics, String name) {
        double total = 0;
        for (Map.Entry<MetricName, ? extends Metric> m : metrics.entrySet()) {
            if (m.getKey().name().equals(name) && m.getKey().group().endsWith("-metrics")
                    && m.getValue().metricValue() instanceof Double) {
                total += (Double) m.getValue().metricValue();
            }
        }
        return total;
    }

    static final String[] AUTH_METRICS = {
        "successful-authentication-total", "failed-authentication-total",
        "successful-reauthentication-total", "failed-reauthentication-total",
    };

    static void renewing(String bootstrap, String file, String topic, String group, int seconds) throws Exception {
        Properties common = load(bootstrap, file);
        createTopic(common, topic);
        Set<Integer> seen = new HashSet<>();
        int sent = 0;
        try (KafkaProducer<String, String> producer = producer(common);
             KafkaConsumer<String, String> consumer = consumer(common, group)) {
            consumer.subscribe(List.of(topic));
            long started = System.currentTimeMillis();
            long lastCommit = started;
            while (System.currentTimeMillis() - started < seconds * 1000L) {
                producer.send(new ProducerRecord<>(topic, "k-" + sent, "v-" + sent))
                    .get(DEADLINE_MS, TimeUnit.MILLISECONDS);
                sent++;
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(100))) {
                    check(seen.add(Integer.parseInt(r.key().substring(2))), "got " + r.key() + " twice");
                }
                if (System.currentTimeMillis() - lastCommit >= 1000) {
                    consumer.commitSync(Duration.ofMillis(DEADLINE_MS));
                    lastCommit = System.currentTimeMillis();
                }
            }
            long deadline = System.currentTimeMillis() + DEADLINE_MS;
            while (seen.size() < sent && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(100))) {
                    check(seen.add(Integer.parseInt(r.key().substring(2))), "got " + r.key() + " twice");
                }
            }
            consumer.commitSync(Duration.ofMillis(DEADLINE_MS));
            check(seen.size() == sent, "consumed " + seen.size() + " of " + sent);
            System.out.println("OK renewing " + sent + " " + seen.size());
            for (String name : AUTH_METRICS) {
                System.out.println("METRIC producer " + name + " " + (long) metric(producer.metrics(), name));
                System.out.println("METRIC consumer " + name + " " + (long) metric(consumer.metrics(), name));
            }
        }
    }

    static void scramUser(String bootstrap, String file, String user, String password, int iterations) throws Exception {
        Properties common = load(bootstrap, file);
        try (Admin admin = Admin.create(common)) {
            admin.alterUserScramCredentials(List.of(
                new UserScramCredentialUpsertion(user, new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, iterations), password),
                new UserScramCredentialUpsertion(user, new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, iterations), password)
            )).all().get(DEADLINE_MS, TimeUnit.MILLISECONDS);
            Map<String, UserScramCredentialsDescription> described = admin
                .describeUserScramCredentials(List.of(user)).all().get(DEADLINE_MS, TimeUnit.MILLISECONDS);
            for (ScramCredentialInfo info : described.get(user).credentialInfos()) {
                System.out.println("DESCRIBED " + user + " " + info.mechanism().mechanismName() + " " + info.iterations());
            }
        }
    }

    public static void main(String[] args) throws Exception {
        int i = 0;
        while (i < args.length) {
            String step = args[i];
            switch (step) {
                case "round-trip":
                    roundTrip(args[i + 1], args[i + 2], args[i + 3], args[i + 4], Integer.parseInt(args[i + 5]));
                    i += 6;
                    break;
                case "refused":
                    refused(args[i + 1], args[i + 2]);
                    i += 3;
                    break;
                case "renewing":
                    renewing(args[i + 1], args[i + 2], args[i + 3], args[i + 4], Integer.parseInt(args[i + 5]));
                    i += 6;
                    break;
                case "scram-user":
                    scramUser(args[i + 1], args[i + 2], args[i + 3], args[i + 4], Integer.parseInt(args[i + 5]));
                    i += 6;
                    break;
                default:
                    check(false, "unknown step " + step);
            }
            System.out.flush();
        }
        // Clients' background threads are closed; exit without waiting for anything else.
        System.exit(0);
    }
}
