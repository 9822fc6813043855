import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;

/**
 * The Java consumer in a rack (client.rack, KIP-392), for the Rust follower-fetching test: reads
 * partition 0 of a topic from the beginning with manual assignment and checks every value in
 * order. Where it read from is for the broker metrics to tell. Exits non-zero on any mismatch
 * or after 60 s without every record.
 * Usage: RackConsumer <bootstrap> <topic> <rack> <count>
 */
public class RackConsumer {
    public static void main(String[] args) {
        String bootstrap = args[0], topic = args[1], rack = args[2];
        int count = Integer.parseInt(args[3]);
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("client.rack", rack);
        p.put("enable.auto.commit", "false");
        p.put("key.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");
        p.put("value.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");
        List<String> got = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p)) {
            TopicPartition tp = new TopicPartition(topic, 0);
            consumer.assign(List.of(tp));
            consumer.seek(tp, 0);
            long deadline = System.currentTimeMillis() + 60_000;
            while (got.size() < count && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    if (r.offset() != got.size()) {
                        System.err.println("MISMATCH: offset " + r.offset() + " after " + got.size() + " records");
                        System.exit(1);
                    }
                    got.add(r.value());
                }
            }
        }
        for (int i = 0; i < count; i++) {
            String want = String.format("%010d", i % 10);
            if (i >= got.size() || !got.get(i).equals(want)) {
                System.err.println("MISMATCH: read " + got.size() + " of " + count + " records; record " + i);
                System.exit(1);
            }
        }
        System.out.println("read " + count + " records");
    }
}
