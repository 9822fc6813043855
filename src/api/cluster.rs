//! DescribeCluster (Kafka 2.8+ admin clients prefer it to Metadata).

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::Api;

pub fn describe(api: &Api, _request: DescribeClusterRequest) -> DescribeClusterResponse {
    let mut r = DescribeClusterResponse::default();
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
