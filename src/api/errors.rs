//! Kafka error codes as the api layer answers them: kafka-protocol's `ResponseError` names
//! every code it knows (`ResponseError::X.code()`), `protocol::errors` holds what it lacks, and this
//! module the rules that choose between codes.

use kafka_protocol::ResponseError;

use crate::txn::TxnError;

pub use crate::protocol::errors::{NONE, UNSUPPORTED_ENDPOINT_TYPE};

/// KIP-320: a client that names the leader epoch it expects is told when it is behind
/// (fenced) or ahead (unknown) of this leader. -1 means it did not say.
pub fn leader_epoch_check(requested: i32, ours: i32) -> Option<i16> {
    match requested {
        r if r < 0 => None,
        r if r < ours => Some(ResponseError::FencedLeaderEpoch.code()),
        r if r > ours => Some(ResponseError::UnknownLeaderEpoch.code()),
        _ => None,
    }
}

/// Consumers before Fetch v6 do not know KAFKA_STORAGE_ERROR: Kafka tells them
/// NOT_LEADER_OR_FOLLOWER, so they look for the partition elsewhere.
pub fn storage_error_for_old_fetch(version: i16, code: i16) -> i16 {
    if version <= 5 && code == ResponseError::KafkaStorageError.code() {
        ResponseError::NotLeaderOrFollower.code()
    } else {
        code
    }
}

/// The code a transaction coordinator's refusal answers as. Clients older than KIP-588 know
/// INVALID_PRODUCER_EPOCH, not PRODUCER_FENCED.
pub fn txn_code(version: i16, first_with_fenced: i16, error: TxnError) -> i16 {
    if error == TxnError::ProducerFenced && version < first_with_fenced {
        ResponseError::InvalidProducerEpoch.code()
    } else {
        error.kafka_error_code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_kafka_protocol_lacks_are_still_unknown_to_it() {
        // When kafka-protocol learns this code, its variant replaces the constant here.
        assert_eq!(
            ResponseError::try_from_code(UNSUPPORTED_ENDPOINT_TYPE),
            Some(ResponseError::Unknown(UNSUPPORTED_ENDPOINT_TYPE))
        );
        assert_eq!(ResponseError::try_from_code(NONE), None);
    }
}
