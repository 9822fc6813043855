import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import org.apache.kafka.clients.admin.AdminClient;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.header.Header;

/**
 * The Java client with its default settings (idempotent producer since 3.0) against a broker:
 * create a topic with the admin client, produce keyed records with headers, read them back from
 * the beginning with manual assignment, and check every field. Exits non-zero on any mismatch.
 * Usage: ClientRoundTrip <bootstrap> <topic> <codec> <count>
 */
public class ClientRoundTrip {
    static void check(boolean ok, String what) {
        if (!ok) {
            System.err.println("MISMATCH: " + what);
            System.exit(1);
        }
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], codec = args[2];
        int count = Integer.parseInt(args[3]);
        int partitions = 3;
        Properties common = new Properties();
        common.put("bootstrap.servers", bootstrap);

        try (AdminClient admin = AdminClient.create(common)) {
            try {
                admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get();
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) throw e;
            }
        }

        Properties pp = new Properties();
        pp.putAll(common);
        pp.put("compression.type", codec);
        pp.put("key.serializer", "org.apache.kafka.common.serialization.StringSerializer");
        pp.put("value.serializer", "org.apache.kafka.common.serialization.StringSerializer");
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
            for (int i = 0; i < count; i++) {
                ProducerRecord<String, String> r = new ProducerRecord<>(topic, "k-" + i, "v-" + i);
                r.headers().add("idx", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
                sent.add(producer.send(r));
            }
            producer.flush();
        }
        Map<Integer, List<Integer>> expected = new HashMap<>();
        Map<String, Long> timestamps = new HashMap<>();
        for (int i = 0; i < count; i++) {
            RecordMetadata m = sent.get(i).get();
            expected.computeIfAbsent(m.partition(), p -> new ArrayList<>()).add(i);
            timestamps.put(m.partition() + "@" + m.offset(), m.timestamp());
        }

        Properties cp = new Properties();
        cp.putAll(common);
        cp.put("key.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");
        cp.put("value.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");
        cp.put("enable.auto.commit", "false");
        Map<Integer, List<Integer>> seen = new HashMap<>();
        int total = 0;
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < partitions; p++) tps.add(new TopicPartition(topic, p));
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            long deadline = System.currentTimeMillis() + 60_000;
            while (total < count && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    int i = Integer.parseInt(r.key().substring(2));
                    check(r.value().equals("v-" + i), "value of " + r.key() + ": " + r.value());
                    Header h = r.headers().lastHeader("idx");
                    check(h != null && new String(h.value(), StandardCharsets.UTF_8).equals(Integer.toString(i)), "header of " + r.key());
                    Long ts = timestamps.get(r.partition() + "@" + r.offset());
                    check(ts != null && ts == r.timestamp(), "timestamp of " + r.key() + " at " + r.partition() + "@" + r.offset());
                    seen.computeIfAbsent(r.partition(), p -> new ArrayList<>()).add(i);
                    total++;
                }
            }
        }
        check(total == count, "consumed " + total + " of " + count);
        check(seen.equals(expected), "per-partition order differs");
        System.out.println("OK " + total);
    }
}
