import java.time.Duration;
import java.util.*;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.CreateDelegationTokenOptions;
import org.apache.kafka.clients.admin.ExpireDelegationTokenOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.security.auth.KafkaPrincipal;
import org.apache.kafka.common.security.token.delegation.DelegationToken;

/**
 * Delegation tokens (KIP-48) with the Java client, as the Kafka documentation describes them:
 * a user's admin client creates a token; producers and consumers log in with it over SCRAM
 * (`ScramLoginModule ... username="<tokenId>" password="<hmac>" tokenauth="true"`) and act as
 * the user; once the token is expired early (ExpireDelegationToken) or runs out, new logins with
 * it are refused. Any failure exits non-zero at once.
 *
 *   DelegationTokens <bootstrap> <user> <password> <mechanism> <topic>
 *
 * Prints, in order: "CREATED <tokenId> <owner>", "DESCRIBED <tokenId> <owner> <renewers>",
 * "OK round-trip <count>", "REFUSED-AS-TOKEN <exception class>" (a token may not create
 * tokens), "EXPIRED <tokenId>", "REFUSED-AFTER-EXPIRE <exception class>",
 * "REFUSED-AFTER-LIFETIME <exception class>".
 */
public class DelegationTokens {
    static final long DEADLINE_MS = 60_000;

    static void check(boolean ok, String what) {
        if (!ok) {
            System.err.println("MISMATCH: " + what);
            System.out.flush();
            System.exit(1);
        }
    }

    static Properties login(String bootstrap, String mechanism, String user, String password, boolean token) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("security.protocol", "SASL_PLAINTEXT");
        p.put("sasl.mechanism", mechanism);
        p.put("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\""
            + user + "\" password=\"" + password + "\"" + (token ? " tokenauth=\"true\"" : "") + ";");
        return p;
    }

    static KafkaProducer<String, String> producer(Properties common) {
        Properties pp = new Properties();
        pp.putAll(common);
        pp.put("key.serializer", "org.apache.kafka.common.serialization.StringSerializer");
        pp.put("value.serializer", "org.apache.kafka.common.serialization.StringSerializer");
        pp.put("linger.ms", "0");
        pp.put("max.block.ms", "20000");
        return new KafkaProducer<>(pp);
    }

    static KafkaConsumer<String, String> consumer(Properties common, String group) {
        Properties cp = new Properties();
        cp.putAll(common);
        cp.put("group.id", group);
        cp.put("key.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");
        cp.put("value.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");
        cp.put("auto.offset.reset", "earliest");
        return new KafkaConsumer<>(cp);
    }

    static Throwable causeNamed(Throwable e, String name) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t.getClass().getSimpleName().equals(name)) return t;
        }
        return null;
    }

    /** A producer logging in with the token must be refused at once, not time out. */
    static void refusedProducer(Properties asToken, String topic, String label) {
        try (KafkaProducer<String, String> producer = producer(asToken)) {
            producer.send(new ProducerRecord<>(topic, "k", "late")).get(DEADLINE_MS, TimeUnit.MILLISECONDS);
            check(false, label + ": the producer was let in");
        } catch (Exception e) {
            Throwable t = causeNamed(e, "SaslAuthenticationException");
            if (t == null) {
                e.printStackTrace();
                check(false, label + ": failed with " + e + ", not SaslAuthenticationException");
            }
            System.out.println(label + " " + t.getClass().getSimpleName());
        }
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], user = args[1], password = args[2], mechanism = args[3], topic = args[4];
        Properties asUser = login(bootstrap, mechanism, user, password, false);
        try (Admin admin = Admin.create(asUser)) {
            KafkaPrincipal renewer = new KafkaPrincipal("User", "renewer");
            DelegationToken token = admin.createDelegationToken(
                    new CreateDelegationTokenOptions().renewers(List.of(renewer)))
                .delegationToken().get(DEADLINE_MS, TimeUnit.MILLISECONDS);
            String id = token.tokenInfo().tokenId();
            System.out.println("CREATED " + id + " " + token.tokenInfo().ownerAsString());
            for (DelegationToken t : admin.describeDelegationToken().delegationTokens().get(DEADLINE_MS, TimeUnit.MILLISECONDS)) {
                System.out.println("DESCRIBED " + t.tokenInfo().tokenId() + " " + t.tokenInfo().ownerAsString()
                    + " " + String.join(",", t.tokenInfo().renewersAsString()));
                if (t.tokenInfo().tokenId().equals(id)) {
                    check(Arrays.equals(t.hmac(), token.hmac()), "described HMAC differs from the created one");
                }
            }
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get(DEADLINE_MS, TimeUnit.MILLISECONDS);

            // Producer and consumer log in with the token and act as the user.
            Properties asToken = login(bootstrap, mechanism, id, token.hmacAsBase64String(), true);
            int count = 20;
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            try (KafkaProducer<String, String> producer = producer(asToken)) {
                for (int i = 0; i < count; i++) sent.add(producer.send(new ProducerRecord<>(topic, "k-" + i, "v-" + i)));
                producer.flush();
                for (Future<RecordMetadata> f : sent) f.get(DEADLINE_MS, TimeUnit.MILLISECONDS);
            }
            Set<String> seen = new HashSet<>();
            try (KafkaConsumer<String, String> consumer = consumer(asToken, topic + "-group")) {
                consumer.subscribe(List.of(topic));
                long deadline = System.currentTimeMillis() + DEADLINE_MS;
                while (seen.size() < count && System.currentTimeMillis() < deadline) {
                    for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) seen.add(r.key());
                }
            }
            check(seen.size() == count, "the token's consumer read " + seen.size() + " of " + count);
            System.out.println("OK round-trip " + count);

            // A connection authenticated with a token may not create tokens.
            try (Admin tokenAdmin = Admin.create(asToken)) {
                tokenAdmin.createDelegationToken().delegationToken().get(DEADLINE_MS, TimeUnit.MILLISECONDS);
                check(false, "a token created a token");
            } catch (ExecutionException e) {
                System.out.println("REFUSED-AS-TOKEN " + e.getCause().getClass().getSimpleName());
            }

            // Expired early by its owner: new logins with it are refused.
            admin.expireDelegationToken(token.hmac(), new ExpireDelegationTokenOptions().expiryTimePeriodMs(-1))
                .expiryTimestamp().get(DEADLINE_MS, TimeUnit.MILLISECONDS);
            System.out.println("EXPIRED " + id);
            refusedProducer(asToken, topic, "REFUSED-AFTER-EXPIRE");

            // A token whose lifetime runs out stops working by itself.
            DelegationToken brief = admin.createDelegationToken(new CreateDelegationTokenOptions().maxlifeTimeMs(3000))
                .delegationToken().get(DEADLINE_MS, TimeUnit.MILLISECONDS);
            Properties asBrief = login(bootstrap, mechanism, brief.tokenInfo().tokenId(), brief.hmacAsBase64String(), true);
            long wait = brief.tokenInfo().expiryTimestamp() - System.currentTimeMillis() + 200;
            if (wait > 0) Thread.sleep(wait); // the token's own expiry: nothing to poll for
            refusedProducer(asBrief, topic, "REFUSED-AFTER-LIFETIME");
        }
        System.out.flush();
        System.exit(0);
    }
}
