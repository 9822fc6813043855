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
        assert_eq!(
            s.check(&header(7, 1, 1, 1, 0))
                .unwrap_err()
                .kafka_error_code(),
            45
        );
        assert!(matches!(
            s.check(&header(7, 1, 6, 1, 0)).unwrap(),
            SequenceCheck::Duplicate(_)
        ));
    }
}
