import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.CreatePartitionsOptions;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.TopicPartitionInfo;

/**
 * The Java admin client's createPartitions with explicit assignments, on a cluster of brokers
 * 1, 2 and 3:
 *   PartitionAdmin <bootstrap> <topic>
 * creates <topic> with one partition of two replicas, checks that bad assignments are refused with
 * InvalidReplicaAssignmentException and that validateOnly changes nothing, then grows the topic
 * to three partitions on [2, 3] and [3, 1] and prints "partition <p> replicas=<ids>" for each
 * partition once describeTopics shows all three. Exits non-zero on any difference.
 */
public class PartitionAdmin {
    static String refusal(Admin admin, String topic, NewPartitions change) throws Exception {
        try {
            admin.createPartitions(Collections.singletonMap(topic, change)).all().get();
            return "accepted";
        } catch (ExecutionException e) {
            return e.getCause().getClass().getSimpleName() + ": " + e.getCause().getMessage();
        }
    }

    static List<List<Integer>> lists(Integer[]... replicas) {
        List<List<Integer>> out = new ArrayList<>();
        for (Integer[] r : replicas) out.add(Arrays.asList(r));
        return out;
    }

    static void expect(boolean ok, String what) {
        if (!ok) {
            System.out.println("FAILED " + what);
            System.exit(1);
        }
    }

    static int partitions(Admin admin, String topic) throws Exception {
        Map<String, TopicDescription> d = admin.describeTopics(Collections.singleton(topic)).allTopicNames().get();
        return d.get(topic).partitions().size();
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        props.put("request.timeout.ms", "20000");
        props.put("default.api.timeout.ms", "30000");
        String topic = args[1];
        try (Admin admin = Admin.create(props)) {
            admin.createTopics(Collections.singleton(new NewTopic(topic, 1, (short) 2))).all().get();

            String[][] bad = {
                {"unknown broker", refusal(admin, topic, NewPartitions.increaseTo(3, lists(new Integer[] {9, 1}, new Integer[] {2, 3})))},
                {"count", refusal(admin, topic, NewPartitions.increaseTo(3, lists(new Integer[] {2, 3})))},
                {"duplicate", refusal(admin, topic, NewPartitions.increaseTo(3, lists(new Integer[] {1, 1}, new Integer[] {2, 3})))},
                {"replication factor", refusal(admin, topic, NewPartitions.increaseTo(3, lists(new Integer[] {1}, new Integer[] {2, 3})))},
            };
            for (String[] b : bad) {
                System.out.println("refused " + b[0] + " -> " + b[1]);
                expect(b[1].startsWith("InvalidReplicaAssignmentException"), b[0] + ": " + b[1]);
            }
            NewPartitions good = NewPartitions.increaseTo(3, lists(new Integer[] {2, 3}, new Integer[] {3, 1}));
            admin.createPartitions(Collections.singletonMap(topic, good),
                new CreatePartitionsOptions().validateOnly(true)).all().get();
            expect(partitions(admin, topic) == 1, "validateOnly left the topic alone");
            admin.createPartitions(Collections.singletonMap(topic, good)).all().get();

            long deadline = System.currentTimeMillis() + 30_000;
            while (true) {
                TopicDescription d = admin.describeTopics(Collections.singleton(topic)).allTopicNames().get().get(topic);
                boolean led = d.partitions().size() == 3;
                for (TopicPartitionInfo p : d.partitions()) led &= p.leader() != null;
                if (led) {
                    for (TopicPartitionInfo p : d.partitions()) {
                        List<Integer> ids = new ArrayList<>();
                        for (org.apache.kafka.common.Node n : p.replicas()) ids.add(n.id());
                        System.out.println("partition " + p.partition() + " replicas=" + ids);
                    }
                    break;
                }
                expect(System.currentTimeMillis() < deadline, "three led partitions within 30 s: " + d);
                Thread.sleep(200);
            }
        }
    }
}
