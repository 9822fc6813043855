//! InitProducerId: a producer id for an idempotent producer, or, for a transactional id, from
//! the transaction coordinator.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::Api;

pub async fn handle(
    api: &Api,
    request: InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    let mut r = InitProducerIdResponse::default();
    r.producer_id = ProducerId(-1);
    r.producer_epoch = -1;
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
            Err(code) => r.error_code = super::transactions::fenced_for(version, 4, code),
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
            r.error_code = 15; // COORDINATOR_NOT_AVAILABLE: retriable
        }
    }
    r
}
