//! The cleaner's offset map: for each key of the dirty section, the offset of its last record
//! (Kafka's `SkimpyOffsetMap`). Separate because it is the one memory-bounded structure of a
//! pass (`log.cleaner.dedupe.buffer.size`) and knows nothing of logs.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// Bytes one entry of Kafka's `SkimpyOffsetMap` takes (16-byte hash, 8-byte offset): the unit
/// `log.cleaner.dedupe.buffer.size` is divided into.
pub(super) const OFFSET_MAP_ENTRY_BYTES: u64 = 24;

/// Key -> last offset over the dirty section, keyed by 128 bits of hash (Kafka's
/// `SkimpyOffsetMap`, which uses MD5), with room for a fixed number of keys.
pub(super) struct OffsetMap {
    entries: HashMap<(u64, u64), i64, BuildHasherDefault<PassThrough>>,
    capacity: usize,
    /// The last offset the map covers: records after it are kept whatever their key.
    pub(super) latest_offset: i64,
    hash_a: RandomState,
    hash_b: RandomState,
}

impl OffsetMap {
    pub(super) fn new(capacity: usize, latest_offset: i64) -> Self {
        OffsetMap {
            entries: HashMap::default(),
            capacity,
            latest_offset,
            hash_a: RandomState::new(),
            hash_b: RandomState::new(),
        }
    }

    fn hash(&self, key: &[u8]) -> (u64, u64) {
        (self.hash_a.hash_one(key), self.hash_b.hash_one(key))
    }

    /// False, without storing, when the map is full.
    pub(super) fn put(&mut self, key: &[u8], offset: i64) -> bool {
        if self.entries.len() >= self.capacity {
            return false;
        }
        let h = self.hash(key);
        self.entries.insert(h, offset);
        true
    }

    pub(super) fn get(&self, key: &[u8]) -> Option<i64> {
        self.entries.get(&self.hash(key)).copied()
    }
}

/// The keys are already uniform hashes: the map needs no second hashing.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = self.0.rotate_left(31) ^ v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_map_keeps_the_last_offset_and_refuses_when_full() {
        let mut m = OffsetMap::new(2, -1);
        assert!(m.put(b"a", 1));
        assert!(m.put(b"a", 5));
        assert!(m.put(b"b", 2));
        assert!(!m.put(b"c", 3), "full");
        assert_eq!(m.get(b"a"), Some(5));
        assert_eq!(m.get(b"b"), Some(2));
        assert_eq!(m.get(b"c"), None);
    }
}
