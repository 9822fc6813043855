import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.DescribeReplicaLogDirsResult.ReplicaLogDirInfo;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionReplica;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The Java admin client's log-dir calls against broker 0 with several log.dirs, printing what
 * it sees for the test to check:
 *   LogDirsAdmin <bootstrap> <topic> <target dir>
 * creates <topic> (3 partitions), prints "dir <path> partitions <n> space <ok|missing>" per
 * directory (describeLogDirs), "current <dir>" (describeReplicaLogDirs of partition 0), then
 * moves partition 0 to <target dir> (alterReplicaLogDirs) while a producer (acks=all) writes to
 * it: "moved <dir>" once describeReplicaLogDirs shows it there with no future replica, and
 * "acked <n> lost <n> duplicates <n>" after reading the partition back. Last, a move to a
 * directory that is none of log.dirs: "unknown-dir error <Exception>".
 */
public class LogDirsAdmin {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        String target = args[2];
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("request.timeout.ms", "20000");
        props.put("default.api.timeout.ms", "30000");
        TopicPartitionReplica replica = new TopicPartitionReplica(topic, 0, 0);
        try (Admin admin = Admin.create(props)) {
            admin.createTopics(Collections.singleton(new NewTopic(topic, 3, (short) 1))).all().get();
            Map<String, LogDirDescription> dirs =
                admin.describeLogDirs(Collections.singleton(0)).allDescriptions().get().get(0);
            for (Map.Entry<String, LogDirDescription> e : dirs.entrySet()) {
                int n = 0;
                for (TopicPartition tp : e.getValue().replicaInfos().keySet()) {
                    if (tp.topic().equals(topic)) n++;
                }
                LogDirDescription d = e.getValue();
                boolean space = d.totalBytes().isPresent() && d.usableBytes().isPresent()
                    && d.totalBytes().getAsLong() > 0
                    && d.usableBytes().getAsLong() <= d.totalBytes().getAsLong();
                System.out.println("dir " + e.getKey() + " partitions " + n
                    + " space " + (space ? "ok" : "missing"));
            }
            ReplicaLogDirInfo before = admin.describeReplicaLogDirs(Collections.singleton(replica))
                .all().get().get(replica);
            System.out.println("current " + before.getCurrentReplicaLogDir());

            Properties pp = new Properties();
            pp.put("bootstrap.servers", bootstrap);
            pp.put("acks", "all");
            pp.put("linger.ms", "5");
            pp.put("key.serializer", StringSerializer.class.getName());
            pp.put("value.serializer", StringSerializer.class.getName());
            ConcurrentLinkedQueue<String> acked = new ConcurrentLinkedQueue<>();
            AtomicInteger failed = new AtomicInteger();
            AtomicBoolean stop = new AtomicBoolean(false);
            Thread writer = new Thread(() -> {
                try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
                    int i = 0;
                    while (!stop.get() || acked.size() < 2000) {
                        String value = String.format("%08d", i++);
                        producer.send(new ProducerRecord<>(topic, 0, null, value), (md, ex) -> {
                            if (ex == null) acked.add(value); else failed.incrementAndGet();
                        });
                        if (i % 200 == 0) producer.flush();
                    }
                    producer.flush();
                }
            });
            writer.start();
            long deadline = System.currentTimeMillis() + 60_000;
            while (acked.size() < 500) {
                if (System.currentTimeMillis() > deadline) throw new RuntimeException("nothing acknowledged");
                Thread.sleep(20);
            }
            admin.alterReplicaLogDirs(Collections.singletonMap(replica, target)).all().get();
            deadline = System.currentTimeMillis() + 60_000;
            while (true) {
                ReplicaLogDirInfo now = admin.describeReplicaLogDirs(Collections.singleton(replica))
                    .all().get().get(replica);
                if (target.equals(now.getCurrentReplicaLogDir()) && now.getFutureReplicaLogDir() == null) {
                    System.out.println("moved " + now.getCurrentReplicaLogDir());
                    break;
                }
                if (System.currentTimeMillis() > deadline) {
                    System.out.println("not moved: current " + now.getCurrentReplicaLogDir()
                        + " future " + now.getFutureReplicaLogDir());
                    break;
                }
                Thread.sleep(50);
            }
            stop.set(true);
            writer.join(60_000);

            Properties cp = new Properties();
            cp.put("bootstrap.servers", bootstrap);
            cp.put("key.deserializer", StringDeserializer.class.getName());
            cp.put("value.deserializer", StringDeserializer.class.getName());
            cp.put("enable.auto.commit", "false");
            List<String> read = new ArrayList<>();
            try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
                TopicPartition tp = new TopicPartition(topic, 0);
                consumer.assign(Collections.singleton(tp));
                consumer.seekToBeginning(Collections.singleton(tp));
                long end = consumer.endOffsets(Collections.singleton(tp)).get(tp);
                deadline = System.currentTimeMillis() + 60_000;
                while (consumer.position(tp) < end && System.currentTimeMillis() < deadline) {
                    for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                        read.add(r.value());
                    }
                }
            }
            Set<String> readSet = new HashSet<>(read);
            int lost = 0;
            for (String v : acked) if (!readSet.contains(v)) lost++;
            System.out.println("acked " + acked.size() + " lost " + lost
                + " duplicates " + (read.size() - readSet.size()) + " failed " + failed.get());

            try {
                admin.alterReplicaLogDirs(Collections.singletonMap(replica, "/no/such/log/dir")).all().get();
                System.out.println("unknown-dir ok");
            } catch (ExecutionException e) {
                System.out.println("unknown-dir error " + e.getCause().getClass().getSimpleName());
            }
        }
    }
}
