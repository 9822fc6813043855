import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.DeleteAclsResult;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AccessControlEntryFilter;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourcePatternFilter;
import org.apache.kafka.common.resource.ResourceType;

/**
 * The Java admin client's ACL calls against a SASL PLAIN listener with the authorizer on:
 * creates literal and prefixed ACLs as `admin` (a super user), describes them through filters,
 * deletes some, and meets Kafka's refusals. Prints one line per binding seen ("B <label> ...",
 * sorted within a label) and one per outcome ("created", "deleted <label> <n>", "error <label>
 * <exception class>") for the test to check.
 * Usage: AclAdmin <bootstrap>
 */
public class AclAdmin {
    static final long TIMEOUT_S = 30;

    static Admin admin(String bootstrap, String user, String password) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("security.protocol", "SASL_PLAINTEXT");
        p.put("sasl.mechanism", "PLAIN");
        p.put("sasl.jaas.config", "org.apache.kafka.common.security.plain.PlainLoginModule required username=\""
            + user + "\" password=\"" + password + "\";");
        p.put("default.api.timeout.ms", "30000");
        p.put("request.timeout.ms", "30000");
        return Admin.create(p);
    }

    static AclBinding binding(ResourceType type, String name, PatternType pattern, String principal, String host,
            AclOperation op, AclPermissionType permission) {
        return new AclBinding(new ResourcePattern(type, name, pattern),
            new AccessControlEntry(principal, host, op, permission));
    }

    static AclBindingFilter filter(ResourceType type, String name, PatternType pattern, String principal,
            String host, AclOperation op, AclPermissionType permission) {
        return new AclBindingFilter(new ResourcePatternFilter(type, name, pattern),
            new AccessControlEntryFilter(principal, host, op, permission));
    }

    static AclBindingFilter any() {
        return filter(ResourceType.ANY, null, PatternType.ANY, null, null, AclOperation.ANY, AclPermissionType.ANY);
    }

    static String show(AclBinding b) {
        return b.pattern().patternType() + " " + b.pattern().resourceType() + " " + b.pattern().name() + " "
            + b.entry().principal() + " " + b.entry().host() + " " + b.entry().operation() + " "
            + b.entry().permissionType();
    }

    static void print(String label, Collection<AclBinding> bindings) {
        List<String> lines = new ArrayList<>();
        for (AclBinding b : bindings) {
            lines.add("B " + label + " " + show(b));
        }
        lines.sort(null);
        lines.forEach(System.out::println);
    }

    static void describe(Admin admin, String label, AclBindingFilter f) throws Exception {
        print(label, admin.describeAcls(f).values().get(TIMEOUT_S, TimeUnit.SECONDS));
    }

    static void createExpectingError(Admin admin, String label, AclBinding b) throws Exception {
        try {
            admin.createAcls(List.of(b)).all().get(TIMEOUT_S, TimeUnit.SECONDS);
            System.out.println("created " + label);
        } catch (ExecutionException e) {
            System.out.println("error " + label + " " + e.getCause().getClass().getSimpleName());
        }
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        try (Admin admin = admin(bootstrap, "admin", "admin-secret")) {
            admin.createAcls(List.of(
                binding(ResourceType.TOPIC, "orders", PatternType.LITERAL, "User:alice", "*", AclOperation.READ,
                    AclPermissionType.ALLOW),
                binding(ResourceType.TOPIC, "ord", PatternType.PREFIXED, "User:bob", "10.0.0.1", AclOperation.WRITE,
                    AclPermissionType.DENY),
                binding(ResourceType.TRANSACTIONAL_ID, "tx-", PatternType.PREFIXED, "User:bob", "*",
                    AclOperation.WRITE, AclPermissionType.ALLOW),
                binding(ResourceType.GROUP, "*", PatternType.LITERAL, "User:*", "*", AclOperation.DESCRIBE,
                    AclPermissionType.ALLOW)))
                .all().get(TIMEOUT_S, TimeUnit.SECONDS);
            System.out.println("created");

            describe(admin, "all", any());
            describe(admin, "match", filter(ResourceType.TOPIC, "orders", PatternType.MATCH, null, null,
                AclOperation.ANY, AclPermissionType.ANY));
            describe(admin, "prefixed", filter(ResourceType.ANY, null, PatternType.PREFIXED, null, null,
                AclOperation.ANY, AclPermissionType.ANY));
            describe(admin, "bob", filter(ResourceType.ANY, null, PatternType.ANY, "User:bob", null,
                AclOperation.ANY, AclPermissionType.ANY));
            describe(admin, "deny", filter(ResourceType.ANY, null, PatternType.ANY, null, null,
                AclOperation.ANY, AclPermissionType.DENY));

            AclBindingFilter nothing = filter(ResourceType.TOPIC, "no-such", PatternType.LITERAL, null, null,
                AclOperation.ANY, AclPermissionType.ANY);
            AclBindingFilter bobs = filter(ResourceType.ANY, null, PatternType.PREFIXED, "User:bob", null,
                AclOperation.ANY, AclPermissionType.ANY);
            DeleteAclsResult deleted = admin.deleteAcls(List.of(nothing, bobs));
            System.out.println("deleted nothing "
                + deleted.values().get(nothing).get(TIMEOUT_S, TimeUnit.SECONDS).values().size());
            List<AclBinding> gone = new ArrayList<>();
            for (DeleteAclsResult.FilterResult r : deleted.values().get(bobs).get(TIMEOUT_S, TimeUnit.SECONDS)
                    .values()) {
                gone.add(r.binding());
            }
            print("deleted", gone);
            describe(admin, "after", any());

            createExpectingError(admin, "cluster-name", binding(ResourceType.CLUSTER, "other", PatternType.LITERAL,
                "User:alice", "*", AclOperation.ALTER, AclPermissionType.ALLOW));
            createExpectingError(admin, "no-type", binding(ResourceType.TOPIC, "t", PatternType.LITERAL, "alice",
                "*", AclOperation.READ, AclPermissionType.ALLOW));
        }
        try (Admin alice = admin(bootstrap, "alice", "alice-secret")) {
            try {
                alice.describeAcls(any()).values().get(TIMEOUT_S, TimeUnit.SECONDS);
                System.out.println("described alice");
            } catch (ExecutionException e) {
                System.out.println("error alice " + e.getCause().getClass().getSimpleName());
            }
        }
    }
}
