import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;

/**
 * Sends the numbers 0..count-1 as record values with the producer's default settings (which
 * since Kafka 3.0 means idempotence, acks=all, retries until delivery.timeout.ms), and reports
 * how many sends failed. Usage: NumberedProducer <bootstrap> <topic> <count>
 */
public class NumberedProducer {
    public static void main(String[] args) {
        Properties p = new Properties();
        p.put("bootstrap.servers", args[0]);
        p.put("key.serializer", "org.apache.kafka.common.serialization.StringSerializer");
        p.put("value.serializer", "org.apache.kafka.common.serialization.StringSerializer");
        p.put("reconnect.backoff.max.ms", "200");
        String topic = args[1];
        int count = Integer.parseInt(args[2]);
        AtomicLong failed = new AtomicLong();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            for (int i = 0; i < count; i++) {
                producer.send(new ProducerRecord<>(topic, 0, null, Integer.toString(i)), (m, e) -> {
                    if (e != null) {
                        if (failed.incrementAndGet() <= 5) System.err.println("send failed: " + e);
                    }
                });
            }
            producer.flush();
        }
        System.out.println("failed=" + failed.get());
        if (failed.get() > 0) System.exit(1);
    }
}
