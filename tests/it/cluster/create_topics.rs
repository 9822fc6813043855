//! CreateTopics with explicit replica assignments on three brokers: each partition gets the
//! replicas asked for, in that order, and its first replica leads.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::cluster::{Cluster, metadata, wait_until};
use common::wire::{Conn, create_assigned};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assigned_replicas_land_where_asked_and_the_first_leads() {
    let Some(cluster) = Cluster::start(&[1, 2, 3]) else {
        return;
    };
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    let given: &[(i32, &[i32])] = &[(0, &[3, 1]), (1, &[2, 3]), (2, &[1, 2]), (3, &[3, 2])];
    let mut c = Conn::connect(cluster.port(2)).await;
    let r = create_assigned(&mut c, "placed", -1, -1, given, false).await;
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    assert_eq!((r.num_partitions, r.replication_factor), (4, 2));
    // partition -> (leader, replicas) as every broker comes to see it.
    let want: BTreeMap<i32, (i32, Vec<i32>)> = given
        .iter()
        .map(|(p, r)| (*p, (r[0], r.to_vec())))
        .collect();
    for id in [1, 2, 3] {
        let port = cluster.port(id);
        let want = &want;
        wait_until(
            Duration::from_secs(30),
            &format!("broker {id} sees the assignment, first replicas leading"),
            || async move {
                let md = metadata(port, Some(&["placed"])).await;
                let seen: BTreeMap<i32, (i32, Vec<i32>)> = md
                    .topics
                    .iter()
                    .flat_map(|t| t.partitions.iter())
                    .map(|p| {
                        let replicas = p.replica_nodes.iter().map(|b| b.0).collect();
                        (p.partition_index, (p.leader_id.0, replicas))
                    })
                    .collect();
                seen == *want
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    }
}
