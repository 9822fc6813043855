//! CreateTopics with explicit replica assignments, on both metadata stores: Kafka's refusals
//! (as `ZkAdminManager.createTopics` and `AdminZkClient.validateTopicCreate` make them),
//! `validate_only`, and the topic znode holding exactly the assignment asked for.

use crate::common;

use common::scram::znode;
use common::wire::{Conn, STORES, create_assigned, start_broker_on};
use kafka_protocol::ResponseError;

/// A refused request: name, num_partitions, replication_factor, assignments, then the error code
/// and a part of the message expected.
type Refusal<'a> = (&'a str, i32, i16, &'a [(i32, &'a [i32])], i16, &'a str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_assignments_are_validated_and_written_as_given() {
    let invalid_request = ResponseError::InvalidRequest.code();
    let invalid_assignment = ResponseError::InvalidReplicaAssignment.code();
    for store in STORES {
        let tmp = tempfile::tempdir().unwrap();
        let Some((broker, _zk)) = start_broker_on(store, tmp.path(), &[]).await else {
            continue;
        };
        let mut c = Conn::connect(broker.port).await;
        let cases: [Refusal; 7] = [
            (
                "count-too",
                2,
                -1,
                &[(0, &[0]), (1, &[0])],
                invalid_request,
                "Both numPartitions",
            ),
            (
                "rf-too",
                -1,
                1,
                &[(0, &[0])],
                invalid_request,
                "Both numPartitions",
            ),
            (
                "gap",
                -1,
                -1,
                &[(0, &[0]), (2, &[0])],
                invalid_assignment,
                "consecutive 0-based",
            ),
            (
                "from-one",
                -1,
                -1,
                &[(1, &[0])],
                invalid_assignment,
                "consecutive 0-based",
            ),
            (
                "twice",
                -1,
                -1,
                &[(0, &[0]), (0, &[0])],
                invalid_assignment,
                "consecutive 0-based",
            ),
            (
                "unknown",
                -1,
                -1,
                &[(0, &[0]), (1, &[7])],
                invalid_assignment,
                "Unknown broker(s)",
            ),
            (
                "dup",
                -1,
                -1,
                &[(0, &[0, 0])],
                invalid_assignment,
                "Duplicate brokers",
            ),
        ];
        for (name, partitions, rf, assignments, code, message) in cases {
            let r = create_assigned(&mut c, name, partitions, rf, assignments, false).await;
            assert_eq!(
                r.error_code, code,
                "{store:?} {name}: {:?}",
                r.error_message
            );
            let text = r.error_message.map(|m| m.to_string()).unwrap_or_default();
            assert!(text.contains(message), "{store:?} {name}: {text}");
            assert!(broker.api().cache.topic(name).is_none(), "{store:?} {name}");
        }
        let r = create_assigned(&mut c, "uneven", -1, -1, &[(0, &[0]), (1, &[])], false).await;
        assert_eq!(
            r.error_code, invalid_assignment,
            "{store:?} {:?}",
            r.error_message
        );

        // validate_only answers as a creation would and creates nothing.
        let given: &[(i32, &[i32])] = &[(2, &[0]), (0, &[0]), (1, &[0])];
        let r = create_assigned(&mut c, "given", -1, -1, given, true).await;
        assert_eq!(r.error_code, 0, "{store:?} {:?}", r.error_message);
        assert_eq!(
            (r.num_partitions, r.replication_factor),
            (3, 1),
            "{store:?}"
        );
        let handle = broker.api().configs.store().clone();
        assert!(
            znode(&handle, "/brokers/topics/given").await.is_none(),
            "{store:?}"
        );

        let r = create_assigned(&mut c, "given", -1, -1, given, false).await;
        assert_eq!(r.error_code, 0, "{store:?} {:?}", r.error_message);
        assert_eq!(
            (r.num_partitions, r.replication_factor),
            (3, 1),
            "{store:?}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&znode(&handle, "/brokers/topics/given").await.unwrap()).unwrap();
        assert_eq!(
            json["partitions"],
            serde_json::json!({"0": [0], "1": [0], "2": [0]}),
            "{store:?}"
        );
        let info = broker
            .api()
            .cache
            .topic("given")
            .expect("the topic is known");
        assert!(
            info.partitions.values().all(|p| p.leader == 0),
            "{store:?} {info:?}"
        );

        // An existing topic is refused as such, whatever its assignment says.
        let r = create_assigned(&mut c, "given", -1, -1, &[(3, &[9])], false).await;
        assert_eq!(
            r.error_code,
            ResponseError::TopicAlreadyExists.code(),
            "{store:?}"
        );
    }
}
