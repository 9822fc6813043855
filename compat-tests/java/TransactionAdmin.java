import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;

/**
 * The Java admin client's view of transactions (kafka-clients 3.0+, KIP-664). Usage:
 *   TransactionAdmin <bootstrap> <transactional.id>
 * prints "describe state=<state> producerId=<id> epoch=<epoch> timeoutMs=<ms> partitions=<n>"
 * for the id (DescribeTransactions, through FindCoordinator), then one line
 * "listed <transactional.id> state=<state>" per transaction ListTransactions returns.
 */
public class TransactionAdmin {
    public static void main(String[] args) throws Exception {
        Properties a = new Properties();
        a.put("bootstrap.servers", args[0]);
        try (Admin admin = Admin.create(a)) {
            Map<String, TransactionDescription> described =
                admin.describeTransactions(List.of(args[1])).all().get();
            TransactionDescription d = described.get(args[1]);
            System.out.println("describe state=" + d.state() + " producerId=" + d.producerId()
                + " epoch=" + d.producerEpoch() + " timeoutMs=" + d.transactionTimeoutMs()
                + " partitions=" + d.topicPartitions().size());
            for (TransactionListing l : admin.listTransactions().all().get()) {
                System.out.println("listed " + l.transactionalId() + " state=" + l.state());
            }
        }
    }
}
