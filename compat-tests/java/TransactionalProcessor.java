import java.time.Duration;
import java.util.Collections;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;

/**
 * Consume-transform-produce with the Java client's exactly-once API (kafka-clients 2.5+):
 * every value v of <input> becomes "out-v" on the same partition of <output>, and the consumed
 * offsets are committed in the same transaction (sendOffsetsToTransaction with the consumer's
 * group metadata). Prints "committed <n>" after each transaction; exits after <idleExitMs>
 * without input. Each transaction holds at most ten records (max.poll.records), so a test can
 * kill the process between transactions and in the middle of one.
 *
 * Usage: TransactionalProcessor <bootstrap> <input> <output> <group> <transactional.id> <idleExitMs>
 */
public class TransactionalProcessor {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], input = args[1], output = args[2], group = args[3], id = args[4];
        long idleExit = Long.parseLong(args[5]);
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("key.serializer", "org.apache.kafka.common.serialization.StringSerializer");
        p.put("value.serializer", "org.apache.kafka.common.serialization.StringSerializer");
        p.put("transactional.id", id);
        p.put("transaction.timeout.ms", "20000");
        p.put("reconnect.backoff.max.ms", "200");
        Properties c = new Properties();
        c.put("bootstrap.servers", bootstrap);
        c.put("group.id", group);
        c.put("key.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");
        c.put("value.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");
        c.put("enable.auto.commit", "false");
        c.put("auto.offset.reset", "earliest");
        c.put("isolation.level", "read_committed");
        c.put("session.timeout.ms", "6000");
        c.put("heartbeat.interval.ms", "500");
        c.put("max.poll.records", "10");
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p);
             KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
            producer.initTransactions();
            consumer.subscribe(Collections.singletonList(input));
            long lastInput = System.currentTimeMillis();
            int total = 0;
            while (System.currentTimeMillis() - lastInput < idleExit) {
                ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(200));
                if (records.isEmpty()) continue;
                lastInput = System.currentTimeMillis();
                producer.beginTransaction();
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                for (ConsumerRecord<String, String> r : records) {
                    producer.send(new ProducerRecord<>(output, r.partition(), r.key(), "out-" + r.value()));
                    offsets.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                    total++;
                }
                producer.flush();
                Thread.sleep(50);
                producer.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
                producer.commitTransaction();
                System.out.println("committed " + total);
                System.out.flush();
            }
        }
    }
}
