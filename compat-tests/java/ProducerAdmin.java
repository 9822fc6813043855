import java.util.Collections;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The Java admin client's describeProducers after an idempotent producer wrote ten records to
 * partition 0 of a new topic, one at a time (sequences 0 to 9):
 *   ProducerAdmin <bootstrap> <topic>
 * prints "producer id=<id> epoch=<epoch> lastSequence=<seq> lastTimestamp=<ms>
 * coordinatorEpoch=<e> txnStart=<offset|none>" for each producer the partition knows.
 */
public class ProducerAdmin {
    public static void main(String[] args) throws Exception {
        Properties admin = new Properties();
        admin.put("bootstrap.servers", args[0]);
        admin.put("default.api.timeout.ms", "30000");
        String topic = args[1];
        try (Admin a = Admin.create(admin)) {
            a.createTopics(Collections.singleton(new NewTopic(topic, 1, (short) 1))).all().get();
            Properties p = new Properties();
            p.put("bootstrap.servers", args[0]);
            p.put("enable.idempotence", "true");
            p.put("acks", "all");
            p.put("key.serializer", StringSerializer.class.getName());
            p.put("value.serializer", StringSerializer.class.getName());
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
                for (int i = 0; i < 10; i++) {
                    producer.send(new ProducerRecord<>(topic, 0, null, "v" + i)).get();
                }
            }
            TopicPartition tp = new TopicPartition(topic, 0);
            List<ProducerState> states = a.describeProducers(Collections.singleton(tp))
                .partitionResult(tp).get().activeProducers();
            for (ProducerState s : states) {
                System.out.println("producer id=" + s.producerId() + " epoch=" + s.producerEpoch()
                    + " lastSequence=" + s.lastSequence() + " lastTimestamp=" + s.lastTimestamp()
                    + " coordinatorEpoch=" + s.coordinatorEpoch().orElse(-1)
                    + " txnStart=" + (s.currentTransactionStartOffset().isPresent()
                        ? String.valueOf(s.currentTransactionStartOffset().getAsLong()) : "none"));
            }
        }
    }
}
