//! Idempotent producers: per partition, each producer's epoch and its last five batches'
//! sequence ranges, so that a retried batch is acknowledged with its original offsets instead of
//! being written twice, and a gap in sequences is refused (Kafka's `ProducerStateManager`).

use std::collections::{HashMap, VecDeque};

use super::batch::BatchHeader;
use super::error::{LogError, Result};

/// How many recent batches per producer are remembered for duplicate detection; the Java
/// client allows at most five in flight, which is why Kafka keeps five.
pub const RETAINED_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub timestamp: i64,
}

#[derive(Debug, Clone, Default)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchMetadata>,
    /// First offset of the producer's open transaction, if one is open: the log is not stable
    /// (read_committed readers and the cleaner stop) from there until its marker.
    pub current_txn_first_offset: Option<i64>,
    /// The transaction coordinator epoch of the producer's last marker (None before any):
    /// a marker from an older coordinator is refused (a zombie coordinator).
    pub coordinator_epoch: Option<i32>,
}

/// The verdict on an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Not idempotent, or the next batch in sequence: append it.
    Append,
    /// Already in the log: answer with where it went.
    Duplicate(BatchMetadata),
}

#[derive(Debug, Default)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
}

fn in_sequence(last: i32, next: i32) -> bool {
    next as i64 == last as i64 + 1 || (last == i32::MAX && next == 0)
}

impl ProducerStateManager {
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Every producer with state here (Kafka's `activeProducers`).
    pub fn iter(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> + '_ {
        self.producers.iter().map(|(id, e)| (*id, e))
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Judges a client batch before it is appended.
    pub fn check(&self, h: &BatchHeader) -> Result<SequenceCheck> {
        if h.producer_id < 0 || h.base_sequence < 0 {
            return Ok(SequenceCheck::Append);
        }
        let Some(entry) = self.producers.get(&h.producer_id) else {
            // A producer we know nothing of (new, or its state expired): Kafka accepts any
            // sequence here rather than leaving the producer stuck.
            return Ok(SequenceCheck::Append);
        };
        if h.producer_epoch < entry.epoch {
            return Err(LogError::InvalidProducerEpoch(format!(
                "producer {} epoch {} is older than the current epoch {}",
                h.producer_id, h.producer_epoch, entry.epoch
            )));
        }
        if h.producer_epoch == entry.epoch
            && let Some(dup) = entry
                .batches
                .iter()
                .find(|b| b.first_seq == h.base_sequence && b.last_seq == h.last_sequence())
        {
            return Ok(SequenceCheck::Duplicate(*dup));
        }
        if h.producer_epoch > entry.epoch {
            if h.base_sequence != 0 {
                return Err(LogError::OutOfOrderSequence(format!(
                    "producer {} starts epoch {} at sequence {}, not 0",
                    h.producer_id, h.producer_epoch, h.base_sequence
                )));
            }
            return Ok(SequenceCheck::Append);
        }
        match entry.batches.back() {
            Some(last) if !in_sequence(last.last_seq, h.base_sequence) => {
                Err(LogError::OutOfOrderSequence(format!(
                    "producer {} sent sequence {} after {}",
                    h.producer_id, h.base_sequence, last.last_seq
                )))
            }
            None if h.base_sequence != 0 => Err(LogError::OutOfOrderSequence(format!(
                "producer {} has no batches in epoch {}, but sent sequence {}",
                h.producer_id, h.producer_epoch, h.base_sequence
            ))),
            _ => Ok(SequenceCheck::Append),
        }
    }

    /// Records a batch now in the log (with its real offsets).
    pub fn update(&mut self, h: &BatchHeader) {
        if h.producer_id < 0 {
            return;
        }
        let entry = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch != entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        if h.is_control() {
            entry.current_txn_first_offset = None;
        } else if h.is_transactional() && entry.current_txn_first_offset.is_none() {
            entry.current_txn_first_offset = Some(h.base_offset);
        }
        if h.base_sequence < 0 || h.is_control() {
            return;
        }
        entry.batches.push_back(BatchMetadata {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            first_offset: h.base_offset,
            last_offset: h.last_offset(),
            timestamp: h.max_timestamp,
        });
        while entry.batches.len() > RETAINED_BATCHES {
            entry.batches.pop_front();
        }
    }

    pub fn clear(&mut self) {
        self.producers.clear();
    }

    /// Records the coordinator epoch of a marker written for the producer.
    pub fn set_coordinator_epoch(&mut self, producer_id: i64, coordinator_epoch: i32) {
        self.producers
            .entry(producer_id)
            .or_default()
            .coordinator_epoch = Some(coordinator_epoch);
    }

    /// Producer id and first offset of every open transaction.
    pub fn iter_open_transactions(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.producers
            .iter()
            .filter_map(|(id, e)| e.current_txn_first_offset.map(|f| (*id, f)))
    }

    /// The first offset of the oldest open transaction (Kafka's `firstUnstableOffset`).
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.iter_open_transactions().map(|(_, first)| first).min()
    }

    /// Per producer: the last offset of its last data batch (if it has one) and its epoch. The
    /// log cleaner keeps the batches these point at, so a producer's state survives cleaning
    /// (Kafka's `lastRecordsOfActiveProducers`).
    pub fn last_records(&self) -> HashMap<i64, (Option<i64>, i16)> {
        self.producers
            .iter()
            .map(|(id, e)| (*id, (e.batches.back().map(|b| b.last_offset), e.epoch)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, count: i32, base: i64) -> BatchHeader {
        let mut b = [0u8; super::super::batch::BATCH_HEADER_LEN];
        b[16] = 2;
        let mut h = BatchHeader::parse(&b).unwrap();
        h.producer_id = pid;
        h.producer_epoch = epoch;
        h.base_sequence = seq;
        h.last_offset_delta = count - 1;
        h.records_count = count;
        h.base_offset = base;
        h
    }

    #[test]
    fn duplicates_gaps_and_epochs() {
        let mut s = ProducerStateManager::default();
        let b0 = header(7, 0, 0, 10, 0);
        assert_eq!(s.check(&b0).unwrap(), SequenceCheck::Append);
        s.update(&b0);
        let b1 = header(7, 0, 10, 5, 10);
        assert_eq!(s.check(&b1).unwrap(), SequenceCheck::Append);
        s.update(&b1);
        // A retry of b0 is a duplicate with its original offsets.
        match s.check(&header(7, 0, 0, 10, 999)).unwrap() {
            SequenceCheck::Duplicate(m) => assert_eq!((m.first_offset, m.last_offset), (0, 9)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            s.check(&header(7, 0, 16, 1, 0)),
            Err(LogError::OutOfOrderSequence(_))
        ));
        assert!(matches!(
            s.check(&header(7, 1, 3, 1, 0)),
            Err(LogError::OutOfOrderSequence(_))
        ));
        assert_eq!(
            s.check(&header(7, 1, 0, 1, 0)).unwrap(),
            SequenceCheck::Append
        );
        s.update(&header(7, 1, 0, 1, 15));
        assert!(matches!(
            s.check(&header(7, 0, 15, 1, 0)),
            Err(LogError::InvalidProducerEpoch(_))
        ));
        // Only the last five batches are remembered.
        for i in 0..6 {
            s.update(&header(7, 1, 1 + i, 1, 16 + i as i64));
        }
        assert!(matches!(
            s.check(&header(7, 1, 1, 1, 0)),
            Err(LogError::OutOfOrderSequence(_))
        ));
        assert!(matches!(
            s.check(&header(7, 1, 6, 1, 0)).unwrap(),
            SequenceCheck::Duplicate(_)
        ));
    }
}

/// `<offset>.snapshot`: Kafka's producer-state snapshot (version 1), valid at log end `offset`.
pub mod snapshot {
    use std::path::{Path, PathBuf};

    use super::{BatchMetadata, ProducerEntry, ProducerStateManager};
    use crate::log::checkpoint::write_atomically;
    use crate::log::error::{IoContext, LogError, Result};
    use crate::log::segment::file_prefix;

    pub const SUFFIX: &str = "snapshot";
    const VERSION: i16 = 1;
    const HEADER: usize = 10;
    const ENTRY: usize = 46;

    pub fn path(dir: &Path, offset: i64) -> PathBuf {
        dir.join(format!("{}.{SUFFIX}", file_prefix(offset)))
    }

    /// Snapshot files in `dir`, oldest first.
    pub fn list(dir: &Path) -> Result<Vec<(i64, PathBuf)>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).at(dir)? {
            let entry = entry.at(dir)?;
            if let Some(offset) = offset_of(&entry.file_name().to_string_lossy()) {
                out.push((offset, entry.path()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// The offset a snapshot file's name gives (`00000000000000000042.snapshot` -> 42); `None`
    /// for any other file.
    pub fn offset_of(name: &str) -> Option<i64> {
        let stem = name.strip_suffix(".snapshot")?;
        (stem.len() == 20)
            .then(|| stem.parse::<i64>().ok())
            .flatten()
    }

    pub fn write(dir: &Path, offset: i64, state: &ProducerStateManager) -> Result<()> {
        let mut body = Vec::with_capacity(4 + state.producers.len() * ENTRY);
        body.extend_from_slice(&(state.producers.len() as i32).to_be_bytes());
        let mut ids: Vec<&i64> = state.producers.keys().collect();
        ids.sort();
        for id in ids {
            let entry = &state.producers[id];
            let last = entry.batches.back().copied().unwrap_or(BatchMetadata {
                first_seq: -1,
                last_seq: -1,
                first_offset: -1,
                last_offset: -1,
                timestamp: -1,
            });
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&entry.epoch.to_be_bytes());
            body.extend_from_slice(&last.last_seq.to_be_bytes());
            body.extend_from_slice(&last.last_offset.to_be_bytes());
            body.extend_from_slice(&(last.last_seq.wrapping_sub(last.first_seq)).to_be_bytes());
            body.extend_from_slice(&last.timestamp.to_be_bytes());
            body.extend_from_slice(&entry.coordinator_epoch.unwrap_or(-1).to_be_bytes());
            body.extend_from_slice(&entry.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
        }
        let mut out = Vec::with_capacity(6 + body.len());
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        write_atomically(&path(dir, offset), &out)
    }

    /// One entry of a snapshot file, every field as Kafka writes it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SnapshotEntry {
        pub producer_id: i64,
        pub epoch: i16,
        pub last_sequence: i32,
        pub last_offset: i64,
        pub offset_delta: i32,
        pub timestamp: i64,
        pub coordinator_epoch: i32,
        /// -1 when the producer has no open transaction.
        pub current_txn_first_offset: i64,
    }

    /// Decodes a snapshot file, checking its version, CRC and size.
    pub fn read_entries(file: &Path) -> Result<Vec<SnapshotEntry>> {
        let data = std::fs::read(file).at(file)?;
        let bad = |reason: &str| LogError::BadCheckpoint {
            path: file.to_path_buf(),
            reason: reason.to_string(),
        };
        if data.len() < HEADER {
            return Err(bad("shorter than its header"));
        }
        if i16::from_be_bytes([data[0], data[1]]) != VERSION {
            return Err(bad("unknown version"));
        }
        if crc32c::crc32c(&data[6..]) != u32::from_be_bytes([data[2], data[3], data[4], data[5]]) {
            return Err(bad("CRC mismatch"));
        }
        let count = i32::from_be_bytes([data[6], data[7], data[8], data[9]]);
        if count < 0 || data.len() != HEADER + count as usize * ENTRY {
            return Err(bad("entry count does not match the size"));
        }
        Ok(data[HEADER..]
            .chunks_exact(ENTRY)
            .map(|e| {
                let i64_at =
                    |at: usize| i64::from_be_bytes(e[at..at + 8].try_into().unwrap_or([0; 8]));
                let i32_at =
                    |at: usize| i32::from_be_bytes(e[at..at + 4].try_into().unwrap_or([0; 4]));
                SnapshotEntry {
                    producer_id: i64_at(0),
                    epoch: i16::from_be_bytes([e[8], e[9]]),
                    last_sequence: i32_at(10),
                    last_offset: i64_at(14),
                    offset_delta: i32_at(22),
                    timestamp: i64_at(26),
                    coordinator_epoch: i32_at(34),
                    current_txn_first_offset: i64_at(38),
                }
            })
            .collect())
    }

    /// The producer state a snapshot file holds.
    pub fn read(file: &Path) -> Result<ProducerStateManager> {
        let mut state = ProducerStateManager::default();
        for e in read_entries(file)? {
            let mut entry = ProducerEntry {
                epoch: e.epoch,
                batches: Default::default(),
                current_txn_first_offset: (e.current_txn_first_offset >= 0)
                    .then_some(e.current_txn_first_offset),
                coordinator_epoch: (e.coordinator_epoch >= 0).then_some(e.coordinator_epoch),
            };
            if e.last_sequence >= 0 {
                entry.batches.push_back(BatchMetadata {
                    first_seq: e.last_sequence.wrapping_sub(e.offset_delta),
                    last_seq: e.last_sequence,
                    first_offset: e.last_offset - e.offset_delta as i64,
                    last_offset: e.last_offset,
                    timestamp: e.timestamp,
                });
            }
            state.producers.insert(e.producer_id, entry);
        }
        Ok(state)
    }
}
