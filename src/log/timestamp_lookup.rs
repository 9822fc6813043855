//! Finding offsets by timestamp (ListOffsets with a timestamp, or MAX_TIMESTAMP) through the
//! segments' time indexes. Separate from `partition` because it is a lookup of its own, used by
//! ListOffsets only, that neither appends nor takes part in fetches.

use super::error::Result;
use super::partition::PartitionLog;
use super::records;

impl PartitionLog {
    /// The first offset whose record timestamp is >= `timestamp`, with that timestamp, as
    /// ListOffsets answers; `None` when no record is that recent.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>> {
        for seg in self.segments.values() {
            if seg.largest_timestamp() < timestamp || seg.is_empty() {
                continue;
            }
            let from = seg
                .time_index
                .lookup(timestamp)
                .map_or(seg.base_offset, |(_, off)| off);
            let mut pos = seg.offset_index.lookup(from) as u64;
            while let Some(e) = seg.entry_at(pos)? {
                if e.max_timestamp >= timestamp && e.last_offset >= self.log_start_offset {
                    if e.magic == 2 {
                        let bytes = seg.read_bytes(e.position, e.size as usize)?;
                        let (_, recs) = records::decode_batch(&bytes)?;
                        if let Some(r) = recs
                            .iter()
                            .find(|r| r.timestamp >= timestamp && r.offset >= self.log_start_offset)
                        {
                            return Ok(Some((r.offset, r.timestamp)));
                        }
                    } else {
                        return Ok(Some((e.last_offset, e.max_timestamp)));
                    }
                }
                pos += e.size;
            }
        }
        Ok(None)
    }

    /// The first record carrying the log's largest timestamp, with that timestamp (ListOffsets
    /// MAX_TIMESTAMP); `None` for an empty log.
    pub fn offset_of_max_timestamp(&self) -> Result<Option<(i64, i64)>> {
        let max = self
            .segments
            .values()
            .filter(|s| !s.is_empty())
            .map(|s| s.largest_timestamp())
            .max();
        match max {
            Some(ts) => self.offset_for_timestamp(ts),
            None => Ok(None),
        }
    }
}
