import java.util.*;
import java.util.concurrent.Future;
import org.apache.kafka.clients.admin.AdminClient;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;

/**
 * Creates a topic with `partitions` partitions, sends keys key-0..key-(count-1) with the Java
 * client's default partitioner, and prints "key partition" for each.
 * Usage: KeyPartitions <bootstrap> <topic> <partitions> <count>
 */
public class KeyPartitions {
    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", args[0]);
        String topic = args[1];
        int partitions = Integer.parseInt(args[2]), count = Integer.parseInt(args[3]);
        try (AdminClient admin = AdminClient.create(p)) {
            admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get();
        }
        p.put("key.serializer", "org.apache.kafka.common.serialization.StringSerializer");
        p.put("value.serializer", "org.apache.kafka.common.serialization.StringSerializer");
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            for (int i = 0; i < count; i++) sent.add(producer.send(new ProducerRecord<>(topic, "key-" + i, "v")));
            producer.flush();
        }
        for (int i = 0; i < count; i++) System.out.println("key-" + i + " " + sent.get(i).get().partition());
    }
}
