import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.AlterConfigOp.OpType;
import org.apache.kafka.clients.admin.AlterConfigsOptions;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.DescribeConfigsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The Java admin client's configs and DeleteRecords calls against a broker: prints what it sees
 * ("config", "alter", "value", "deleted", "earliest", "first" lines) for the test to check.
 * Usage: ConfigAdmin <bootstrap> <topic>
 */
public class ConfigAdmin {
    static Admin admin;

    static void alter(String label, ConfigResource resource, AlterConfigOp... ops) throws Exception {
        alter(label, resource, false, ops);
    }

    static void alter(String label, ConfigResource resource, boolean validateOnly, AlterConfigOp... ops)
            throws Exception {
        Map<ConfigResource, Collection<AlterConfigOp>> change = new HashMap<>();
        change.put(resource, List.of(ops));
        try {
            admin.incrementalAlterConfigs(change, new AlterConfigsOptions().validateOnly(validateOnly)).all().get();
            System.out.println("alter " + label + " ok");
        } catch (ExecutionException e) {
            System.out.println("alter " + label + " error " + e.getCause().getClass().getSimpleName());
        }
    }

    static AlterConfigOp op(String name, String value, OpType type) {
        return new AlterConfigOp(new ConfigEntry(name, value), type);
    }

    static Config describe(ConfigResource resource) throws Exception {
        return admin.describeConfigs(List.of(resource), new DescribeConfigsOptions().includeSynonyms(true))
            .all().get().get(resource);
    }

    static void value(ConfigResource resource, String name) throws Exception {
        ConfigEntry e = describe(resource).get(name);
        System.out.println("value " + name + "=" + e.value() + " source=" + e.source());
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        admin = Admin.create(p);
        admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1)
            .configs(Map.of("retention.bytes", "1000000")))).all().get();
        ConfigResource t = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        for (ConfigEntry e : describe(t).entries()) {
            System.out.println("config " + e.name() + "=" + e.value() + " source=" + e.source()
                + " synonyms=" + e.synonyms().size() + " readOnly=" + e.isReadOnly());
        }

        alter("set", t, op("retention.ms", "90000", OpType.SET));
        value(t, "retention.ms");
        alter("append", t, op("cleanup.policy", "compact", OpType.APPEND));
        value(t, "cleanup.policy");
        alter("subtract", t, op("cleanup.policy", "delete", OpType.SUBTRACT));
        value(t, "cleanup.policy");
        alter("delete", t, op("retention.ms", null, OpType.DELETE), op("cleanup.policy", null, OpType.DELETE));
        value(t, "retention.ms");
        value(t, "cleanup.policy");
        alter("validate-only", t, true, op("retention.ms", "5000", OpType.SET));
        value(t, "retention.ms");
        alter("append-to-a-number", t, op("retention.ms", "5", OpType.APPEND));
        alter("unknown-key", t, op("no.such.config", "1", OpType.SET));
        alter("bad-value", t, op("segment.bytes", "10", OpType.SET));
        alter("missing-topic", new ConfigResource(ConfigResource.Type.TOPIC, topic + "-missing"),
            op("retention.ms", "1000", OpType.SET));
        ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, "0");
        ConfigResource cluster = new ConfigResource(ConfigResource.Type.BROKER, "");
        alter("read-only-broker-key", broker, op("log.retention.hours", "1", OpType.SET));
        alter("broker-default", cluster, op("log.retention.ms", "120000", OpType.SET));
        value(t, "retention.ms");
        value(broker, "log.retention.ms");
        alter("broker-default-delete", cluster, op("log.retention.ms", null, OpType.DELETE));
        value(t, "retention.ms");

        Properties pp = new Properties();
        pp.put("bootstrap.servers", bootstrap);
        pp.put("key.serializer", StringSerializer.class.getName());
        pp.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
            for (int i = 0; i < 50; i++) producer.send(new ProducerRecord<>(topic, 0, "k" + i, "v" + i)).get();
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        long low = admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(20)))
            .lowWatermarks().get(tp).get().lowWatermark();
        System.out.println("deleted lowWatermark=" + low);
        long earliest = admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).all().get().get(tp).offset();
        System.out.println("earliest " + earliest);
        Properties cp = new Properties();
        cp.put("bootstrap.servers", bootstrap);
        cp.put("key.deserializer", StringDeserializer.class.getName());
        cp.put("value.deserializer", StringDeserializer.class.getName());
        cp.put("auto.offset.reset", "earliest");
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
            consumer.assign(List.of(tp));
            long deadline = System.currentTimeMillis() + 20_000;
            List<Long> offsets = new ArrayList<>();
            while (offsets.size() < 30 && System.currentTimeMillis() < deadline) {
                ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(500));
                records.forEach(r -> offsets.add(r.offset()));
            }
            System.out.println("first " + (offsets.isEmpty() ? -1 : offsets.get(0)) + " count " + offsets.size());
        }
        admin.close();
    }
}
