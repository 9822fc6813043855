//! DescribeCluster (Kafka 2.8+ admin clients prefer it to Metadata).

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::{Api, ClientInfo};
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};

/// DescribeCluster v1 `endpoint_type`: 1 asks for brokers; 2 (controllers) is KRaft-only.
const BROKERS: i8 = 1;

pub fn describe(
    api: &Api,
    client: &ClientInfo,
    request: DescribeClusterRequest,
    version: i16,
) -> DescribeClusterResponse {
    let mut r = DescribeClusterResponse::default();
    if version >= 1 {
        r.endpoint_type = request.endpoint_type;
        if request.endpoint_type != BROKERS {
            r.error_code = super::errors::UNSUPPORTED_ENDPOINT_TYPE;
            r.error_message = Some(StrBytes::from_static_str(
                "a ZooKeeper-mode broker lists brokers only",
            ));
            return r;
        }
    }
    r.cluster_id = StrBytes::from_string(api.cache.cluster_id());
    r.controller_id = BrokerId(api.cache.controller_id());
    r.cluster_authorized_operations = i32::MIN;
    // KIP-430: what the client may do to the cluster, 0 when it may not even describe it.
    if request.include_cluster_authorized_operations {
        r.cluster_authorized_operations = if api.authorized_on_cluster(client, Operation::Describe)
        {
            api.authorized_operations(client, ResourceType::Cluster, CLUSTER_NAME)
        } else {
            0
        };
    }
    let listener = client.listener(&api.config);
    // Only brokers reachable on the client's listener, as Kafka lists them.
    r.brokers = api
        .cache
        .brokers()
        .into_iter()
        .filter_map(|b| {
            let e = b.endpoint(listener)?;
            let mut db = DescribeClusterBroker::default();
            db.broker_id = BrokerId(b.id);
            db.host = StrBytes::from_string(e.host.clone());
            db.port = i32::from(e.port);
            db.rack = b.rack.map(StrBytes::from_string);
            Some(db)
        })
        .collect();
    r
}
