import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;

/**
 * Reads a topic from the beginning as fast as the Java consumer can, like Kafka's
 * kafka-consumer-perf-test.sh (which needs the broker jar this project does not have).
 * Usage: ConsumerPerf <bootstrap> <topic> <records>
 * Prints: records, MB, seconds, records/s, MB/s.
 */
public class ConsumerPerf {
    public static void main(String[] args) {
        String bootstrap = args[0], topic = args[1];
        long wanted = Long.parseLong(args[2]);
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("key.deserializer", "org.apache.kafka.common.serialization.ByteArrayDeserializer");
        p.put("value.deserializer", "org.apache.kafka.common.serialization.ByteArrayDeserializer");
        p.put("enable.auto.commit", "false");
        p.put("fetch.max.bytes", Integer.toString(50 << 20));
        p.put("max.partition.fetch.bytes", Integer.toString(8 << 20));
        p.put("max.poll.records", "100000");
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (PartitionInfo info : consumer.partitionsFor(topic)) tps.add(new TopicPartition(topic, info.partition()));
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            long count = 0, bytes = 0;
            long start = System.nanoTime();
            long deadline = System.currentTimeMillis() + 300_000;
            while (count < wanted && System.currentTimeMillis() < deadline) {
                ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(1000));
                for (ConsumerRecord<byte[], byte[]> r : records) {
                    count++;
                    bytes += r.serializedValueSize() + Math.max(0, r.serializedKeySize());
                }
            }
            double secs = (System.nanoTime() - start) / 1e9;
            double mb = bytes / 1048576.0;
            System.out.printf("consumed %d records, %.1f MB in %.2f s: %.0f records/s, %.1f MB/s%n", count, mb, secs, count / secs, mb / secs);
            if (count < wanted) System.exit(1);
        }
    }
}
