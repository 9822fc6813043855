//! InitProducerId: a producer id for an idempotent producer, or, for a transactional id, from
//! the transaction coordinator.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::{Api, ClientInfo};
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    api: &Api,
    client: &ClientInfo,
    request: InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    let mut r = InitProducerIdResponse::default();
    r.producer_id = ProducerId(-1);
    r.producer_epoch = -1;
    // A transactional producer needs WRITE on its id; an idempotent one IDEMPOTENT_WRITE on
    // the cluster or WRITE on some topic.
    let refused = match &request.transactional_id {
        Some(id)
            if !api.authorized(client, Operation::Write, ResourceType::TransactionalId, id) =>
        {
            Some(ResponseError::TransactionalIdAuthorizationFailed)
        }
        None if !api.authorized_quietly(
            client,
            Operation::IdempotentWrite,
            ResourceType::Cluster,
            crate::security::acl::CLUSTER_NAME,
        ) && !api.authorized_by_resource_type(
            client,
            Operation::Write,
            ResourceType::Topic,
        ) =>
        {
            Some(ResponseError::ClusterAuthorizationFailed)
        }
        _ => None,
    };
    if let Some(e) = refused {
        r.error_code = e.code();
        return r;
    }
    if let Some(id) = &request.transactional_id {
        // v3+ (KIP-360): the producer says which id and epoch it had, if any.
        let expected = (version >= 3 && request.producer_id.0 >= 0)
            .then_some((request.producer_id.0, request.producer_epoch));
        match api
            .txn
            .init_producer_id(
                &id.0,
                request.transaction_timeout_ms,
                expected,
                &api.producer_ids,
            )
            .await
        {
            Ok((pid, epoch)) => {
                r.producer_id = ProducerId(pid);
                r.producer_epoch = epoch;
            }
            Err(e) => r.error_code = super::errors::txn_code(version, 4, e),
        }
        return r;
    }
    match api.producer_ids.next_id().await {
        Ok(id) => {
            r.producer_id = ProducerId(id);
            r.producer_epoch = 0;
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not allocate a producer id");
            // Retriable: the client asks again.
            r.error_code = ResponseError::CoordinatorNotAvailable.code();
        }
    }
    r
}
