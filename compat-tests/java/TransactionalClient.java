import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;

/**
 * The Java client's transactional API against a broker (kafka-clients 2.4 and later). Usage:
 *
 *   TransactionalClient commit-abort <bootstrap> <topic>
 *     creates <topic> (3 partitions), commits 30 records and aborts 30 more in one producer,
 *     then prints what read_committed and read_uncommitted consumers see:
 *     "read_committed=<n> committed-values-ok=<bool>" and "read_uncommitted=<n>".
 *   TransactionalClient fence <bootstrap> <topic>
 *     a second producer with the same transactional.id fences the first, whose next send or
 *     commit fails: prints "fenced=<exception classes, outermost first>" and what
 *     read_committed sees.
 *   TransactionalClient read <bootstrap> <topic> <partitions>
 *     prints every value a read_committed consumer sees, one per line.
 */
public class TransactionalClient {
    static Properties producerProps(String bootstrap, String txnId) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("key.serializer", "org.apache.kafka.common.serialization.StringSerializer");
        p.put("value.serializer", "org.apache.kafka.common.serialization.StringSerializer");
        p.put("transactional.id", txnId);
        p.put("transaction.timeout.ms", "20000");
        p.put("reconnect.backoff.max.ms", "200");
        return p;
    }

    static KafkaConsumer<String, String> consumer(String bootstrap, String group, String isolation) {
        Properties c = new Properties();
        c.put("bootstrap.servers", bootstrap);
        c.put("group.id", group);
        c.put("key.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");
        c.put("value.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");
        c.put("enable.auto.commit", "false");
        c.put("auto.offset.reset", "earliest");
        c.put("isolation.level", isolation);
        c.put("session.timeout.ms", "6000");
        c.put("heartbeat.interval.ms", "500");
        return new KafkaConsumer<>(c);
    }

    /** Every value an `isolation` reader sees, read until it reaches the end offsets. */
    static List<String> readAll(String bootstrap, String topic, int partitions, String isolation) {
        List<String> values = new ArrayList<>();
        try (KafkaConsumer<String, String> c = consumer(bootstrap, "reader-" + UUID.randomUUID(), isolation)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int i = 0; i < partitions; i++) tps.add(new TopicPartition(topic, i));
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps);
            long deadline = System.currentTimeMillis() + 30_000;
            while (System.currentTimeMillis() < deadline) {
                boolean done = true;
                for (TopicPartition tp : tps) if (c.position(tp) < end.get(tp)) done = false;
                if (done) break;
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) values.add(r.value());
            }
        }
        return values;
    }

    static void createTopic(String bootstrap, String topic, int partitions) throws Exception {
        Properties a = new Properties();
        a.put("bootstrap.servers", bootstrap);
        try (Admin admin = Admin.create(a)) {
            admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get();
        }
    }

    public static void main(String[] args) throws Exception {
        String mode = args[0];
        String bootstrap = args[1];
        switch (mode) {
            case "commit-abort": {
                String topic = args[2];
                createTopic(bootstrap, topic, 3);
                try (KafkaProducer<String, String> p = new KafkaProducer<>(producerProps(bootstrap, "java-" + topic))) {
                    p.initTransactions();
                    p.beginTransaction();
                    for (int i = 0; i < 30; i++) p.send(new ProducerRecord<>(topic, i % 3, null, "committed-" + i));
                    p.commitTransaction();
                    p.beginTransaction();
                    for (int i = 0; i < 30; i++) p.send(new ProducerRecord<>(topic, i % 3, null, "aborted-" + i));
                    p.flush();
                    p.abortTransaction();
                }
                List<String> committed = readAll(bootstrap, topic, 3, "read_committed");
                boolean ok = committed.stream().allMatch(v -> v.startsWith("committed-"));
                System.out.println("read_committed=" + committed.size() + " committed-values-ok=" + ok);
                System.out.println("read_uncommitted=" + readAll(bootstrap, topic, 3, "read_uncommitted").size());
                break;
            }
            case "fence": {
                String topic = args[2];
                createTopic(bootstrap, topic, 1);
                String id = "java-" + topic;
                KafkaProducer<String, String> zombie = new KafkaProducer<>(producerProps(bootstrap, id));
                zombie.initTransactions();
                zombie.beginTransaction();
                zombie.send(new ProducerRecord<>(topic, 0, null, "zombie")).get();
                try (KafkaProducer<String, String> successor = new KafkaProducer<>(producerProps(bootstrap, id))) {
                    successor.initTransactions();
                    String fenced = "none";
                    try {
                        zombie.send(new ProducerRecord<>(topic, 0, null, "zombie-2")).get();
                        zombie.commitTransaction();
                    } catch (Exception e) {
                        // The exception and its causes, outermost first.
                        StringBuilder chain = new StringBuilder();
                        for (Throwable t = e; t != null; t = t.getCause()) chain.append(t.getClass().getSimpleName()).append(' ');
                        fenced = chain.toString().trim();
                    }
                    zombie.close(Duration.ZERO);
                    successor.beginTransaction();
                    successor.send(new ProducerRecord<>(topic, 0, null, "successor"));
                    successor.commitTransaction();
                    System.out.println("fenced=" + fenced);
                }
                System.out.println("read_committed=" + String.join(",", readAll(bootstrap, topic, 1, "read_committed")));
                break;
            }
            case "read": {
                for (String v : readAll(bootstrap, args[2], Integer.parseInt(args[3]), "read_committed")) System.out.println(v);
                break;
            }
            default:
                throw new IllegalArgumentException(mode);
        }
    }
}
