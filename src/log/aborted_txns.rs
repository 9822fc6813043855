//! What a partition log keeps of aborted transactions: the `.txnindex` entry an ABORT marker
//! makes (at append and when the loader replays markers), and the aborted transactions a
//! read_committed fetch is told of (Kafka's `collectAbortedTransactions`). Separate from
//! `partition` because it is the transaction index's logic, shared by append, load and fetch.

use super::batch::BatchHeader;
use super::error::Result;
use super::partition::PartitionLog;
use super::producer_state::ProducerStateManager;
use super::records;
use super::txn_index::AbortedTxn;

impl PartitionLog {
    /// The aborted transactions a read_committed fetch from `from` up to `to` must be told of
    /// (Kafka's `collectAbortedTransactions`): those listed in the `.txnindex` of the segments
    /// from the one holding `from` on, that end at or after `from` and began before `to`.
    pub fn aborted_transactions(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        let start_base = self
            .segments
            .range(..=from)
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b);
        self.segments
            .range(start_base..)
            .flat_map(|(_, s)| s.txn_index.entries().iter())
            .filter(|t| t.last_offset >= from && t.first_offset < to)
            .copied()
            .collect()
    }
}

/// The coordinator epoch a COMMIT/ABORT marker carries (its value: version, epoch).
pub(super) fn marker_coordinator_epoch(marker: &[u8]) -> Option<i32> {
    let (_, recs) = records::decode_batch(marker).ok()?;
    let value = recs.first()?.value.as_ref()?;
    let epoch: [u8; 4] = value.get(2..6)?.try_into().ok()?;
    Some(i32::from_be_bytes(epoch))
}

/// The `.txnindex` entry for a marker about to be applied to `producers`: `None` for a COMMIT.
/// The last stable offset after an ABORT is the first offset of the oldest other open
/// transaction, or the offset after the marker.
pub(super) fn aborted_txn_of_marker(
    producers: &ProducerStateManager,
    h: &BatchHeader,
    marker: &[u8],
) -> Result<Option<AbortedTxn>> {
    let (_, recs) = records::decode_batch(marker)?;
    let is_abort = recs
        .first()
        .and_then(|r| r.key.as_ref())
        .is_some_and(|k| k.len() >= 4 && k[2..4] == [0, 0]);
    if !is_abort {
        return Ok(None);
    }
    let first_offset = producers
        .get(h.producer_id)
        .and_then(|e| e.current_txn_first_offset)
        .unwrap_or(h.base_offset);
    let others_first = producers
        .iter_open_transactions()
        .filter(|(pid, _)| *pid != h.producer_id)
        .map(|(_, first)| first)
        .min();
    Ok(Some(AbortedTxn {
        producer_id: h.producer_id,
        first_offset,
        last_offset: h.last_offset(),
        last_stable_offset: others_first.unwrap_or(h.next_offset()),
    }))
}
