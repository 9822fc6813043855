//! What a cleaning pass keeps of each batch: Kafka's `RecordFilter` as `Cleaner` sets it up,
//! with the transaction tracking (`CleanedTransactionMetadata`) it needs. Separate from the
//! pass itself because it is a pure decision on bytes already read: no files, no locks.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use bytes::Bytes;

use super::offset_map::OffsetMap;
use crate::log::batch::{ATTR_DELETE_HORIZON, BatchHeader};
use crate::log::error::Result;
use crate::log::records::{self, Record};
use crate::log::txn_index::AbortedTxn;

/// Control record types (`ControlRecordType`).
const CONTROL_ABORT: i16 = 0;
const CONTROL_COMMIT: i16 = 1;

/// Kafka's `CleanedTransactionMetadata`: which transactions the cleaner is inside of, so it
/// can drop aborted records and tell when a marker may go.
#[derive(Default)]
pub(super) struct TxnTracker {
    ongoing_committed: HashSet<i64>,
    /// Producer id -> the aborted transaction, and the last offset of a batch of it still kept
    /// in the log (`None`: none seen in this pass, so its ABORT marker may go).
    ongoing_aborted: HashMap<i64, (AbortedTxn, Option<i64>)>,
    /// Aborted transactions not yet reached, earliest first.
    upcoming: BinaryHeap<Reverse<(i64, i64, i64, i64)>>,
    known: HashSet<(i64, i64)>,
}

impl TxnTracker {
    pub(super) fn add_aborted(&mut self, txns: Vec<AbortedTxn>) {
        for t in txns {
            // A transaction spanning segments is listed once per segment.
            if self.known.insert((t.producer_id, t.first_offset)) {
                self.upcoming.push(Reverse((
                    t.first_offset,
                    t.producer_id,
                    t.last_offset,
                    t.last_stable_offset,
                )));
            }
        }
    }

    fn consume_up_to(&mut self, offset: i64) {
        while let Some(Reverse((first, pid, last, lso))) = self.upcoming.peek().copied() {
            if first > offset {
                break;
            }
            self.upcoming.pop();
            self.ongoing_aborted.entry(pid).or_insert((
                AbortedTxn {
                    producer_id: pid,
                    first_offset: first,
                    last_offset: last,
                    last_stable_offset: lso,
                },
                None,
            ));
        }
    }

    /// A control batch: whether it may be discarded, and the aborted transaction the cleaned
    /// segment's `.txnindex` must list when the marker stays.
    pub(super) fn on_control_batch(
        &mut self,
        h: &BatchHeader,
        control: Option<i16>,
    ) -> (bool, Option<AbortedTxn>) {
        self.consume_up_to(h.last_offset());
        match control {
            // An empty control batch was cleaned before: nothing to keep.
            None => (true, None),
            Some(CONTROL_ABORT) => match self.ongoing_aborted.remove(&h.producer_id) {
                // Batches of the transaction remain: the marker must stay, and be indexed.
                Some((txn, Some(_))) => (false, Some(txn)),
                _ => (true, None),
            },
            Some(CONTROL_COMMIT) => (!self.ongoing_committed.remove(&h.producer_id), None),
            Some(_) => (false, None),
        }
    }

    /// A data batch: true when it belongs to an aborted transaction.
    pub(super) fn on_batch(&mut self, h: &BatchHeader) -> bool {
        self.consume_up_to(h.last_offset());
        if !h.is_transactional() {
            return false;
        }
        match self.ongoing_aborted.get_mut(&h.producer_id) {
            Some((_, last)) => {
                *last = Some(h.last_offset());
                true
            }
            None => {
                self.ongoing_committed.insert(h.producer_id);
                false
            }
        }
    }
}

/// The type of a control batch's record (its key is version int16, type int16).
pub(super) fn control_type(records: &[Record]) -> Option<i16> {
    let key = records.first()?.key.as_ref()?;
    (key.len() >= 4).then(|| i16::from_be_bytes([key[2], key[3]]))
}

/// What the filter made of one batch.
pub(super) struct Kept {
    pub(super) bytes: Option<Bytes>,
    pub(super) records_read: u64,
    pub(super) records_kept: u64,
    pub(super) index_aborted: Option<AbortedTxn>,
}

/// Kafka's `RecordFilter` as the cleaner sets it up, with `MemoryRecords.filterTo`.
pub(super) struct BatchFilter<'a> {
    pub(super) now: i64,
    pub(super) delete_retention_ms: i64,
    pub(super) map: &'a OffsetMap,
    pub(super) producers: &'a HashMap<i64, (Option<i64>, i16)>,
    pub(super) txns: TxnTracker,
    /// The earliest delete horizon among the tombstones and markers kept so far.
    pub(super) earliest_horizon: Option<i64>,
}

#[derive(PartialEq)]
enum BatchRetention {
    Delete,
    DeleteEmpty,
    RetainEmpty,
}

impl BatchFilter<'_> {
    pub(super) fn filter(&mut self, entry: &Bytes) -> Result<Kept> {
        let (h, recs) = records::decode_batch(entry)?;
        let control = h.is_control().then(|| control_type(&recs)).flatten();
        let (can_discard, index_aborted) = if h.is_control() {
            self.txns.on_control_batch(&h, control)
        } else {
            (self.txns.on_batch(&h), None)
        };
        let horizon = (h.attributes & ATTR_DELETE_HORIZON != 0).then_some(h.base_timestamp);
        let discard_records = if h.is_control() {
            can_discard && horizon.is_some_and(|t| t <= self.now)
        } else {
            can_discard
        };
        let last_of_producer = h.producer_id >= 0
            && self.producers.get(&h.producer_id).is_some_and(
                |&(last_data, epoch)| match last_data {
                    Some(offset) => h.last_offset() == offset,
                    None => h.is_control() && h.producer_epoch == epoch,
                },
            );
        let retention = if last_of_producer {
            BatchRetention::RetainEmpty
        } else if discard_records {
            BatchRetention::Delete
        } else {
            BatchRetention::DeleteEmpty
        };
        let marker_for_empty_txn = can_discard && h.is_control();
        let mut kept = Kept {
            bytes: None,
            records_read: recs.len() as u64,
            records_kept: 0,
            index_aborted,
        };
        if retention == BatchRetention::Delete {
            kept.index_aborted = None;
            return Ok(kept);
        }
        let total = recs.len();
        let retained: Vec<Record> = recs
            .into_iter()
            .filter(|r| !discard_records && (h.is_control() || self.keep_record(horizon, r)))
            .collect();
        kept.records_kept = retained.len() as u64;
        if !retained.is_empty() {
            let tombstones = retained.iter().any(|r| r.value.is_none());
            let needs_horizon = (tombstones || marker_for_empty_txn) && horizon.is_none();
            let new_horizon = if needs_horizon {
                Some(self.now.saturating_add(self.delete_retention_ms))
            } else {
                horizon
            };
            if (tombstones || marker_for_empty_txn)
                && let Some(t) = new_horizon
            {
                self.earliest_horizon = Some(self.earliest_horizon.map_or(t, |e| e.min(t)));
            }
            kept.bytes = Some(if retained.len() == total && !needs_horizon {
                entry.clone()
            } else {
                Bytes::from(records::build_cleaned_batch(&h, &retained, new_horizon)?)
            });
        } else if retention == BatchRetention::RetainEmpty {
            kept.bytes = Some(Bytes::from(records::empty_batch(&h)));
        }
        Ok(kept)
    }

    /// Kafka's `Cleaner.shouldRetainRecord`.
    fn keep_record(&self, horizon: Option<i64>, r: &Record) -> bool {
        if r.offset > self.map.latest_offset {
            return true;
        }
        let Some(key) = &r.key else {
            // A keyless record in a compacted log (written before the topic was compacted).
            return false;
        };
        let latest_for_key = r.offset >= self.map.get(key).unwrap_or(-1);
        let keep_tombstone = horizon.is_none_or(|t| self.now < t);
        latest_for_key && (r.value.is_some() || keep_tombstone)
    }
}
