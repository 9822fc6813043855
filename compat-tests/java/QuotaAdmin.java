import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.quota.ClientQuotaAlteration;
import org.apache.kafka.common.quota.ClientQuotaEntity;
import org.apache.kafka.common.quota.ClientQuotaFilter;
import org.apache.kafka.common.quota.ClientQuotaFilterComponent;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The Java admin client's alterClientQuotas and describeClientQuotas against a broker, and a
 * producer held by the quota it set: prints "alter", "describe" and "throttled" lines for the
 * test to check. Usage: QuotaAdmin <bootstrap> <topic>
 */
public class QuotaAdmin {
    static Admin admin;

    static ClientQuotaEntity entity(String type, String name) {
        Map<String, String> m = new HashMap<>();
        m.put(type, name);
        return new ClientQuotaEntity(m);
    }

    static void alter(String label, ClientQuotaEntity entity, ClientQuotaAlteration.Op... ops) {
        try {
            admin.alterClientQuotas(Collections.singletonList(new ClientQuotaAlteration(entity, Arrays.asList(ops))))
                .all().get();
            System.out.println("alter " + label + " ok");
        } catch (ExecutionException e) {
            System.out.println("alter " + label + " error " + e.getCause().getClass().getSimpleName());
        } catch (InterruptedException e) {
            throw new RuntimeException(e);
        }
    }

    static void describe(String label, ClientQuotaFilter filter) throws Exception {
        Map<ClientQuotaEntity, Map<String, Double>> found = admin.describeClientQuotas(filter).entities().get();
        List<String> lines = new ArrayList<>();
        for (Map.Entry<ClientQuotaEntity, Map<String, Double>> e : found.entrySet()) {
            StringBuilder line = new StringBuilder("describe " + label);
            for (Map.Entry<String, String> part : new TreeMap<>(e.getKey().entries()).entrySet()) {
                line.append(' ').append(part.getKey()).append('=')
                    .append(part.getValue() == null ? "<default>" : part.getValue());
            }
            for (Map.Entry<String, Double> v : new TreeMap<>(e.getValue()).entrySet()) {
                line.append(' ').append(v.getKey()).append('=').append(v.getValue());
            }
            lines.add(line.toString());
        }
        Collections.sort(lines);
        lines.forEach(System.out::println);
        System.out.println("describe " + label + " count " + found.size());
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        admin = Admin.create(props);
        admin.createTopics(Collections.singletonList(new NewTopic(topic, 1, (short) 1))).all().get();

        ClientQuotaEntity app = entity(ClientQuotaEntity.CLIENT_ID, "java-app");
        alter("set", app,
            new ClientQuotaAlteration.Op("producer_byte_rate", 1024000.0),
            new ClientQuotaAlteration.Op("request_percentage", 150.0));
        alter("default-user", entity(ClientQuotaEntity.USER, null),
            new ClientQuotaAlteration.Op("consumer_byte_rate", 2048.0));
        alter("bad-key", app, new ClientQuotaAlteration.Op("producer_bytes_rate", 1.0));
        alter("negative", app, new ClientQuotaAlteration.Op("consumer_byte_rate", -5.0));
        alter("fraction", app, new ClientQuotaAlteration.Op("consumer_byte_rate", 1.5));
        describe("exact", ClientQuotaFilter.containsOnly(Collections.singletonList(
            ClientQuotaFilterComponent.ofEntity(ClientQuotaEntity.CLIENT_ID, "java-app"))));
        describe("default", ClientQuotaFilter.containsOnly(Collections.singletonList(
            ClientQuotaFilterComponent.ofDefaultEntity(ClientQuotaEntity.USER))));
        describe("all", ClientQuotaFilter.all());

        // A producer held to 10 kB/s sees the throttle in its metrics.
        alter("slow", entity(ClientQuotaEntity.CLIENT_ID, "java-slow"),
            new ClientQuotaAlteration.Op("producer_byte_rate", 10000.0));
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("client.id", "java-slow");
        p.put("key.serializer", ByteArraySerializer.class.getName());
        p.put("value.serializer", ByteArraySerializer.class.getName());
        double throttle = 0;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            byte[] value = new byte[10000];
            for (int i = 0; i < 30; i++) {
                producer.send(new ProducerRecord<>(topic, value)).get();
            }
            for (Map.Entry<MetricName, ? extends Metric> m : producer.metrics().entrySet()) {
                if (m.getKey().name().equals("produce-throttle-time-max")
                        && m.getKey().group().equals("producer-metrics")) {
                    throttle = Math.max(throttle, ((Number) m.getValue().metricValue()).doubleValue());
                }
            }
        }
        System.out.println("throttled " + (throttle > 0));

        alter("remove", app,
            new ClientQuotaAlteration.Op("producer_byte_rate", null),
            new ClientQuotaAlteration.Op("request_percentage", null));
        describe("after-remove", ClientQuotaFilter.containsOnly(Collections.singletonList(
            ClientQuotaFilterComponent.ofEntity(ClientQuotaEntity.CLIENT_ID, "java-app"))));
        admin.close();
    }
}
