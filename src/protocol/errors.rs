//! The Kafka error codes kafka-protocol's `ResponseError` lacks; every other code is named by
//! its `ResponseError` variant (`ResponseError::X.code()`). Here, below every layer, so that
//! the coordinators and the api layer share them.

/// No error. `ResponseError` has no variant for it (`try_from_code(0)` is `None`).
pub const NONE: i16 = 0;

/// DescribeCluster v1 asked for an endpoint type this broker does not serve (KIP-919).
/// kafka-protocol 0.15 knows codes up to 106 only.
pub const UNSUPPORTED_ENDPOINT_TYPE: i16 = 119;

/// AlterPartition v2+ proposed an ISR with a replica that is not eligible (offline or shutting
/// down, KIP-841); v0-1 get OPERATION_NOT_ATTEMPTED instead.
pub const INELIGIBLE_REPLICA: i16 = 107;
