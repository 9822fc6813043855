//! DescribeCluster (Kafka 2.8+ admin clients prefer it to Metadata).

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::Api;

/// DescribeCluster v1 `endpoint_type`: 1 asks for brokers; 2 (controllers) is KRaft-only.
const BROKERS: i8 = 1;

pub fn describe(
    api: &Api,
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
    r.brokers = api
        .cache
        .brokers()
        .into_iter()
        .map(|b| {
            let mut db = DescribeClusterBroker::default();
            db.broker_id = BrokerId(b.id);
            db.host = StrBytes::from_string(b.host);
            db.port = b.port as i32;
            db.rack = b.rack.map(StrBytes::from_string);
            db
        })
        .collect();
    r
}
