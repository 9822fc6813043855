//! Incremental fetch sessions' ids and epochs (KIP-227), Kafka's `FetchMetadata`: the leader's
//! session cache (`api::fetch_session`) and the follower fetcher (`replica::fetcher`) count
//! them the same way.

/// `FetchMetadata.INVALID_SESSION_ID`: no session.
pub const NO_SESSION: i32 = 0;
/// `FetchMetadata.INITIAL_EPOCH`: a full fetch that asks for a new session.
pub const INITIAL_EPOCH: i32 = 0;
/// `FetchMetadata.FINAL_EPOCH`: a full fetch that wants no session.
pub const FINAL_EPOCH: i32 = -1;

/// `FetchMetadata.nextEpoch`: wraps to 1, never back to the initial epoch.
pub fn next_epoch(epoch: i32) -> i32 {
    match epoch {
        e if e < 0 => FINAL_EPOCH,
        i32::MAX => 1,
        e => e + 1,
    }
}
