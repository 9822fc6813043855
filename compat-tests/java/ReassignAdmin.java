import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewPartitionReassignment;
import org.apache.kafka.clients.admin.PartitionReassignment;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;

/**
 * The Java admin client's reassignment and leader election calls, one per run, printing what it
 * sees for the test to check:
 *   ReassignAdmin <bootstrap> reassign <topic> <partition> <id,id,...>   -> "reassigning"
 *   ReassignAdmin <bootstrap> cancel <topic> <partition>                  -> "cancelled" or "error <Exception>"
 *   ReassignAdmin <bootstrap> list                                         -> "reassignment <t>-<p> replicas=.. adding=.. removing=.."
 *   ReassignAdmin <bootstrap> elect-preferred <topic> <partition>         -> "elected" or "error <Exception>"
 *   ReassignAdmin <bootstrap> describe <topic>                             -> "partition <p> leader=.. replicas=.. isr=.."
 */
public class ReassignAdmin {
    static List<Integer> ids(List<org.apache.kafka.common.Node> nodes) {
        List<Integer> out = new ArrayList<>();
        for (org.apache.kafka.common.Node n : nodes) out.add(n.id());
        return out;
    }

    static String errorName(ExecutionException e) {
        return e.getCause() == null ? e.toString() : e.getCause().getClass().getSimpleName();
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        props.put("request.timeout.ms", "20000");
        props.put("default.api.timeout.ms", "30000");
        try (Admin admin = Admin.create(props)) {
            switch (args[1]) {
                case "reassign": {
                    TopicPartition tp = new TopicPartition(args[2], Integer.parseInt(args[3]));
                    List<Integer> target = new ArrayList<>();
                    for (String s : args[4].split(",")) target.add(Integer.parseInt(s));
                    admin.alterPartitionReassignments(
                            Collections.singletonMap(tp, Optional.of(new NewPartitionReassignment(target))))
                        .all().get();
                    System.out.println("reassigning");
                    break;
                }
                case "cancel": {
                    TopicPartition tp = new TopicPartition(args[2], Integer.parseInt(args[3]));
                    try {
                        admin.alterPartitionReassignments(
                                Collections.singletonMap(tp, Optional.<NewPartitionReassignment>empty()))
                            .all().get();
                        System.out.println("cancelled");
                    } catch (ExecutionException e) {
                        System.out.println("error " + errorName(e));
                    }
                    break;
                }
                case "list": {
                    Map<TopicPartition, PartitionReassignment> all =
                        admin.listPartitionReassignments().reassignments().get();
                    for (Map.Entry<TopicPartition, PartitionReassignment> e : all.entrySet()) {
                        PartitionReassignment r = e.getValue();
                        System.out.println("reassignment " + e.getKey() + " replicas=" + r.replicas()
                            + " adding=" + r.addingReplicas() + " removing=" + r.removingReplicas());
                    }
                    System.out.println("listed " + all.size());
                    break;
                }
                case "elect-preferred": {
                    TopicPartition tp = new TopicPartition(args[2], Integer.parseInt(args[3]));
                    Map<TopicPartition, Optional<Throwable>> result =
                        admin.electLeaders(ElectionType.PREFERRED, Set.of(tp)).partitions().get();
                    Optional<Throwable> error = result.get(tp);
                    if (error == null || !error.isPresent()) {
                        System.out.println("elected");
                    } else {
                        System.out.println("error " + error.get().getClass().getSimpleName());
                    }
                    break;
                }
                case "describe": {
                    TopicDescription d = admin.describeTopics(Arrays.asList(args[2]))
                        .allTopicNames().get().get(args[2]);
                    for (TopicPartitionInfo p : d.partitions()) {
                        System.out.println("partition " + p.partition() + " leader="
                            + (p.leader() == null ? -1 : p.leader().id())
                            + " replicas=" + ids(p.replicas()) + " isr=" + ids(p.isr()));
                    }
                    break;
                }
                default:
                    throw new IllegalArgumentException("unknown command " + args[1]);
            }
        }
    }
}
